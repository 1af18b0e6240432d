//! What a client asks: the nine [`Endpoint`]s, a [`Query`], and which
//! [`Direction`] is best for each of the course's questions.

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
    #[must_use]
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
    #[must_use]
    pub fn from_name(name: &str) -> Option<Endpoint> {
        Endpoint::ALL.into_iter().find(|e| e.name() == name)
    }

    /// Returns true if and only if the request body must carry `"state"`.
    #[must_use]
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
#[must_use]
pub fn direction(question: &str) -> Option<Direction> {
    DIRECTIONS
        .iter()
        .find(|(q, _)| *q == question)
        .map(|&(_, d)| d)
}
