//! Jobs: ids in submission order, status, results.
//!
//! # Life of a job
//!
//! 1. [`Jobs::submit`] takes the table lock, gives the job the next id,
//!    records it `Running`, counts it pending, and queues it on the
//!    [`ThreadPool`] — all before the lock is released, so the id is
//!    `Running` from the moment the caller sees it (never briefly unknown).
//! 2. A worker runs the [`Work`] with *no* lock held, under `catch_unwind`
//!    (a panic becomes `Error("internal error: job panicked")`), and writes
//!    the result (or the failure) file through the [`ResultStore`] — in
//!    durable mode that returns once the file is on stable storage.
//! 3. Only then is the job recorded, under the table lock: `Done(bytes)` or
//!    `Error(reason)`, and one less pending. In durable mode the worker
//!    hands the job to the persister thread and goes on; the persister
//!    flushes the directory once for every job handed over meanwhile, then
//!    records them all (group commit). Without durability the worker
//!    records it at once. A client that sees `done` can therefore also read
//!    the file (durably, by default) — unless writing failed
//!    (a full disk, a lost mount): the job is still `done` from memory, the
//!    failure is logged once per cause, and the file is written as soon as
//!    another write succeeds (see [`Shared::unsaved`]).
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
//! the table lock; [`Jobs::join`] then waits for the pool, which drains its
//! queue first, and then closes and joins the persister, which records the
//! last jobs the workers handed over. Every accepted job runs and is
//! recorded; none is accepted after.
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
//! crash killed in the queue is never given again. Ids below that which
//! have no file never finished and are "no such job".
//!
//! # Memory per job
//!
//! A job submitted by this process costs one `Entry` (24 bytes) in a
//! `Vec`; its result bytes are shared with every other job that produced
//! the same bytes (see [`crate::result_store`]), and the distinct results of
//! this server are few. A restored job costs 16 bytes (its id and outcome in a sorted
//! array). Measured (`measure_200k_jobs` in `tests/jobs.rs`): 200 000 jobs
//! over 500 distinct results add about 5.5 MB of resident memory.
//!
//! A job still *queued* also holds its [`Work`] closure until a worker takes
//! it (about 125 bytes with small captures, measured the same way), so the
//! number of pending jobs is capped ([`MAX_PENDING_JOBS`] by default): past
//! it, [`Jobs::submit`] answers [`Refused::QueueFull`] instead of letting a
//! flood of submissions grow memory without bound.

use crate::limits::MAX_PENDING_JOBS;
use crate::log::{format_millis, Logger};
use crate::pool::{panic_message, ThreadPool};
use crate::result_store::{Persister, ResultStore, ResultsLock};
use crate::scoreboard::{self, Role, ThreadState};
use std::fmt;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// A job id: `job_id_N`, N ≥ 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(pub u64);

impl JobId {
    /// Parses `job_id_N` or `N` (ASCII digits only, N ≥ 1, no sign, no
    /// overflow); `None` for anything else.
    ///
    /// Leading zeros are rejected (`job_id_01`, `007`): every job has
    /// exactly one spelling, the one [`Display`](fmt::Display) prints, so
    /// an id can never name a job by a second path. Nothing else is trimmed
    /// or folded: `Job_Id_1`, ` 1`, `+1`, `1.0` are all `None`.
    pub fn parse(text: &str) -> Option<JobId> {
        let digits = text.strip_prefix("job_id_").unwrap_or(text);
        let canonical = !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if !canonical {
            return None;
        }
        // Only ASCII digits remain, so the one error left is overflow.
        digits.parse().ok().map(JobId)
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

/// Why [`Jobs::submit`] refused a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Shutdown has begun: no job is accepted any more.
    ShuttingDown,
    /// `max_pending` jobs are already queued or running; try again later.
    /// This bounds the memory that queued jobs hold.
    QueueFull,
    /// The id reservation cannot be written (the results directory is not
    /// writable): handing out an id anyway could reuse it after a crash.
    IdsUnavailable,
}

/// The work of one job: the JSON text of its result, or why it failed.
pub type Work = Box<dyn FnOnce() -> Result<String, String> + Send + 'static>;

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refused::ShuttingDown => "shutting down",
            Refused::QueueFull => "too many jobs queued; retry later",
            Refused::IdsUnavailable => {
                "cannot reserve job ids: the results directory is not writable; retry later"
            }
        })
    }
}

