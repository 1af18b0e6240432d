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
//! Files: `query.rs` (what is asked), `answer.rs` (the answer and its JSON),
//! `python_repr.rs` (Python-compatible floats and keys), and here the
//! statistics themselves.

mod answer;
mod python_repr;
mod query;

pub use answer::Answer;
pub use python_repr::{python_float_repr, python_repr_str, python_repr_tuple};
pub use query::{direction, Direction, Endpoint, Query};

use crate::dataset::{CategoryId, Dataset, GroupSum, QuestionRows, StateRows};
use python_repr::write_python_repr_str;
use std::fmt;

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
        (Endpoint::MeanByCategory, _, _) => Answer::Flat(mean_by_category(dataset, question)),
        (Endpoint::StateMeanByCategory, Some(state), _) => Answer::Nested(
            state.name().to_owned(),
            state_mean_by_category(dataset, state),
        ),
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

/// The mean of every (state, category, stratification) group of `question`,
/// keyed by the Python `repr` of that tuple; sorted by the tuple.
fn mean_by_category(dataset: &Dataset, question: QuestionRows<'_>) -> Vec<(String, f64)> {
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
            let mut key =
                String::with_capacity(head.len() + category.len() + stratification.len() + 8);
            key.push_str(&head);
            write_python_repr_str(&mut key, category);
            key.push_str(", ");
            write_python_repr_str(&mut key, stratification);
            key.push(')');
            entries.push((key, mean));
        }
    }
    entries
}

/// The mean of every (category, stratification) group of `state`, keyed by
/// the Python `repr` of that pair; sorted by the pair.
fn state_mean_by_category(dataset: &Dataset, state: StateRows<'_>) -> Vec<(String, f64)> {
    category_means(state)
        .map(|(id, mean)| {
            let (category, stratification) = dataset.category(id);
            (python_repr_tuple(&[category, stratification]), mean)
        })
        .collect()
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
/// in that case) as the sum of `value / count`, where pandas would answer
/// infinity (test `a_mean_whose_sum_overflows_is_still_the_mean`). That sum
/// is exactly the mean before rounding, so only rounding can carry it past
/// `f64::MAX` (three values of `f64::MAX` give infinity); it is never NaN
/// (test `an_overflowing_mean_never_becomes_nan`).
fn mean_of(sum: GroupSum, values: impl Iterator<Item = f64>) -> f64 {
    let count = sum.count() as f64;
    if sum.sum().is_finite() {
        return sum.sum() / count;
    }
    values.map(|value| value / count).sum()
}
