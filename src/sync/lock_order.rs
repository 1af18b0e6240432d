//! The lock order, checked while the tests run.
//!
//! Every [`Mutex`](super::Mutex) has a [`Rank`]. A thread may take a lock
//! only when its rank is above the rank of every lock the thread already
//! holds. If every thread obeys that, no cycle of threads each waiting for
//! a lock another holds can form (each waits only "upwards"), so the locks
//! cannot deadlock. The ranks below are CONCURRENCY.md's lock order:
//!
//! `JobRecords::table` → `ThreadPool::sender` → `Queue::state`; every
//! other lock is a *leaf*, ranked above all of them:
//! it may be taken while one of those is held, and no lock may be taken
//! while a leaf is held (not even another leaf).
//!
//! With the cargo feature `lock-order` (on in `make test`, for `cargo test`
//! and for the server binary the end-to-end tests spawn) each thread keeps
//! the stack of locks it holds, as the Linux kernel's lockdep does, and
//! [`acquire`] panics naming both locks at the first out-of-order `lock` —
//! whether or not that run would have deadlocked. Without the feature none
//! of this is compiled: a rank is a constant passed to `Mutex::new` and
//! dropped there. Under loom or shuttle the check is off (their threads
//! share one OS thread's thread-locals).
//!
//! Tests: `sync::lock_order::tests` (the checker itself) and
//! `lock_order_e2e::an_inversion_in_a_spawned_server_names_both_locks`
//! (`tests/integration/lock_order_e2e.rs`: a server built with the
//! `lock-order-selftest` feature takes two locks the wrong way round).

/// A lock's place in the lock order, and its name in CONCURRENCY.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rank {
    level: u8,
    name: &'static str,
}

impl Rank {
    /// The name the panic message and CONCURRENCY.md use.
    #[must_use]
    pub const fn name(self) -> &'static str {
        self.name
    }

    const fn leaf(name: &'static str) -> Rank {
        Rank { level: LEAF, name }
    }
}

/// The rank of every lock no other lock is taken under.
const LEAF: u8 = u8::MAX;

/// Taken first: `submit` sends the job and `stop_accepting` closes the pool
/// under it; a log line may be queued under it.
pub const JOB_TABLE: Rank = Rank {
    level: 10,
    name: "JobRecords::table",
};
/// After `JobRecords::table` (one `send` or one `take` under it).
pub const POOL_SENDER: Rank = Rank {
    level: 20,
    name: "ThreadPool::sender",
};
/// After any of the above: queuing a log line never waits.
pub const LOG_QUEUE: Rank = Rank {
    level: 40,
    name: "Queue::state",
};
pub const JOB_RESERVATION: Rank = Rank::leaf("IdReservation::state");
pub const JOB_DEGRADED: Rank = Rank::leaf("Degraded::state");
pub const RESULT_DIR_LOCK: Rank = Rank::leaf("OwnDir::lock");
pub const JOBS_CLOSING: Rank = Rank::leaf("Jobs::closing");
pub const POOL_JOINS: Rank = Rank::leaf("ThreadPool::joins");
pub const POOL_RECEIVER: Rank = Rank::leaf("worker receiver");
pub const PERSISTER_QUEUE: Rank = Rank::leaf("Persister::queue");
pub const RESULT_INTERNED: Rank = Rank::leaf("Dedup::interned");
pub const LIFECYCLE_REQUESTS: Rank = Rank::leaf("Lifecycle::requests");
pub const LOG_WRITER_HANDLE: Rank = Rank::leaf("OpenLog::writer");
/// For a lock a test makes up (a model's stand-in for a file).
#[cfg(test)]
pub const TEST_LEAF: Rank = Rank::leaf("a test's own lock");

#[cfg(all(feature = "lock-order", not(any(loom, shuttle))))]
mod checker {
    use super::Rank;
    use std::cell::RefCell;

    thread_local! {
        /// The locks this thread holds, in the order it took them, with the
        /// address of each (to tell two instances of one rank apart).
        static HELD: RefCell<Vec<(Rank, usize)>> = const { RefCell::new(Vec::new()) };
    }

    /// One entry on the held-lock stack, removed when the guard drops
    /// (guards may drop in any order).
    #[derive(Debug)]
    pub struct Held {
        address: usize,
    }