impl std::error::Error for Refused {}

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
    /// (`--no-fsync` turns it off); see [`crate::result_store`].
    pub durable: bool,
}

/// The job table and what the workers need to finish a job.
pub struct Jobs {
    /// Shared with every queued job (each holds an `Arc`).
    shared: Arc<Shared>,
    /// Closed only by [`Jobs::stop_accepting`], under the table lock.
    pool: ThreadPool,
    /// Most jobs queued or running at once; see [`Refused::QueueFull`].
    max_pending: usize,
    /// The persister thread (durable mode only), taken and joined by
    /// [`Jobs::join`] after the workers: it delivers the jobs they handed
    /// over.
    persister_thread: Mutex<Option<JoinHandle<()>>>,
}

/// What a running job needs after its work is done.
struct Shared {
    /// Invariant: see [`JobTable`].
    table: Mutex<JobTable>,
    /// Jobs found on disk at start-up, ascending, all below `first_id`:
    /// `true` for a result, `false` for a recorded failure. Never changes
    /// after [`Jobs::open`], so it needs no lock.
    restored: Box<[(JobId, bool)]>,
    /// `damaged[i]`: `restored[i]`'s file was found damaged when read; it
    /// is then listed and answered as an error. Set once, never cleared.
    damaged: Box<[AtomicBool]>,
    /// The id of the first job submitted by this process: one more than the
    /// highest restored id, or 1. Never changes, so it needs no lock.
    first_id: u64,
    store: ResultStore,
    logger: Logger,
    /// Finished jobs whose file could not be written. Invariant: every
    /// entry is a finished job of this process whose file is not on disk;
    /// `cause` is the kind of the last write failure logged, `None` once
    /// writing works again. Only pushes and swaps under the lock; the
    /// writes happen outside it. Poisoning: recovered (each update is one
    /// push or assignment).
    unsaved: Mutex<Unsaved>,
    /// Durable mode: finished jobs whose files are renamed into place wait
    /// here for the directory flush that makes them durable; the persister
    /// thread then records them (group commit, see [`Persister`]).
    persister: Persister<Finished>,
    /// Wakes callers of [`Jobs::outcome_within`] waiting for a job to
    /// finish. Each condvar is used with the `table` mutex only, and its
    /// condition is "the waited-for entry is no longer `Running`", which is
    /// read under that lock, so a finish cannot slip between a waiter's check
    /// and its sleep.
    ///
    /// Job `id` signals `finished[id % FINISHED_SHARDS]`. One condvar for
    /// all would wake every waiting client whenever *any* job finished (a
    /// thundering herd at thousands of jobs a second); with shards a finish
    /// wakes only the few waiters that share its shard, and each of those
    /// re-checks its own entry and sleeps again if it is not the one.
    finished: Box<[Condvar]>,
}

/// See [`Shared::finished`].
const FINISHED_SHARDS: usize = 64;

/// A job whose work is over, on its way into the table.
struct Finished {
    id: JobId,
    entry: Entry,
    started: Instant,
}

/// See [`Shared::unsaved`].
#[derive(Default)]
struct Unsaved {
    jobs: Vec<(JobId, Entry)>,
    cause: Option<io::ErrorKind>,
}

/// Every job submitted by this process.
///
/// Invariants, all kept under the one `Mutex` around the table:
///
/// - `entries[i]` is job `first_id + i`; the next id is `first_id +
///   entries.len()`, so ids are dense, increasing, and never reused.
/// - `pending` is the number of `Entry::Running` in `entries`: a job is
///   counted in the same critical section that records it and uncounted in
///   the same one that finishes it.
/// - While `accepting` is true the pool is open. The pool is closed only in
///   [`Jobs::stop_accepting`], under this lock, after `accepting` became
///   false; so `submit`, which checks `accepting` under this lock, never
///   meets a closed pool. Lock order: table, then the pool's sender.
///
/// Poisoning: each update is one assignment, push or increment, which a
/// panic cannot leave half done; a poisoned lock is recovered with
/// [`PoisonError::into_inner`] so reads keep working after a bug elsewhere.
struct JobTable {
    entries: Vec<Entry>,
    pending: usize,
    accepting: bool,
    /// Every id below this is recorded on disk as possibly handed out (see
    /// [`ResultStore::reserve_ids_below`]), so that a restart after a crash
    /// never gives an id twice. Ids are reserved [`ID_RESERVATION_BLOCK`] at
    /// a time: one small file write per block, under this lock.
    reserved_below: u64,
    /// The last reservation write failed (its error was logged): log the
    /// next failure only after a success, not once per refused submission.
    reservation_failing: bool,
}

