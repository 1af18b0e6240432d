//! The worker pool: `std::thread` workers fed through one `mpsc` channel.
//!
//! # Design
//!
//! A [`ThreadPool`] owns the only [`Sender`] of a channel of [`Job`]s; its
//! `Worker`s share the [`Receiver`] behind a mutex and take one job at a
//! time. Shutting down is nothing more than dropping that sender: a worker
//! first drains every job still queued, then `recv` returns `RecvError`
//! (no sender can ever send again) and the worker leaves its loop. No flag,
//! no condition variable, no lost wake-up: the channel *is* the queue and
//! the shutdown signal at once.
//!
//! ```text
//! execute(job) ──► Sender ══ channel ══► Arc<Mutex<Receiver>> ──► worker-0
//!   (pool)          dropped by close()                       ├──► worker-1
//!                                                            └──► worker-N
//! ```
//!
//! A job that panics is caught on its worker, reported to stderr, and the
//! worker takes the next job, so a bad job never shrinks the pool.
//!
//! [`ThreadPool::close_and_wait`] takes the workers' handles out under a lock
//! and joins them with no lock held; a second caller meanwhile waits on a
//! Condvar (`join_finished`) until the first is done (`join_from_two_threads_at_once`
//! in `tests/integration/pool.rs`). A job calling `close_and_wait` on its own pool gets an
//! error at once instead of a deadlock
//! (`join_from_inside_a_job_is_an_error_not_a_deadlock`,
//! `two_joiners_and_a_join_from_a_job_all_finish`).

use crate::sync::lock_order::{POOL_JOINS, POOL_RECEIVER, POOL_SENDER};
use crate::sync::mpsc::{self, Receiver, Sender};
use crate::sync::thread::{self, JoinHandle, ThreadId};
use crate::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::any::Any;
use std::io::{self, Write as _};
use std::panic::{self, AssertUnwindSafe};

use crate::scoreboard::{Role, ThreadState};

/// A unit of work. It must not panic out (jobs catch their own panics), but
/// the pool survives if one does.
pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// Returned by [`ThreadPool::execute`] once [`ThreadPool::close`] was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolClosed;

impl std::fmt::Display for PoolClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the thread pool is closed")
    }
}

impl std::error::Error for PoolClosed {}

/// Returned by [`ThreadPool::close_and_wait`] called from inside one of the
/// pool's own jobs, which cannot wait for its own worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinFromWorker;

impl std::fmt::Display for JoinFromWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a job cannot join its own thread pool")
    }
}

impl std::error::Error for JoinFromWorker {}

/// A fixed set of worker threads running [`Job`]s in submission order
/// (each job starts after every job queued before it has started).
///
/// `ThreadPool` is `Send + Sync`: share it by reference or in an `Arc`;
/// every method takes `&self`.
pub struct ThreadPool {
    /// The sending half of the job channel.
    ///
    /// Invariant: `Some` while the pool accepts jobs, `None` forever after
    /// [`close`](ThreadPool::close). This is the *only* `Sender` of the
    /// channel (it is never cloned), so taking it out and dropping it is
    /// what lets the workers' `recv` fail once the queue is empty.
    ///
    /// Poisoning: the guard is held only for `Option::take` or for one
    /// `Sender::send`, neither of which leaves the `Option` half-updated if
    /// a panic happened, so a poisoned lock is recovered with
    /// [`PoisonError::into_inner`].
    sender: Mutex<Option<Sender<Job>>>,
    /// The workers not yet joined, and whether some caller is joining them.
    ///
    /// Invariant: `workers` is emptied by the first
    /// [`close_and_wait`](ThreadPool::close_and_wait) (which *takes* the
    /// handles, then releases the lock and joins them with no lock held);
    /// `joining` is true exactly while such a caller is joining handles it
    /// took. The lock is never held while waiting for a thread, so a job
    /// that calls `close_and_wait` (an error, see there) or `execute` meanwhile
    /// does not block on this lock.
    ///
    /// Poisoning: every critical section is one `take`, one assignment or one
    /// read, which a panic cannot leave half done, so a poisoned lock is
    /// recovered with [`PoisonError::into_inner`].
    joins: Mutex<JoinState>,
    /// Signalled when a joiner has joined every worker it took (`joining`
    /// went from true to false). Condition: `!joins.joining`; waited on by
    /// the other callers of `close_and_wait`, which must not return before
    /// the workers are gone.
    join_finished: Condvar,
    /// The ids of the worker threads, so that `close_and_wait` can tell when
    /// it is called from inside a job. Written only while the pool is built.
    worker_ids: Vec<ThreadId>,
}

