//! Jobs: ids in submission order, status, results.
//!
//! # Life of a job
//!
//! 1. [`Jobs::submit`] refuses at once while the server is degraded
//!    (`degraded.rs`), then takes the table lock, gives the job the next
//!    id — below the id reservation already on stable storage
//!    (`reservation.rs`; written outside the lock) — records it `Running`,
//!    counts it pending, and queues it on the [`ThreadPool`] — all before
//!    the lock is released, so the id is `Running` from the moment the
//!    caller sees it (never briefly unknown).
//! 2. A worker runs the [`Work`] with *no* lock held, under `catch_unwind`
//!    (a panic becomes `Error("internal error: job panicked")`), and saves
//!    the result (or the failure) through the [`ResultStore`]: the file's
//!    data flushed, then renamed (or linked) into place.
//! 3. Only then is the job recorded, under the table lock. Durable mode:
//!    the worker hands the job to the persister thread and goes on; the
//!    persister flushes the directory once for every job handed over
//!    meanwhile, then records them all (group commit). `--no-fsync`: the
//!    worker records it at once. So `done` means saved, with no exception
//!    (`tests::a_durable_job_is_done_only_after_its_directory_flush`, and
//!    with the real calls logged by a shim,
//!    `fault_e2e::failing_flushes_never_answer_done`). A result that cannot
//!    be saved — the write fails twice (the second time with a new file),
//!    or the directory flush of its batch fails — ends the job `error` with
//!    the cause and what to do, and the server turns degraded until a save
//!    works again; nothing is kept to be written later
//!    (`tests/integration/jobs.rs::results_that_cannot_be_saved_end_as_errors_and_are_never_written_later`).
//!
//! The server log gets a job's lines in causal order: `job_id_7 submitted:
//! states_mean` is queued by [`Jobs::submit_as`] *before* the job is handed
//! to the pool (so no worker can log its end first), then one line when it
//! finishes (`job_id_7 done in 0.412ms`, or `job_id_8 error: …` at `ERROR`
//! level, with details that the client's reason leaves out). Queuing a log
//! line never waits (see [`crate::log`]), so doing it under the table lock
//! costs one short push.
//!
//! # Shutdown
//!
//! [`Jobs::stop_accepting`] clears `accepting` and closes the pool under
//! the table lock; [`Jobs::shut_down`] then waits for the pool, which
//! drains its queue first, and then closes and joins the persister, which
//! records the last jobs the workers handed over (while degraded they end
//! `error`, and the log says how many ended unsaved). Every accepted job runs
//! and is recorded; none is accepted after. Of several concurrent callers
//! of `shut_down` the first does the work and the others wait for it
//! (`closed`), so that every caller returns only once the
//! persister is joined (`tests::a_second_closer_waits_for_the_persister`).
//! The whole of it — submissions racing two `shut_down` callers, with the
//! pool, the persister and the real store — is model-checked with shuttle
//! (`shuttle_model::submissions_racing_two_shut_downs_durable`, and
//! `shuttle_model::submissions_racing_two_shut_downs_no_fsync`).
//!
//! # Restart
//!
//! The results directory outlives the process. On [`Jobs::open`] every
//! `job_id_N.json` found is an earlier job: it answers `Done` (its file is
//! read when asked for, so a start-up over 200 000 files reads none; a file
//! that is then not valid JSON answers `Error(DAMAGED_REASON)` and is listed
//! `error` from then on), and
//! new ids continue after the highest — and after every id an earlier run
//! may have handed out (its id reservation), so an id given to a job that a
//! crash killed in the queue is not given again while `.reserved_ids`
//! survives (flushed in durable mode; with `--no-fsync` a power loss can
//! lose it)
//! (`tests/integration/jobs.rs::ids_handed_out_before_a_crash_are_never_given_again`,
//! `fault_e2e::a_held_reservation_flush_blocks_no_reader`). Ids below that which
//! have no file never ended and are "no such job".
//!
//! # Memory per job
//!
//! A job submitted by this process costs one [`JobOutcome`] of 24 bytes
//! (`table::tests::a_job_outcome_is_24_bytes`) in a `Vec`, which may hold up to
//! twice that while it grows; its result bytes are shared with every other
//! job that produced the same bytes (see [`crate::results`]), and the
//! distinct results of this server are few. A restored job costs 17 bytes:
//! a 16-byte [`RestoredJob`] in a sorted array
//! (`table::tests::a_restored_job_is_16_bytes`) and its `damaged` flag.
//! Measured (`measure_200k_jobs` in `tests/integration/jobs.rs`, run by hand): 200 000
//! jobs over 500 distinct results add about 5.5 MB of resident memory.
//!
//! A job still *queued* also holds, until a worker takes it, the pool's
//! job (a boxed closure holding an `Arc<JobRecords>`, the id and the
//! [`Work`]) and the [`Work`] closure itself, whose size is the caller's
//! captures (the server's are sized at [`MAX_PENDING_JOBS`]). So the
//! number of pending jobs is capped ([`MAX_PENDING_JOBS`] by default): past it, [`Jobs::submit`] answers
//! [`Refused::QueueFull`] instead of letting a flood of submissions grow
//! memory without bound.
//!
//! # Files of this module
//!
//! - `id`: [`JobId`], its one spelling and its parsing;
//! - `table`: the job table, its Condvar shards, and submitting;
//! - `answers`: reading the table — outcomes, waits and listing pages;
//! - `reservation`: the id reservation on disk, so that no id is reused;
//! - `degraded`: the degraded state after a failed save, and its probe;
//! - `run`: a job's run on its worker, its file, and its recording;
//!   `Persister`, the group commit, and the persister thread;
//! - this file: the public types, opening and shutting down.

