//! Loading the CDC CSV into an immutable, indexed [`Dataset`].
//!
//! The file is read with one `std::fs::read` and parsed with the `csv` crate
//! over the bytes, one reused [`csv::ByteRecord`] at a time; strings that
//! repeat on every row (question, location, category, stratification) are
//! interned, so a kept row costs 16 bytes plus a 4-byte index entry.
//!
//! After loading, the rows are laid out for the queries [`crate::stats`]
//! serves:
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
//!   once, here, as a [`GroupSum`]: the data never changes after loading, so
//!   a query reads a few thousand precomputed sums instead of every row.
//!
//! The sums are added exactly as pandas adds them, so that the means of
//! [`crate::stats`] equal the course server's bit for bit (measured on the
//! 114 checker cases: 114/114 equal; naive summation in file order matches
//! none of the diff cases). pandas uses two summations:
//!
//! - `groupby(...).mean()` (the per-state and per-category means) is
//!   Kahan-compensated summation in file order, as its `group_mean` kernel;
//! - `Series.mean()` (the global mean of a question) is numpy's pairwise
//!   summation in file order.
//!
//! Rows keep pandas' view of missing values where the statistics depend on it:
//! a row with an empty `LocationDesc` counts towards its question's global
//! mean but belongs to no state, and a row with an empty
//! `StratificationCategory1` or `Stratification1` belongs to no category
//! (pandas' `groupby` drops `NaN` keys).

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The columns every file must have, found by header name.
const COL_LOCATION: &str = "LocationDesc";
const COL_QUESTION: &str = "Question";
const COL_VALUE: &str = "Data_Value";
const COL_CATEGORY: &str = "StratificationCategory1";
const COL_STRATIFICATION: &str = "Stratification1";
/// Optional columns: when present, rows outside the survey years are dropped.
const COL_YEAR_START: &str = "YearStart";
const COL_YEAR_END: &str = "YearEnd";

/// The survey years kept when the file has year columns (inclusive).
const FIRST_YEAR: i64 = 2011;
const LAST_YEAR: i64 = 2022;

/// An offending field is quoted in an error message up to this many
/// characters, so a huge field cannot produce a huge message.
const MAX_QUOTED_CHARS: usize = 60;

/// Kept rows are indexed by u32, and no pair id may reach `NO_ID`.
const MAX_ROWS: usize = u32::MAX as usize - 1;

/// The UTF-8 byte order mark some tools write at the start of a CSV.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

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
/// [`Interner`] never hands it out.
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

/// The number of values in a group and their sum, added as pandas adds them
/// (see the module documentation for which summation applies where).
///
/// The values are finite (the loader rejects others), but their sum may
/// still overflow: [`GroupSum::sum`] is then infinite or NaN, and a mean has
/// to be computed from the values themselves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroupSum {
    /// At least 1 for every group the dataset hands out.
    count: u64,
    sum: f64,
}

impl GroupSum {
    /// The number of values in the group.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The values' sum; not finite if and only if the summation overflowed.
    pub fn sum(&self) -> f64 {
        self.sum
    }
}

/// A (category, stratification) pair; ids compare as the pairs of names do
/// (by code point, as Python compares strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CategoryId(u32);

/// What a load found, for `--summary` and the start-up banner.
#[derive(Debug, Clone)]
pub struct LoadSummary {
    pub path: PathBuf,
    /// Data records in the file (the header not counted).
    pub rows_read: usize,
    /// Rows the statistics use.
    pub rows_kept: usize,
    /// Rows skipped because `Data_Value` (after trimming ASCII whitespace) or
    /// `Question` is empty: neither can take part in any statistic.
    pub skipped_empty_value: usize,
    /// Rows skipped because they lie outside 2011–2022 (only when the file
    /// has `YearStart` / `YearEnd`). Checked before the empty value.
    pub skipped_out_of_years: usize,
    pub questions: usize,
    pub locations: usize,
    pub load_time: Duration,
}

