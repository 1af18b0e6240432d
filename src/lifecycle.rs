//! Shutdown coordination between the threads that *ask* for it (the
//! `graceful_shutdown` endpoint, the Ctrl-C / SIGTERM handler) and the main
//! thread, which *carries it out* (joins the worker pool, flushes the log,
//! exits).
//!
//! Two requests exist:
//!
//! - **drain** (`graceful_shutdown`): stop accepting jobs, let the queued ones
//!   finish, stop the workers — but keep serving reads so that clients can
//!   collect their results;
//! - **exit** (a signal): the same drain, then the process exits 0.
//!
//! Both are flags in one [`Mutex`], and the main thread sleeps on one
//! [`Condvar`] until the flag it waits for is set. Because the flags and the
//! Condvar's condition live under the same lock, a request made between the
//! main thread's check and its sleep cannot be lost: the requester needs the
//! lock to set the flag, and the waiter holds it until `wait` atomically
//! releases it.

use crate::sync::lock_order::LIFECYCLE_REQUESTS;
use crate::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// What has been asked of the process so far. Flags only ever go from
/// `false` to `true`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Requests {
    /// A drain was asked for (by either request).
    drain: bool,
    /// The process should exit once drained.
    exit: bool,
}

/// See the module documentation.
#[derive(Debug)]
pub struct Lifecycle {
    /// Invariant: the only state read by the waits on `request_arrived`.
    /// Held only to read or set the flags, never across I/O or a wait
    /// (`wait_while` releases it): the signal handler takes it, and must
    /// never wait behind a write that blocks.
    requests: Mutex<Requests>,
    /// Notified (all waiters) every time a flag in `requests` is set.
    request_arrived: Condvar,
}

impl Default for Lifecycle {
    fn default() -> Lifecycle {
        Lifecycle::new()
    }
}

/// Whether [`Lifecycle::request_exit`] was the first exit request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitRequest {
    First,
    Repeated,
}

/// What has been requested: a drain only, or a drain and then the exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requested {
    /// A drain only (`graceful_shutdown`): the process goes on serving reads.
    Drain,
    /// A drain and then the exit (a signal).
    Exit,
}

impl Lifecycle {
    /// No request made yet.
    #[must_use]
    pub fn new() -> Lifecycle {
        Lifecycle {
            requests: Mutex::new(LIFECYCLE_REQUESTS, Requests::default()),
            request_arrived: Condvar::new(),
        }
    }

    /// Asks for a drain (the `graceful_shutdown` endpoint). Idempotent.
    pub fn request_drain(&self) {
        self.update(|r| r.drain = true);
    }

    /// Asks for a drain followed by process exit (Ctrl-C, SIGTERM). Tells the
    /// caller whether an exit had already been asked for, so that a second
    /// Ctrl-C can force the exit.
    pub fn request_exit(&self) -> ExitRequest {
        let mut first = false;
        self.update(|r| {
            first = !r.exit;
            r.drain = true;
            r.exit = true;
        });
        if first {
            ExitRequest::First
        } else {
            ExitRequest::Repeated
        }
    }

    /// What was requested, for a job refused as shutting down: `Exit` once a
    /// signal asked for it, else `Drain`. An exit request is recorded before
    /// the main thread stops accepting jobs, so a refusal a signal caused
    /// never reads `Drain`.
    #[must_use]
    pub fn requested(&self) -> Requested {
        if self.lock().exit {
            Requested::Exit
        } else {
            Requested::Drain
        }
    }

    /// Blocks until a drain (or an exit) has been requested; which one.
    pub fn wait_for_drain_request(&self) -> Requested {
        if self.wait_until(|r| r.drain).exit {
            Requested::Exit
        } else {
            Requested::Drain
        }
    }

    /// Blocks until an exit has been requested.
    pub fn wait_for_exit_request(&self) {
        self.wait_until(|r| r.exit);
    }

    fn update(&self, change: impl FnOnce(&mut Requests)) {
        let mut requests = self.lock();
        change(&mut requests);
        // Notify while holding the lock or after: either is correct here,
        // since the waiter re-checks the flags under the lock.
        self.request_arrived.notify_all();
    }

