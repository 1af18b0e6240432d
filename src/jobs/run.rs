//! A job's run on its worker, its file, and its
//! recording in the table — directly, or in durable mode through the
//! persister thread's group commit. A job turns `done` only once its result
//! is saved; a result that cannot be saved ends the job `error`.

use super::degraded::unsaved_reason;
use super::table::{JobRecords, QueuedJob, RECORDED_SHARDS};
use super::{JobId, JobOutcome, Work, PANIC_REASON};
use crate::log::format_millis;
use crate::pool::panic_message;
use crate::scoreboard::{self, Role, ThreadState};
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Instant;

/// A job whose work is over, on its way into the table.
pub(super) struct RanJob {
    id: JobId,
    entry: JobOutcome,
    started: Instant,
}

impl QueuedJob {
    /// The body of the job, on a worker thread: run, save, record.
    pub(super) fn run_and_record(self) {
        let QueuedJob { records, id, work } = self;
        let started = Instant::now();
        crate::job_events::started(id.0);
        // No lock is held while the work and the file write run.
        let entry = records.compute(id, work);
        crate::job_events::computed(id.0);
        let mut ran = RanJob { id, entry, started };
        let saved = records.save(id, &ran.entry);
        crate::job_events::saving(id.0, matches!(ran.entry, JobOutcome::Done(_)));
        match saved {
            // Durable: the job turns `done` once the persister has flushed
            // the directory, for every job handed over meanwhile; this
            // worker goes on to its next job.
            Ok(()) if records.store.is_durable() => {
                if let Err(ran) = records.persister.push(ran) {
                    // Closed (only if its thread died): flush here.
                    records.record_flushed(vec![ran], records.store.flush_dir());
                }
            }
            Ok(()) => records.record_flushed(vec![ran], Ok(())),
            Err(error) => {
                records.end_unsaved(&mut ran, &error);
                records.record(vec![ran]);
            }
        }
    }
}

/// Starts the persister thread: it flushes the results directory once for
/// every batch of jobs the workers handed over, then records the batch.
pub(super) fn spawn_persister(records: Arc<JobRecords>) -> io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name("persister".into())
        .spawn(move || {
            let _slot = scoreboard::claim(Role::Persister, ThreadState::Idle);
            let run = || {
                records.persister.run(
                    || {
                        crate::job_events::flushing();
                        records.store.flush_dir()
                    },
                    |batch, flushed| {
                        // Also after a flush that panicked.
                        crate::job_events::flushed();
                        records.record_flushed(batch, flushed);
                    },
                    |message| {
                        records.logger.error(format!(
                            "the persister thread panicked recording a batch of jobs: {message}"
                        ));
                    },
                );
            };
            // `run` contains panics per batch, so this is a last resort:
            // should `run` itself die, the queue is closed (workers then
            // flush and record their jobs themselves) and what was queued
            // is recorded here.
            if panic::catch_unwind(AssertUnwindSafe(run)).is_err() {
                records.logger.error("the persister thread panicked");
                records.record_left_over();
            }
        })
}

impl JobRecords {
    /// Runs the work (a panic becomes [`PANIC_REASON`]); the entry to record.
    fn compute(&self, id: JobId, work: Work) -> JobOutcome {
        match panic::catch_unwind(AssertUnwindSafe(work)) {
            Ok(Ok(json)) => JobOutcome::Done(self.store.intern(json.into_bytes())),
            Ok(Err(reason)) => {
                self.logger.error(format!("{id} error: {reason}"));
                JobOutcome::Error(reason.into())
            }
            Err(payload) => {
                self.logger.error(format!(
                    "{id} error: {PANIC_REASON}: {}",
                    panic_message(&*payload)
                ));
                JobOutcome::Error(PANIC_REASON.into())
            }
        }
    }

