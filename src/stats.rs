//! The nine statistics as pure functions over a [`Dataset`].
//!
//! The answers must match the course's pandas server, which computes them
//! with `groupby(...).mean()` and `Series.mean()`. A mean here is a group's
//! sum divided by its count, and the [`Dataset`] computes every group's sum
//! once while loading, added exactly as pandas adds it (Kahan per state and
//! per category, numpy's pairwise sum per question: see [`GroupSum`]). So a
//! query costs a read per state or category, not a pass over the rows, and
//! its means equal pandas' bit for bit.
//!
//! Ties between equal means are ordered by state name (SPEC). pandas orders
//! them by numpy's unstable quicksort instead, so for ties only the key order
//! can differ from the course server, never the values.
//!
//! JSON is written by hand so that keys keep their order and floats print as
//! Python's `json` prints them.

use crate::dataset::{CategoryId, Dataset, GroupSum, QuestionRows, StateRows};
use std::fmt;
use std::fmt::Write as _;

/// The nine computing endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    StatesMean,
    StateMean,
    Best5,
    Worst5,
    GlobalMean,
    DiffFromMean,
    StateDiffFromMean,
    MeanByCategory,
    StateMeanByCategory,
}

impl Endpoint {
    /// Every endpoint, in the SPEC's order.
    pub const ALL: [Endpoint; 9] = [
        Endpoint::StatesMean,
        Endpoint::StateMean,
        Endpoint::Best5,
        Endpoint::Worst5,
        Endpoint::GlobalMean,
        Endpoint::DiffFromMean,
        Endpoint::StateDiffFromMean,
        Endpoint::MeanByCategory,
        Endpoint::StateMeanByCategory,
    ];

    /// The path segment after `/api/`, e.g. `"states_mean"`.
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::StatesMean => "states_mean",
            Endpoint::StateMean => "state_mean",
            Endpoint::Best5 => "best5",
            Endpoint::Worst5 => "worst5",
            Endpoint::GlobalMean => "global_mean",
            Endpoint::DiffFromMean => "diff_from_mean",
            Endpoint::StateDiffFromMean => "state_diff_from_mean",
            Endpoint::MeanByCategory => "mean_by_category",
            Endpoint::StateMeanByCategory => "state_mean_by_category",
        }
    }

    /// The endpoint whose [`name`](Endpoint::name) is `name`, if any.
    pub fn from_name(name: &str) -> Option<Endpoint> {
        Endpoint::ALL.into_iter().find(|e| e.name() == name)
    }

    /// Returns true if and only if the request body must carry `"state"`.
    pub fn needs_state(self) -> bool {
        matches!(
            self,
            Endpoint::StateMean | Endpoint::StateDiffFromMean | Endpoint::StateMeanByCategory
        )
    }
}

/// One computing request, as validated from a request body.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Query {
    pub endpoint: Endpoint,
    pub question: String,
    /// `Some` exactly when `endpoint.needs_state()`.
    pub state: Option<String>,
}

/// Which way is "best" for a question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Lower values are better (e.g. obesity).
    LowerIsBetter,
    /// Higher values are better (e.g. physical activity).
    HigherIsBetter,
}

/// The course's nine questions and which way is best for each (SPEC, "Data").
const DIRECTIONS: [(&str, Direction); 9] = [
    (
        "Percent of adults aged 18 years and older who have an overweight classification",
        Direction::LowerIsBetter,
    ),
    (
        "Percent of adults aged 18 years and older who have obesity",
        Direction::LowerIsBetter,
    ),
    (
        "Percent of adults who engage in no leisure-time physical activity",
        Direction::LowerIsBetter,
    ),
    (
        "Percent of adults who report consuming fruit less than one time daily",
        Direction::LowerIsBetter,
    ),
    (
        "Percent of adults who report consuming vegetables less than one time daily",
        Direction::LowerIsBetter,
    ),
    (
        "Percent of adults who achieve at least 150 minutes a week of moderate-intensity \
         aerobic physical activity or 75 minutes a week of vigorous-intensity aerobic activity \
         (or an equivalent combination)",
        Direction::HigherIsBetter,
    ),
    (
        "Percent of adults who achieve at least 150 minutes a week of moderate-intensity \
         aerobic physical activity or 75 minutes a week of vigorous-intensity aerobic physical \
         activity and engage in muscle-strengthening activities on 2 or more days a week",
        Direction::HigherIsBetter,
    ),
    (
        "Percent of adults who achieve at least 300 minutes a week of moderate-intensity \
         aerobic physical activity or 150 minutes a week of vigorous-intensity aerobic activity \
         (or an equivalent combination)",
        Direction::HigherIsBetter,
    ),
    (
        "Percent of adults who engage in muscle-strengthening activities on 2 or more days a week",
        Direction::HigherIsBetter,
    ),
];