mod answers;
mod degraded;
mod id;
mod reservation;
mod run;
mod table;

pub use degraded::PROBE_INTERVAL;
pub use id::JobId;

use crate::limits::MAX_PENDING_JOBS;
use crate::log::Logger;
use crate::pool::ThreadPool;
use crate::results::{OpenedResults, ResultStore, ResultsLock};
use crate::sync::lock_order::JOBS_CLOSING;
use crate::sync::thread::JoinHandle;
use crate::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::fmt;
use std::io;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use table::JobRecords;

#[cfg(doc)]
use crate::results::RestoredJob;

/// Where a job is in its life, as `/api/jobs` lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    Running,
    Done,
    Error,
}

impl JobStatus {
    /// `"running"`, `"done"` or `"error"`.
    #[must_use]
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
    /// Recorded `done`: the JSON text of its `data`.
    Done(Arc<[u8]>),
    /// The job itself failed.
    Error(JobError),
}

/// Why a job failed, as shown to clients (the `reason` of its answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobError(Box<str>);

impl JobError {
    /// The reason, as the client sees it.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for JobError {
    fn from(reason: &str) -> JobError {
        JobError(reason.into())
    }
}

impl From<String> for JobError {
    fn from(reason: String) -> JobError {
        JobError(reason.into_boxed_str())
    }
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why [`Jobs::submit`] refused a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Shutdown has begun: no job is accepted any more.
    ShuttingDown,
    /// `max_pending` jobs are already queued or running; try again later.
    /// This bounds the memory that queued jobs hold.
    QueueFull,
    /// The id reservation cannot be written (the results directory is not
    /// writable): handing out an id anyway could reuse it after a crash.
    IdsUnavailable,
    /// A save failed and none has worked since (the server is degraded):
    /// a new job's result could not be saved either. The cause.
    Degraded(Arc<str>),
    /// Every job id has been handed out (ids start below 2^53 and grow by
    /// one per job, so this takes centuries): refusing is better than
    /// reusing one.
    IdsExhausted,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refused::ShuttingDown => "shutting down",
            Refused::QueueFull => "too many jobs queued; retry later",
            Refused::IdsUnavailable => {
                "cannot reserve job ids: the results directory is not writable; retry later"
            }
            Refused::IdsExhausted => "every job id has been used; no new job can be numbered",
            Refused::Degraded(cause) => {
                return write!(
                    f,
                    "the server cannot save results now ({cause}); reads still work; retry later"
                );
            }
        })
    }
}

impl std::error::Error for Refused {}

/// The work of one job: the JSON text of its result, or why it failed.
pub type Work = Box<dyn FnOnce() -> Result<String, String> + Send + 'static>;

/// The reason a job reports when its `Work` panicked.
pub const PANIC_REASON: &str = "internal error: job panicked";
/// The reason a restored job reports when its file is not valid JSON (or
/// an empty failure record): torn by a power loss, or edited by hand.
pub const DAMAGED_REASON: &str = "result file is damaged";