/// See [`ThreadPool::joins`].
struct JoinState {
    workers: Vec<Worker>,
    joining: bool,
}

/// One thread of the pool.
struct Worker {
    id: usize,
    thread: JoinHandle<()>,
}

impl ThreadPool {
    /// Starts `size` workers (at least one), named `worker-0` … `worker-(size-1)`.
    ///
    /// # Errors
    /// When a thread cannot be started; the workers already started are
    /// shut down and joined before this returns.
    pub fn build(size: usize) -> io::Result<ThreadPool> {
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(POOL_RECEIVER, receiver));
        let size = size.max(1);
        let mut pool = ThreadPool {
            sender: Mutex::new(POOL_SENDER, Some(sender)),
            joins: Mutex::new(
                POOL_JOINS,
                JoinState {
                    workers: Vec::with_capacity(size),
                    joining: false,
                },
            ),
            join_finished: Condvar::new(),
            worker_ids: Vec::with_capacity(size),
        };
        for id in 0..size {
            // On `?` the partly built `pool` is dropped, and its `Drop`
            // closes and joins the workers started so far.
            let worker = Worker::spawn(id, Arc::clone(&receiver))?;
            pool.worker_ids.push(worker.thread.thread().id());
            pool.lock_joins().workers.push(worker);
        }
        Ok(pool)
    }

    /// Queues `job`; some worker will run it exactly once, after the jobs
    /// queued before it.
    ///
    /// # Errors
    /// [`PoolClosed`] after [`close`](ThreadPool::close); the job is dropped
    /// without running.
    pub fn execute(&self, job: Job) -> Result<(), PoolClosed> {
        let sender = self.sender.lock().unwrap_or_else(PoisonError::into_inner);
        match sender.as_ref() {
            // `send` fails only when every receiver is gone; the receiver
            // lives as long as any worker, and workers leave only after the
            // sender is dropped, so while we hold `Some(sender)` this
            // succeeds. Mapping the error anyway costs nothing.
            Some(sender) => sender.send(job).map_err(|_| PoolClosed),
            None => Err(PoolClosed),
        }
    }

    /// Stops accepting jobs; the workers finish the queue, then exit.
    /// Returns at once (see [`close_and_wait`](ThreadPool::close_and_wait) to
    /// wait). Idempotent.
    pub fn close(&self) {
        let sender = self
            .sender
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        // Dropping the only Sender closes the channel: each worker's `recv`
        // now returns the jobs still queued, then `Err(RecvError)`.
        drop(sender);
    }

    /// Closes the pool and blocks until every worker has exited, i.e. until
    /// every queued job has run. Idempotent, and safe to call from several
    /// threads at once: every caller returns only after all workers are gone
    /// (the first caller joins them; the others wait on `join_finished`;
    /// `join_from_two_threads_at_once` in `tests/integration/pool.rs`).
    ///
    /// # Errors
    /// [`JoinFromWorker`] when called from inside one of this pool's own jobs:
    /// a worker cannot wait for itself, and waiting for the others could
    /// deadlock against a caller that is waiting for this worker. The pool is
    /// closed all the same (so the workers leave once the queue is drained),
    /// and the call returns at once, without waiting; another caller's
    /// `close_and_wait` (or the pool's `Drop`) still waits for every worker.
    pub fn close_and_wait(&self) -> Result<(), JoinFromWorker> {
        self.close();
        if self.worker_ids.contains(&thread::current().id()) {
            return Err(JoinFromWorker);
        }
        let mut joins = self.lock_joins();
        if joins.joining {
            // Another caller took the handles and is joining them: wait until
            // it is done, so that this caller too returns only after every
            // worker is gone.
            let _joins = self
                .join_finished
                .wait_while(joins, |joins| joins.joining)
                .unwrap_or_else(PoisonError::into_inner);
            return Ok(());
        }
        let workers = std::mem::take(&mut joins.workers);
        joins.joining = true;
        // No lock is held while joining: a job that calls `close_and_wait`,
        // `execute` or anything else of this pool meanwhile cannot block on us.
        drop(joins);
        for worker in workers {
            if worker.thread.join().is_err() {
                // Cannot happen: jobs run under `catch_unwind` and nothing
                // else in the worker loop panics. Reported, not propagated:
                // a join must not panic (it runs in `Drop`, and the other
                // joiners wait for `joining` to clear), hence no `eprintln!`.
                let _ = writeln!(io::stderr(), "worker-{} panicked outside a job", worker.id);
            }
        }
        self.lock_joins().joining = false;
        self.join_finished.notify_all();
        Ok(())
    }

    fn lock_joins(&self) -> MutexGuard<'_, JoinState> {
        self.joins.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for ThreadPool {
    /// Lets every queued job run, then joins the workers: dropping a pool
    /// never loses a job and never leaves a thread behind — except when it is
    /// dropped from inside one of its own jobs (the last `Arc` released by a
    /// job): then the workers are detached, and leave once the queue is
    /// drained (see [`ThreadPool::close_and_wait`]).
    fn drop(&mut self) {
        // The only error is "called from a worker", handled as documented.
        let _ = self.close_and_wait();
    }
}

