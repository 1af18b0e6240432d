//! The one interface through which the job path is observed.
//!
//! `jobs` calls one function here at each point of a job's life, and knows
//! nothing of who listens: the scoreboard (its job counts, the worker's
//! slot, the timeline) and the metrics. Observers, not participants: none
//! of these calls blocks, takes a lock or can fail, and no module under
//! `src/jobs` imports `metrics` (test `tests::the_observers_form_no_import_cycle`
//! checks the `use crate::` lines).
//!
//! A job's stages, as `/api/status` counts them:
//!
//! ```text
//! queued ──started──► running ──saving──► saving ──ended──► (recorded)
//!        (a worker     (computes,  (written, handed     (done or error
//!         takes it)     writes)     to the persister)    in the table)
//! ```

use crate::scoreboard::{self, Stage, ThreadState};
use std::cell::Cell;
use std::time::Instant;

thread_local! {
    /// On a worker: when it took its current job (the run time's origin).
    static TAKEN_AT: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Job `id` was accepted and is about to be queued (called before any
/// worker can take it).
pub fn queued(id: u64) {
    scoreboard::job_moved(None, Some(Stage::Queued));
    scoreboard::job_queued(id);
}

/// On the worker that took job `id`, before it runs.
pub fn started(id: u64) {
    TAKEN_AT.with(|t| t.set(Some(Instant::now())));
    scoreboard::job_moved(Some(Stage::Queued), Some(Stage::Running));
    scoreboard::job_taken(id);
    scoreboard::set_job(ThreadState::Running, id);
}

/// On the worker: job `id`'s work is over; its file is written next (the
/// job is still `running`).
pub fn computed(_id: u64) {
    scoreboard::set_keeping_job(ThreadState::WritingResult);
}

/// On the worker: job `id`'s outcome (`done` or not) is known and its file
/// written (or given up on); it now waits for its flush and recording, and
/// the worker is idle. Counted in the metrics here, before the outcome is
/// visible to clients (a client that sees `done` also sees it counted:
/// `counters_count_exactly_the_requests_jobs_and_connections_made`).
pub fn saving(_id: u64, done: bool) {
    if let Some(taken) = TAKEN_AT.with(Cell::take) {
        crate::metrics::job_ran(done, taken.elapsed());
    }
    scoreboard::job_moved(Some(Stage::Running), Some(Stage::Saving));
    scoreboard::set(ThreadState::Idle);
}

/// Job `id` is recorded in the table (`done` or `error`).
pub fn ended(_id: u64) {
    scoreboard::job_moved(Some(Stage::Saving), None);
}

/// The persister begins flushing the results directory for a batch.
pub fn flushing() {
    scoreboard::set(ThreadState::Flushing);
}

/// The persister's flush is over (also after one that failed or panicked).
pub fn flushed() {
    scoreboard::set(ThreadState::Idle);
}

/// A result file could not be written.
pub fn result_write_failed() {
    crate::metrics::result_write_failed();
}
