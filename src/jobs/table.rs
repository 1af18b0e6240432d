//! The job table: every job's state, the Condvar shards its waiters sleep
//! on, and the operations on it — submitting, outcomes, waits and listing
//! pages.

use super::degraded::Degraded;
use super::reservation::IdReservation;
use super::run::RanJob;
use super::{JobId, JobOutcome, JobStatus, Jobs, Refused, Work, DAMAGED_REASON};
use crate::log::Logger;
use crate::results::{Persister, ReadBack, RestoredJob, ResultStore, MAX_RESTORED_ID};
use crate::sync::lock_order::JOB_TABLE;
use crate::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Every job this server knows — those of earlier runs and those submitted
/// since — and what a running job needs after its work is done. Shared by
/// [`Jobs`] with every queued job (each holds an `Arc`).
pub(super) struct JobRecords {
    /// Invariant: see [`JobTable`].
    pub(super) table: Mutex<JobTable>,
    /// Jobs found on disk at start-up, ascending, all below `first_id`.
    /// Never changes after [`Jobs::open`], so it needs no lock.
    pub(super) restored: Box<[RestoredJob]>,
    /// `damaged[i]`: `restored[i]`'s file was found damaged when read; it
    /// is then listed and answered as an error. Set once, never cleared.
    damaged: Box<[AtomicBool]>,
    /// The id of the first job submitted by this process: one more than the
    /// highest restored id (or the reservation an earlier run left, if
    /// higher), or 1. Never changes, so it needs no lock.
    pub(super) first_id: u64,
    pub(super) store: ResultStore,
    pub(super) logger: Logger,
    /// The id reservation: read (one atomic load) under the table lock,
    /// written outside it.
    pub(super) reservation: IdReservation,
    /// Whether saves work; new jobs are refused while they do not.
    pub(super) degraded: Degraded,
    /// Durable mode: jobs whose files are renamed into place wait
    /// here for the directory flush that makes them durable; the persister
    /// thread then records them (group commit, see [`Persister`]).
    pub(super) persister: Persister<RanJob>,
    /// Wakes callers of [`Jobs::outcome_within`] waiting for a job's
    /// outcome. Each condvar is used with the `table` mutex only, and its
    /// condition is "the waited-for entry is no longer `Running`", which is
    /// read under that lock, so a recording cannot slip between a waiter's
    /// check and its sleep.
    ///
    /// Job `id` signals `recorded[id % RECORDED_SHARDS]`: a recording wakes
    /// only the waiters of its shard (not every waiting client), and each
    /// re-checks its own entry and sleeps again if it is not the one.
    pub(super) recorded: Box<[Condvar]>,
}

/// See [`JobRecords::recorded`].
pub(super) const RECORDED_SHARDS: usize = 64;

/// Every job submitted by this process.
///
/// Invariants, all kept under the one `Mutex` around the table:
///
/// - `entries[i]` is job `first_id + i`; the next id is `first_id +
///   entries.len()`, so ids are dense, increasing, and never reused.
/// - `pending` is the number of `JobOutcome::Running` in `entries`: a job is
///   counted in the same critical section that records it and uncounted in
///   the same one that records its outcome.
/// - While `accepting` is true the pool is open. The pool is closed only in
///   [`Jobs::stop_accepting`], under this lock, after `accepting` became
///   false; so `submit`, which checks `accepting` under this lock, never
///   meets a closed pool. Lock order: table, then the pool's sender.
/// - Every id handed out is below [`JobRecords::reservation`]'s usable
///   limit, read under this lock (no file I/O happens under it).
///
/// Poisoning: a poisoned lock is recovered with [`PoisonError::into_inner`]
/// so reads keep working after a bug elsewhere. That is sound because no
/// critical section can stop half-way through its changes: in `submit` the
/// push of `Running`, `pending += 1` and the pool's `execute` follow one
/// another with nothing between them that can panic (the observer call and
/// the log line come before them); in `record` every entry of the batch is
/// assigned and uncounted first, and the observers are called after.
pub(super) struct JobTable {
    /// Each job's outcome so far (24 bytes each:
    /// `tests::a_job_outcome_is_24_bytes`); a `Done` result's bytes are
    /// shared with every job that produced the same bytes.
    pub(super) entries: Vec<JobOutcome>,
    pub(super) pending: usize,
    pub(super) accepting: bool,
}

