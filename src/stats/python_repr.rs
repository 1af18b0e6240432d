//! Python's `repr` of floats, strings and tuples of strings: the float
//! text of every answer, and the keys of the by-category answers.

use std::fmt::Write as _;

/// `x` as Python's `repr(float)` prints it (also what `json.dumps` prints):
/// the shortest digits that round-trip, in fixed notation when
/// `1e-4 <= |x| < 1e16` (always with a fractional part, `25.0`) and in
/// exponent notation otherwise (`1e-05`, `1.5e+16`); `nan`, `inf`, `-inf`.
#[must_use]
pub fn python_float_repr(x: f64) -> String {
    let mut out = String::new();
    write_python_float(&mut out, x);
    out
}

/// Appends [`python_float_repr`]`(x)` to `out`.
pub(super) fn write_python_float(out: &mut String, x: f64) {
    if x.is_nan() {
        out.push_str("nan");
        return;
    }
    if x.is_infinite() {
        out.push_str(if x > 0.0 { "inf" } else { "-inf" });
        return;
    }
    // Rust's `{}` and `{:e}` print the same shortest round-trip digits as
    // Python, `{}` always in fixed notation and `{:e}` as `d[.ddd]e<exp>`.
    // Python picks fixed notation when those digits are at least 1e-4 and
    // below 1e16, which holds if and only if `x` itself is: 1e16 is exact,
    // and the shortest digits of the double nearest 1e-4 are `1e-4`, while
    // every smaller double's digits lie below 1e-4.
    let start = out.len();
    // Writing into a String cannot fail.
    if x == 0.0 || (1e-4..1e16).contains(&x.abs()) {
        let _ = write!(out, "{x}");
        // Python shows a whole number with a fractional part: `25.0`.
        if !out[start..].contains('.') {
            out.push_str(".0");
        }
        return;
    }
    let _ = write!(out, "{x:e}");
    let e = start
        + out[start..]
            .find('e')
            // `{:e}` of a finite float always has an exponent part...
            .expect("LowerExp output has an 'e'");
    let exponent: i32 = out[e + 1..]
        .parse()
        // ...which is a decimal integer such as `-5` or `16`.
        .expect("LowerExp exponent is an integer");
    // Python writes the exponent with a sign and at least two digits.
    out.truncate(e + 1);
    let exp_sign = if exponent < 0 { '-' } else { '+' };
    let _ = write!(out, "{exp_sign}{:02}", exponent.unsigned_abs());
}

/// `text` as Python's `repr(str)` prints it.
///
/// Single quotes, unless the text contains `'` and no `"`, then double
/// quotes; the chosen quote and `\` are escaped with `\`; `\t`, `\n`, `\r`
/// as such; other non-printable characters as `\xNN`, `\uNNNN` or
/// `\UNNNNNNNN`. "Non-printable" covers the control characters, the
/// separators other than the space, the common format characters and the
/// private-use areas; unassigned code points (which Python also escapes)
/// would need the Unicode tables and are printed as they are.
#[must_use]
pub fn python_repr_str(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    write_python_repr_str(&mut out, text);
    out
}

/// Appends [`python_repr_str`]`(text)` to `out`.
pub(super) fn write_python_repr_str(out: &mut String, text: &str) {
    // One pass finds which quotes occur and whether any other character
    // may need an escape.
    let (mut single, mut double, mut plain) = (false, false, true);
    for b in text.bytes() {
        single |= b == b'\'';
        double |= b == b'"';
        plain &= (b' '..=b'~').contains(&b) && b != b'\\';
    }
    let quote = if single && !double { '"' } else { '\'' };
    out.push(quote);
    // The common case, printable ASCII without `\` or the quote, needs no
    // escape: it is copied whole rather than a character at a time. (When
    // the quote is `"`, the text has none.)
    if plain && !(quote == '\'' && single) {
        out.push_str(text);
    } else {
        for c in text.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\t' => out.push_str("\\t"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                c if c == quote => {
                    out.push('\\');
                    out.push(c);
                }
                c if !is_python_printable(c) => {
                    let code = u32::from(c);
                    // Writing into a String cannot fail.
                    let _ = match code {
                        0..=0xff => write!(out, "\\x{code:02x}"),
                        0x100..=0xffff => write!(out, "\\u{code:04x}"),
                        _ => write!(out, "\\U{code:08x}"),
                    };
                }
                c => out.push(c),
            }
        }
    }
    out.push(quote);
}

/// Returns false for the characters Python's `str.isprintable` rejects,
/// except unassigned code points (see [`python_repr_str`]).
fn is_python_printable(c: char) -> bool {
    !matches!(
        u32::from(c),
        // Cc: C0 controls, DEL, C1 controls.
        0x00..=0x1f | 0x7f..=0x9f
        // Zs other than the space; Cf soft hyphen.
        | 0xa0 | 0xad
        // Cf: Arabic, Syriac and Mongolian format characters.
        | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x180e
        // Zs, Cf (zero-width and direction marks), Zl, Zp, Zs.
        | 0x1680 | 0x2000..=0x200f | 0x2028..=0x202f
        // Zs, Cf (word joiner, invisible operators, direction isolates).
        | 0x205f..=0x2064 | 0x2066..=0x206f
        // Zs ideographic space; Co private use; Cf BOM and annotations.
        | 0x3000 | 0xe000..=0xf8ff | 0xfeff | 0xfff9..=0xfffb
        // Cf and Co in the supplementary planes.
        | 0x110bd | 0x1d173..=0x1d17a | 0xe0001 | 0xe0020..=0xe007f
        | 0xf0000..=0x10ffff
    )
}

/// Python's `repr` of a tuple of strings: `('a', 'b')`, `('a',)`, `()`.
#[must_use]
pub fn python_repr_tuple(items: &[&str]) -> String {
    // Room for the items, their quotes and the separators, unless escaped.
    let mut out = String::with_capacity(items.iter().map(|s| s.len() + 4).sum::<usize>() + 3);
    out.push('(');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_python_repr_str(&mut out, item);
    }
    if items.len() == 1 {
        out.push(',');
    }
    out.push(')');
    out
}