    /// Writes job `id`'s file for `entry` (its result, or why it failed, so
    /// that a restarted server still answers the id). On failure, one more
    /// try with a new file while the bytes are here; a failed flush is
    /// never retried on the same file.
    fn save(&self, id: JobId, entry: &JobOutcome) -> io::Result<()> {
        let write = || match entry {
            JobOutcome::Done(bytes) => self.store.write_result(id, bytes),
            JobOutcome::Error(reason) => self.store.write_error(id, reason.as_str()),
            JobOutcome::Running => Ok(()),
        };
        write().or_else(|_| write())
    }

    /// Records a batch once the directory flush meant to make its files
    /// durable ran: on success the jobs are saved; on failure every job of
    /// the batch ends unsaved, and its result file is removed (a job
    /// answered `error` is not served as `done` after a restart).
    pub(super) fn record_flushed(&self, mut batch: Vec<RanJob>, flushed: io::Result<()>) {
        match flushed {
            Ok(()) => self.degraded.save_worked(&self.logger),
            Err(error) => {
                for ran in &mut batch {
                    if matches!(ran.entry, JobOutcome::Done(_)) {
                        self.store.remove_result(ran.id);
                    }
                    self.end_unsaved(ran, &error);
                }
            }
        }
        self.record(batch);
    }

    /// A job whose file could not be saved: the server turns degraded, and
    /// a result becomes an error naming the cause. Its failure record is
    /// written if it can be (best effort, not flushed); if not, the id is
    /// unknown after a restart.
    fn end_unsaved(&self, ran: &mut RanJob, error: &io::Error) {
        self.degraded
            .save_failed(&self.logger, self.store.dir(), error);
        self.degraded.count_unsaved();
        if matches!(ran.entry, JobOutcome::Done(_)) {
            let reason = unsaved_reason(error);
            self.logger.error(format!("{} error: {reason}", ran.id));
            let _ = self.store.write_error(ran.id, &reason);
            ran.entry = JobOutcome::Error(reason.into());
        }
    }

    /// Closes the persister's queue and records what is still in it (only
    /// if its thread died): nothing stays `running` forever.
    pub(super) fn record_left_over(&self) {
        let left = self.persister.close_and_take();
        if !left.is_empty() {
            self.record_flushed(left, self.store.flush_dir());
        }
    }

    /// Records jobs whose work ran in the table, wakes their waiters and logs
    /// the `done` ones.
    fn record(&self, batch: Vec<RanJob>) {
        let mut logged = Vec::with_capacity(batch.len());
        let mut ids = Vec::with_capacity(batch.len());
        let mut woken = [false; RECORDED_SHARDS];
        let mut table = self.lock_table();
        // Only assignments here, which cannot panic: the table stays whole
        // (see "Poisoning" at `JobTable`).
        for RanJob { id, entry, started } in batch {
            woken[JobRecords::shard(id)] = true;
            if matches!(entry, JobOutcome::Done(_)) {
                logged.push((id, started));
            }
            if let Some(slot) = self.index_of(id).and_then(|i| table.entries.get_mut(i)) {
                *slot = entry;
            }
            // This job was counted when submitted; `saturating` only so
            // that a broken invariant cannot turn into a panic here.
            table.pending = table.pending.saturating_sub(1);
            ids.push(id);
        }
        // Under the lock, so that the scoreboard's counts move with the table.
        for id in ids {
            crate::job_events::ended(id.0);
        }
        drop(table);
        // After the entries changed under the lock: a waiter either saw
        // `Running` and is asleep (and is woken now), or takes the lock
        // after our change and sees the outcome without sleeping.
        for (condvar, _) in self.recorded.iter().zip(woken).filter(|&(_, w)| w) {
            condvar.notify_all();
        }
        // Logged after the outcome is recorded: a slow log (back-pressure)
        // must not delay a recorded job's answer.
        for (id, started) in logged {
            self.logger
                .info(format!("{id} done in {}", format_millis(started.elapsed())));
        }
    }
}