impl fmt::Display for LoadSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "dataset:   {}", self.path.display())?;
        writeln!(
            f,
            "rows:      {} read, {} kept, {} skipped (empty value), {} skipped (out of years {FIRST_YEAR}-{LAST_YEAR})",
            self.rows_read, self.rows_kept, self.skipped_empty_value, self.skipped_out_of_years
        )?;
        writeln!(
            f,
            "contents:  {} questions, {} locations",
            self.questions, self.locations
        )?;
        write!(f, "loaded in: {} ms", self.load_time.as_millis())
    }
}

/// Why a CSV could not be loaded; the message names file, line and column.
#[derive(Debug)]
pub struct DatasetError {
    pub message: String,
}

impl fmt::Display for DatasetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DatasetError {}

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
        let mut dataset = parse(path, bytes)?;
        dataset.summary.load_time = started.elapsed();
        Ok(dataset)
    }

    /// What the load found.
    pub fn summary(&self) -> &LoadSummary {
        &self.summary
    }

    /// Every question with at least one kept row, sorted.
    pub fn questions(&self) -> Vec<&str> {
        self.questions.iter().map(|q| &*q.name).collect()
    }

    /// Every location (state) with at least one kept row, sorted.
    pub fn locations(&self) -> Vec<&str> {
        self.locations.iter().map(|l| &**l).collect()
    }

    /// Every location with at least one kept row for `question`, sorted;
    /// empty if the question is unknown.
    pub fn locations_for(&self, question: &str) -> Vec<&str> {
        self.question(question)
            .map(|q| q.states().map(|s| s.name()).collect())
            .unwrap_or_default()
    }

    /// Returns true if and only if `question` has at least one kept row.
    pub fn has_question(&self, question: &str) -> bool {
        self.question(question).is_some()
    }

    /// Returns true if and only if `state` has at least one kept row for `question`.
    pub fn has_state(&self, question: &str, state: &str) -> bool {
        self.question(question)
            .is_some_and(|q| q.state(state).is_some())
    }

    /// The rows of `question`, if it has any.
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
    pub fn name(&self) -> &'a str {
        &self.index.name
    }

    /// Every value of the question, in file order (rows with an empty
    /// location included).
    pub fn values(&self) -> impl ExactSizeIterator<Item = f64> + 'a {
        self.dataset.rows[self.index.rows.clone()]
            .iter()
            .map(|r| r.value)
    }

    /// The count and sum of [`values`](QuestionRows::values), added with
    /// numpy's pairwise summation in file order, as pandas' `Series.mean()`
    /// adds them. Computed once at load.
    pub fn sum(&self) -> GroupSum {
        self.index.sum
    }

    /// The states with at least one row for the question, sorted by name.
    pub fn states(&self) -> impl ExactSizeIterator<Item = StateRows<'a>> + 'a {
        let dataset = self.dataset;
        self.index
            .states
            .iter()
            .map(move |index| StateRows { dataset, index })
    }

    /// The rows of `state` for the question, if it has any.
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
    pub fn name(&self) -> &'a str {
        &self.dataset.locations[self.index.location as usize]
    }

    /// The state's values, in file order.
    pub fn values(&self) -> impl ExactSizeIterator<Item = f64> + 'a {
        self.rows().map(|(_, value)| value)
    }

    /// The count and sum of [`values`](StateRows::values), added with Kahan
    /// compensation in file order, as pandas' `groupby(...).mean()` adds
    /// them. Computed once at load.
    pub fn sum(&self) -> GroupSum {
        self.index.sum
    }

    /// For each category of the state's rows, sorted by [`CategoryId`], the
    /// count and sum of that category's values, added as
    /// [`sum`](StateRows::sum) adds them. Rows without a category belong to
    /// none (pandas' `groupby` drops `NaN` keys). Computed once at load.
    pub fn category_sums(&self) -> impl ExactSizeIterator<Item = (CategoryId, GroupSum)> + 'a {
        self.dataset.category_sums[self.index.category_sums.clone()]
            .iter()
            .map(|c| (CategoryId(c.category), c.sum))
    }

    /// The state's rows as (category, value), in file order; the category is
    /// `None` when the row's category or stratification is empty.
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