/// How many ids one reservation covers.
const ID_RESERVATION_BLOCK: u64 = 1024;

/// The state of one job submitted by this process (24 bytes).
#[derive(Debug, Clone)]
enum Entry {
    Running,
    /// The result bytes, shared with every job that produced the same bytes.
    Done(Arc<[u8]>),
    /// Why the job failed, as shown to clients.
    Error(Box<str>),
}

impl Entry {
    fn outcome(&self) -> JobOutcome {
        match self {
            Entry::Running => JobOutcome::Running,
            Entry::Done(bytes) => JobOutcome::Done(Arc::clone(bytes)),
            Entry::Error(reason) => JobOutcome::Error(reason.to_string()),
        }
    }

    fn status(&self) -> JobStatus {
        match self {
            Entry::Running => JobStatus::Running,
            Entry::Done(_) => JobStatus::Done,
            Entry::Error(_) => JobStatus::Error,
        }
    }
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
    /// (the binary takes it before it opens its log, so that a second
    /// server writes nothing into the first one's log).
    ///
    /// # Errors
    /// When the directory cannot be read, or the worker threads cannot be
    /// started.
    pub fn open_locked(
        lock: ResultsLock,
        options: JobsOptions,
        logger: Logger,
    ) -> io::Result<Jobs> {
        let JobsOptions {
            threads,
            max_pending,
            durable,
        } = options;
        let results_dir = lock.dir().to_path_buf();
        let (store, restored) = ResultStore::open(lock, durable)?;
        // After the highest result found and at or above every id an earlier
        // run may have handed out. Both are below MAX_RESTORED_ID, so this
        // cannot overflow.
        let first_id = restored
            .last()
            .map_or(1, |(last, _)| last.0 + 1)
            .max(store.reserved_at_start());
        let pool = ThreadPool::build(threads)?;
        if !restored.is_empty() {
            logger.info(format!(
                "restored {} earlier jobs from {}; new jobs start at job_id_{first_id}",
                restored.len(),
                results_dir.display()
            ));
        }
        let shared = Arc::new(Shared {
            table: Mutex::new(JobTable {
                entries: Vec::new(),
                pending: 0,
                accepting: true,
                reserved_below: first_id,
                reservation_failing: false,
            }),
            damaged: restored.iter().map(|_| AtomicBool::new(false)).collect(),
            restored: restored.into_boxed_slice(),
            first_id,
            store,
            logger,
            unsaved: Mutex::new(Unsaved::default()),
            persister: Persister::default(),
            finished: (0..FINISHED_SHARDS).map(|_| Condvar::new()).collect(),
        });
        let persister_thread = if durable {
            let shared = Arc::clone(&shared);
            let thread = thread::Builder::new()
                .name("persister".into())
                .spawn(move || {
                    let _slot = scoreboard::claim(Role::Persister, ThreadState::Idle);
                    let run = || {
                        shared.persister.run(
                            || {
                                scoreboard::set(ThreadState::Flushing);
                                let flushed = shared.store.flush_dir();
                                scoreboard::set(ThreadState::Idle);
                                flushed
                            },
                            |batch, flushed| shared.finish(batch, flushed),
                        );
                    };
                    // Should it ever panic, close the queue: workers then
                    // flush and record their jobs themselves (see `run`).
                    if panic::catch_unwind(AssertUnwindSafe(run)).is_err() {
                        shared.persister.close();
                        shared.logger.error("the persister thread panicked");
                    }
                })?;
            Some(thread)
        } else {
            None
        };
        Ok(Jobs {
            shared,
            pool,
            max_pending: max_pending.max(1),
            persister_thread: Mutex::new(persister_thread),
        })
    }

