//! The nine statistics as pure functions over a [`Dataset`].
//!
//! STUB: the public items below are the interface other modules rely on;
//! the bodies are to be written (issue 2).

use crate::dataset::Dataset;
use std::fmt;

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

/// The direction of one of the course's nine questions; `None` for any other.
pub fn direction(question: &str) -> Option<Direction> {
    let _ = question;
    todo!("issue 2")
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
    pub fn to_json(&self) -> String {
        todo!("issue 2")
    }
}

/// Checks everything [`compute`] would reject, without computing.
///
/// # Errors
/// The same errors `compute` would return.
pub fn validate(dataset: &Dataset, query: &Query) -> Result<(), StatsError> {
    let _ = (dataset, query);
    todo!("issue 2")
}

/// Computes the answer to `query`.
///
/// # Errors
/// An unknown question or state, or best5/worst5 on a question with no direction.
pub fn compute(dataset: &Dataset, query: &Query) -> Result<Answer, StatsError> {
    let _ = (dataset, query);
    todo!("issue 2")
}
