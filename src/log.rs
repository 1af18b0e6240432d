//! The request and job log: one line per request and per job event, written
//! by a dedicated thread, rotated by size.
//!
//! STUB: the public items below are the interface other modules rely on;
//! the bodies are to be written (issue 3).

use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// A cheap, cloneable handle; every clone sends to the same writer thread.
#[derive(Clone, Debug)]
pub struct Logger {}

impl Logger {
    /// Opens (appending to) `path` and starts the writer thread. The file is
    /// rotated to `path.1` … `path.keep` when it would exceed `max_bytes`.
    ///
    /// # Errors
    /// When the file cannot be opened for appending.
    pub fn open(path: &Path, max_bytes: u64, keep: usize) -> io::Result<Logger> {
        let _ = (path, max_bytes, keep);
        todo!("issue 3")
    }

    /// A logger that drops every line (for tests that do not read the log).
    pub fn disabled() -> Logger {
        todo!("issue 3")
    }

    /// Logs one answered request.
    pub fn request(&self, method: &str, path: &str, status: u16, duration: Duration) {
        let _ = (method, path, status, duration);
        todo!("issue 3")
    }

    /// Logs a job event or any other informational line.
    pub fn info(&self, message: impl Into<String>) {
        let _ = message.into();
        todo!("issue 3")
    }

    /// Logs an error.
    pub fn error(&self, message: impl Into<String>) {
        let _ = message.into();
        todo!("issue 3")
    }

    /// Blocks until every line logged before this call is written to the file.
    pub fn flush(&self) {
        todo!("issue 3")
    }
}

/// `t` as UTC ISO-8601 with milliseconds, e.g. `2026-11-27T20:54:39.123Z`.
pub fn format_utc(t: SystemTime) -> String {
    let _ = t;
    todo!("issue 3")
}