    /// Accepts a job: its id is `Running` from the moment this returns.
    /// Logs `job_id_N submitted`; see [`Jobs::submit_as`].
    ///
    /// # Errors
    /// [`Refused::ShuttingDown`] once [`stop_accepting`](Jobs::stop_accepting)
    /// was called; [`Refused::QueueFull`] while `max_pending` jobs are pending;
    /// [`Refused::IdsUnavailable`] when the id reservation cannot be written
    /// (no id is used then: the next submission gets the same one).
    pub fn submit(&self, work: Work) -> Result<JobId, Refused> {
        self.submit_logged(None, work)
    }

    /// [`Jobs::submit`], logging `job_id_N submitted: {what}` (the endpoint
    /// name). The line is queued before the job reaches a worker, so it
    /// always precedes the job's `done` or `error` line in the log.
    ///
    /// # Errors
    /// As [`Jobs::submit`].
    pub fn submit_as(&self, what: &str, work: Work) -> Result<JobId, Refused> {
        self.submit_logged(Some(what), work)
    }

    fn submit_logged(&self, what: Option<&str>, work: Work) -> Result<JobId, Refused> {
        let mut table = self.shared.lock_table();
        if !table.accepting {
            return Err(Refused::ShuttingDown);
        }
        if table.pending >= self.max_pending {
            return Err(Refused::QueueFull);
        }
        // Ids start below 2^53 and grow by one per job: no overflow in
        // practice. Should it ever happen, refusing is better than reusing.
        let len = u64::try_from(table.entries.len()).map_err(|_| Refused::ShuttingDown)?;
        let id = JobId(
            self.shared
                .first_id
                .checked_add(len)
                .ok_or(Refused::ShuttingDown)?,
        );
        if id.0 >= table.reserved_below {
            // File I/O under the table lock, once per block of ids: the
            // reservation must be on disk before the id is returned, and
            // every submission waiting here would need this id's block anyway.
            let limit = id.0.saturating_add(ID_RESERVATION_BLOCK);
            if let Err(error) = self.shared.store.reserve_ids_below(limit) {
                // Handing out the id anyway could let a restart after a
                // crash give it again: refuse, and do not advance.
                if !table.reservation_failing {
                    table.reservation_failing = true;
                    self.shared.logger.error(format!(
                        "cannot record the id reservation in {}: {error}; refusing new jobs until it can",
                        self.shared.store.dir().display()
                    ));
                }
                return Err(Refused::IdsUnavailable);
            }
            table.reservation_failing = false;
            table.reserved_below = limit;
        }
        let shared = Arc::clone(&self.shared);
        let job = Box::new(move || shared.run(id, work));
        table.entries.push(Entry::Running);
        table.pending += 1;
        // Before `execute`: once a worker has the job it may log `done` at
        // any moment. `info` never waits (it drops the line if the log is
        // full), so this holds the table lock for one short push only.
        match what {
            Some(what) => self.shared.logger.info(format!("{id} submitted: {what}")),
            None => self.shared.logger.info(format!("{id} submitted")),
        }
        // Cannot fail: `accepting` is true and we hold the table lock, so the
        // pool is open (see the invariant at `JobTable`). If it ever did, the
        // job is recorded as failed rather than left `Running` forever.
        if self.pool.execute(job).is_err() {
            if let Some(entry) = table.entries.last_mut() {
                *entry = Entry::Error("internal error: the worker pool is closed".into());
            }
            table.pending -= 1;
            self.shared
                .logger
                .error(format!("{id} error: submitted to a closed pool"));
        }
        Ok(id)
    }

