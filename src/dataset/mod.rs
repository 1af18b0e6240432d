//! The survey loaded into an immutable, indexed [`Dataset`], and its query
//! API ([`Dataset::question`], [`QuestionRows`], [`StateRows`]).
//!
//! Loading has two steps, each in its own file:
//!
//! - `read.rs` reads the CSV: columns by header name, validation with errors
//!   that name file, line and column, the survey-year filter; strings that
//!   repeat on every row are numbered by an `Interner` (`interner.rs`, its
//!   map hashed by `word_hash.rs`), so a kept row costs 16 bytes plus a
//!   4-byte index entry (test
//!   `a_kept_row_costs_16_bytes_plus_a_4_byte_index_entry`);
//! - `index.rs` lays the kept rows out for the queries [`crate::stats`]
//!   serves, and computes every group's sum once (`sum.rs`: [`GroupSum`],
//!   Kahan and pairwise summation, exactly as pandas adds).
//!
//! The layout:
//!
//! - the rows of one question are contiguous, in file order (the global mean
//!   sums them in that order, as pandas does);
//! - a permutation groups the rows of each (question, state) pair, again in
//!   file order within the group, so a state-level query reads only that
//!   state's rows;
//! - questions, states and (category, stratification) pairs are numbered in
//!   name order, so sorting by id is sorting by name;
//! - every group a mean is asked of — a question, a (question, state) pair,
//!   a (question, state, category) triple — has its count and sum computed
//!   once, at load, as a [`GroupSum`]: the data never changes after loading,
//!   so a query reads a few thousand precomputed sums instead of every row.
//!
//! Rows keep pandas' view of missing values where the statistics depend on it:
//! a row with an empty `LocationDesc` counts towards its question's global
//! mean but belongs to no state, and a row with an empty
//! `StratificationCategory1` or `Stratification1` belongs to no category
//! (pandas' `groupby` drops `NaN` keys).

mod index;
mod interner;
mod read;
mod sum;
mod word_hash;

use std::ops::Range;
use std::path::Path;
use std::time::Instant;

pub use read::{DatasetError, LoadSummary};
pub use sum::GroupSum;

/// The loaded survey: immutable after [`Dataset::load`], shared as `Arc<Dataset>`.
#[derive(Debug)]
pub struct Dataset {
    summary: LoadSummary,
    /// Every kept row. Invariant: grouped by question in the order of
    /// `questions`, and in file order within a question.
    rows: Vec<Row>,
    /// Indices into `rows`. Invariant: grouped by (question, state) in the
    /// order of `questions` and then of each question's `states`, and in
    /// file order within a group. Rows with an empty location are absent.
    by_state: Vec<u32>,
    /// Invariant: sorted by name, names unique; each has at least one row.
    questions: Vec<QuestionIndex>,
    /// Every non-empty location with a kept row. Invariant: sorted, unique.
    locations: Vec<Box<str>>,
    /// Every (category, stratification) pair with both parts non-empty.
    /// Invariant: sorted, unique; a [`CategoryId`] indexes it.
    categories: Vec<CategoryNames>,
    /// The sums of every (question, state, category) group. Invariant:
    /// grouped by (question, state) in the order of `by_state`, sorted by
    /// category within a (question, state), one entry per category that has
    /// a row there.
    category_sums: Vec<CategorySum>,
}

/// A (category, stratification) pair of names.
type CategoryNames = (Box<str>, Box<str>);

/// One kept row, with its question and state implied by where it lies.
#[derive(Debug, Clone, Copy)]
struct Row {
    /// An index into `Dataset::categories`, or `NO_ID` when the row's
    /// category or stratification is empty.
    category: u32,
    value: f64,
}

/// The id of an empty location, category or stratification: no id at all.
/// `Interner` never hands it out.
const NO_ID: u32 = u32::MAX;

#[derive(Debug)]
struct QuestionIndex {
    name: Box<str>,
    /// This question's slice of `Dataset::rows`.
    rows: Range<usize>,
    /// The pairwise sum of `rows`' values.
    sum: GroupSum,
    /// Invariant: sorted by location name, one entry per state with a row.
    states: Vec<StateIndex>,
}

