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

#[cfg(test)]
mod tests {
    use crate::jobs::{JobOutcome, Jobs, JobsOptions};
    use crate::log::Logger;
    use crate::results::ResultsLock;
    use crate::scoreboard::{self, JobCounts, Role, ThreadState};
    use std::time::{Duration, Instant};

    const DEADLINE: Duration = Duration::from_secs(30);
    /// Set in the process that runs [`saving_in_a_process_of_its_own`].
    const CHILD: &str = "LSS_JOB_EVENTS_CHILD";

    fn poll(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + DEADLINE;
        while !done() {
            assert!(Instant::now() < deadline, "not reached: {what}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// The job counts and the workers are process-wide, and other tests
    /// of this binary run jobs at the same time: the checks run in a
    /// process of their own (this test binary, asked for the one ignored
    /// test below).
    #[test]
    fn jobs_held_at_their_flush_are_saving_and_their_workers_idle() {
        let exe = std::env::current_exe().unwrap();
        let out = std::process::Command::new(exe)
            .args([
                "--exact",
                "job_events::tests::saving_in_a_process_of_its_own",
                "--ignored",
                "--test-threads=1",
                "--nocapture",
            ])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    #[ignore = "run in a process of its own by jobs_held_at_their_flush_are_saving_and_their_workers_idle"]
    fn saving_in_a_process_of_its_own() {
        assert!(std::env::var_os(CHILD).is_some(), "run by its parent test");
        let dir = std::env::temp_dir().join(format!("lss-job-events-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let options = JobsOptions {
            threads: 2,
            max_pending: 100,
            durable: true,
        };
        let lock = ResultsLock::acquire(&dir).unwrap();
        let jobs = Jobs::open_locked(lock, options, Logger::disabled()).unwrap();
        let ok = || -> crate::jobs::Work { Box::new(|| Ok("1".to_owned())) };
        // A first job takes the id reservation (which flushes too).
        let first = jobs.submit(ok()).unwrap();
        assert!(matches!(
            jobs.outcome_within(first, DEADLINE),
            Some(JobOutcome::Done(_))
        ));
        poll("the first job ended", || {
            scoreboard::job_counts() == JobCounts::default()
        });
        let held = crate::results::flush_gate::hold(&dir);
        let ids: Vec<_> = (0..3).map(|_| jobs.submit(ok()).unwrap()).collect();
        let saving = JobCounts {
            queued: 0,
            running: 0,
            saving: 3,
        };
        let workers_idle = || {
            let threads = scoreboard::threads();
            let workers = threads.iter().filter(|t| t.role == Role::Worker);
            workers.clone().count() == 2 && workers.clone().all(|t| t.state == ThreadState::Idle)
        };
        poll("three jobs saving, both workers idle", || {
            scoreboard::job_counts() == saving && workers_idle()
        });
        let threads = scoreboard::threads();
        let persister = threads.iter().find(|t| t.role == Role::Persister).unwrap();
        assert_eq!(persister.state, ThreadState::Flushing);
        for &id in &ids {
            assert_eq!(jobs.outcome(id), Some(JobOutcome::Running), "{id}");
        }
        drop(held);
        for &id in &ids {
            assert!(
                matches!(jobs.outcome_within(id, DEADLINE), Some(JobOutcome::Done(_))),
                "{id}"
            );
        }
        poll("every job ended", || {
            scoreboard::job_counts() == JobCounts::default()
        });
        drop(jobs);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