    /// The outcome of job `id`, waiting up to `wait` for it to finish if it
    /// is running; `None` if there is no such job.
    ///
    /// This is what `get_results` uses: a client that polls in a tight loop
    /// then sends one or two requests per job instead of dozens, which
    /// leaves the CPU to the workers that finish the jobs.
    pub fn outcome_within(&self, id: JobId, wait: Duration) -> Option<JobOutcome> {
        let Some(index) = self.shared.index_of(id) else {
            return self.outcome(id);
        };
        let table = self.shared.lock_table();
        table.entries.get(index)?;
        // `wait_timeout_while` re-checks the condition after every wake-up
        // (ours, another job's in the same shard, or a spurious one) and
        // returns when it no longer holds or the time is up.
        let (table, _timed_out) = self.shared.finished[self.shared.shard(id)]
            .wait_timeout_while(table, wait, |table| {
                matches!(table.entries.get(index), Some(Entry::Running))
            })
            .unwrap_or_else(PoisonError::into_inner);
        table.entries.get(index).map(Entry::outcome)
    }

    /// The outcome of job `id`; `None` if there is no such job.
    ///
    /// A job restored from an earlier run is `Done` with its file's bytes, or
    /// `Error` with its recorded reason, read now; if the file has become
    /// unreadable it is `Error`.
    pub fn outcome(&self, id: JobId) -> Option<JobOutcome> {
        if id.0 >= self.shared.first_id {
            let index = self.shared.index_of(id)?;
            return self
                .shared
                .lock_table()
                .entries
                .get(index)
                .map(Entry::outcome);
        }
        let found = self
            .shared
            .restored
            .binary_search_by_key(&id, |&(id, _)| id);
        let index = found.ok()?;
        let (_, succeeded) = self.shared.restored[index];
        if self.shared.damaged[index].load(Ordering::Relaxed) {
            return Some(JobOutcome::Error(DAMAGED_REASON.to_string()));
        }
        // Read outside any lock: restored jobs never change. What is read
        // is checked, so that a torn file never reaches a client.
        let read = if succeeded {
            self.shared.store.read(id).map(|bytes| {
                match serde_json::from_slice::<serde_json::Value>(&bytes) {
                    Ok(_) => JobOutcome::Done(Arc::from(bytes)),
                    Err(error) => self.shared.damaged_file(index, &error.to_string()),
                }
            })
        } else {
            self.shared.store.read_error(id).map(|reason| {
                if reason.is_empty() {
                    self.shared.damaged_file(index, "empty failure record")
                } else {
                    JobOutcome::Error(reason)
                }
            })
        };
        Some(match read {
            Ok(outcome) => outcome,
            Err(error) => {
                self.shared
                    .logger
                    .error(format!("{id}: cannot read its result file: {error}"));
                JobOutcome::Error("internal error: cannot read the result file".to_string())
            }
        })
    }

    /// Every job with its status, in id order.
    pub fn statuses(&self) -> Vec<(JobId, JobStatus)> {
        let restored = (0..self.shared.restored.len()).map(|i| self.shared.restored_status(i));
        let table = self.shared.lock_table();
        let mut all = Vec::with_capacity(self.shared.restored.len() + table.entries.len());
        all.extend(restored);
        all.extend(
            (self.shared.first_id..)
                .zip(&table.entries)
                .map(|(id, entry)| (JobId(id), entry.status())),
        );
        all
    }

    /// Up to `limit` jobs with an id above `after` (from the first job when
    /// `None`), with their status, in id order: one page of [`statuses`].
    ///
    /// The table lock is taken once, for copying at most `limit` entries, so
    /// a caller listing a large table page by page holds it only briefly at a
    /// time and never copies the whole table at once.
    ///
    /// [`statuses`]: Jobs::statuses
    pub fn statuses_after(&self, after: Option<JobId>, limit: usize) -> Vec<(JobId, JobStatus)> {
        let after = after.map_or(0, |id| id.0);
        let restored = &self.shared.restored;
        let first_restored = restored.partition_point(|&(id, _)| id.0 <= after);
        let mut page: Vec<(JobId, JobStatus)> = (first_restored..restored.len())
            .take(limit)
            .map(|i| self.shared.restored_status(i))
            .collect();
        if page.len() < limit {
            let first_id = self.shared.first_id;
            // Index of the first entry above `after`; past the end when
            // `after` is beyond every job (saturating: no overflow).
            let skip = after.saturating_add(1).saturating_sub(first_id);
            let skip = usize::try_from(skip).unwrap_or(usize::MAX);
            let table = self.shared.lock_table();
            let entries = table.entries.get(skip..).unwrap_or(&[]);
            page.extend(
                (first_id.saturating_add(skip as u64)..)
                    .zip(entries.iter().take(limit - page.len()))
                    .map(|(id, entry)| (JobId(id), entry.status())),
            );
        }
        page
    }