    /// The requests once `done` holds.
    fn wait_until(&self, done: impl Fn(&Requests) -> bool) -> Requests {
        let guard = self.lock();
        // `wait_while` loops over spurious wake-ups: it returns only once
        // `done` holds, checked under the lock.
        *self
            .request_arrived
            .wait_while(guard, |r| !done(r))
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn lock(&self) -> MutexGuard<'_, Requests> {
        // Poisoning is harmless here: `Requests` is two booleans that are
        // only ever set, so no panic can leave them half-updated.
        self.requests.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::thread;
    use std::time::Duration;

    /// Runs `wait` on a scoped thread and reports whether it returned after
    /// `request` was made — a broken wake-up makes this test fail at its
    /// deadline instead of hanging.
    fn wakes<R>(wait: fn(&Lifecycle) -> R, request: fn(&Lifecycle)) -> bool {
        let lifecycle = Lifecycle::new();
        let (done_tx, done_rx) = mpsc::channel();
        thread::scope(|s| {
            s.spawn(|| {
                wait(&lifecycle);
                let _ = done_tx.send(());
            });
            request(&lifecycle);
            let woke = done_rx.recv_timeout(Duration::from_secs(10)).is_ok();
            if !woke {
                // Release the stuck waiter so that the scope can end.
                lifecycle.request_exit();
            }
            woke
        })
    }

    #[test]
    fn drain_request_wakes_the_drain_waiter() {
        assert!(wakes(
            Lifecycle::wait_for_drain_request,
            Lifecycle::request_drain
        ));
    }

    #[test]
    fn exit_request_wakes_both_waiters() {
        assert!(wakes(Lifecycle::wait_for_drain_request, |l| {
            l.request_exit();
        }));
        assert!(wakes(Lifecycle::wait_for_exit_request, |l| {
            l.request_exit();
        }));
    }

    #[test]
    fn a_request_made_before_the_wait_is_not_lost() {
        let lifecycle = Lifecycle::new();
        lifecycle.request_drain();
        // Returns at once.
        assert_eq!(lifecycle.wait_for_drain_request(), Requested::Drain);
        assert_eq!(lifecycle.requested(), Requested::Drain);
        assert_eq!(lifecycle.request_exit(), ExitRequest::First);
        assert_eq!(lifecycle.wait_for_drain_request(), Requested::Exit);
        assert_eq!(lifecycle.requested(), Requested::Exit);
        assert_eq!(lifecycle.request_exit(), ExitRequest::Repeated);
        lifecycle.wait_for_exit_request();
    }

    #[test]
    fn a_drain_does_not_satisfy_the_exit_wait() {
        let lifecycle = Lifecycle::new();
        let (done_tx, done_rx) = mpsc::channel();
        thread::scope(|s| {
            s.spawn(|| {
                lifecycle.wait_for_exit_request();
                let _ = done_tx.send(());
            });
            lifecycle.request_drain();
            // The waiter must still be asleep after a drain request …
            let woke_on_drain = done_rx.recv_timeout(Duration::from_millis(200)).is_ok();
            // … and wake on the exit request (asked for before asserting,
            // so that a failure cannot leave the waiter blocking the scope).
            lifecycle.request_exit();
            let woke_on_exit =
                woke_on_drain || done_rx.recv_timeout(Duration::from_secs(10)).is_ok();
            assert!(!woke_on_drain, "a drain request ended the wait for an exit");
            assert!(woke_on_exit, "the exit request did not end the wait");
        });
    }
}

/// The model tests (loom), the first to read: CONCURRENCY.md, "Run one
/// model test". loom runs each closure once per interleaving of its threads
/// (within `LOOM_MAX_PREEMPTIONS`, unbounded by default), so a wake-up lost
/// in any of them shows as a reported deadlock.
#[cfg(all(test, loom))]
mod loom_model {
    use super::*;
    use crate::sync::atomic::{AtomicBool, Ordering};
    use crate::sync::{thread, Arc};

    /// A drain requested before, while or after the main thread starts to
    /// wait is never lost: the wait returns in every interleaving.
    #[test]
    fn a_request_racing_the_wait_is_never_lost() {
        crate::sync::loom_model(None, || {
            let lifecycle = Arc::new(Lifecycle::new());
            let requester = {
                let lifecycle = Arc::clone(&lifecycle);
                thread::spawn(move || lifecycle.request_drain())
            };
            lifecycle.wait_for_drain_request();
            requester.join().unwrap();
        });
    }

    /// With a drain (`graceful_shutdown`) and an exit (a signal) racing the
    /// main thread's two waits, the exit wait returns only after the exit
    /// was asked for, whatever the order of the requests.
    #[test]
    fn drain_then_exit_in_any_order() {
        crate::sync::loom_model(None, || {
            let lifecycle = Arc::new(Lifecycle::new());
            let exit_asked = Arc::new(AtomicBool::new(false));
            let drainer = {
                let lifecycle = Arc::clone(&lifecycle);
                thread::spawn(move || lifecycle.request_drain())
            };
            let signal = {
                let lifecycle = Arc::clone(&lifecycle);
                let exit_asked = Arc::clone(&exit_asked);
                thread::spawn(move || {
                    exit_asked.store(true, Ordering::Relaxed);
                    lifecycle.request_exit()
                })
            };
            lifecycle.wait_for_drain_request();
            lifecycle.wait_for_exit_request();
            assert!(
                exit_asked.load(Ordering::Relaxed),
                "the exit wait returned before any exit was asked for"
            );
            drainer.join().unwrap();
            assert_eq!(signal.join().unwrap(), ExitRequest::First);
        });
    }

    /// Both waits share `request_arrived`, so a drain request wakes an
    /// exit waiter too: with one thread waiting for the drain and another
    /// for the exit, each returns only once its own request was made.
    #[test]
    fn a_wake_up_for_the_other_request_ends_no_wait() {
        crate::sync::loom_model(None, || {
            let lifecycle = Arc::new(Lifecycle::new());
            let exit_asked = Arc::new(AtomicBool::new(false));
            let drain_waiter = {
                let lifecycle = Arc::clone(&lifecycle);
                thread::spawn(move || lifecycle.wait_for_drain_request())
            };
            let exit_waiter = {
                let (lifecycle, exit_asked) = (Arc::clone(&lifecycle), Arc::clone(&exit_asked));
                thread::spawn(move || {
                    lifecycle.wait_for_exit_request();
                    assert!(
                        exit_asked.load(Ordering::Relaxed),
                        "the exit wait returned before any exit was asked for"
                    );
                })
            };
            lifecycle.request_drain();
            assert_eq!(drain_waiter.join().unwrap(), Requested::Drain);
            exit_asked.store(true, Ordering::Relaxed);
            lifecycle.request_exit();
            exit_waiter.join().unwrap();
        });
    }
}