impl JobOutcome {
    fn status(&self) -> JobStatus {
        match self {
            JobOutcome::Running => JobStatus::Running,
            JobOutcome::Done(_) => JobStatus::Done,
            JobOutcome::Error(_) => JobStatus::Error,
        }
    }
}

/// A job on its way through the pool's queue: what its worker needs.
pub(super) struct QueuedJob {
    pub(super) records: Arc<JobRecords>,
    pub(super) id: JobId,
    pub(super) work: Work,
}

impl JobRecords {
    /// The records of a server that found `restored` on disk in `store`.
    pub(super) fn new(store: ResultStore, restored: Vec<RestoredJob>, logger: Logger) -> Self {
        // After the highest result found and at or above every id an earlier
        // run may have handed out. Both are at most MAX_RESTORED_ID, so this
        // cannot overflow.
        let first_id = restored
            .last()
            .map_or(1, |last| last.id.0 + 1)
            .max(store.reserved_at_start());
        JobRecords {
            table: Mutex::new(
                JOB_TABLE,
                JobTable {
                    entries: Vec::new(),
                    pending: 0,
                    accepting: true,
                },
            ),
            reservation: IdReservation::new(first_id, store.reserved_at_start()),
            degraded: Degraded::default(),
            damaged: restored.iter().map(|_| AtomicBool::new(false)).collect(),
            restored: restored.into_boxed_slice(),
            first_id,
            store,
            logger,
            persister: Persister::default(),
            recorded: (0..RECORDED_SHARDS).map(|_| Condvar::new()).collect(),
        }
    }

    pub(super) fn lock_table(&self) -> MutexGuard<'_, JobTable> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Where job `id` is in `JobTable::entries`, if it was submitted by this
    /// process (it may still be past the end: not submitted yet).
    pub(super) fn index_of(&self, id: JobId) -> Option<usize> {
        id.0.checked_sub(self.first_id)
            .and_then(|i| usize::try_from(i).ok())
    }

    /// The id the next submitted job gets; `None` when every id is used:
    /// ids stay below [`MAX_RESTORED_ID`] (the scoreboard packs them into
    /// 48 bits).
    pub(super) fn next_id(&self, table: &JobTable) -> Option<JobId> {
        let len = u64::try_from(table.entries.len()).ok()?;
        self.first_id
            .checked_add(len)
            .filter(|&id| id < MAX_RESTORED_ID)
            .map(JobId)
    }

    /// Makes sure `id` is covered by the reservation on disk (outside the
    /// table lock); a failure turns the server degraded.
    ///
    /// # Errors
    /// [`Refused::IdsUnavailable`] when the reservation cannot be written;
    /// no id is used then.
    pub(super) fn reserve(&self, id: JobId) -> Result<(), Refused> {
        match self.reservation.cover(&self.store, id.0) {
            Ok(()) => {
                self.degraded.save_worked(&self.logger);
                Ok(())
            }
            Err(error) => {
                self.degraded
                    .save_failed(&self.logger, self.store.dir(), &error);
                Err(Refused::IdsUnavailable)
            }
        }
    }

    /// Which of the `recorded` condvars job `id` signals.
    pub(super) fn shard(id: JobId) -> usize {
        // The remainder is below RECORDED_SHARDS, so it fits a usize.
        #[allow(clippy::cast_possible_truncation)]
        let shard = (id.0 % RECORDED_SHARDS as u64) as usize;
        shard
    }

    /// The id and status of `restored[index]` (which must exist).
    fn restored_status(&self, index: usize) -> (JobId, JobStatus) {
        let job = self.restored[index];
        let status = if job.succeeded && !self.damaged[index].load(Ordering::Relaxed) {
            JobStatus::Done
        } else {
            JobStatus::Error
        };
        (job.id, status)
    }