    /// The highest job id handed out (by this process or an earlier run
    /// whose result is still on disk); `None` when there is no job at all.
    pub fn last_id(&self) -> Option<JobId> {
        let entries = self.shared.lock_table().entries.len() as u64;
        if entries > 0 {
            return Some(JobId(self.shared.first_id + entries - 1));
        }
        self.shared.restored.last().map(|&(id, _)| id)
    }

    /// How many jobs are queued or running.
    pub fn pending(&self) -> usize {
        self.shared.lock_table().pending
    }

    /// How many times the results directory was flushed (0 with
    /// `--no-fsync`): fewer than the jobs when they share flushes.
    pub fn directory_flushes(&self) -> u64 {
        self.shared.store.directory_flushes()
    }

    /// Whether [`stop_accepting`](Jobs::stop_accepting) has been called.
    pub fn is_accepting(&self) -> bool {
        self.shared.lock_table().accepting
    }

    /// Stops accepting jobs (idempotent); queued jobs still run.
    pub fn stop_accepting(&self) {
        let mut table = self.shared.lock_table();
        table.accepting = false;
        // Closed under the table lock, after `accepting` is false: the
        // invariant at `JobTable` that makes `submit`'s `execute` infallible.
        self.pool.close();
    }

    /// Stops accepting jobs and blocks until every accepted job has finished
    /// and every worker has exited. Idempotent.
    pub fn join(&self) {
        self.stop_accepting();
        // No table lock held: finishing workers need it. The pool's `join`
        // fails only on one of its workers, and no job holds this `Jobs`.
        if let Err(error) = self.pool.join() {
            self.shared.logger.error(error.to_string());
        }
        // After the workers: the persister records the last jobs they
        // handed over, then returns.
        self.shared.persister.close();
        let persister = self
            .persister_thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = persister {
            let _ = thread.join(); // a panic was caught and logged inside
        }
        // A last try for results whose files could not be written.
        self.shared.write_unsaved();
        let lost = self.shared.lock_unsaved().jobs.len();
        if lost > 0 {
            self.shared.logger.error(format!(
                "{lost} finished jobs could not be written to {}; their results are lost at exit",
                self.shared.store.dir().display()
            ));
        }
        // Every accepted job has finished and no more are accepted: the
        // reservation can shrink to the ids really handed out, so that a
        // clean restart numbers on right after them, without a gap.
        let mut table = self.shared.lock_table();
        let next = self.shared.first_id + table.entries.len() as u64;
        if next < table.reserved_below {
            match self.shared.store.reserve_ids_below(next) {
                Ok(()) => table.reserved_below = next,
                Err(error) => self
                    .shared
                    .logger
                    .error(format!("cannot record the id reservation: {error}")),
            }
        }
    }
}

impl Drop for Jobs {
    /// Finishes every accepted job before the table goes away.
    fn drop(&mut self) {
        self.join();
    }
}

impl Shared {
    fn lock_table(&self) -> MutexGuard<'_, JobTable> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Where job `id` is in `JobTable::entries`, if it was submitted by this
    /// process (it may still be past the end: not submitted yet).
    fn index_of(&self, id: JobId) -> Option<usize> {
        id.0.checked_sub(self.first_id)
            .and_then(|i| usize::try_from(i).ok())
    }

    /// The id and status of `restored[index]` (which must exist).
    fn restored_status(&self, index: usize) -> (JobId, JobStatus) {
        let (id, succeeded) = self.restored[index];
        let status = if succeeded && !self.damaged[index].load(Ordering::Relaxed) {
            JobStatus::Done
        } else {
            JobStatus::Error
        };
        (id, status)
    }