#[derive(Debug)]
struct StateIndex {
    /// An index into `Dataset::locations`.
    location: u32,
    /// This (question, state)'s slice of `Dataset::by_state`; never empty.
    by_state: Range<usize>,
    /// The Kahan sum of `by_state`'s values.
    sum: GroupSum,
    /// This (question, state)'s slice of `Dataset::category_sums`; empty
    /// when none of its rows has a category.
    category_sums: Range<usize>,
}

/// The sum of one (question, state, category) group.
#[derive(Debug, Clone, Copy)]
struct CategorySum {
    /// An index into `Dataset::categories`; never `NO_ID`.
    category: u32,
    /// The Kahan sum of the group's values.
    sum: GroupSum,
}

/// A (category, stratification) pair; ids compare as the pairs of names do
/// (by code point, as Python compares strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CategoryId(u32);

impl Dataset {
    /// Loads a CDC-layout CSV.
    ///
    /// Columns are found by header name (the first column of that name wins;
    /// others are ignored); a UTF-8 BOM, CRLF line ends and RFC 4180 quoting
    /// work. Only the used columns must be valid UTF-8.
    ///
    /// # Errors
    /// A missing required column, a non-numeric or non-finite `Data_Value`, a
    /// non-integer year, invalid UTF-8 in a used column, a record with a
    /// different number of fields than the header, or an I/O error. The
    /// message names the file, the line where the record starts (the header
    /// is line 1) and, where there is one, the column, e.g.
    /// `data/x.csv: line 7, column "Data_Value": "abc" is not a number`.
    pub fn load(path: &Path) -> Result<Dataset, DatasetError> {
        let started = Instant::now();
        let bytes = std::fs::read(path).map_err(|e| DatasetError {
            message: format!("{}: cannot read: {e}", path.display()),
        })?;
        let mut dataset = Dataset::from_bytes(path, &bytes)?;
        dataset.summary.load_time = started.elapsed();
        Ok(dataset)
    }

    /// Parses the bytes of a CDC-layout CSV as [`Dataset::load`] parses a
    /// file; `path` only names the source in the summary and in errors.
    ///
    /// # Errors
    /// As [`Dataset::load`], except that nothing is read from `path`.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Dataset, DatasetError> {
        let started = Instant::now();
        let table = read::read_rows(path, bytes)?;
        let mut dataset = index::build(table);
        dataset.summary.load_time = started.elapsed();
        Ok(dataset)
    }

    /// What the load found.
    #[must_use]
    pub fn summary(&self) -> &LoadSummary {
        &self.summary
    }

    /// Every question with at least one kept row, sorted.
    #[must_use]
    pub fn questions(&self) -> Vec<&str> {
        self.questions.iter().map(|q| &*q.name).collect()
    }

    /// Every location (state) with at least one kept row, sorted.
    #[must_use]
    pub fn locations(&self) -> Vec<&str> {
        self.locations.iter().map(|l| &**l).collect()
    }

    /// Every location with at least one kept row for `question`, sorted;
    /// empty if the question is unknown.
    #[must_use]
    pub fn locations_for(&self, question: &str) -> Vec<&str> {
        self.question(question)
            .map(|q| q.states().map(|s| s.name()).collect())
            .unwrap_or_default()
    }

    /// The rows of `question`, if it has any.
    #[must_use]
    pub fn question(&self, question: &str) -> Option<QuestionRows<'_>> {
        let at = self
            .questions
            .binary_search_by(|q| (*q.name).cmp(question))
            .ok()?;
        Some(QuestionRows {
            dataset: self,
            index: &self.questions[at],
        })
    }

    /// The (category, stratification) names of `id`.
    ///
    /// # Panics
    /// If `id` comes from another dataset and is out of range here.
    #[must_use]
    pub fn category(&self, id: CategoryId) -> (&str, &str) {
        let (category, stratification) = &self.categories[id.0 as usize];
        (category, stratification)
    }
}

/// The kept rows of one question.
#[derive(Debug, Clone, Copy)]
pub struct QuestionRows<'a> {
    dataset: &'a Dataset,
    index: &'a QuestionIndex,
}

