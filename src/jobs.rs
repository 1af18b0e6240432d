//! Jobs: ids in submission order, status, results.
//!
//! STUB: the public items below are the interface other modules rely on;
//! the bodies are to be written (issue 3).

use crate::log::Logger;
use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

/// A job id: `job_id_N`, N ≥ 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(pub u64);

impl JobId {
    /// Parses `job_id_N` or `N` (ASCII digits only, N ≥ 1, no sign, no
    /// overflow); `None` for anything else.
    pub fn parse(text: &str) -> Option<JobId> {
        let _ = text;
        todo!("issue 3")
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "job_id_{}", self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Running,
    Done,
    Error,
}

impl JobStatus {
    /// `"running"`, `"done"` or `"error"`.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Running => "running",
            JobStatus::Done => "done",
            JobStatus::Error => "error",
        }
    }
}

/// What `get_results` reports for a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// Queued or running.
    Running,
    /// Finished; the JSON text of its `data`.
    Done(Arc<[u8]>),
    /// The job itself failed.
    Error(String),
}

/// Returned by [`Jobs::submit`] once shutdown has begun.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShuttingDown;

/// The work of one job: the JSON text of its result, or why it failed.
pub type Work = Box<dyn FnOnce() -> Result<String, String> + Send + 'static>;

pub struct Jobs {}

impl Jobs {
    /// Opens `results_dir` (creating it), finds the results of earlier runs
    /// and starts `threads` workers. New ids continue after the highest found.
    ///
    /// # Errors
    /// When the directory cannot be created or read.
    pub fn open(results_dir: &Path, threads: usize, logger: Logger) -> io::Result<Jobs> {
        let _ = (results_dir, threads, logger);
        todo!("issue 3")
    }

    /// Accepts a job: its id is `Running` from the moment this returns.
    ///
    /// # Errors
    /// [`ShuttingDown`] once [`stop_accepting`](Jobs::stop_accepting) was called.
    pub fn submit(&self, work: Work) -> Result<JobId, ShuttingDown> {
        let _ = work;
        todo!("issue 3")
    }

    /// The outcome of job `id`; `None` if there is no such job.
    pub fn outcome(&self, id: JobId) -> Option<JobOutcome> {
        let _ = id;
        todo!("issue 3")
    }

    /// Every job with its status, in id order.
    pub fn statuses(&self) -> Vec<(JobId, JobStatus)> {
        todo!("issue 3")
    }

    /// How many jobs are queued or running.
    pub fn pending(&self) -> usize {
        todo!("issue 3")
    }

    /// Stops accepting jobs (idempotent); queued jobs still run.
    pub fn stop_accepting(&self) {
        todo!("issue 3")
    }

    /// Stops accepting jobs and blocks until every accepted job has finished
    /// and every worker has exited. Idempotent.
    pub fn join(&self) {
        todo!("issue 3")
    }
}