    /// Marks `restored[index]` damaged (logging it the first time) and
    /// returns the outcome to answer.
    fn damaged_file(&self, index: usize, details: &str) -> JobOutcome {
        if !self.damaged[index].swap(true, Ordering::Relaxed) {
            let (id, _) = self.restored[index];
            self.logger
                .error(format!("{id}: {DAMAGED_REASON}: {details}"));
        }
        JobOutcome::Error(DAMAGED_REASON.to_string())
    }

    fn lock_unsaved(&self) -> MutexGuard<'_, Unsaved> {
        self.unsaved.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes job `id`'s file for `entry` (its result or its failure);
    /// whether it was written. On failure the job joins [`Shared::unsaved`];
    /// on success, files that could not be written before are written now.
    fn persist(&self, id: JobId, entry: &Entry) -> bool {
        let written = match entry {
            Entry::Done(bytes) => self.store.write_result(id, bytes),
            Entry::Error(reason) => self.store.write_error(id, reason),
            Entry::Running => return false,
        };
        match written {
            Ok(()) => {
                self.write_unsaved();
                true
            }
            Err(error) => {
                self.keep_unsaved(vec![(id, entry.clone())], &error);
                false
            }
        }
    }

    /// Adds `jobs` to [`Shared::unsaved`]; logs `error` if its cause differs
    /// from the last one logged (once per cause, not once per job).
    fn keep_unsaved(&self, jobs: Vec<(JobId, Entry)>, error: &io::Error) {
        let Some(&(first, _)) = jobs.first() else {
            return;
        };
        for _ in &jobs {
            crate::metrics::result_write_failed();
        }
        let mut unsaved = self.lock_unsaved();
        unsaved.jobs.extend(jobs);
        let new_cause = unsaved.cause != Some(error.kind());
        unsaved.cause = Some(error.kind());
        drop(unsaved);
        if new_cause {
            self.logger.error(format!(
                "cannot write {first}'s file in {}: {error}; it and every job finished \
                 while writing fails are kept in memory and written once writing works again",
                self.store.dir().display()
            ));
        }
    }

    /// Records finished jobs in the table, wakes their waiters and logs
    /// them. `flushed` is the result of the directory flush that was to
    /// make their files durable; if it failed, the jobs are still recorded
    /// (from memory) and their files are written again later.
    fn finish(&self, batch: Vec<Finished>, flushed: io::Result<()>) {
        if let Err(error) = flushed {
            let jobs = batch.iter().map(|f| (f.id, f.entry.clone())).collect();
            self.keep_unsaved(jobs, &error);
        }
        let mut logged = Vec::with_capacity(batch.len());
        let mut woken = [false; FINISHED_SHARDS];
        let mut table = self.lock_table();
        for Finished { id, entry, started } in batch {
            woken[self.shard(id)] = true;
            if matches!(entry, Entry::Done(_)) {
                logged.push((id, started));
            }
            if let Some(slot) = self.index_of(id).and_then(|i| table.entries.get_mut(i)) {
                *slot = entry;
            }
            // This job was counted when submitted; `saturating` only so
            // that a broken invariant cannot turn into a panic here.
            table.pending = table.pending.saturating_sub(1);
        }
        drop(table);
        // After the entries changed under the lock: a waiter either saw
        // `Running` and is asleep (and is woken now), or takes the lock
        // after our change and sees the outcome without sleeping.
        // Each shard of a finished job (done or error) once.
        for (condvar, _) in self.finished.iter().zip(woken).filter(|&(_, w)| w) {
            condvar.notify_all();
        }
        // Logged after the outcome is recorded: a slow log (back-pressure)
        // must not delay a finished job's answer.
        for (id, started) in logged {
            self.logger
                .info(format!("{id} done in {}", format_millis(started.elapsed())));
        }
    }

