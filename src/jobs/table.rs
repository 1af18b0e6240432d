//! The job table — every job's outcome and the Condvar shards its waiters
//! sleep on — and submitting a job into it. Reading it (outcomes, waits,
//! listing pages) is `answers.rs`.

use super::degraded::Degraded;
use super::reservation::IdReservation;
use super::run::{Persister, RanJob};
use super::{JobId, JobOutcome, Jobs, Refused, Work};
use crate::log::Logger;
use crate::results::{RestoredJob, ResultStore, MAX_RESTORED_ID};
use crate::sync::lock_order::JOB_TABLE;
use crate::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;

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
    pub(super) damaged: Box<[AtomicBool]>,
    /// The id of the first job submitted by this process: one more than the
    /// highest restored id (or the reservation an earlier run left, if
    /// higher), or 1. Never changes, so it needs no lock.
    pub(super) first_id: u64,
    pub(super) store: ResultStore,
    pub(super) logger: Logger,
    /// The id reservation: made ready before the table lock, consulted
    /// (one atomic load) under it.
    pub(super) reservation: IdReservation,
    /// Whether saves work; new jobs are refused while they do not.
    pub(super) degraded: Degraded,
    /// Jobs that ended `error` because their result could not be saved.
    pub(super) unsaved: AtomicU64,
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
///   the same one that records its outcome (observed under this lock, with
///   jobs racing a shutdown, by
///   `jobs::shuttle_model::submissions_racing_two_shut_downs_durable`).
/// - While `accepting` is true the pool is open. The pool is closed only in
///   [`Jobs::stop_accepting`], under this lock, after `accepting` became
///   false; so `submit`, which checks `accepting` under this lock, never
///   meets a closed pool. Lock order: table, then the pool's sender.
/// - Every id handed out is covered by [`JobRecords::reservation`]
///   ([`IdReservation::hand_out`], one atomic load under this lock; its
///   file I/O happens before the lock is taken).
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
            unsaved: AtomicU64::new(0),
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

    /// Makes the id reservation ready for the next submission, covering
    /// `uncovered` if given (see [`IdReservation::ready`]); failing to
    /// cover it turns the server degraded.
    ///
    /// # Errors
    /// [`Refused::IdsUnavailable`] when the reservation cannot be written;
    /// no id is used then.
    pub(super) fn ready_ids(&self, uncovered: Option<JobId>) -> Result<(), Refused> {
        self.reservation
            .ready(&self.store, uncovered.map(|id| id.0))
            .map_err(|error| {
                self.degraded
                    .after_save(&self.logger, self.store.dir(), Err(&error));
                Refused::IdsUnavailable
            })
    }

    /// Which of the `recorded` condvars job `id` signals.
    pub(super) fn shard(id: JobId) -> usize {
        // The remainder is below RECORDED_SHARDS, so it fits a usize.
        #[allow(clippy::cast_possible_truncation)]
        let shard = (id.0 % RECORDED_SHARDS as u64) as usize;
        shard
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
        let mut uncovered = None;
        loop {
            // Any reservation I/O happens here, outside the table lock.
            records.ready_ids(uncovered)?;
            let mut table = records.lock_table();
            if !table.accepting {
                return Err(Refused::ShuttingDown);
            }
            if table.pending >= self.max_pending {
                return Err(Refused::QueueFull);
            }
            let id = records.next_id(&table).ok_or(Refused::IdsExhausted)?;
            if !records.reservation.hand_out(&table, id.0) {
                // Covered outside the lock, then the checks again, as
                // another submitter may take this id meanwhile.
                uncovered = Some(id);
                continue;
            }
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
            let job_records = Arc::clone(records);
            table.entries.push(JobOutcome::Running);
            table.pending += 1;
            // Cannot fail: `accepting` is true and we hold the table lock,
            // so the pool is open (see the invariant at `JobTable`). If it
            // ever did, the job is recorded as failed rather than left
            // `Running` forever.
            if self
                .pool
                .execute(Box::new(move || job_records.run_and_record(id, work)))
                .is_err()
            {
                if let Some(entry) = table.entries.last_mut() {
                    *entry = JobOutcome::Error("internal error: the worker pool is closed".into());
                }
                table.pending -= 1;
                crate::job_events::ended(id.0);
                records
                    .logger
                    .error(format!("{id} error: submitted to a closed pool"));
            }
            return Ok(id);
        }
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
}
