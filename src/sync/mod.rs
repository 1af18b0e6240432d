//! Every synchronisation primitive the server uses, from one place, so that
//! a model checker can stand in for the standard library.
//!
//! A normal build re-exports `std`. Built with `RUSTFLAGS="--cfg loom"` the
//! same names come from [loom] (every interleaving and every memory ordering
//! the C++ model allows, within a preemption bound); with `--cfg shuttle`
//! from [shuttle] (random and PCT schedules, for larger scenarios). The
//! model tests then run the production code itself, not a copy of it
//! (CONCURRENCY.md, "Run one model test").
//!
//! [`Mutex`] and [`Condvar`] are this module's own thin wrappers: each mutex
//! is created with its [`Rank`] in the documented lock order, and with the
//! cargo feature `lock-order` (on in `make test`) every `lock` checks that
//! order ([`lock_order`]). Without the feature the rank is dropped at
//! construction and `lock` is the backend's `lock`: the shipped binary pays
//! nothing.
//!
//! # What the checkers cannot model, and how the code is shaped around it
//!
//! Read from loom 0.7.3 and shuttle 0.9.10, the versions in `Cargo.lock`:
//!
//! - loom's `Condvar` has no `wait_while`: [`Condvar::wait_while`] is
//!   written here as the textbook loop over `wait`, for loom; std and shuttle
//!   use their own.
//! - loom's (and shuttle's) timed waits never time out: `wait_timeout` is a
//!   plain `wait`. A model therefore sees no timer fire: every wait must be
//!   ended by a notification, and a wait that none ends is reported as a
//!   deadlock — which is how a lost wake-up shows. Where a timer is part of
//!   the protocol (the log queue's 2 ms linger), the module models it
//!   explicitly (`log/queue.rs`, "Time in the model").
//! - loom's `mpsc` has no `sync_channel`, its `recv_timeout` panics
//!   (unimplemented), and it has no disconnection: a `recv` after every
//!   `Sender` is dropped is reported as a deadlock. The thread pool shuts
//!   down by dropping its only `Sender`, so the pool is modelled with
//!   shuttle, whose channel disconnects like std's.
//! - shuttle runs every atomic operation as `SeqCst`, so it cannot find a
//!   missing `Acquire`/`Release`; memory orderings are checked with loom.
//! - loom's and shuttle's primitives work only inside a model
//!   (`loom::model`, `shuttle::check_*`), and loom's atomics are not `const`:
//!   `static` atomics and `OnceLock`s stay `std` (the metrics registry,
//!   the timeline). The scoreboard's slots are the one exception: their
//!   atomics are loom's under `--cfg loom`, a model builds its own slots,
//!   and the process-wide table then has none (`src/scoreboard/mod.rs`).
//! - loom and shuttle are dev-dependencies, so `--cfg loom` / `--cfg
//!   shuttle` builds only the library's own test binary (`cargo test --lib`,
//!   as `make models` does); any other target built that way fails to find
//!   them.
//! - Under loom or shuttle the lock-order checker is off: their threads are
//!   not OS threads, so a thread-local held-lock stack would be shared.
//!   For the same reason the observers' `thread_local!`s are shared by the
//!   threads of a model: the scoreboard has no slots under either checker
//!   (`scoreboard::table_size`), and `job_events`' start time may be
//!   misattributed, which no model checks.
//! - Only these primitives are scheduling points. Anything else a model
//!   thread does — a file written, flushed or renamed — runs to its end
//!   unseen by the checker, as one step; so the job lifecycle's model
//!   (`jobs::shuttle_model`) uses the real result store in a temporary
//!   directory, and a file call cannot block another model thread.
//!
//! [loom]: https://docs.rs/loom/0.7.3
//! [shuttle]: https://docs.rs/shuttle/0.9.10

pub mod lock_order;

pub use lock_order::Rank;
pub use std::sync::{LockResult, OnceLock, PoisonError};

#[cfg(not(any(loom, shuttle)))]
use std::sync as backend;

#[cfg(loom)]
use loom::sync as backend;

#[cfg(shuttle)]
use shuttle::sync as backend;

pub use backend::Arc;

/// `std::sync::atomic`, or the model checker's.
pub mod atomic {
    #[cfg(loom)]
    pub use loom::sync::atomic::*;
    #[cfg(shuttle)]
    pub use shuttle::sync::atomic::*;
    #[cfg(not(any(loom, shuttle)))]
    pub use std::sync::atomic::*;
}

/// `std::sync::mpsc`, or the model checker's (see the module documentation
/// for what loom's lacks).
pub mod mpsc {
    #[cfg(loom)]
    pub use loom::sync::mpsc::*;
    #[cfg(shuttle)]
    pub use shuttle::sync::mpsc::*;
    #[cfg(not(any(loom, shuttle)))]
    pub use std::sync::mpsc::*;
}