    pub fn acquire(rank: Rank, address: usize) -> Held {
        let violation = HELD.with(|held| {
            let mut held = held.borrow_mut();
            let highest = held.iter().max_by_key(|(rank, _)| rank.level).copied();
            match highest {
                Some((top, _)) if rank.level <= top.level => {
                    Some((top, held.iter().any(|&(_, a)| a == address)))
                }
                _ => {
                    held.push((rank, address));
                    None
                }
            }
        });
        if let Some((top, same_lock)) = violation {
            assert!(
                !same_lock,
                "lock order violated: `{}` taken again by the thread that holds it (a self-deadlock)",
                rank.name
            );
            panic!(
                "lock order violated: `{}` taken while holding `{}` (CONCURRENCY.md's lock order allows only the other way round, or neither)",
                rank.name, top.name
            );
        }
        Held { address }
    }

    impl Drop for Held {
        fn drop(&mut self) {
            // `try_with`: a guard dropped while the thread-locals are torn
            // down has no stack left to update.
            let _ = HELD.try_with(|held| {
                let mut held = held.borrow_mut();
                if let Some(at) = held.iter().rposition(|&(_, a)| a == self.address) {
                    held.remove(at);
                }
            });
        }
    }
}

#[cfg(all(feature = "lock-order", any(loom, shuttle)))]
mod checker {
    use super::Rank;

    #[derive(Debug)]
    pub struct Held;

    pub fn acquire(_rank: Rank, _address: usize) -> Held {
        Held
    }
}

#[cfg(feature = "lock-order")]
pub(super) use checker::{acquire, Held};

#[cfg(all(test, feature = "lock-order", not(any(loom, shuttle))))]
mod tests {
    use super::super::Mutex;
    use super::*;

    fn panic_text(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
        let payload = std::panic::catch_unwind(f).expect_err("the checker should have panicked");
        crate::pool::panic_message(&*payload).to_owned()
    }

    #[test]
    fn the_documented_order_passes_and_the_stack_empties() {
        let table = Mutex::new(JOB_TABLE, ());
        let sender = Mutex::new(POOL_SENDER, ());
        let queue = Mutex::new(LOG_QUEUE, ());
        let leaf = Mutex::new(JOB_DEGRADED, ());
        {
            let _t = table.lock().unwrap();
            let _s = sender.lock().unwrap();
            let _q = queue.lock().unwrap();
            let _l = leaf.lock().unwrap();
        }
        // Released out of order, then taken again from the bottom.
        let t = table.lock().unwrap();
        let s = sender.lock().unwrap();
        drop(t);
        drop(s);
        let _s = sender.lock().unwrap();
        let queue = Mutex::new(LOG_QUEUE, ());
        let _q = queue.lock().unwrap();
    }

    #[test]
    fn an_inversion_panics_naming_both_locks() {
        let text = panic_text(|| {
            let table = Mutex::new(JOB_TABLE, ());
            let sender = Mutex::new(POOL_SENDER, ());
            let _s = sender.lock().unwrap();
            let _t = table.lock().unwrap();
        });
        assert!(
            text.contains("`JobRecords::table` taken while holding `ThreadPool::sender`"),
            "{text}"
        );
    }

    #[test]
    fn two_leaves_or_one_lock_twice_panic() {
        let text = panic_text(|| {
            let a = Mutex::new(JOB_DEGRADED, ());
            let b = Mutex::new(POOL_JOINS, ());
            let _a = a.lock().unwrap();
            let _b = b.lock().unwrap();
        });
        assert!(
            text.contains("`ThreadPool::joins` taken while holding `Degraded::state`"),
            "{text}"
        );
        let text = panic_text(|| {
            let a = Mutex::new(LOG_QUEUE, ());
            let _first = a.lock().unwrap();
            let _second = a.lock().unwrap();
        });
        assert!(text.contains("`Queue::state` taken again"), "{text}");
    }

    #[test]
    fn a_condvar_wait_keeps_the_lock_on_the_stack() {
        let table = Mutex::new(JOB_TABLE, 1);
        let ready = super::super::Condvar::new();
        let guard = table.lock().unwrap();
        let guard = ready.wait_while(guard, |n| *n == 0).unwrap();
        // The wait kept the table on this thread's stack: another lock of
        // its rank is still refused …
        let text = panic_text(|| {
            let other = Mutex::new(JOB_TABLE, ());
            let _other = other.lock();
        });
        assert!(
            text.contains("`JobRecords::table` taken while holding `JobRecords::table`"),
            "{text}"
        );
        drop(guard);
        // … and once it is released no stale entry is left behind.
        let _t = table.lock().unwrap();
    }
}
