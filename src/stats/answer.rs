//! A computed [`Answer`] and its JSON text, written by hand so that keys
//! keep their order and floats print as Python's `json` prints them.

use super::python_repr::write_python_float;

/// A computed answer, serialised in order by [`Answer::to_json`].
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// `{key: value, ...}` in this order.
    Flat(Vec<(String, f64)>),
    /// `{outer: {key: value, ...}}` in this order.
    Nested(String, Vec<(String, f64)>),
}

impl Answer {
    /// The JSON text of the answer, keys in order, floats as Python prints them.
    ///
    /// Separators are Python's `json.dumps` defaults (`", "` and `": "`), e.g.
    /// `{"a": 1.0, "b": 2.5}`. A non-finite number (which the statistics only
    /// produce if a difference of two huge means overflows) is written as
    /// `null`, because JSON has no infinity.
    #[must_use]
    pub fn to_json(&self) -> String {
        let (outer, entries) = match self {
            Answer::Flat(entries) => (None, entries),
            Answer::Nested(outer, entries) => (Some(outer), entries),
        };
        // One allocation in the common case: room for each key with its
        // quotes and separators and the longest float (24 characters,
        // `-1.7976931348623157e+308`); only escapes can outgrow it.
        let capacity = entries.iter().map(|(key, _)| key.len() + 32).sum::<usize>()
            + outer.map_or(0, |o| o.len() + 8)
            + 2;
        let mut out = String::with_capacity(capacity);
        match outer {
            None => write_object(&mut out, entries),
            Some(outer) => {
                out.push('{');
                write_json_string(&mut out, outer);
                out.push_str(": ");
                write_object(&mut out, entries);
                out.push('}');
            }
        }
        out
    }
}

/// Appends `{"key": value, ...}` to `out`.
fn write_object(out: &mut String, entries: &[(String, f64)]) {
    out.push('{');
    for (i, (key, value)) in entries.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_json_string(out, key);
        out.push_str(": ");
        if value.is_finite() {
            write_python_float(out, *value);
        } else {
            out.push_str("null");
        }
    }
    out.push('}');
}

/// Appends `text` as a JSON string literal to `out`, escaped as
/// `serde_json` escapes it.
fn write_json_string(out: &mut String, text: &str) {
    // serde_json escapes exactly `"`, `\` and the control characters below
    // U+0020; text without them is copied as it is. (A fold rather than
    // `any`: without an early exit it compiles to a loop over many bytes at
    // a time.)
    let escapes = text.bytes().fold(false, |any, b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if escapes {
        // Serialising a `&str` cannot fail: it has no map keys to reject and
        // writes into memory.
        out.push_str(&serde_json::to_string(text).expect("a &str always serialises"));
    } else {
        out.push('"');
        out.push_str(text);
        out.push('"');
    }
}
