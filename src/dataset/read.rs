//! Reading a CDC-layout CSV into a [`RawTable`]: columns found by header
//! name, every used field validated (errors name file, line and column), rows
//! outside the survey years or without a value skipped and counted, repeated
//! strings interned.
//!
//! The file's bytes are parsed with the `csv` crate, one reused
//! [`csv::ByteRecord`] at a time; only the used columns must be UTF-8.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::interner::Interner;
use super::word_hash::WordHashMap;
use super::NO_ID;

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
/// characters, so a huge field cannot produce a huge message (test
/// `a_long_bad_value_is_quoted_shortened`).
const MAX_QUOTED_CHARS: usize = 60;

/// Kept rows are indexed by u32, and no pair id may reach `NO_ID`.
const MAX_ROWS: usize = u32::MAX as usize - 1;

/// The UTF-8 byte order mark some tools write at the start of a CSV.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

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
pub(super) struct RawRow {
    pub(super) question: u32,
    pub(super) location: u32,
    pub(super) category: u32,
    pub(super) value: f64,
}

/// The kept rows as read, before the layout.
pub(super) struct RawTable {
    pub(super) summary: LoadSummary,
    /// Invariant: fewer than `MAX_ROWS` rows, so a row index fits in a u32.
    pub(super) rows: Vec<RawRow>,
    pub(super) questions: Interner,
    pub(super) locations: Interner,
    /// Category and stratification names, in one namespace.
    pub(super) category_names: Interner,
    /// (category name id, stratification name id) -> pair id, ids in
    /// first-seen order.
    pub(super) pairs: WordHashMap<(u32, u32), u32>,
}

/// Reads, validates and filters every record of a CSV file's `bytes`; the
/// summary's row counts are filled in. `path` only names the file in the
/// summary and in errors.
pub(super) fn read_rows(path: &Path, bytes: &[u8]) -> Result<RawTable, DatasetError> {
    let cx = Context { path };
    let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(bytes);
    let columns = find_columns(&cx, reader.byte_headers().map_err(|e| cx.csv_error(&e))?)?;
    let mut table = RawTable::new(path);
    let mut record = csv::ByteRecord::new();
    while reader
        .read_byte_record(&mut record)
        .map_err(|e| cx.csv_error(&e))?
    {
        table.summary.rows_read += 1;
        let line = record.position().map_or(0, csv::Position::line);
        // Every used field is validated, even on rows that are then skipped:
        // a malformed file is an error wherever the malformation lies.
        let fields = read_fields(&cx, &columns, &record, line)?;
        if fields.year_start.is_some_and(|y| y < FIRST_YEAR)
            || fields.year_end.is_some_and(|y| y > LAST_YEAR)
        {
            table.summary.skipped_out_of_years += 1;
            continue;
        }
        let Some(value) = fields.value.filter(|_| !fields.question.is_empty()) else {
            table.summary.skipped_empty_value += 1;
            continue;
        };
        table.keep(&cx, line, &fields, value)?;
    }
    Ok(table)
}

/// The used fields of one record, validated.
struct Fields<'r> {
    year_start: Option<i64>,
    year_end: Option<i64>,
    /// `None` when `Data_Value` is empty after trimming ASCII whitespace.
    value: Option<f64>,
    question: &'r str,
    location: &'r str,
    category: &'r str,
    stratification: &'r str,
}

/// Validates the used fields of the `record` that starts on `line`.
fn read_fields<'r>(
    cx: &Context<'_>,
    columns: &Columns,
    record: &'r csv::ByteRecord,
    line: u64,
) -> Result<Fields<'r>, DatasetError> {
    let field = |index: usize, name: &str| -> Result<&'r str, DatasetError> {
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
        text.trim_ascii()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| cx.field_error(line, name, format_args!("{} is not a year", quoted(text))))
    };
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
    Ok(Fields {
        year_start,
        year_end,
        value,
        question: field(columns.question, COL_QUESTION)?,
        location: field(columns.location, COL_LOCATION)?,
        category: field(columns.category, COL_CATEGORY)?,
        stratification: field(columns.stratification, COL_STRATIFICATION)?,
    })
}

impl RawTable {
    /// An empty table for the file at `path`.
    fn new(path: &Path) -> RawTable {
        RawTable {
            summary: LoadSummary {
                path: path.to_path_buf(),
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
            pairs: WordHashMap::default(),
        }
    }

    /// Keeps the row of `fields` (from `line`) with its `value`, interning
    /// its names.
    fn keep(
        &mut self,
        cx: &Context<'_>,
        line: u64,
        fields: &Fields<'_>,
        value: f64,
    ) -> Result<(), DatasetError> {
        let too_many = || cx.error(line, "too many distinct values or rows for one dataset");
        if self.rows.len() >= MAX_ROWS {
            return Err(too_many());
        }
        let category = if fields.category.is_empty() || fields.stratification.is_empty() {
            NO_ID
        } else {
            let names = &mut self.category_names;
            let key = (
                names.intern(fields.category).ok_or_else(too_many)?,
                names.intern(fields.stratification).ok_or_else(too_many)?,
            );
            // Fewer pairs than rows, and rows stay below `MAX_ROWS`.
            let next = self.pairs.len() as u32;
            *self.pairs.entry(key).or_insert(next)
        };
        let location = if fields.location.is_empty() {
            NO_ID
        } else {
            self.locations
                .intern(fields.location)
                .ok_or_else(too_many)?
        };
        self.rows.push(RawRow {
            question: self
                .questions
                .intern(fields.question)
                .ok_or_else(too_many)?,
            location,
            category,
            value,
        });
        Ok(())
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
                pos.as_ref().map_or(0, csv::Position::line),
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