/// The direction of one of the course's nine questions; `None` for any other.
pub fn direction(question: &str) -> Option<Direction> {
    DIRECTIONS
        .iter()
        .find(|(q, _)| *q == question)
        .map(|&(_, d)| d)
}

/// Why a query cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatsError {
    UnknownQuestion {
        question: String,
    },
    UnknownState {
        question: String,
        state: String,
    },
    /// best5/worst5 on a question that has no direction.
    NoDirection {
        question: String,
    },
}

impl fmt::Display for StatsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatsError::UnknownQuestion { question } => write!(f, "unknown question: {question:?}"),
            StatsError::UnknownState { question, state } => {
                write!(f, "unknown state {state:?} for question {question:?}")
            }
            StatsError::NoDirection { question } => {
                write!(f, "question has no best/worst direction: {question:?}")
            }
        }
    }
}

impl std::error::Error for StatsError {}

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

/// `x` as Python's `repr(float)` prints it (also what `json.dumps` prints):
/// the shortest digits that round-trip, in fixed notation when
/// `1e-4 <= |x| < 1e16` (always with a fractional part, `25.0`) and in
/// exponent notation otherwise (`1e-05`, `1.5e+16`); `nan`, `inf`, `-inf`.
pub fn python_float_repr(x: f64) -> String {
    let mut out = String::new();
    write_python_float(&mut out, x);
    out
}

/// Appends [`python_float_repr`]`(x)` to `out`.
fn write_python_float(out: &mut String, x: f64) {
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
pub fn python_repr_str(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    write_python_repr_str(&mut out, text);
    out
}

/// Appends [`python_repr_str`]`(text)` to `out`.
fn write_python_repr_str(out: &mut String, text: &str) {
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

/// What a valid query addresses.
struct Target<'a> {
    question: QuestionRows<'a>,
    /// `Some` when the endpoint needs a state.
    state: Option<StateRows<'a>>,
    /// `Some` when the endpoint is best5/worst5.
    direction: Option<Direction>,
}

/// Checks `query` against `dataset` and finds what it addresses.
fn resolve<'a>(dataset: &'a Dataset, query: &Query) -> Result<Target<'a>, StatsError> {
    let question =
        dataset
            .question(&query.question)
            .ok_or_else(|| StatsError::UnknownQuestion {
                question: query.question.clone(),
            })?;
    let state = if query.endpoint.needs_state() {
        // A state endpoint without a state breaks `Query`'s invariant; it is
        // answered as the unknown state "" rather than trusted.
        let name = query.state.as_deref().unwrap_or("");
        let rows = question
            .state(name)
            .ok_or_else(|| StatsError::UnknownState {
                question: query.question.clone(),
                state: name.to_owned(),
            })?;
        Some(rows)
    } else {
        None
    };
    let direction = match query.endpoint {
        Endpoint::Best5 | Endpoint::Worst5 => Some(direction(&query.question).ok_or_else(
            || StatsError::NoDirection {
                question: query.question.clone(),
            },
        )?),
        _ => None,
    };
    Ok(Target {
        question,
        state,
        direction,
    })
}

/// Checks everything [`compute`] would reject, without computing.
///
/// # Errors
/// The same errors `compute` would return.
pub fn validate(dataset: &Dataset, query: &Query) -> Result<(), StatsError> {
    resolve(dataset, query).map(|_| ())
}