/// The column positions of one file's header.
struct Columns {
    location: usize,
    question: usize,
    value: usize,
    category: usize,
    stratification: usize,
    year_start: Option<usize>,
    year_end: Option<usize>,
}

/// A kept row before the layout: ids are in first-seen order; `location`
/// and `category` are `NO_ID` when empty.
struct RawRow {
    question: u32,
    location: u32,
    category: u32,
    value: f64,
}

/// Strings numbered in first-seen order.
#[derive(Default)]
struct Interner {
    ids: HashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
}

impl Interner {
    /// The id of `name`, or `None` when ids are exhausted (more than
    /// `u32::MAX - 1` distinct names; `u32::MAX` stays free for `NO_ID`).
    fn intern(&mut self, name: &str) -> Option<u32> {
        if let Some(&id) = self.ids.get(name) {
            return Some(id);
        }
        let id = u32::try_from(self.names.len())
            .ok()
            .filter(|&id| id != u32::MAX)?;
        self.ids.insert(name.into(), id);
        self.names.push(name.into());
        Some(id)
    }

    /// For each id, its rank among the names in sorted order; and the sorted names.
    fn into_ranked(self) -> (Vec<u32>, Vec<Box<str>>) {
        let mut order: Vec<u32> = (0..self.names.len() as u32).collect();
        order.sort_by(|&a, &b| self.names[a as usize].cmp(&self.names[b as usize]));
        let mut rank = vec![0u32; order.len()];
        for (r, &id) in order.iter().enumerate() {
            // `r < names.len()`, which `intern` kept below u32::MAX.
            rank[id as usize] = r as u32;
        }
        let mut names: Vec<Option<Box<str>>> = self.names.into_iter().map(Some).collect();
        let sorted = order
            .iter()
            // Each id appears once in `order`, so each name is taken once.
            .map(|&id| names[id as usize].take().expect("each id appears once"))
            .collect();
        (rank, sorted)
    }
}

/// Builds error messages that name the file.
struct Context<'p> {
    path: &'p Path,
}

impl Context<'_> {
    fn error(&self, line: u64, what: impl fmt::Display) -> DatasetError {
        DatasetError {
            message: format!("{}: line {line}: {what}", self.path.display()),
        }
    }

    fn field_error(&self, line: u64, column: &str, what: impl fmt::Display) -> DatasetError {
        DatasetError {
            message: format!(
                "{}: line {line}, column {column:?}: {what}",
                self.path.display()
            ),
        }
    }

    fn csv_error(&self, error: &csv::Error) -> DatasetError {
        match error.kind() {
            csv::ErrorKind::UnequalLengths {
                pos,
                expected_len,
                len,
            } => self.error(
                pos.as_ref().map_or(0, |p| p.line()),
                format_args!("the record has {len} fields, the header has {expected_len}"),
            ),
            _ => DatasetError {
                message: format!("{}: {error}", self.path.display()),
            },
        }
    }
}

/// `text` quoted for an error message, shortened if long.
fn quoted(text: &str) -> String {
    match text.char_indices().nth(MAX_QUOTED_CHARS) {
        Some((cut, _)) => format!("{:?}...", &text[..cut]),
        None => format!("{text:?}"),
    }
}

/// Parses a whole file's bytes; `path` only names the file in errors.
fn parse(path: &Path, bytes: &[u8]) -> Result<Dataset, DatasetError> {
    let cx = Context { path };
    let table = read_rows(&cx, bytes)?;
    Ok(build(table))
}

/// The kept rows as read, before the layout.
struct RawTable {
    summary: LoadSummary,
    /// Invariant: fewer than `MAX_ROWS` rows, so a row index fits in a u32.
    rows: Vec<RawRow>,
    questions: Interner,
    locations: Interner,
    /// Category and stratification names, in one namespace.
    category_names: Interner,
    /// (category name id, stratification name id) -> pair id, ids in
    /// first-seen order.
    pairs: HashMap<(u32, u32), u32>,
}

