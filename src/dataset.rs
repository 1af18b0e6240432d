//! Loading the CDC CSV into an immutable, indexed [`Dataset`].
//!
//! STUB: the public items below are the interface other modules rely on;
//! the bodies are to be written (issue 2).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The loaded survey: immutable after [`Dataset::load`], shared as `Arc<Dataset>`.
#[derive(Debug)]
pub struct Dataset {
    summary: LoadSummary,
}

/// What a load found, for `--summary` and the start-up banner.
#[derive(Debug, Clone)]
pub struct LoadSummary {
    pub path: PathBuf,
    pub rows_read: usize,
    pub rows_kept: usize,
    pub skipped_empty_value: usize,
    pub skipped_out_of_years: usize,
    pub questions: usize,
    pub locations: usize,
    pub load_time: Duration,
}

impl fmt::Display for LoadSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} rows", self.rows_read)
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
    /// # Errors
    /// A missing required column, a non-numeric `Data_Value`, or an I/O or CSV
    /// syntax error; the message names the file, line and column.
    pub fn load(path: &Path) -> Result<Dataset, DatasetError> {
        let _ = path;
        todo!("issue 2")
    }

    /// What the load found.
    pub fn summary(&self) -> &LoadSummary {
        &self.summary
    }

    /// Every question with at least one kept row, sorted.
    pub fn questions(&self) -> Vec<&str> {
        todo!("issue 2")
    }

    /// Every location (state) with at least one kept row, sorted.
    pub fn locations(&self) -> Vec<&str> {
        todo!("issue 2")
    }

    /// Returns true if and only if `question` has at least one kept row.
    pub fn has_question(&self, question: &str) -> bool {
        let _ = question;
        todo!("issue 2")
    }

    /// Returns true if and only if `state` has at least one kept row for `question`.
    pub fn has_state(&self, question: &str, state: &str) -> bool {
        let _ = (question, state);
        todo!("issue 2")
    }
}