impl Worker {
    fn spawn(id: usize, receiver: Arc<Mutex<Receiver<Job>>>) -> io::Result<Worker> {
        let thread = thread::Builder::new()
            .name(format!("worker-{id}"))
            .spawn(move || Worker::run(id, &receiver))?;
        Ok(Worker { id, thread })
    }

    /// The worker loop: take a job, run it, repeat until the channel is
    /// closed and empty.
    fn run(id: usize, receiver: &Mutex<Receiver<Job>>) {
        let _scoreboard = crate::scoreboard::claim(Role::Worker, ThreadState::Idle);
        loop {
            // The lock is taken and released within this one statement: the
            // temporary guard is dropped at the `;`, *before* the job runs,
            // so the other workers can take jobs meanwhile. Writing
            // `while let Ok(job) = receiver.lock()...recv() { job() }`
            // instead would keep the guard alive for the whole loop body
            // (temporaries in a `while let` scrutinee live until the end of
            // the body), running one job at a time however many workers.
            //
            // Poisoning: the guard is held only around `recv`, which leaves
            // the `Receiver` consistent even if a panic unwound through it,
            // so a poisoned lock is recovered rather than killing the worker.
            let message = receiver
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .recv();
            let Ok(job) = message else {
                // The pool dropped its sender and the queue is drained.
                break;
            };
            // `AssertUnwindSafe`: the job is consumed by the call, so nothing
            // it may have left half-updated is observed by this worker again.
            if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(job)) {
                // The worker survives, so the pool keeps its full strength.
                eprintln!("worker-{id}: a job panicked: {}", panic_message(&*payload));
            }
        }
    }
}