/// Reads, validates and filters every record; the summary's row counts are
/// filled in.
fn read_rows(cx: &Context<'_>, bytes: &[u8]) -> Result<RawTable, DatasetError> {
    let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(bytes);
    let columns = find_columns(cx, reader.byte_headers().map_err(|e| cx.csv_error(&e))?)?;
    let mut table = RawTable {
        summary: LoadSummary {
            path: cx.path.to_path_buf(),
            rows_read: 0,
            rows_kept: 0,
            skipped_empty_value: 0,
            skipped_out_of_years: 0,
            questions: 0,
            locations: 0,
            load_time: Duration::ZERO,
        },
        rows: Vec::new(),
        questions: Interner::default(),
        locations: Interner::default(),
        category_names: Interner::default(),
        pairs: HashMap::new(),
    };
    let too_many = |line| cx.error(line, "too many distinct values or rows for one dataset");

    let mut record = csv::ByteRecord::new();
    while reader
        .read_byte_record(&mut record)
        .map_err(|e| cx.csv_error(&e))?
    {
        table.summary.rows_read += 1;
        let line = record.position().map_or(0, |p| p.line());
        let field = |index: usize, name: &str| -> Result<&str, DatasetError> {
            // The reader is not flexible: every record has the header's length,
            // so `get` finds the field; a miss is still reported, not unwrapped.
            let bytes = record
                .get(index)
                .ok_or_else(|| cx.field_error(line, name, "missing field"))?;
            std::str::from_utf8(bytes).map_err(|_| cx.field_error(line, name, "invalid UTF-8"))
        };
        let year = |index: Option<usize>, name: &str| -> Result<Option<i64>, DatasetError> {
            let Some(index) = index else { return Ok(None) };
            let text = field(index, name)?;
            text.trim_ascii().parse::<i64>().map(Some).map_err(|_| {
                cx.field_error(line, name, format_args!("{} is not a year", quoted(text)))
            })
        };

        // Every used field is validated, even on rows that are then skipped:
        // a malformed file is an error wherever the malformation lies.
        let year_start = year(columns.year_start, COL_YEAR_START)?;
        let year_end = year(columns.year_end, COL_YEAR_END)?;
        let value_text = field(columns.value, COL_VALUE)?.trim_ascii();
        let value = if value_text.is_empty() {
            None
        } else {
            match value_text.parse::<f64>() {
                Ok(v) if v.is_finite() => Some(v),
                _ => {
                    return Err(cx.field_error(
                        line,
                        COL_VALUE,
                        format_args!("{} is not a number", quoted(value_text)),
                    ))
                }
            }
        };
        let question = field(columns.question, COL_QUESTION)?;
        let location = field(columns.location, COL_LOCATION)?;
        let category = field(columns.category, COL_CATEGORY)?;
        let stratification = field(columns.stratification, COL_STRATIFICATION)?;

        if year_start.is_some_and(|y| y < FIRST_YEAR) || year_end.is_some_and(|y| y > LAST_YEAR) {
            table.summary.skipped_out_of_years += 1;
            continue;
        }
        let Some(value) = value.filter(|_| !question.is_empty()) else {
            table.summary.skipped_empty_value += 1;
            continue;
        };
        if table.rows.len() >= MAX_ROWS {
            return Err(too_many(line));
        }
        let category = if category.is_empty() || stratification.is_empty() {
            NO_ID
        } else {
            let names = &mut table.category_names;
            let key = (
                names.intern(category).ok_or_else(|| too_many(line))?,
                names.intern(stratification).ok_or_else(|| too_many(line))?,
            );
            // Fewer pairs than rows, and rows stay below `MAX_ROWS`.
            let next = table.pairs.len() as u32;
            *table.pairs.entry(key).or_insert(next)
        };
        let location = if location.is_empty() {
            NO_ID
        } else {
            table
                .locations
                .intern(location)
                .ok_or_else(|| too_many(line))?
        };
        table.rows.push(RawRow {
            question: table
                .questions
                .intern(question)
                .ok_or_else(|| too_many(line))?,
            location,
            category,
            value,
        });
    }
    Ok(table)
}