    /// Marks `restored[index]` damaged (logging it the first time) and
    /// returns the outcome to answer.
    fn damaged_file(&self, index: usize, details: &str) -> JobOutcome {
        if !self.damaged[index].swap(true, Ordering::Relaxed) {
            let id = self.restored[index].id;
            self.logger
                .error(format!("{id}: {DAMAGED_REASON}: {details}"));
        }
        JobOutcome::Error(DAMAGED_REASON.into())
    }

    /// The outcome of restored job `restored[index]`, read from its file
    /// now (outside any lock: restored jobs never change).
    fn restored_outcome(&self, index: usize) -> JobOutcome {
        if self.damaged[index].load(Ordering::Relaxed) {
            return JobOutcome::Error(DAMAGED_REASON.into());
        }
        let job = self.restored[index];
        match self.store.read_back(job) {
            Ok(ReadBack::Result(bytes)) => JobOutcome::Done(Arc::from(bytes)),
            Ok(ReadBack::Failure(reason)) => JobOutcome::Error(reason.into()),
            Ok(ReadBack::Damaged(details)) => self.damaged_file(index, &details),
            Err(error) => {
                self.logger
                    .error(format!("{}: cannot read its result file: {error}", job.id));
                JobOutcome::Error("internal error: cannot read the result file".into())
            }
        }
    }
}