/// The text of a panic payload (`panic!` with a literal gives `&str`, with
/// a format string `String`); anything else is "(non-string panic payload)".
pub fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text
    } else {
        "(non-string panic payload)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn size_zero_still_has_one_worker() {
        let pool = ThreadPool::build(0).unwrap();
        assert_eq!(pool.lock_joins().workers.len(), 1);
        let ran = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&ran);
        pool.execute(Box::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        }))
        .unwrap();
        pool.close_and_wait().unwrap();
        assert_eq!(ran.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn workers_are_named() {
        let pool = ThreadPool::build(3).unwrap();
        let mut names: Vec<String> = pool
            .lock_joins()
            .workers
            .iter()
            .map(|w| w.thread.thread().name().unwrap_or("").to_string())
            .collect();
        names.sort();
        assert_eq!(names, ["worker-0", "worker-1", "worker-2"]);
    }

    #[test]
    fn panic_messages() {
        let text: Box<dyn Any + Send> = Box::new("literal");
        assert_eq!(panic_message(&*text), "literal");
        let formatted: Box<dyn Any + Send> = Box::new(String::from("formatted 7"));
        assert_eq!(panic_message(&*formatted), "formatted 7");
        let other: Box<dyn Any + Send> = Box::new(7_u32);
        assert_eq!(panic_message(&*other), "(non-string panic payload)");
    }
}

/// The model tests (shuttle) of the pool: it shuts down by dropping its only
/// `Sender`, which loom's channel cannot model (`crate::sync`). Each test
/// runs `SHUTTLE_ITERATIONS` random schedules and as many PCT schedules
/// (depth 3); CONCURRENCY.md says how to run them.
#[cfg(all(test, shuttle))]
mod shuttle_model {
    use super::*;
    use crate::sync::atomic::{AtomicUsize, Ordering};

    fn counting_job(count: &Arc<AtomicUsize>) -> Job {
        let count = Arc::clone(count);
        Box::new(move || {
            count.fetch_add(1, Ordering::SeqCst);
        })
    }

    /// Two threads calling `close_and_wait` at once both return only after
    /// every queued job has run and every worker is joined.
    #[test]
    fn concurrent_joiners_both_wait_for_every_job() {
        crate::sync::shuttle_model(|| {
            let pool = Arc::new(ThreadPool::build(2).unwrap());
            let ran = Arc::new(AtomicUsize::new(0));
            for _ in 0..3 {
                pool.execute(counting_job(&ran)).unwrap();
            }
            let other = {
                let (pool, ran) = (Arc::clone(&pool), Arc::clone(&ran));
                thread::spawn(move || {
                    pool.close_and_wait().unwrap();
                    assert_eq!(ran.load(Ordering::SeqCst), 3);
                })
            };
            pool.close_and_wait().unwrap();
            assert_eq!(ran.load(Ordering::SeqCst), 3);
            other.join().unwrap();
            assert_eq!(pool.execute(counting_job(&ran)), Err(PoolClosed));
        });
    }

    /// A job calling `close_and_wait` on its own pool gets `JoinFromWorker`
    /// at once (no deadlock), and the outside caller still waits for every
    /// job, including one queued after it.
    #[test]
    fn a_join_from_inside_a_job_is_an_error_not_a_deadlock() {
        crate::sync::shuttle_model(|| {
            let pool = Arc::new(ThreadPool::build(2).unwrap());
            let ran = Arc::new(AtomicUsize::new(0));
            let inner = {
                let (pool, ran) = (Arc::clone(&pool), Arc::clone(&ran));
                Box::new(move || {
                    assert_eq!(pool.close_and_wait(), Err(JoinFromWorker));
                    ran.fetch_add(1, Ordering::SeqCst);
                })
            };
            pool.execute(inner).unwrap();
            // Refused once the job above closed the pool, else queued.
            let later = pool.execute(counting_job(&ran)).is_ok();
            pool.close_and_wait().unwrap();
            assert_eq!(ran.load(Ordering::SeqCst), 1 + usize::from(later));
        });
    }

    /// A panicking job is contained: its worker (the only one) goes on to
    /// run the next job, and `close_and_wait` returns.
    #[test]
    fn a_panicking_job_leaves_the_pool_whole() {
        crate::sync::shuttle_model(|| {
            let pool = ThreadPool::build(1).unwrap();
            let ran = Arc::new(AtomicUsize::new(0));
            pool.execute(Box::new(|| panic!("a job that panics (expected)")))
                .unwrap();
            pool.execute(counting_job(&ran)).unwrap();
            pool.close_and_wait().unwrap();
            assert_eq!(ran.load(Ordering::SeqCst), 1);
        });
    }
}