/// How [`Jobs`] is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobsOptions {
    /// Worker threads (at least one).
    pub threads: usize,
    /// Most jobs queued or running at once; see [`Refused::QueueFull`].
    pub max_pending: usize,
    /// Flush every result to stable storage before the job is `done`
    /// (`--no-fsync` turns it off); see [`crate::results`].
    pub durable: bool,
}

/// The job table and what the workers need to finish a job.
pub struct Jobs {
    /// Shared with every queued job (each holds an `Arc`).
    records: Arc<JobRecords>,
    /// Closed only by [`Jobs::stop_accepting`], under the table lock.
    pool: ThreadPool,
    /// Most jobs queued or running at once; see [`Refused::QueueFull`].
    max_pending: usize,
    /// How far [`Jobs::shut_down`] has got.
    ///
    /// Invariant: `persister_thread` is taken by the one caller that moves
    /// `stage` from `Open` to `Closing`; that caller alone shuts down (no
    /// lock held while it waits for threads or writes files) and then sets
    /// `Closed`. Poisoning: each update is one `take` or assignment;
    /// recovered with [`PoisonError::into_inner`].
    closing: Mutex<Closing>,
    /// Condition: `closing.stage == Closed`. Waited on by the callers of
    /// `shut_down` that found another one already closing, so that
    /// they too return only after the persister is joined.
    closed: Condvar,
}

/// See [`Jobs::closing`].
struct Closing {
    /// The persister thread (durable mode only): joined after the workers,
    /// because it records the last jobs they handed over.
    persister_thread: Option<JoinHandle<()>>,
    stage: CloseStage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CloseStage {
    Open,
    Closing,
    Closed,
}

impl Jobs {
    /// Opens `results_dir` (creating it), finds the results of earlier runs
    /// and starts `threads` workers (at least one). New ids continue after
    /// the highest found. Temporary files left by a crash are deleted; see
    /// [`ResultStore::open`] for which names count as results.
    ///
    /// # Errors
    /// When the directory cannot be created or read, or the worker threads
    /// cannot be started.
    pub fn open(results_dir: &Path, threads: usize, logger: Logger) -> io::Result<Jobs> {
        Jobs::open_with_max_pending(results_dir, threads, MAX_PENDING_JOBS, logger)
    }

    /// [`Jobs::open`] with at most `max_pending` jobs queued or running at
    /// once (at least one).
    ///
    /// # Errors
    /// As [`Jobs::open`].
    pub fn open_with_max_pending(
        results_dir: &Path,
        threads: usize,
        max_pending: usize,
        logger: Logger,
    ) -> io::Result<Jobs> {
        let lock = ResultsLock::acquire(results_dir)?;
        let options = JobsOptions {
            threads,
            max_pending,
            durable: true,
        };
        Jobs::open_locked(lock, options, logger)
    }

    /// [`Jobs::open`] on a directory whose lock the caller already holds
    /// (taken before anything else, so that a second server writes nothing
    /// into the first one's log; the binary then opens the directory itself
    /// and calls [`Jobs::open_restored`]).
    ///
    /// # Errors
    /// When the directory cannot be read, or the worker threads or the
    /// persister thread cannot be started.
    pub fn open_locked(
        lock: ResultsLock,
        options: JobsOptions,
        logger: Logger,
    ) -> io::Result<Jobs> {
        Jobs::open_restored(ResultStore::open(lock, options.durable)?, options, logger)
    }

    /// [`Jobs::open_locked`] on a directory already opened by
    /// [`ResultStore::open`] (the binary lists the directory while it loads
    /// the data, on two threads). Durable or not as the directory was
    /// opened; `options.durable` is not read again.
    ///
    /// # Errors
    /// When the worker threads or the persister thread cannot be started.
    pub fn open_restored(
        opened: OpenedResults,
        options: JobsOptions,
        logger: Logger,
    ) -> io::Result<Jobs> {
        let OpenedResults { store, restored } = opened;
        let results_dir = store.dir().to_path_buf();
        let records = Arc::new(JobRecords::new(store, restored, logger));
        let restored = records.restored.len();
        if restored > 0 {
            records.logger.info(format!(
                "restored {restored} earlier job{} from {}; new jobs start at job_id_{}",
                if restored == 1 { "" } else { "s" },
                results_dir.display(),
                records.first_id
            ));
        }
        // The first block of ids, before the first submission. A directory
        // that cannot be written starts the server degraded: it serves what
        // it can read, and says why.
        let first_id = JobId(records.first_id);
        if records.ready_ids(Some(first_id)).is_err() {
            records.logger.error(format!(
                "starting degraded: results cannot be saved in {}; new jobs are refused until a save works",
                results_dir.display()
            ));
        }
        let pool = ThreadPool::build(options.threads)?;
        let persister_thread = if records.store.is_durable() {
            Some(run::spawn_persister(Arc::clone(&records))?)
        } else {
            None
        };
        Ok(Jobs {
            records,
            pool,
            max_pending: options.max_pending.max(1),
            closing: Mutex::new(
                JOBS_CLOSING,
                Closing {
                    persister_thread,
                    stage: CloseStage::Open,
                },
            ),
            closed: Condvar::new(),
        })
    }