/// `std::thread`, or the model checker's.
pub mod thread {
    #[cfg(loom)]
    pub use loom::thread::*;
    #[cfg(shuttle)]
    pub use shuttle::thread::*;
    #[cfg(not(any(loom, shuttle)))]
    pub use std::thread::*;
}

/// A mutex with a place in the lock order: `std::sync::Mutex` (or the model
/// checker's), plus the lock-order check when the `lock-order` feature is on.
pub struct Mutex<T> {
    inner: backend::Mutex<T>,
    #[cfg(feature = "lock-order")]
    rank: Rank,
}

/// The guard of a [`Mutex`]: the backend's guard, plus (with `lock-order`)
/// the entry on this thread's held-lock stack, removed when it drops.
pub struct MutexGuard<'a, T> {
    inner: backend::MutexGuard<'a, T>,
    #[cfg(feature = "lock-order")]
    held: lock_order::Held,
}

impl<T> Mutex<T> {
    /// A mutex holding `value`, at `rank` in the lock order (the ranks are
    /// the constants of [`lock_order`]).
    pub fn new(rank: Rank, value: T) -> Mutex<T> {
        #[cfg(not(feature = "lock-order"))]
        let _ = rank;
        Mutex {
            inner: backend::Mutex::new(value),
            #[cfg(feature = "lock-order")]
            rank,
        }
    }

    /// Locks, as `std::sync::Mutex::lock`. With `lock-order`, first panics
    /// (naming both locks) when this thread holds a lock whose rank is not
    /// below this one's — before blocking, so an inversion is reported even
    /// when the schedule that would deadlock on it did not happen.
    ///
    /// # Errors
    /// When another thread panicked while holding the lock (every caller
    /// recovers with [`PoisonError::into_inner`]).
    pub fn lock(&self) -> LockResult<MutexGuard<'_, T>> {
        #[cfg(feature = "lock-order")]
        let held = lock_order::acquire(self.rank, std::ptr::from_ref(self).addr());
        let guard = |inner| MutexGuard {
            inner,
            #[cfg(feature = "lock-order")]
            held,
        };
        match self.inner.lock() {
            Ok(inner) => Ok(guard(inner)),
            Err(poisoned) => Err(PoisonError::new(guard(poisoned.into_inner()))),
        }
    }

    /// The value, through `&mut self`: no other thread can hold the lock,
    /// so none is taken and the lock order is not involved.
    ///
    /// # Errors
    /// When the lock was poisoned.
    pub fn get_mut(&mut self) -> LockResult<&mut T> {
        self.inner.get_mut()
    }
}

impl<T> std::fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mutex").finish_non_exhaustive()
    }
}

impl<T> std::ops::Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T> std::ops::DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.inner
    }
}

/// A condition variable used with a [`Mutex`] of this module:
/// `std::sync::Condvar` (or the model checker's) taking this module's guards.
#[derive(Debug, Default)]
pub struct Condvar {
    inner: backend::Condvar,
}

impl Condvar {
    #[must_use]
    pub fn new() -> Condvar {
        Condvar {
            inner: backend::Condvar::new(),
        }
    }

    pub fn notify_one(&self) {
        self.inner.notify_one();
    }

    pub fn notify_all(&self) {
        self.inner.notify_all();
    }

    /// Blocks while `condition` holds, re-checked under the lock after
    /// every wake-up, as `std::sync::Condvar::wait_while`. The thread keeps
    /// its place in the lock order while it waits: it takes no other lock
    /// meanwhile, and takes this one back.
    ///
    /// # Errors
    /// When the lock was poisoned (every caller recovers).
    pub fn wait_while<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        condition: impl FnMut(&mut T) -> bool,
    ) -> LockResult<MutexGuard<'a, T>> {
        let (inner, rewrap) = guard.split();
        #[cfg(not(loom))]
        let result = self.inner.wait_while(inner, condition);
        #[cfg(loom)]
        let result = loom_wait_while(&self.inner, inner, condition);
        match result {
            Ok(inner) => Ok(rewrap.wrap(inner)),
            Err(poisoned) => Err(PoisonError::new(rewrap.wrap(poisoned.into_inner()))),
        }
    }

    /// [`wait_while`](Condvar::wait_while), giving up after `timeout`. Under
    /// loom and shuttle the timeout never fires (see the module
    /// documentation).
    ///
    /// # Errors
    /// When the lock was poisoned (every caller recovers).
    pub fn wait_timeout_while<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: std::time::Duration,
        condition: impl FnMut(&mut T) -> bool,
    ) -> LockResult<(MutexGuard<'a, T>, WaitTimeoutResult)> {
        let (inner, rewrap) = guard.split();
        #[cfg(not(loom))]
        let result = self
            .inner
            .wait_timeout_while(inner, timeout, condition)
            .map(|(inner, timed_out)| (inner, timed_out.timed_out()))
            .map_err(|poisoned| {
                let (inner, timed_out) = poisoned.into_inner();
                PoisonError::new((inner, timed_out.timed_out()))
            });
        #[cfg(loom)]
        let result = {
            let _ = timeout;
            loom_wait_while(&self.inner, inner, condition)
                .map(|inner| (inner, false))
                .map_err(|poisoned| PoisonError::new((poisoned.into_inner(), false)))
        };
        match result {
            Ok((inner, timed_out)) => Ok((rewrap.wrap(inner), WaitTimeoutResult(timed_out))),
            Err(poisoned) => {
                let (inner, timed_out) = poisoned.into_inner();
                Err(PoisonError::new((
                    rewrap.wrap(inner),
                    WaitTimeoutResult(timed_out),
                )))
            }
        }
    }
}