/// Lays the rows out for the queries (see the module documentation).
fn build(table: RawTable) -> Dataset {
    let RawTable {
        mut summary,
        rows: mut raw,
        questions,
        locations,
        category_names,
        pairs,
    } = table;
    let (question_rank, question_names) = questions.into_ranked();
    let (location_rank, locations) = locations.into_ranked();
    let (categories, category_rank) = rank_categories(category_names, pairs);

    // Group rows by question, keeping file order within a question
    // (`sort_by_key` is stable).
    raw.sort_by_key(|r| question_rank[r.question as usize]);
    let location_of = |i: u32| location_rank[raw[i as usize].location as usize];
    let rows: Vec<Row> = raw
        .iter()
        .map(|r| Row {
            category: match r.category {
                NO_ID => NO_ID,
                id => category_rank[id as usize],
            },
            value: r.value,
        })
        .collect();

    let mut question_index = Vec::with_capacity(question_names.len());
    let mut by_state: Vec<u32> = Vec::with_capacity(raw.len());
    let mut category_sums: Vec<CategorySum> = Vec::new();
    let mut start = 0;
    for name in question_names {
        // Ranks are below u32::MAX (see `Interner::intern`).
        let rank = question_index.len() as u32;
        let end =
            start + raw[start..].partition_point(|r| question_rank[r.question as usize] == rank);
        // Row indices fit in u32 (`RawTable::rows`' invariant). Rows with no
        // location count in the question but belong to no state.
        let group_start = by_state.len();
        by_state.extend(
            (start..end)
                .filter(|&i| raw[i].location != NO_ID)
                .map(|i| i as u32),
        );
        by_state[group_start..].sort_by_key(|&i| location_of(i));
        let mut states: Vec<StateIndex> = Vec::new();
        let mut at = group_start;
        for group in by_state[group_start..].chunk_by(|&a, &b| location_of(a) == location_of(b)) {
            states.push(StateIndex {
                location: location_of(group[0]),
                by_state: at..at + group.len(),
                sum: GroupSum::kahan(group.iter().map(|&i| rows[i as usize].value)),
                category_sums: push_category_sums(&mut category_sums, &rows, group),
            });
            at += group.len();
        }
        question_index.push(QuestionIndex {
            name,
            rows: start..end,
            sum: GroupSum::pairwise(rows[start..end].iter().map(|r| r.value)),
            states,
        });
        start = end;
    }

    summary.rows_kept = rows.len();
    summary.questions = question_index.len();
    summary.locations = locations.len();
    Dataset {
        summary,
        rows,
        by_state,
        questions: question_index,
        locations,
        categories,
        category_sums,
    }
}

/// Appends the sums of each category of one (question, state) `group` of
/// row indices (in file order) to `sums`, sorted by category; returns where
/// they lie in `sums`.
fn push_category_sums(sums: &mut Vec<CategorySum>, rows: &[Row], group: &[u32]) -> Range<usize> {
    let category_of = |i: u32| rows[i as usize].category;
    let mut members: Vec<u32> = group
        .iter()
        .copied()
        .filter(|&i| category_of(i) != NO_ID)
        .collect();
    // `sort_by_key` is stable: file order stays within each category, as
    // the Kahan sum needs.
    members.sort_by_key(|&i| category_of(i));
    let start = sums.len();
    for same in members.chunk_by(|&a, &b| category_of(a) == category_of(b)) {
        sums.push(CategorySum {
            category: category_of(same[0]),
            sum: GroupSum::kahan(same.iter().map(|&i| rows[i as usize].value)),
        });
    }
    start..sums.len()
}

impl GroupSum {
    /// The Kahan-compensated sum of `values` in the order given, step for
    /// step as pandas' `group_mean` adds them
    /// (`y = v - c; t = s + y; c = (t - s) - y; s = t`).
    fn kahan(values: impl Iterator<Item = f64>) -> GroupSum {
        let (mut sum, mut compensation, mut count) = (0.0f64, 0.0f64, 0u64);
        for value in values {
            let y = value - compensation;
            let t = sum + y;
            compensation = (t - sum) - y;
            // pandas resets a NaN compensation (from an infinite sum) to 0.
            if compensation.is_nan() {
                compensation = 0.0;
            }
            sum = t;
            count += 1;
        }
        GroupSum { count, sum }
    }