    /// How many times the results directory was flushed (0 with
    /// `--no-fsync`): fewer than the jobs when they share flushes.
    #[must_use]
    pub fn directory_flushes(&self) -> u64 {
        self.records.store.directory_flushes()
    }

    /// Why results cannot be saved, while they cannot (the server is
    /// degraded and refuses new jobs); `None` when saves work.
    #[must_use]
    pub fn degraded_cause(&self) -> Option<Arc<str>> {
        self.records.degraded.cause()
    }

    /// How many jobs ended `error` because their result could not be saved.
    #[must_use]
    pub fn unsaved_jobs(&self) -> u64 {
        self.records.unsaved.load(Ordering::Relaxed)
    }

    /// Whether [`stop_accepting`](Jobs::stop_accepting) has been called.
    #[must_use]
    pub fn is_accepting(&self) -> bool {
        self.records.lock_table().accepting
    }

    /// Stops accepting jobs (idempotent); queued jobs still run.
    pub fn stop_accepting(&self) {
        let mut table = self.records.lock_table();
        table.accepting = false;
        // Closed under the table lock, after `accepting` is false: the
        // invariant at `JobTable` that makes `submit`'s `execute` infallible.
        self.pool.close();
    }

    /// Stops accepting jobs and blocks until every accepted job has run
    /// and is recorded, and every worker and the persister thread have
    /// exited. Idempotent, and safe to call from several threads at once:
    /// the first caller shuts down, the others wait for it to end
    /// (`tests::a_second_closer_waits_for_the_persister`; with submissions
    /// racing, `shuttle_model::submissions_racing_two_shut_downs_durable`).
    pub fn shut_down(&self) {
        self.stop_accepting();
        let mut closing = self.lock_closing();
        if closing.stage != CloseStage::Open {
            let _closed = self
                .closed
                .wait_while(closing, |c| c.stage != CloseStage::Closed)
                .unwrap_or_else(PoisonError::into_inner);
            return;
        }
        closing.stage = CloseStage::Closing;
        let persister_thread = closing.persister_thread.take();
        // No lock held while waiting for threads or writing files.
        drop(closing);
        self.wait_for_threads(persister_thread);
        self.lock_closing().stage = CloseStage::Closed;
        self.closed.notify_all();
    }

    /// The work of the first [`Jobs::shut_down`]: waits for the
    /// workers, then the persister, then writes what is left.
    fn wait_for_threads(&self, persister_thread: Option<JoinHandle<()>>) {
        // No table lock held: the workers need it to record their jobs. The pool's wait
        // fails only on one of its workers, and no job holds this `Jobs`.
        if let Err(error) = self.pool.close_and_wait() {
            self.records.logger.error(error.to_string());
        }
        // After the workers: the persister records the last jobs they
        // handed over, then returns.
        self.records.persister.stop();
        if let Some(thread) = persister_thread {
            let _ = thread.join(); // a panic was caught and logged inside
        }
        // Empty unless the persister thread died with jobs queued: they
        // are recorded here, so that no job stays `running`.
        self.records.record_left_over();
        let unsaved = self.records.unsaved.load(Ordering::Relaxed);
        if unsaved > 0 {
            self.records.logger.error(format!(
                "{unsaved} jobs ended unsaved (answered `error`): their results could not be saved in {}",
                self.records.store.dir().display()
            ));
        }
        let records = &self.records;
        let next = records.next_id(&records.lock_table());
        if let Some(next) = next {
            if let Err(error) = records.reservation.shrink_to(&records.store, next.0) {
                records
                    .logger
                    .error(format!("cannot record the id reservation: {error}"));
            }
        }
    }

