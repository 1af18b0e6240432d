//! Group commit: many finished jobs share one flush of the results
//! directory.

use crate::pool::panic_message;
use crate::sync::lock_order::PERSISTER_QUEUE;
use crate::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::io;
use std::panic::{self, AssertUnwindSafe};

/// Group commit: one thread flushes the results directory for a whole batch
/// of finished jobs, then hands the batch on.
///
/// Workers [`push`](Persister::push) an item once its file is renamed into
/// place and go on to their next job; the persister thread ([`run`]) takes
/// *every* item queued, runs one flush — which covers all their renames,
/// since each happened before its push — and then delivers the batch (the
/// job table marks those jobs `done`). Items pushed during a flush form the
/// next batch, so N jobs finishing while the disk is busy share one flush.
///
/// [`run`]: Persister::run
#[derive(Debug)]
pub struct Persister<T> {
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
    /// Gives `item` back once [`close`](Persister::close) was called.
    pub fn push(&self, item: T) -> Result<(), T> {
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

    /// Refuses further pushes; [`run`](Persister::run) delivers what is
    /// queued and returns. Idempotent.
    pub fn close(&self) {
        self.lock_queue().closed = true;
        self.not_empty_or_closed.notify_all();
    }

    /// Closes, and takes what is still queued: nothing once `run` has
    /// returned normally; whatever was pushed after `run` died, should it
    /// ever die. The caller delivers it itself, so nothing stays queued.
    pub fn close_and_take(&self) -> Vec<T> {
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
    pub fn run(
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
                persister.run(
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
            persister.close();
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
        persister.close();
        persister.close(); // idempotent
        let mut flushes = 0;
        persister.run(
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
        persister.close();
        let mut delivered = Vec::new();
        persister.run(
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
                persister.run(
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
                                persister.close();
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
        assert_eq!(persister.close_and_take(), Vec::<u8>::new());
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
    fn close_and_take_hands_back_what_is_queued() {
        let persister = Persister::<u8>::default();
        persister.push(1).unwrap();
        persister.push(2).unwrap();
        assert_eq!(persister.close_and_take(), [1, 2]);
        assert_eq!(persister.push(3), Err(3));
        assert_eq!(persister.close_and_take(), Vec::<u8>::new());
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
        persister.run(
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
                    persister.close();
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
                thread::spawn(move || persister.close())
            };
            let delivered = run(&persister, &renamed, |_| {});
            let accepted = worker.join().unwrap();
            closer.join().unwrap();
            assert_each_delivered_once_after_its_flush(&delivered, &accepted);
        });
    }
}