/// Whether a [`Condvar::wait_timeout_while`] returned because its timeout
/// passed (never, under a model checker).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    #[must_use]
    pub fn timed_out(self) -> bool {
        self.0
    }
}

/// The loop std's `wait_while` runs, over loom's `wait`.
#[cfg(loom)]
fn loom_wait_while<'a, T>(
    condvar: &backend::Condvar,
    mut guard: backend::MutexGuard<'a, T>,
    mut condition: impl FnMut(&mut T) -> bool,
) -> LockResult<backend::MutexGuard<'a, T>> {
    while condition(&mut guard) {
        guard = condvar.wait(guard)?;
    }
    Ok(guard)
}

/// What a [`MutexGuard`] keeps besides the backend's guard while a
/// [`Condvar`] hands the backend's guard to the backend's wait.
struct Rewrap {
    #[cfg(feature = "lock-order")]
    held: lock_order::Held,
}

impl<'a, T> MutexGuard<'a, T> {
    fn split(self) -> (backend::MutexGuard<'a, T>, Rewrap) {
        let MutexGuard {
            inner,
            #[cfg(feature = "lock-order")]
            held,
        } = self;
        (
            inner,
            Rewrap {
                #[cfg(feature = "lock-order")]
                held,
            },
        )
    }
}

impl Rewrap {
    // Without `lock-order` a `Rewrap` is empty, and `self` only marks the
    // guard it came from as used up.
    #[cfg_attr(not(feature = "lock-order"), allow(clippy::unused_self))]
    fn wrap<T>(self, inner: backend::MutexGuard<'_, T>) -> MutexGuard<'_, T> {
        MutexGuard {
            inner,
            #[cfg(feature = "lock-order")]
            held: self.held,
        }
    }
}

/// Runs a loom model test: every interleaving of `test`'s threads with at
/// most `preemptions` preemptions (`None`: unbounded), or with
/// `LOOM_MAX_PREEMPTIONS` when that is set; then prints how many
/// interleavings it ran (CONCURRENCY.md, "Run one model test"). With
/// `LOOM_LOG` set (e.g. `LOOM_LOG=trace`), runs under `loom::model`
/// instead, which prints the schedule step by step: its bound is then
/// `LOOM_MAX_PREEMPTIONS`'s alone (unbounded without it).
#[cfg(all(test, loom))]
pub(crate) fn loom_model(preemptions: Option<usize>, test: impl Fn() + Sync + Send + 'static) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    if std::env::var_os("LOOM_LOG").is_some() {
        loom::model(test);
        return;
    }
    let mut builder = loom::model::Builder::new();
    if std::env::var_os("LOOM_MAX_PREEMPTIONS").is_none() {
        builder.preemption_bound = preemptions;
    }
    let bound = builder.preemption_bound;
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&runs);
    builder.check(move || {
        counted.fetch_add(1, Ordering::Relaxed);
        test();
    });
    let runs = runs.load(Ordering::Relaxed);
    let bound = bound.map_or("unbounded".to_owned(), |n| {
        format!("at most {n} preemptions")
    });
    eprintln!("loom: every interleaving passed: {runs} runs, {bound}");
}

/// Runs a shuttle model test: `SHUTTLE_ITERATIONS` (default 200) random
/// schedules of `test`'s threads, then as many PCT schedules (depth 3);
/// then prints how many it ran and how long they took (CONCURRENCY.md,
/// "Run one model test"). A failure prints the schedule to replay.
#[cfg(all(test, shuttle))]
pub(crate) fn shuttle_model(test: impl Fn() + Send + Sync + 'static) {
    let iterations = std::env::var("SHUTTLE_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let started = std::time::Instant::now();
    let test = std::sync::Arc::new(test);
    let again = std::sync::Arc::clone(&test);
    shuttle::check_random(move || test(), iterations);
    shuttle::check_pct(move || again(), iterations, 3);
    eprintln!(
        "shuttle: every schedule passed: {iterations} random + {iterations} PCT (depth 3) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