    fn lock_closing(&self) -> MutexGuard<'_, Closing> {
        self.closing.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Jobs {
    /// Runs and records every accepted job before the table goes away.
    fn drop(&mut self) {
        self.shut_down();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc;
    use std::thread;
    use std::time::Duration;

    const DEADLINE: Duration = Duration::from_secs(20);

    /// Until `done` holds, with a deadline.
    fn poll(mut done: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + DEADLINE;
        while !done() {
            assert!(
                std::time::Instant::now() < deadline,
                "not within {DEADLINE:?}"
            );
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn scratch(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("lss-jobs-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn durable_jobs(dir: &Path, logger: Logger) -> Jobs {
        let options = JobsOptions {
            threads: 2,
            max_pending: 100,
            durable: true,
        };
        Jobs::open_locked(ResultsLock::acquire(dir).unwrap(), options, logger).unwrap()
    }

    fn ok_job(text: &'static str) -> Work {
        Box::new(move || Ok(text.to_string()))
    }

    /// In durable mode a job turns `done` only after the directory flush
    /// that covers its file: while the test holds that flush, the job stays
    /// `running` (its file is already renamed into place); once released,
    /// it is `done`.
    #[test]
    fn a_durable_job_is_done_only_after_its_directory_flush() {
        let dir = scratch("flush-order");
        let jobs = durable_jobs(&dir, Logger::disabled());
        // A first job takes the id reservation (which flushes, too).
        let first = jobs.submit(ok_job("1")).unwrap();
        assert_eq!(
            jobs.outcome_within(first, DEADLINE),
            Some(JobOutcome::Done(Arc::from(&b"1"[..])))
        );
        let held = crate::results::flush_gate::hold(&dir);
        let id = jobs.submit(ok_job("2")).unwrap();
        assert_eq!(
            jobs.outcome_within(id, Duration::from_millis(200)),
            Some(JobOutcome::Running),
            "done before its directory flush"
        );
        drop(held);
        assert_eq!(
            jobs.outcome_within(id, DEADLINE),
            Some(JobOutcome::Done(Arc::from(&b"2"[..])))
        );
        drop(jobs);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A panic in the persister's flush leaves no job running: the job of
    /// that batch ends `error` (its file is not known to be durable) and
    /// its file is removed, the server is degraded, and once a save works
    /// again jobs go through the persister as before; shutdown does not
    /// hang.
    #[test]
    fn a_panicking_flush_ends_its_batch_unsaved_and_leaves_no_job_running() {
        let dir = scratch("flush-panic");
        let log_path = dir.with_extension("log");
        let _ = std::fs::remove_file(&log_path);
        let logger = Logger::open(&log_path, 1 << 20, 1).unwrap();
        let jobs = durable_jobs(&dir, logger.clone());
        crate::results::flush_gate::panic_once(&dir);
        let failed = jobs.submit(ok_job("7")).unwrap();
        let Some(JobOutcome::Error(reason)) = jobs.outcome_within(failed, DEADLINE) else {
            panic!("not an error");
        };
        assert!(
            reason
                .as_str()
                .starts_with("the result could not be saved: the directory flush panicked"),
            "{reason}"
        );
        assert!(!dir.join(format!("{failed}.json")).exists());
        assert!(jobs.degraded_cause().is_some());
        let flushes = jobs.directory_flushes();
        // Refused until the probe (at most once a second) works.
        let mut last = None;
        poll(|| {
            last = jobs.submit(ok_job("8")).ok();
            last.is_some()
        });
        let last = last.unwrap();
        assert_eq!(
            jobs.outcome_within(last, DEADLINE),
            Some(JobOutcome::Done(Arc::from(&b"8"[..])))
        );
        assert!(jobs.directory_flushes() > flushes, "the persister goes on");
        assert_eq!(jobs.degraded_cause(), None);
        jobs.shut_down();
        assert!(dir.join(format!("{last}.json")).exists());
        drop(jobs);
        assert!(logger.flush());
        let log = std::fs::read_to_string(&log_path).unwrap();
        assert_eq!(
            log.matches("degraded: cannot save results").count(),
            1,
            "{log}"
        );
        assert_eq!(log.matches("no longer degraded").count(), 1, "{log}");
        assert!(log.contains("1 jobs ended unsaved"), "{log}");
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(&log_path);
    }

    /// A failed directory flush fails every job of its batch: each ends
    /// `error` with the cause and loses its result file.
    #[test]
    fn a_failed_flush_fails_every_job_of_its_batch() {
        let dir = scratch("flush-fails");
        let jobs = durable_jobs(&dir, Logger::disabled());
        let held = crate::results::flush_gate::hold(&dir);
        // The first flush waits at the gate with the first job; the three
        // queued behind it are the second batch.
        let first = jobs.submit(ok_job("0")).unwrap();
        poll(|| crate::results::flush_gate::is_waiting(&dir));
        let batch: Vec<JobId> = (1..4)
            .map(|i| jobs.submit(Box::new(move || Ok(format!("[{i}]")))).unwrap())
            .collect();
        poll(|| jobs.records.persister.queued() == batch.len());
        crate::results::flush_gate::fail_once(&dir);
        crate::results::flush_gate::fail_once(&dir);
        drop(held);
        for id in std::iter::once(first).chain(batch.iter().copied()) {
            let Some(JobOutcome::Error(reason)) = jobs.outcome_within(id, DEADLINE) else {
                panic!("{id} not an error");
            };
            assert!(
                reason.as_str().contains("test-made flush failure"),
                "{reason}"
            );
            assert!(!dir.join(format!("{id}.json")).exists(), "{id}");
        }
        drop(jobs);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A job saved while a flush that then fails is running lands in the
    /// next batch; that next flush works, but a writeback error is reported
    /// once, so the job's entry may already be lost: it must end `error`,
    /// never `done`, and its file must be gone.
    #[test]
    fn a_job_saved_before_a_failed_flush_is_never_done() {
        let dir = scratch("flush-spoiled");
        let jobs = durable_jobs(&dir, Logger::disabled());
        let held = crate::results::flush_gate::hold(&dir);
        let first = jobs.submit(ok_job("0")).unwrap();
        poll(|| crate::results::flush_gate::is_waiting(&dir));
        // Saved while the first flush is under way; queued for the next.
        let second = jobs.submit(ok_job("1")).unwrap();
        poll(|| jobs.records.persister.queued() == 1);
        crate::results::flush_gate::fail_once(&dir);
        drop(held);
        for id in [first, second] {
            let Some(JobOutcome::Error(reason)) = jobs.outcome_within(id, DEADLINE) else {
                panic!("{id} not an error");
            };
            assert!(!dir.join(format!("{id}.json")).exists(), "{id}: {reason}");
        }
        // Degraded until a probe (at most once a second) works; then a job
        // saved after the failure is done again.
        let mut third = None;
        poll(|| {
            third = jobs.submit(ok_job("2")).ok();
            third.is_some()
        });
        let third = third.unwrap();
        assert!(matches!(
            jobs.outcome_within(third, DEADLINE),
            Some(JobOutcome::Done(_))
        ));
        drop(jobs);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Two concurrent `shut_down`: the second must not return while
    /// the first is still joining the persister thread. The persister is
    /// stood in for by a thread the test releases; the second closer must
    /// still be waiting 200 ms after it started, and return only after the
    /// release.
    #[test]
    fn a_second_closer_waits_for_the_persister() {
        let dir = std::env::temp_dir().join(format!("lss-jobs-close-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let lock = ResultsLock::acquire(&dir).unwrap();
        let options = JobsOptions {
            threads: 1,
            max_pending: 10,
            durable: false,
        };
        let jobs = Jobs::open_locked(lock, options, Logger::disabled()).unwrap();
        let (release_tx, release) = mpsc::channel::<()>();
        let released = Arc::new(AtomicBool::new(false));
        // The facade's `spawn`, whose handle `Closing` holds (also in the
        // model builds, which compile this test without running it).
        jobs.lock_closing().persister_thread = Some(crate::sync::thread::spawn(move || {
            let _ = release.recv();
        }));
        let jobs_ref = &jobs;
        thread::scope(|scope| {
            let first = scope.spawn(move || jobs_ref.shut_down());
            // Poll (with a deadline) until the first closer holds the
            // stand-in persister's handle: it is then joining it.
            let deadline = std::time::Instant::now() + DEADLINE;
            while jobs.lock_closing().stage == CloseStage::Open {
                assert!(
                    std::time::Instant::now() < deadline,
                    "first closer never started"
                );
                thread::yield_now();
            }
            let (second_tx, second_done) = mpsc::channel();
            let released_seen = Arc::clone(&released);
            scope.spawn(move || {
                jobs_ref.shut_down();
                let _ = second_tx.send(released_seen.load(Ordering::SeqCst));
            });
            let early = second_done.recv_timeout(Duration::from_millis(200));
            released.store(true, Ordering::SeqCst);
            drop(release_tx);
            assert_eq!(
                early,
                Err(mpsc::RecvTimeoutError::Timeout),
                "returned early"
            );
            assert_eq!(second_done.recv_timeout(DEADLINE), Ok(true));
            first.join().unwrap();
        });
        assert_eq!(jobs.lock_closing().stage, CloseStage::Closed);
        drop(jobs);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The model test (shuttle) of the job lifecycle: `Jobs` itself — submit,
/// the job table, the pool, the persister, `stop_accepting`, `shut_down` —
/// under shuttle's schedules; CONCURRENCY.md says how to run it.
///
/// The store is the real one: each schedule opens a fresh temporary
/// directory (`ResultsLock`, `ResultStore`, the id reservation; each result
/// written, flushed and renamed into place, and in durable mode flushed
/// with its directory by the persister) with [`Logger::disabled`]. Shuttle
/// runs every model thread on one OS thread and switches only at its own
/// primitives (`crate::sync`), so a file call runs to its end as one step,
/// and none waits for another model thread (the directory's `flock` is
/// taken once, at open). A fake store behind a trait would have put a type
/// parameter on the whole job path for this test alone, so it is not done.
/// The directories are in RAM (`/dev/shm`) where there is one: about 1 ms
/// per schedule; on a disk each `fsync` costs its real time (3 to 20 ms
/// per durable schedule here, with other work on the disk).
#[cfg(all(test, shuttle))]
mod shuttle_model {
    use super::*;
    use crate::sync::thread;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A directory, removed (with everything in it) on drop — also when a
    /// schedule fails, since the test's own thread unwinds.
    struct ScheduleDir(PathBuf);

    impl ScheduleDir {
        /// The parent of one test's schedule directories: in RAM
        /// (`/dev/shm`) where there is one, so that a flush is a real
        /// `fsync` call that costs no disk time (the model checks the order
        /// of the calls, not the disk); else under the temp dir.
        fn for_test(name: &str) -> ScheduleDir {
            let shm = Path::new("/dev/shm");
            let base = if shm.is_dir() {
                shm.to_path_buf()
            } else {
                std::env::temp_dir()
            };
            let path = base.join(format!("lss-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            ScheduleDir(path)
        }

        /// A fresh directory for one schedule, inside `parent`.
        fn schedule(parent: &Path) -> ScheduleDir {
            static NEXT: AtomicU64 = AtomicU64::new(0);
            ScheduleDir(parent.join(NEXT.fetch_add(1, Ordering::Relaxed).to_string()))
        }
    }

    impl Drop for ScheduleDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// The work of the `k`-th submission, and the bytes it answers.
    fn work(k: usize) -> Work {
        Box::new(move || Ok(format!("[{k}]")))
    }

    /// One observation of the table, under its lock: `pending` is the
    /// number of jobs not yet ended.
    fn observe(jobs: &Jobs) {
        let table = jobs.records.lock_table();
        let running = table
            .entries
            .iter()
            .filter(|entry| matches!(entry, JobOutcome::Running))
            .count();
        assert_eq!(
            table.pending, running,
            "the pending count is not the number of jobs still running"
        );
    }

    /// What holds when a `shut_down` call returns: the closing caller has
    /// joined the workers and the persister (it sets `Closed` only after
    /// both joins), no job is accepted any more, and none is left running.
    fn assert_shut_down(jobs: &Jobs) {
        {
            let closing = jobs.lock_closing();
            assert_eq!(
                closing.stage,
                CloseStage::Closed,
                "a shut_down returned before the workers and the persister were joined"
            );
            assert!(closing.persister_thread.is_none());
        }
        let table = jobs.records.lock_table();
        assert!(!table.accepting);
        assert_eq!(table.pending, 0, "a shut_down returned with jobs pending");
        assert!(
            !table
                .entries
                .iter()
                .any(|entry| matches!(entry, JobOutcome::Running)),
            "a shut_down returned with a job still running"
        );
    }

    /// With submissions racing `shut_down` and two concurrent `shut_down`
    /// callers, nothing accepted is lost or left running (every accepted job
    /// ends `done` with its result, its file in place), the pending count
    /// equals the jobs not yet ended at every observation, a refused
    /// submission creates no job, the id reservation after shutdown is the
    /// next id (what shutdown's shrink wrote: nothing wrote it again), and
    /// every `shut_down` caller returns only after the workers and the
    /// persister are joined.
    ///
    /// The model: 2 workers; a submitter submitting two jobs, observing the
    /// table after each; a second thread and the main thread each observing
    /// it, then calling `shut_down`. Each schedule opens its own directory.
    fn submissions_racing_two_shut_downs(durable: bool) {
        let parent = ScheduleDir::for_test(if durable {
            "jobs-model"
        } else {
            "jobs-model-no-fsync"
        });
        let parent_dir = parent.0.clone();
        // Schedules by how many submissions were accepted (0, 1 or 2),
        // counted outside the model: the model must not pass only because
        // the stop always won.
        let accepted_counts: std::sync::Arc<[AtomicU64; 3]> =
            std::sync::Arc::new(Default::default());
        let counts = std::sync::Arc::clone(&accepted_counts);
        crate::sync::shuttle_model(move || {
            let scratch = ScheduleDir::schedule(&parent_dir);
            let options = JobsOptions {
                threads: 2,
                max_pending: 10,
                durable,
            };
            let lock = ResultsLock::acquire(&scratch.0).unwrap();
            let jobs = Arc::new(Jobs::open_locked(lock, options, Logger::disabled()).unwrap());
            let submitter = {
                let jobs = Arc::clone(&jobs);
                thread::spawn(move || {
                    (0..2)
                        .map(|k| {
                            let answer = jobs.submit(work(k));
                            observe(&jobs);
                            answer
                        })
                        .collect::<Vec<_>>()
                })
            };
            let closer = {
                let jobs = Arc::clone(&jobs);
                thread::spawn(move || {
                    observe(&jobs);
                    jobs.shut_down();
                    assert_shut_down(&jobs);
                })
            };
            observe(&jobs);
            jobs.shut_down();
            assert_shut_down(&jobs);
            let answers = submitter.join().unwrap();
            closer.join().unwrap();

            // Accepted until the first refusal, refused from then on; the
            // accepted jobs have the first ids, in order.
            let accepted = answers.iter().take_while(|answer| answer.is_ok()).count();
            counts[accepted].fetch_add(1, Ordering::Relaxed);
            let expected: Vec<Result<JobId, Refused>> = (0..answers.len())
                .map(|k| {
                    if k < accepted {
                        Ok(JobId(jobs.records.first_id + k as u64))
                    } else {
                        Err(Refused::ShuttingDown)
                    }
                })
                .collect();
            assert_eq!(answers, expected);
            // A refused submission created no job; every accepted one is
            // done, with its result, and its file is in place.
            assert_eq!(jobs.records.lock_table().entries.len(), accepted);
            for (k, answer) in answers.iter().enumerate().take(accepted) {
                let id = *answer.as_ref().unwrap();
                assert_eq!(
                    jobs.outcome(id),
                    Some(JobOutcome::Done(Arc::from(format!("[{k}]").as_bytes())))
                );
                assert_eq!(
                    std::fs::read(scratch.0.join(format!("{id}.json"))).ok(),
                    Some(format!("[{k}]").into_bytes()),
                    "{id}'s file"
                );
            }
            // Shutdown shrank the id reservation to the next id, and no
            // refused submission wrote it again: a clean restart numbers on
            // without a gap.
            let next = jobs.records.first_id + accepted as u64;
            assert_eq!(
                std::fs::read_to_string(scratch.0.join(crate::results::RESERVED_IDS_FILE)).ok(),
                Some(next.to_string()),
                "the id reservation after shutdown"
            );
        });
        let counts = accepted_counts
            .each_ref()
            .map(|c| c.load(Ordering::Relaxed));
        assert!(
            counts[1] > 0 && counts[2] > 0,
            "the schedules never raced a submission against the stop (schedules by jobs accepted 0/1/2: {counts:?})"
        );
        drop(parent);
    }

    /// [`submissions_racing_two_shut_downs`] in durable mode: the workers
    /// hand each saved job to the persister, which flushes the directory
    /// and records it.
    #[test]
    fn submissions_racing_two_shut_downs_durable() {
        submissions_racing_two_shut_downs(true);
    }

    /// [`submissions_racing_two_shut_downs`] with `--no-fsync`: no
    /// persister; each worker records its own job.
    #[test]
    fn submissions_racing_two_shut_downs_no_fsync() {
        submissions_racing_two_shut_downs(false);
    }
}
