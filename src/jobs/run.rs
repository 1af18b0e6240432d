//! A job's run on its worker, its file, and its recording in the table —
//! directly, or in durable mode through the persister thread's group
//! commit ([`Persister`], below). A job turns `done` only once its result
//! is saved; a result that cannot be saved ends the job `error`.

use super::degraded::unsaved_reason;
use super::table::{JobRecords, RECORDED_SHARDS};
use super::{JobId, JobOutcome, Work, PANIC_REASON};
use crate::log::format_millis;
use crate::pool::panic_message;
use crate::scoreboard::{self, Role, ThreadState};
use crate::sync::lock_order::PERSISTER_QUEUE;
use crate::sync::thread::{self, JoinHandle};
use crate::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// A job whose work is over, on its way into the table.
pub(super) struct RanJob {
    id: JobId,
    entry: JobOutcome,
    started: Instant,
    /// [`ResultStore::failed_flushes`] before its file was saved: a flush
    /// that failed since may have lost its directory entry, and a later
    /// flush that works does not bring it back (`fsync` reports a
    /// writeback error once, to the descriptors open when it happened).
    failed_flushes_before: u64,
}

impl JobRecords {
    /// The body of job `id`, on a worker thread: run, save, record.
    pub(super) fn run_and_record(&self, id: JobId, work: Work) {
        let started = Instant::now();
        crate::job_events::started(id.0);
        // No lock is held while the work and the file write run.
        let entry = self.compute(id, work);
        crate::job_events::computed(id.0);
        let mut ran = RanJob {
            id,
            entry,
            started,
            failed_flushes_before: self.store.failed_flushes(),
        };
        let saved = self.save(id, &ran.entry);
        crate::job_events::saving(id.0, matches!(ran.entry, JobOutcome::Done(_)));
        match saved {
            // Durable: the job turns `done` once the persister has flushed
            // the directory, for every job handed over meanwhile; this
            // worker goes on to its next job.
            Ok(()) if self.store.is_durable() => {
                if let Err(ran) = self.persister.push(ran) {
                    // Closed (only if its thread died): flush here.
                    self.record_flushed(vec![ran], self.store.flush_dir());
                }
            }
            Ok(()) => self.record_flushed(vec![ran], Ok(())),
            Err(error) => {
                self.end_unsaved(&mut ran, &error);
                self.record(vec![ran]);
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
                records.persister.commit_batches(
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
            Ok(()) => {
                // A job saved before a flush that failed is not durable,
                // whatever this flush says (test
                // `jobs::tests::a_job_saved_before_a_failed_flush_is_never_done`).
                let failed_now = self.store.failed_flushes();
                let mut spoiled = false;
                for ran in &mut batch {
                    if ran.failed_flushes_before != failed_now {
                        spoiled = true;
                        if matches!(ran.entry, JobOutcome::Done(_)) {
                            self.store.remove_result(ran.id);
                        }
                        let error = io::Error::other(
                            "a directory flush failed after its file was written, \
                             so it may not be on stable storage",
                        );
                        self.end_unsaved(ran, &error);
                    }
                }
                if !spoiled {
                    self.degraded
                        .after_save(&self.logger, self.store.dir(), Ok(()));
                }
            }
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
            .after_save(&self.logger, self.store.dir(), Err(error));
        self.unsaved.fetch_add(1, Ordering::Relaxed);
        crate::job_events::result_write_failed();
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
        let left = self.persister.stop_and_take();
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
        for RanJob {
            id, entry, started, ..
        } in batch
        {
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

/// Group commit: one thread flushes the results directory for a whole batch
/// of jobs whose files are in place, then hands the batch on.
///
/// Workers [`push`](Persister::push) an item once its file is renamed into
/// place and go on to their next job; the persister thread
/// ([`commit_batches`]) takes *every* item queued, runs one flush — which
/// covers all their renames, since each happened before its push — and then
/// delivers the batch (the job table records those jobs). Items pushed
/// during a flush form the next batch, so N jobs saved while the disk is
/// busy share one flush (`tests::a_burst_of_items_shares_flushes`).
///
/// [`commit_batches`]: Persister::commit_batches
#[derive(Debug)]
pub(super) struct Persister<T> {
    /// Invariant: `items` were pushed and not yet taken by `run`; once
    /// `closed`, nothing more is pushed, and `run` returns when `items` is
    /// empty. Poisoning: each update is one push, swap or assignment;
    /// recovered with [`PoisonError::into_inner`].
    queue: Mutex<PersisterQueue<T>>,
    /// Condition: "there are items, or the persister is closed".
    not_empty_or_closed: Condvar,
}

/// See [`Persister::queue`].
#[derive(Debug)]
struct PersisterQueue<T> {
    items: Vec<T>,
    closed: bool,
}

impl<T> Default for Persister<T> {
    fn default() -> Persister<T> {
        Persister {
            queue: Mutex::new(
                PERSISTER_QUEUE,
                PersisterQueue {
                    items: Vec::new(),
                    closed: false,
                },
            ),
            not_empty_or_closed: Condvar::new(),
        }
    }
}

impl<T> Persister<T> {
    fn lock_queue(&self) -> MutexGuard<'_, PersisterQueue<T>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `item` for the next flush.
    ///
    /// # Errors
    /// Gives `item` back once [`stop`](Persister::stop) was called.
    pub(super) fn push(&self, item: T) -> Result<(), T> {
        let mut queue = self.lock_queue();
        if queue.closed {
            return Err(item);
        }
        queue.items.push(item);
        let was_empty = queue.items.len() == 1;
        drop(queue);
        // Only the first item of a batch can find the thread asleep.
        if was_empty {
            self.not_empty_or_closed.notify_one();
        }
        Ok(())
    }

    /// How many items wait for the next flush (tests observe batches).
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        self.lock_queue().items.len()
    }

    /// Refuses further pushes; [`commit_batches`](Persister::commit_batches) delivers what is
    /// queued and returns. Idempotent.
    pub(super) fn stop(&self) {
        self.lock_queue().closed = true;
        self.not_empty_or_closed.notify_all();
    }

    /// Closes, and takes what is still queued: nothing once `run` has
    /// returned normally; whatever was pushed after `run` died, should it
    /// ever die. The caller delivers it itself, so nothing stays queued.
    pub(super) fn stop_and_take(&self) -> Vec<T> {
        let mut queue = self.lock_queue();
        queue.closed = true;
        let left = std::mem::take(&mut queue.items);
        drop(queue);
        self.not_empty_or_closed.notify_all();
        left
    }

    /// The persister thread's body: until closed and empty, takes every
    /// queued item, runs `flush` once (no lock held) and passes the batch
    /// and the flush's result to `deliver`.
    ///
    /// A panic is contained per batch: if `flush` panics, the batch is
    /// still delivered, with an error as the flush's result (the items are
    /// not durable); if `deliver` panics, `panicked` gets its message. In
    /// both cases `run` goes on with the next batch.
    pub(super) fn commit_batches(
        &self,
        mut flush: impl FnMut() -> io::Result<()>,
        mut deliver: impl FnMut(Vec<T>, io::Result<()>),
        mut panicked: impl FnMut(&str),
    ) {
        loop {
            let batch = {
                let mut queue = self
                    .not_empty_or_closed
                    .wait_while(self.lock_queue(), |q| q.items.is_empty() && !q.closed)
                    .unwrap_or_else(PoisonError::into_inner);
                if queue.items.is_empty() {
                    return; // closed, and everything delivered
                }
                std::mem::take(&mut queue.items)
            };
            let result =
                panic::catch_unwind(AssertUnwindSafe(&mut flush)).unwrap_or_else(|payload| {
                    Err(io::Error::other(format!(
                        "the directory flush panicked: {}",
                        panic_message(&*payload)
                    )))
                });
            if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| deliver(batch, result))) {
                panicked(panic_message(&*payload));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;
    use std::thread;
    use std::time::Duration;

    const DEADLINE: Duration = Duration::from_secs(20);

    /// The group commit with a flush the test holds open: while the first
    /// flush runs, nine more items arrive; one more flush delivers them
    /// all — 2 flushes for 10 items, deterministically — and each batch is
    /// delivered only after its flush.
    #[test]
    fn a_burst_of_items_shares_flushes() {
        const ITEMS: usize = 10;
        let owned = Persister::<usize>::default();
        let persister = &owned;
        let flushes = AtomicUsize::new(0);
        let flushes = &flushes;
        let (release_tx, release) = mpsc::channel::<()>();
        let (entered_tx, entered) = mpsc::channel::<()>();
        let mut delivered = Vec::new();
        let delivered_ref = &mut delivered;
        thread::scope(|scope| {
            let thread = scope.spawn(move || {
                let flush = || {
                    let _ = entered_tx.send(());
                    // The first flush waits for the test; later ones find
                    // the channel closed and return at once.
                    let _ = release.recv();
                    flushes.fetch_add(1, Ordering::Relaxed);
                    Ok(())
                };
                persister.commit_batches(
                    flush,
                    |batch, result| {
                        assert!(result.is_ok());
                        // Delivered after its flush.
                        delivered_ref.push((batch, flushes.load(Ordering::Relaxed)));
                    },
                    |message| panic!("unexpected panic: {message}"),
                );
            });
            persister.push(0).unwrap();
            entered.recv_timeout(DEADLINE).unwrap();
            for item in 1..ITEMS {
                persister.push(item).unwrap();
            }
            drop(release_tx);
            persister.stop();
            assert_eq!(persister.push(99), Err(99), "closed");
            thread.join().unwrap();
        });
        assert_eq!(flushes.load(Ordering::Relaxed), 2);
        assert_eq!(
            delivered,
            [(vec![0], 1), ((1..ITEMS).collect::<Vec<_>>(), 2)]
        );
    }

    /// `run` returns at once when closed with nothing queued: nothing hangs.
    #[test]
    fn a_closed_empty_persister_returns() {
        let persister = Persister::<()>::default();
        persister.stop();
        persister.stop(); // idempotent
        let mut flushes = 0;
        persister.commit_batches(
            || {
                flushes += 1;
                Ok(())
            },
            |_, _| panic!("nothing to deliver"),
            |_| {},
        );
        assert_eq!(flushes, 0);
    }

    /// A failed flush is handed to `deliver` with its batch, not dropped.
    #[test]
    fn a_failed_flush_is_delivered_with_its_batch() {
        let persister = Persister::<u8>::default();
        persister.push(7).unwrap();
        persister.stop();
        let mut delivered = Vec::new();
        persister.commit_batches(
            || Err(io::Error::other("disk gone")),
            |batch, result| delivered.push((batch, result.map_err(|e| e.to_string()))),
            |_| {},
        );
        assert_eq!(delivered, [(vec![7], Err("disk gone".to_string()))]);
    }

    /// A panicking flush loses nothing: its batch is delivered with an
    /// error, and the next batch is flushed and delivered normally. A
    /// panicking delivery is reported and the thread goes on.
    #[test]
    fn a_panic_in_flush_or_deliver_is_contained_per_batch() {
        let persister = Persister::<u8>::default();
        persister.push(1).unwrap();
        persister.push(2).unwrap();
        let mut flushes = 0;
        let mut delivered = Vec::new();
        let mut reported = Vec::new();
        thread::scope(|scope| {
            let thread = scope.spawn(|| {
                persister.commit_batches(
                    || {
                        flushes += 1;
                        match flushes {
                            1 => panic!("flush one"),
                            2 => {
                                // Pushed while the second flush runs: the
                                // third batch, whose delivery panics.
                                persister.push(3).unwrap();
                                persister.push(4).unwrap();
                                Ok(())
                            }
                            3 => {
                                persister.push(5).unwrap();
                                persister.stop();
                                Ok(())
                            }
                            _ => Ok(()),
                        }
                    },
                    |batch, result| {
                        let panics = batch.contains(&3);
                        delivered.push((batch, result.map_err(|e| e.to_string())));
                        assert!(!panics, "deliver three");
                    },
                    |message| reported.push(message.to_string()),
                );
            });
            // The second batch: pushed once the first is taken.
            let deadline = std::time::Instant::now() + DEADLINE;
            while !persister.lock_queue().items.is_empty() {
                assert!(std::time::Instant::now() < deadline, "never taken");
                thread::yield_now();
            }
            persister.push(9).unwrap();
            thread.join().unwrap();
        });
        assert_eq!(persister.stop_and_take(), Vec::<u8>::new());
        let flush_panic = Err("the directory flush panicked: flush one".to_string());
        assert_eq!(
            delivered,
            [
                (vec![1, 2], flush_panic),
                (vec![9], Ok(())),
                (vec![3, 4], Ok(())),
                (vec![5], Ok(())),
            ]
        );
        assert_eq!(reported, ["deliver three"]);
    }

    /// After `close`, what is still queued (pushed after the thread died)
    /// is handed back, and further pushes are refused.
    #[test]
    fn stop_and_take_hands_back_what_is_queued() {
        let persister = Persister::<u8>::default();
        persister.push(1).unwrap();
        persister.push(2).unwrap();
        assert_eq!(persister.stop_and_take(), [1, 2]);
        assert_eq!(persister.push(3), Err(3));
        assert_eq!(persister.stop_and_take(), Vec::<u8>::new());
    }
}

/// The model tests (loom) of the group commit, run on this very
/// `Persister`. A pusher "renames" its item into place (adds it to
/// `renamed`) before pushing it, as a worker does; the model's flush makes
/// durable every item renamed before it began (a snapshot of `renamed`),
/// as a directory `fsync` does. CONCURRENCY.md says how to run them.
#[cfg(all(test, loom))]
mod loom_model {
    use super::*;
    use crate::sync::lock_order::TEST_LEAF;
    use crate::sync::{thread, Arc};
    use std::cell::RefCell;

    /// What the model's `run` saw: each delivered item, and whether a flush
    /// that began after its rename (so after its push) had ended before it
    /// was delivered.
    type Delivered = Vec<(u32, bool)>;

    /// The persister thread's loop with the model's flush; `deliver_also`
    /// runs after each delivery (with how many items were delivered so far).
    fn run(
        persister: &Persister<u32>,
        renamed: &Mutex<Vec<u32>>,
        deliver_also: impl Fn(usize),
    ) -> Delivered {
        let durable = RefCell::new(Vec::new());
        let delivered = RefCell::new(Vec::new());
        persister.commit_batches(
            || {
                durable.replace(renamed.lock().unwrap().clone());
                Ok(())
            },
            |batch, result| {
                assert!(result.is_ok());
                let mut delivered = delivered.borrow_mut();
                for item in batch {
                    delivered.push((item, durable.borrow().contains(&item)));
                }
                deliver_also(delivered.len());
            },
            |message| panic!("a model delivery panicked: {message}"),
        );
        delivered.into_inner()
    }

    /// A worker's hand-over: the rename, then the push. Whether it was
    /// accepted.
    fn rename_and_push(persister: &Persister<u32>, renamed: &Mutex<Vec<u32>>, item: u32) -> bool {
        renamed.lock().unwrap().push(item);
        persister.push(item).is_ok()
    }

    fn assert_each_delivered_once_after_its_flush(delivered: &Delivered, accepted: &[u32]) {
        let mut items: Vec<u32> = delivered.iter().map(|&(item, _)| item).collect();
        items.sort_unstable();
        assert_eq!(items, accepted, "delivered {delivered:?}");
        assert!(
            delivered.iter().all(|&(_, flushed)| flushed),
            "an item was delivered before a flush that began after its push: {delivered:?}"
        );
    }

    /// Two workers push while the persister thread runs: each item is
    /// delivered exactly once, and only after a flush that began after its
    /// push. Nothing but the pushes wakes the thread (the model closes the
    /// persister from its delivery of the last item), so a lost wake-up is
    /// reported as a deadlock.
    #[test]
    fn an_item_is_delivered_only_after_a_flush_that_began_after_its_push() {
        crate::sync::loom_model(Some(2), || {
            let persister = Arc::new(Persister::<u32>::default());
            let renamed = Arc::new(Mutex::new(TEST_LEAF, Vec::new()));
            let workers: Vec<_> = [1, 2]
                .into_iter()
                .map(|item| {
                    let (persister, renamed) = (Arc::clone(&persister), Arc::clone(&renamed));
                    thread::spawn(move || assert!(rename_and_push(&persister, &renamed, item)))
                })
                .collect();
            let delivered = run(&persister, &renamed, |so_far| {
                if so_far == 2 {
                    persister.stop();
                }
            });
            for worker in workers {
                worker.join().unwrap();
            }
            assert_each_delivered_once_after_its_flush(&delivered, &[1, 2]);
        });
    }

    /// Close drains: with two pushes racing `close`, every push that was
    /// accepted is delivered (after its flush) before `run` returns, and a
    /// refused one is not.
    #[test]
    fn close_drains_every_accepted_item() {
        crate::sync::loom_model(Some(2), || {
            let persister = Arc::new(Persister::<u32>::default());
            let renamed = Arc::new(Mutex::new(TEST_LEAF, Vec::new()));
            let worker = {
                let (persister, renamed) = (Arc::clone(&persister), Arc::clone(&renamed));
                thread::spawn(move || {
                    [1, 2]
                        .into_iter()
                        .filter(|&item| rename_and_push(&persister, &renamed, item))
                        .collect::<Vec<u32>>()
                })
            };
            let closer = {
                let persister = Arc::clone(&persister);
                thread::spawn(move || persister.stop())
            };
            let delivered = run(&persister, &renamed, |_| {});
            let accepted = worker.join().unwrap();
            closer.join().unwrap();
            assert_each_delivered_once_after_its_flush(&delivered, &accepted);
        });
    }
}