impl<'a> QuestionRows<'a> {
    /// The question's text.
    #[must_use]
    pub fn name(&self) -> &'a str {
        &self.index.name
    }

    /// Every value of the question, in file order (rows with an empty
    /// location included).
    #[must_use]
    pub fn values(&self) -> impl ExactSizeIterator<Item = f64> + 'a {
        self.dataset.rows[self.index.rows.clone()]
            .iter()
            .map(|r| r.value)
    }

    /// The count and sum of [`values`](QuestionRows::values), added with
    /// numpy's pairwise summation in file order, as pandas' `Series.mean()`
    /// adds them. Computed once at load.
    #[must_use]
    pub fn sum(&self) -> GroupSum {
        self.index.sum
    }

    /// The states with at least one row for the question, sorted by name.
    #[must_use]
    pub fn states(&self) -> impl ExactSizeIterator<Item = StateRows<'a>> + 'a {
        let dataset = self.dataset;
        self.index
            .states
            .iter()
            .map(move |index| StateRows { dataset, index })
    }

    /// The rows of `state` for the question, if it has any.
    #[must_use]
    pub fn state(&self, state: &str) -> Option<StateRows<'a>> {
        let locations = &self.dataset.locations;
        let at = self
            .index
            .states
            .binary_search_by(|s| (*locations[s.location as usize]).cmp(state))
            .ok()?;
        Some(StateRows {
            dataset: self.dataset,
            index: &self.index.states[at],
        })
    }
}

/// The kept rows of one (question, state) pair; never empty.
#[derive(Debug, Clone, Copy)]
pub struct StateRows<'a> {
    dataset: &'a Dataset,
    index: &'a StateIndex,
}

impl<'a> StateRows<'a> {
    /// The state's name.
    #[must_use]
    pub fn name(&self) -> &'a str {
        &self.dataset.locations[self.index.location as usize]
    }

    /// The state's values, in file order.
    #[must_use]
    pub fn values(&self) -> impl ExactSizeIterator<Item = f64> + 'a {
        self.rows().map(|(_, value)| value)
    }

    /// The count and sum of [`values`](StateRows::values), added with Kahan
    /// compensation in file order, as pandas' `groupby(...).mean()` adds
    /// them. Computed once at load.
    #[must_use]
    pub fn sum(&self) -> GroupSum {
        self.index.sum
    }

    /// For each category of the state's rows, sorted by [`CategoryId`], the
    /// count and sum of that category's values, added as
    /// [`sum`](StateRows::sum) adds them. Rows without a category belong to
    /// none (pandas' `groupby` drops `NaN` keys). Computed once at load.
    #[must_use]
    pub fn category_sums(&self) -> impl ExactSizeIterator<Item = (CategoryId, GroupSum)> + 'a {
        self.dataset.category_sums[self.index.category_sums.clone()]
            .iter()
            .map(|c| (CategoryId(c.category), c.sum))
    }

    /// The state's rows as (category, value), in file order; the category is
    /// `None` when the row's category or stratification is empty.
    #[must_use]
    pub fn rows(&self) -> impl ExactSizeIterator<Item = (Option<CategoryId>, f64)> + 'a {
        let rows = &self.dataset.rows;
        self.dataset.by_state[self.index.by_state.clone()]
            .iter()
            .map(move |&i| {
                let row = rows[i as usize];
                let category = (row.category != NO_ID).then_some(CategoryId(row.category));
                (category, row.value)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_row_costs_16_bytes_plus_a_4_byte_index_entry() {
        assert_eq!(std::mem::size_of::<Row>(), 16);
        let dataset = Dataset::from_bytes(
            Path::new("t.csv"),
            b"LocationDesc,Question,Data_Value,StratificationCategory1,Stratification1\n\
              Ohio,Q,1.5,Total,Total\n\
              ,Q,2.5,Total,Total\n",
        )
        .unwrap();
        // One `Row` per kept row; one u32 in `by_state` per row with a state.
        assert_eq!(dataset.rows.len(), 2);
        assert_eq!(dataset.by_state.len(), 1);
        assert_eq!(std::mem::size_of_val(&dataset.by_state[0]), 4);
    }
}