/// Computes the answer to `query`.
///
/// # Errors
/// An unknown question or state, or best5/worst5 on a question with no direction.
pub fn compute(dataset: &Dataset, query: &Query) -> Result<Answer, StatsError> {
    let target = resolve(dataset, query)?;
    let question = target.question;
    let answer = match (query.endpoint, target.state, target.direction) {
        (Endpoint::StatesMean, _, _) => Answer::Flat(owned(states_mean(question))),
        (Endpoint::StateMean, Some(state), _) => {
            Answer::Flat(vec![(state.name().to_owned(), state_mean(state))])
        }
        (Endpoint::Best5, _, Some(direction)) => {
            let descending = direction == Direction::HigherIsBetter;
            Answer::Flat(owned(top5(question, descending)))
        }
        (Endpoint::Worst5, _, Some(direction)) => {
            let descending = direction == Direction::LowerIsBetter;
            Answer::Flat(owned(top5(question, descending)))
        }
        (Endpoint::GlobalMean, _, _) => {
            Answer::Flat(vec![("global_mean".to_owned(), global_mean(question))])
        }
        (Endpoint::DiffFromMean, _, _) => {
            let global = global_mean(question);
            let diffs = states_mean(question)
                .into_iter()
                .map(|(name, mean)| (name.to_owned(), global - mean))
                .collect();
            Answer::Flat(diffs)
        }
        (Endpoint::StateDiffFromMean, Some(state), _) => {
            let diff = global_mean(question) - state_mean(state);
            Answer::Flat(vec![(state.name().to_owned(), diff)])
        }
        (Endpoint::MeanByCategory, _, _) => {
            let len = question.states().map(|s| s.category_sums().len()).sum();
            let mut entries = Vec::with_capacity(len);
            // States come in name order and categories in (category,
            // stratification) order, so the keys come sorted by the tuple.
            for state in question.states() {
                // Each key is `python_repr_tuple(&[state, category,
                // stratification])`; the state's part is written once.
                let mut head = String::from("(");
                write_python_repr_str(&mut head, state.name());
                head.push_str(", ");
                for (id, mean) in category_means(state) {
                    let (category, stratification) = dataset.category(id);
                    let mut key = String::with_capacity(
                        head.len() + category.len() + stratification.len() + 8,
                    );
                    key.push_str(&head);
                    write_python_repr_str(&mut key, category);
                    key.push_str(", ");
                    write_python_repr_str(&mut key, stratification);
                    key.push(')');
                    entries.push((key, mean));
                }
            }
            Answer::Flat(entries)
        }
        (Endpoint::StateMeanByCategory, Some(state), _) => {
            let entries = category_means(state)
                .map(|(id, mean)| {
                    let (category, stratification) = dataset.category(id);
                    (python_repr_tuple(&[category, stratification]), mean)
                })
                .collect();
            Answer::Nested(state.name().to_owned(), entries)
        }
        // `resolve` gives a state to every state endpoint and a direction to
        // best5/worst5; these arms exist only so that nothing can panic.
        (
            Endpoint::StateMean | Endpoint::StateDiffFromMean | Endpoint::StateMeanByCategory,
            None,
            _,
        ) => {
            return Err(StatsError::UnknownState {
                question: query.question.clone(),
                state: query.state.clone().unwrap_or_default(),
            })
        }
        (Endpoint::Best5 | Endpoint::Worst5, _, None) => {
            return Err(StatsError::NoDirection {
                question: query.question.clone(),
            })
        }
    };
    Ok(answer)
}

/// Every state's mean, ascending by mean, ties by name.
fn states_mean<'a>(question: QuestionRows<'a>) -> Vec<(&'a str, f64)> {
    let mut means: Vec<(&str, f64)> = question
        .states()
        .map(|s| (s.name(), state_mean(s)))
        .collect();
    means.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(b.0)));
    means
}

/// The first five states by mean, ascending or descending; ties by name.
fn top5(question: QuestionRows<'_>, descending: bool) -> Vec<(&str, f64)> {
    let mut means = states_mean(question);
    if descending {
        means.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    }
    means.truncate(5);
    means
}

/// The mean of each (category, stratification) group of a state, sorted by
/// the pair; rows without a category are left out (pandas drops NaN keys).
fn category_means<'a>(state: StateRows<'a>) -> impl Iterator<Item = (CategoryId, f64)> + 'a {
    state.category_sums().map(move |(id, sum)| {
        // Read only if the group's sum overflowed.
        let values = state
            .rows()
            .filter(move |&(c, _)| c == Some(id))
            .map(|(_, v)| v);
        (id, mean_of(sum, values))
    })
}

fn owned(entries: Vec<(&str, f64)>) -> Vec<(String, f64)> {
    entries
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
}

/// The mean of a state's values as pandas' `groupby(...).mean()` computes it.
fn state_mean(state: StateRows<'_>) -> f64 {
    mean_of(state.sum(), state.values())
}

/// The global mean of a question as pandas' `Series.mean()` computes it.
fn global_mean(question: QuestionRows<'_>) -> f64 {
    mean_of(question.sum(), question.values())
}

/// The group's sum divided by its count, unless the sum overflowed: the
/// values are finite (the loader rejects others), so their mean is too, and
/// it is then computed from `values` (the group's values again, read only
/// in that case) as the sum of `value / count` — every partial sum of those
/// is at most `count` terms of at most `f64::MAX / count` each, so it cannot
/// overflow (pandas would answer infinity).
fn mean_of(sum: GroupSum, values: impl Iterator<Item = f64>) -> f64 {
    let count = sum.count() as f64;
    if sum.sum().is_finite() {
        return sum.sum() / count;
    }
    values.map(|value| value / count).sum()
}