    /// The sum of `values` exactly as numpy's `pairwise_sum` adds them.
    fn pairwise(mut values: impl ExactSizeIterator<Item = f64>) -> GroupSum {
        let count = values.len();
        let sum = pairwise_sum(&mut values, count);
        GroupSum {
            count: count as u64,
            sum,
        }
    }
}

/// Below this many values numpy's pairwise sum adds in one 8-way unrolled
/// block; above, it splits in two.
const PAIRWISE_BLOCK: usize = 128;

/// The sum of the next `n` values, exactly as numpy's `pairwise_sum` adds
/// them (the `n` values must be available).
///
/// numpy reads its halves left to right, so the recursion can consume one
/// iterator in order instead of indexing a slice.
fn pairwise_sum(values: &mut impl Iterator<Item = f64>, n: usize) -> f64 {
    let mut next = || values.next().unwrap_or(0.0);
    if n < 8 {
        let mut sum = 0.0;
        for _ in 0..n {
            sum += next();
        }
        sum
    } else if n <= PAIRWISE_BLOCK {
        let mut r = [0.0f64; 8];
        for slot in &mut r {
            *slot = next();
        }
        for _ in 1..n / 8 {
            for slot in &mut r {
                *slot += next();
            }
        }
        let mut sum = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for _ in 0..n % 8 {
            sum += next();
        }
        sum
    } else {
        // The first half is a multiple of 8 long, as numpy splits.
        let half = n / 2 - (n / 2) % 8;
        let left = pairwise_sum(values, half);
        left + pairwise_sum(values, n - half)
    }
}

/// The sorted (category, stratification) pairs, and for each pair id (in
/// first-seen order) its rank in that sorted list.
fn rank_categories(
    names: Interner,
    pairs: HashMap<(u32, u32), u32>,
) -> (Vec<CategoryNames>, Vec<u32>) {
    let mut by_id: Vec<(u32, (u32, u32))> = pairs.into_iter().map(|(k, id)| (id, k)).collect();
    by_id.sort_unstable_by_key(|&(id, _)| id);
    let (name_rank, sorted_names) = names.into_ranked();
    // Comparing name ranks compares the names.
    let mut order: Vec<u32> = (0..by_id.len() as u32).collect();
    order.sort_by_key(|&id| {
        let (c, s) = by_id[id as usize].1;
        (name_rank[c as usize], name_rank[s as usize])
    });
    let mut rank = vec![0u32; order.len()];
    let mut sorted = Vec::with_capacity(order.len());
    for (r, &id) in order.iter().enumerate() {
        // `r < pairs.len()`, which was checked to fit in u32.
        rank[id as usize] = r as u32;
        let (c, s) = by_id[id as usize].1;
        sorted.push((
            sorted_names[name_rank[c as usize] as usize].clone(),
            sorted_names[name_rank[s as usize] as usize].clone(),
        ));
    }
    (sorted, rank)
}

/// Finds the used columns in the header (line 1).
fn find_columns(cx: &Context<'_>, header: &csv::ByteRecord) -> Result<Columns, DatasetError> {
    // The first column of a name wins, as `position` finds it.
    let find = |name: &str| header.iter().position(|h| h == name.as_bytes());
    let require = |name: &str| {
        find(name).ok_or_else(|| cx.error(1, format_args!("missing required column {name:?}")))
    };
    Ok(Columns {
        location: require(COL_LOCATION)?,
        question: require(COL_QUESTION)?,
        value: require(COL_VALUE)?,
        category: require(COL_CATEGORY)?,
        stratification: require(COL_STRATIFICATION)?,
        year_start: find(COL_YEAR_START),
        year_end: find(COL_YEAR_END),
    })
}
