//! Group commit: many finished jobs share one flush of the results
//! directory.

use std::io;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

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
            queue: Mutex::new(PersisterQueue {
                items: Vec::new(),
                closed: false,
            }),
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

    /// Refuses further pushes; [`run`](Persister::run) delivers what is
    /// queued and returns. Idempotent.
    pub fn close(&self) {
        self.lock_queue().closed = true;
        self.not_empty_or_closed.notify_all();
    }

    /// The persister thread's body: until closed and empty, takes every
    /// queued item, runs `flush` once (no lock held) and passes the batch
    /// and the flush's result to `deliver`.
    pub fn run(
        &self,
        mut flush: impl FnMut() -> io::Result<()>,
        mut deliver: impl FnMut(Vec<T>, io::Result<()>),
    ) {
        loop {
            let batch = {
                let queue = self
                    .not_empty_or_closed
                    .wait_while(self.lock_queue(), |q| q.items.is_empty() && !q.closed)
                    .unwrap_or_else(PoisonError::into_inner);
                let mut queue = queue;
                if queue.items.is_empty() {
                    return; // closed, and everything delivered
                }
                std::mem::take(&mut queue.items)
            };
            let result = flush();
            deliver(batch, result);
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
                persister.run(flush, |batch, result| {
                    assert!(result.is_ok());
                    // Delivered after its flush.
                    delivered_ref.push((batch, flushes.load(Ordering::Relaxed)));
                });
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
        );
        assert_eq!(delivered, [(vec![7], Err("disk gone".to_string()))]);
    }
}
