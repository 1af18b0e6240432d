//! The finishing path: a job's run on its worker, its result (or failure)
//! file, and its recording in the table — directly, or in durable mode
//! through the persister thread's group commit. Also the files that could
//! not be written, kept in memory until writing works again.

use super::table::{Entry, JobRecords, QueuedJob, FINISHED_SHARDS};
use super::{JobId, Work, PANIC_REASON};
use crate::log::format_millis;
use crate::pool::panic_message;
use crate::scoreboard::{self, Role, ThreadState};
use crate::sync::{MutexGuard, PoisonError};
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Instant;

/// A job whose work is over, on its way into the table.
pub(super) struct Finished {
    id: JobId,
    entry: Entry,
    started: Instant,
}

/// See [`JobRecords::unsaved`].
#[derive(Default)]
pub(super) struct Unsaved {
    pub(super) jobs: Vec<(JobId, Entry)>,
    cause: Option<io::ErrorKind>,
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
                        scoreboard::set(ThreadState::Flushing);
                        records.store.flush_dir()
                    },
                    |batch, flushed| {
                        // Also after a flush that panicked.
                        scoreboard::set(ThreadState::Idle);
                        records.finish(batch, flushed);
                    },
                    |message| {
                        records.logger.error(format!(
                            "the persister thread panicked recording a batch of jobs: {message}"
                        ));
                    },
                );
            };
            // `run` contains panics per batch (a batch whose flush panicked
            // is recorded from memory), so this is a last resort: should
            // `run` itself ever die, the queue is closed (workers then flush
            // and record their jobs themselves, see `QueuedJob::run`) and
            // what was queued is recorded here.
            if panic::catch_unwind(AssertUnwindSafe(run)).is_err() {
                records.logger.error("the persister thread panicked");
                records.record_left_over();
            }
        })
}

impl QueuedJob {
    /// The body of the job, on a worker thread.
    pub(super) fn run(self) {
        let QueuedJob { records, id, work } = self;
        let started = Instant::now();
        crate::metrics::job_started(id.0);
        // No lock is held while the work and the file write run.
        let caught = panic::catch_unwind(AssertUnwindSafe(|| records.compute(id, work)));
        let entry = caught.unwrap_or_else(|payload| {
            records.logger.error(format!(
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
        let written = records.persist(id, &entry);
        let finished = Finished { id, entry, started };
        if written && records.store.is_durable() {
            // The job turns `done` once its directory entry is flushed: the
            // persister does that for every job handed over meanwhile, and
            // this worker goes on to its next job.
            match records.persister.push(finished) {
                Ok(()) => return,
                // Closed (only if its thread died): flush here.
                Err(finished) => {
                    return records.finish(vec![finished], records.store.flush_dir());
                }
            }
        }
        // Nothing to flush: not durable, or the file is not written (the
        // job is recorded from memory; see `unsaved`).
        records.finish(vec![finished], Ok(()));
    }
}

impl JobRecords {
    /// Closes the persister's queue and records what is still in it (only
    /// if its thread died): nothing stays `running` forever.
    pub(super) fn record_left_over(&self) {
        let left = self.persister.close_and_take();
        if !left.is_empty() {
            self.finish(left, self.store.flush_dir());
        }
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

    pub(super) fn lock_unsaved(&self) -> MutexGuard<'_, Unsaved> {
        self.unsaved.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes job `id`'s file for `entry` (its result or its failure).
    fn write_file(&self, id: JobId, entry: &Entry) -> io::Result<()> {
        match entry {
            Entry::Done(bytes) => self.store.write_result(id, bytes),
            Entry::Error(reason) => self.store.write_error(id, reason.as_str()),
            Entry::Running => Ok(()),
        }
    }

    /// Writes job `id`'s file for `entry`; whether it was written. On
    /// failure the job joins [`JobRecords::unsaved`]; on success, files
    /// that could not be written before are written now.
    fn persist(&self, id: JobId, entry: &Entry) -> bool {
        if matches!(entry, Entry::Running) {
            return false;
        }
        match self.write_file(id, entry) {
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

    /// Adds `jobs` to [`JobRecords::unsaved`]; logs `error` if its cause
    /// differs from the last one logged (once per cause, not once per job).
    fn keep_unsaved(&self, jobs: Vec<(JobId, Entry)>, error: &io::Error) {
        for _ in &jobs {
            crate::metrics::result_write_failed();
        }
        self.keep_again(jobs, error);
    }

    /// [`JobRecords::keep_unsaved`] for jobs already counted as failed.
    fn keep_again(&self, jobs: Vec<(JobId, Entry)>, error: &io::Error) {
        let Some(&(first, _)) = jobs.first() else {
            return;
        };
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
            woken[JobRecords::shard(id)] = true;
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

    /// Writes the files of [`JobRecords::unsaved`], outside its lock; those
    /// that still fail go back.
    pub(super) fn write_unsaved(&self) {
        let jobs = {
            let mut unsaved = self.lock_unsaved();
            if unsaved.jobs.is_empty() {
                unsaved.cause = None;
                return;
            }
            std::mem::take(&mut unsaved.jobs)
        };
        let (failed, written): (Vec<_>, Vec<_>) = jobs
            .into_iter()
            .partition(|(id, entry)| self.write_file(*id, entry).is_err());
        // Their directory entries, too, must be durable: if that flush
        // fails, they stay kept (written and flushed again later), and the
        // failure is logged once per cause.
        let written = if written.is_empty() {
            0
        } else if let Err(error) = self.store.flush_dir() {
            self.keep_again(written, &error);
            0
        } else {
            written.len()
        };
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
}