    /// Writes the files of [`Shared::unsaved`], outside its lock; those that
    /// still fail go back.
    fn write_unsaved(&self) {
        let jobs = {
            let mut unsaved = self.lock_unsaved();
            if unsaved.jobs.is_empty() {
                unsaved.cause = None;
                return;
            }
            std::mem::take(&mut unsaved.jobs)
        };
        let total = jobs.len();
        let failed: Vec<(JobId, Entry)> = jobs
            .into_iter()
            .filter(|(id, entry)| {
                let written = match entry {
                    Entry::Done(bytes) => self.store.write_result(*id, bytes),
                    Entry::Error(reason) => self.store.write_error(*id, reason),
                    Entry::Running => Ok(()),
                };
                written.is_err()
            })
            .collect();
        let written = total - failed.len();
        if written > 0 {
            // Their directory entries, too, must be durable. (A failure
            // here is reported by the next job's flush.)
            let _ = self.store.flush_dir();
        }
        let mut unsaved = self.lock_unsaved();
        unsaved.jobs.extend(failed);
        if unsaved.jobs.is_empty() {
            unsaved.cause = None;
        }
        drop(unsaved);
        if written > 0 {
            self.logger.info(format!(
                "writing works again in {}: wrote {written} files kept in memory",
                self.store.dir().display()
            ));
        }
    }

    /// Which of the `finished` condvars job `id` signals.
    fn shard(&self, id: JobId) -> usize {
        // The remainder is below FINISHED_SHARDS, so it fits a usize.
        (id.0 % FINISHED_SHARDS as u64) as usize
    }

    /// The body of job `id`, on a worker thread.
    fn run(&self, id: JobId, work: Work) {
        let started = Instant::now();
        crate::metrics::job_started(id.0);
        // No lock is held while the work and the file write run.
        let caught = panic::catch_unwind(AssertUnwindSafe(|| self.compute(id, work)));
        let entry = caught.unwrap_or_else(|payload| {
            self.logger.error(format!(
                "{id} error: {PANIC_REASON}: {}",
                panic_message(&*payload)
            ));
            Entry::Error(PANIC_REASON.into())
        });
        // Counted on this worker (its scoreboard slot knows the endpoint) and
        // before the outcome is visible: see `metrics::job_finished`.
        crate::metrics::job_finished(matches!(entry, Entry::Done(_)));
        // The file first (a failure record too, so that a restarted server
        // still answers this id with why).
        let written = self.persist(id, &entry);
        let finished = Finished { id, entry, started };
        if written && self.store.is_durable() {
            // The job turns `done` once its directory entry is flushed: the
            // persister does that for every job handed over meanwhile, and
            // this worker goes on to its next job.
            match self.persister.push(finished) {
                Ok(()) => return,
                // Closed (only if its thread died): flush here.
                Err(finished) => return self.finish(vec![finished], self.store.flush_dir()),
            }
        }
        // Nothing to flush: not durable, or the file is not written (the
        // job is recorded from memory; see `unsaved`).
        self.finish(vec![finished], Ok(()));
    }

    /// Runs the work; the entry to record.
    fn compute(&self, id: JobId, work: Work) -> Entry {
        match work() {
            Ok(json) => Entry::Done(self.store.intern(json.into_bytes())),
            Err(reason) => {
                self.logger.error(format!("{id} error: {reason}"));
                Entry::Error(reason.into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_both_spellings() {
        assert_eq!(JobId::parse("job_id_1"), Some(JobId(1)));
        assert_eq!(JobId::parse("1"), Some(JobId(1)));
        assert_eq!(JobId::parse("job_id_1234567"), Some(JobId(1_234_567)));
        assert_eq!(JobId::parse("18446744073709551615"), Some(JobId(u64::MAX)));
    }

    #[test]
    fn parse_rejects_everything_else() {
        for text in [
            "",
            "job_id_",
            "0",
            "job_id_0",
            "01",
            "job_id_01",
            "+1",
            "-1",
            " 1",
            "1 ",
            "1.0",
            "1e3",
            "job_id_job_id_1",
            "Job_Id_1",
            "job-id-1",
            "job_id_1/../2",
            "../something",
            "18446744073709551616",
            "99999999999999999999999",
            "١",
            "job_id_x",
        ] {
            assert_eq!(JobId::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn display_round_trips() {
        for n in [1, 7, 10, 1_000_000, u64::MAX] {
            let id = JobId(n);
            assert_eq!(JobId::parse(&id.to_string()), Some(id));
        }
        assert_eq!(JobId(7).to_string(), "job_id_7");
    }

    #[test]
    fn entries_stay_small() {
        assert!(std::mem::size_of::<Entry>() <= 24);
    }
}