impl Jobs {
    /// Accepts a job: its id is `Running` from the moment this returns.
    /// Logs `job_id_N submitted`; see [`Jobs::submit_as`].
    ///
    /// # Errors
    /// [`Refused::ShuttingDown`] once [`stop_accepting`](Jobs::stop_accepting)
    /// was called; [`Refused::QueueFull`] while `max_pending` jobs are pending;
    /// [`Refused::IdsUnavailable`] when the id reservation cannot be written
    /// (no id is used then: the next submission gets the same one);
    /// [`Refused::IdsExhausted`] when every id is used;
    /// [`Refused::Degraded`] while results cannot be saved (see
    /// `degraded.rs`: at most once a second, one submission probes first).
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
        let records = &self.records;
        records
            .degraded
            .admit(&records.logger, || records.store.probe())?;
        records.reservation.check_in_place(&records.store);
        loop {
            let mut table = records.lock_table();
            if !table.accepting {
                return Err(Refused::ShuttingDown);
            }
            if table.pending >= self.max_pending {
                return Err(Refused::QueueFull);
            }
            let id = records.next_id(&table).ok_or(Refused::IdsExhausted)?;
            if !records.reservation.covers(id.0) {
                // Written (or waited for) outside the table lock; then the
                // checks again, as another submitter may have taken the id.
                drop(table);
                records.reserve(id)?;
                continue;
            }
            let write_ahead = records.reservation.is_low(id.0);
            // Observer and log first, before any change to the table: a
            // panic in them leaves the table as it was (see "Poisoning" at
            // `JobTable`). Before `execute`, too: once a worker has the job
            // it may log `done` at any moment. `info` never waits (it drops
            // the line if the log is full).
            crate::job_events::queued(id.0);
            match what {
                Some(what) => records.logger.info(format!("{id} submitted: {what}")),
                None => records.logger.info(format!("{id} submitted")),
            }
            let queued = QueuedJob {
                records: Arc::clone(records),
                id,
                work,
            };
            table.entries.push(JobOutcome::Running);
            table.pending += 1;
            // Cannot fail: `accepting` is true and we hold the table lock,
            // so the pool is open (see the invariant at `JobTable`). If it
            // ever did, the job is recorded as failed rather than left
            // `Running` forever.
            if self
                .pool
                .execute(Box::new(move || queued.run_and_record()))
                .is_err()
            {
                if let Some(entry) = table.entries.last_mut() {
                    *entry = JobOutcome::Error("internal error: the worker pool is closed".into());
                }
                table.pending -= 1;
                records
                    .logger
                    .error(format!("{id} error: submitted to a closed pool"));
            }
            drop(table);
            if write_ahead {
                records.reservation.write_ahead(&records.store);
            }
            return Ok(id);
        }
    }

    /// The outcome of job `id`, waiting up to `wait` for it to finish if it
    /// is running; `None` if there is no such job.
    ///
    /// This is what `get_results` uses: a client that polls in a tight loop
    /// then sends one or two requests per job instead of dozens, which
    /// leaves the CPU to the workers that finish the jobs.
    #[must_use]
    pub fn outcome_within(&self, id: JobId, wait: Duration) -> Option<JobOutcome> {
        let Some(index) = self.records.index_of(id) else {
            return self.outcome(id);
        };
        let table = self.records.lock_table();
        table.entries.get(index)?;
        // `wait_timeout_while` re-checks the condition after every wake-up
        // (ours, another job's in the same shard, or a spurious one) and
        // returns when it no longer holds or the time is up.
        let (table, _timed_out) = self.records.recorded[JobRecords::shard(id)]
            .wait_timeout_while(table, wait, |table| {
                matches!(table.entries.get(index), Some(JobOutcome::Running))
            })
            .unwrap_or_else(PoisonError::into_inner);
        table.entries.get(index).cloned()
    }

    /// The outcome of job `id`; `None` if there is no such job.
    ///
    /// A job restored from an earlier run is `Done` with its file's bytes, or
    /// `Error` with its recorded reason, read now; if the file has become
    /// unreadable or damaged it is `Error`.
    #[must_use]
    pub fn outcome(&self, id: JobId) -> Option<JobOutcome> {
        if let Some(index) = self.records.index_of(id) {
            return self.records.lock_table().entries.get(index).cloned();
        }
        let index = self
            .records
            .restored
            .binary_search_by_key(&id, |job| job.id)
            .ok()?;
        Some(self.records.restored_outcome(index))
    }

    /// Up to `limit` jobs with an id above `after` (from the first job when
    /// `None`), with their status, in id order: one page of the job list.
    ///
    /// The table lock is taken once, for copying at most `limit` entries, so
    /// a caller listing a large table page by page holds it only briefly at a
    /// time and never copies the whole table at once.
    #[must_use]
    pub fn statuses_after(&self, after: Option<JobId>, limit: usize) -> Vec<(JobId, JobStatus)> {
        let after = after.map_or(0, |id| id.0);
        let restored = &self.records.restored;
        let first_restored = restored.partition_point(|job| job.id.0 <= after);
        let mut page: Vec<(JobId, JobStatus)> = (first_restored..restored.len())
            .take(limit)
            .map(|i| self.records.restored_status(i))
            .collect();
        if page.len() < limit {
            let first_id = self.records.first_id;
            // Ids of the first entry above `after`, and its index; past the
            // end when `after` is beyond every job (saturating: no overflow).
            let first_listed = after.saturating_add(1).max(first_id);
            let skip = usize::try_from(first_listed - first_id).unwrap_or(usize::MAX);
            let table = self.records.lock_table();
            let entries = table.entries.get(skip..).unwrap_or(&[]);
            page.extend(
                (first_listed..)
                    .zip(entries.iter().take(limit - page.len()))
                    .map(|(id, entry)| (JobId(id), entry.status())),
            );
        }
        page
    }

    /// The highest job id handed out (by this process or an earlier run
    /// whose result is still on disk); `None` when there is no job at all.
    #[must_use]
    pub fn last_id(&self) -> Option<JobId> {
        let next = self.records.next_id(&self.records.lock_table());
        match next {
            Some(next) if next.0 > self.records.first_id => Some(JobId(next.0 - 1)),
            // No job of this process yet (or every id used, which no table
            // can hold): the highest restored one.
            _ => self.records.restored.last().map(|job| job.id),
        }
    }

    /// How many jobs are queued or running.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.records.lock_table().pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::size_of;

    #[test]
    fn a_job_outcome_is_24_bytes() {
        assert_eq!(size_of::<JobOutcome>(), 24);
    }

    #[test]
    fn a_restored_job_is_16_bytes() {
        assert_eq!(size_of::<RestoredJob>(), 16);
    }

    #[test]
    fn a_queued_job_is_32_bytes() {
        assert_eq!(size_of::<QueuedJob>(), 32);
    }
}
