//! The scoreboard: what every thread of the server is doing right now, in
//! the manner of Apache's `mod_status` and Postgres' `pg_stat_activity`.
//!
//! Every thread the server owns (the accept loop, each connection, each
//! worker, the log writer, a persister if there is one) claims one [`Slot`]
//! of a fixed table for its lifetime and publishes its state there with
//! plain atomic stores: no lock, no allocation, nothing a reader can block.
//! A reader ([`threads`], used by `/api/status`, `/status` and `/metrics`)
//! only loads atomics, so watching the server never slows a worker or a
//! connection down.
//!
//! The table is process-wide, like Apache's scoreboard or the default
//! registry of the Prometheus client libraries: a process runs one server
//! (the results-directory lock enforces it), so there is one table. Threads
//! publish through a thread-local pointer to their own slot ([`set`],
//! [`set_job`]), so the code that changes state needs no handle passed down.
//!
//! Files: here the table and the thread-facing API; `status_json.rs` the
//! `/api/status` body.

mod status_json;

pub use status_json::render_json;

use crate::descriptors::Budget;
use crate::limits::{Limits, MAX_CONNECTIONS, MAX_PENDING_JOBS};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Slots for threads other than connections: the accept loop, the log
/// writer, a persister and the workers (beyond this many workers the extra
/// ones run unseen, which [`claim`] reports by returning `None`).
const OTHER_SLOTS: usize = 1024;

/// What kind of thread owns a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Role {
    Accept = 1,
    Connection = 2,
    Worker = 3,
    LogWriter = 4,
    Persister = 5,
}

impl Role {
    /// Every role, in the order the status page draws them.
    pub const ALL: [Role; 5] = [
        Role::Accept,
        Role::Worker,
        Role::Connection,
        Role::LogWriter,
        Role::Persister,
    ];

    /// The role's name in `/api/status`: `accept`, `connection`, `worker`,
    /// `log_writer`, `persister`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Role::Accept => "accept",
            Role::Connection => "connection",
            Role::Worker => "worker",
            Role::LogWriter => "log_writer",
            Role::Persister => "persister",
        }
    }

    fn from_code(code: u8) -> Option<Role> {
        Role::ALL.into_iter().find(|r| *r as u8 == code)
    }
}

/// What a thread is doing. Which states a role uses is documented at each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ThreadState {
    /// A worker waiting for a job; a log writer or persister waiting for work.
    Idle = 0,
    /// The accept loop waiting for a connection.
    Accepting = 1,
    /// A connection waiting for (or reading) the head of a request.
    ReadingHead = 2,
    /// A connection reading a request body.
    ReadingBody = 3,
    /// A connection running the handler (routing, validation, submitting).
    Handling = 4,
    /// A connection holding a `get_results` request until its job finishes.
    WaitingForJob = 5,
    /// A connection writing a response.
    Writing = 6,
    /// A connection kept alive, waiting for the client's next request.
    KeepAlive = 7,
    /// A worker running a job.
    Running = 8,
    /// A log writer or persister writing or flushing.
    Flushing = 9,
}

impl ThreadState {
    /// Every state, in the order of the status page's legend.
    pub const ALL: [ThreadState; 10] = [
        ThreadState::Accepting,
        ThreadState::Idle,
        ThreadState::Running,
        ThreadState::ReadingHead,
        ThreadState::ReadingBody,
        ThreadState::Handling,
        ThreadState::WaitingForJob,
        ThreadState::Writing,
        ThreadState::KeepAlive,
        ThreadState::Flushing,
    ];

    /// The state's name in `/api/status` (and, with `_` for spaces, the
    /// `state` label of `/metrics`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            ThreadState::Idle => "idle",
            ThreadState::Accepting => "accepting",
            ThreadState::ReadingHead => "reading head",
            ThreadState::ReadingBody => "reading body",
            ThreadState::Handling => "handling",
            ThreadState::WaitingForJob => "waiting for job",
            ThreadState::Writing => "writing",
            ThreadState::KeepAlive => "idle keep-alive",
            ThreadState::Running => "running",
            ThreadState::Flushing => "flushing",
        }
    }

    fn from_code(code: u8) -> ThreadState {
        ThreadState::ALL
            .into_iter()
            .find(|s| *s as u8 == code)
            .unwrap_or(ThreadState::Idle)
    }
}

/// One thread's entry in the table.
///
/// Invariants:
/// - `role` is 0 while the slot is free, else the [`Role`] code of its one
///   owner. It changes only by [`claim`]'s `compare_exchange(0, role)` and
///   by the owner's release (a store of 0), so a slot never has two owners
///   (test `concurrent_claims_never_share_a_slot`).
/// - Only the owner stores to `word` and `since`; readers only load. The
///   owner resets `word` before releasing, so a new owner's slot never
///   shows the previous owner's job.
/// - `word` packs the state, the endpoint and the job id into one atomic
///   (`state | endpoint << 8 | job << 16`; job ids below 2^48, which a
///   million jobs a second would take nine years to pass), so a reader never sees one
///   job's id with another state. `since` is a second atomic: a reader may
///   pair a new state with the previous state's start for an instant, which
///   only misreports a duration, never a job (test
///   `the_state_word_keeps_large_job_ids`).
///
/// Aligned to a cache line (64 bytes), so that two threads publishing on
/// every request never write to the same line (no false sharing; test
/// `slots_do_not_share_cache_lines`).
#[repr(align(64))]
struct Slot {
    role: AtomicU8,
    word: AtomicU64,
    /// When the current state began, in nanoseconds since the table's epoch.
    since: AtomicU64,
}

impl Slot {
    const fn new() -> Slot {
        Slot {
            role: AtomicU8::new(0),
            word: AtomicU64::new(0),
            since: AtomicU64::new(0),
        }
    }

    fn publish(&self, state: ThreadState, endpoint: u8, job: u64) {
        let word = u64::from(state as u8) | u64::from(endpoint) << 8 | job << 16;
        self.word.store(word, Ordering::Release);
        self.since.store(board().now_nanos(), Ordering::Release);
    }
}

/// The table of slots, and the epoch its times count from.
struct Scoreboard {
    slots: Box<[Slot]>,
    /// When the table was made: the origin of `Slot::since` and the uptime.
    epoch: Instant,
}

impl Scoreboard {
    fn new(slots: usize) -> Scoreboard {
        Scoreboard {
            slots: (0..slots).map(|_| Slot::new()).collect(),
            epoch: Instant::now(),
        }
    }

    fn now_nanos(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// The configuration the status endpoints report as "limits in force".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Configured {
    limits: Limits,
    workers: usize,
    max_pending_jobs: usize,
    /// Where `limits.max_connections` comes from.
    descriptors: Budget,
}

static BOARD: OnceLock<Scoreboard> = OnceLock::new();
static CONFIGURED: OnceLock<Configured> = OnceLock::new();

thread_local! {
    /// The slot this thread owns, if it claimed one.
    static CURRENT: Cell<Option<&'static Slot>> = const { Cell::new(None) };
}

/// Sizes the table for `limits.max_connections` connections and records the
/// limits `/api/status` reports, with the descriptor budget that set the
/// connection limit. Call once, before the server starts; a second call (or
/// a call after a thread already claimed a slot, which sizes the table for
/// the default limits) changes nothing.
pub fn configure(limits: Limits, workers: usize, descriptors: Budget) {
    let _ = CONFIGURED.set(Configured {
        limits,
        workers,
        max_pending_jobs: MAX_PENDING_JOBS,
        descriptors,
    });
    let _ = BOARD.set(Scoreboard::new(limits.max_connections + OTHER_SLOTS));
}

/// The limits recorded by [`configure`], if it was called.
fn configured() -> Option<Configured> {
    CONFIGURED.get().copied()
}

fn board() -> &'static Scoreboard {
    BOARD.get_or_init(|| Scoreboard::new(MAX_CONNECTIONS + OTHER_SLOTS))
}

/// How long the table has existed (the server's uptime, when
/// [`configure`] is called at start-up).
#[must_use]
pub fn uptime() -> Duration {
    board().epoch.elapsed()
}

/// Ownership of one slot; dropping it frees the slot.
pub struct SlotGuard {
    slot: &'static Slot,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(None));
        self.slot.word.store(0, Ordering::Release);
        self.slot.role.store(0, Ordering::Release);
    }
}

/// Claims a free slot for the calling thread, in `state`, and makes it the
/// thread's current slot (the one [`set`] publishes to) until the guard is
/// dropped. `None` when every slot is taken: the thread then runs unseen.
///
/// Free slots are found by a scan with `compare_exchange`, once per thread
/// (per connection), never per request.
#[must_use]
pub fn claim(role: Role, state: ThreadState) -> Option<SlotGuard> {
    // Test, then test-and-set: a plain load skips taken slots without
    // taking their cache line away from the thread publishing there.
    let slot = board().slots.iter().find(|slot| {
        slot.role.load(Ordering::Relaxed) == 0
            && slot
                .role
                .compare_exchange(0, role as u8, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
    })?;
    slot.publish(state, 0, 0);
    CURRENT.with(|c| c.set(Some(slot)));
    Some(SlotGuard { slot })
}

/// Publishes `state` for the calling thread (no job). A no-op on a thread
/// without a slot.
pub fn set(state: ThreadState) {
    set_job(state, 0);
}

/// Publishes `state` about job `job` (0: none) for the calling thread.
pub fn set_job(state: ThreadState, job: u64) {
    if let Some(slot) = CURRENT.with(Cell::get) {
        slot.publish(state, 0, job);
    }
}

/// Records which endpoint (its index in [`crate::stats::Endpoint::ALL`],
/// plus one) the calling thread's current job is for, keeping its state,
/// job and start time.
pub fn set_endpoint(endpoint: u8) {
    if let Some(slot) = CURRENT.with(Cell::get) {
        let word = slot.word.load(Ordering::Acquire);
        let word = (word & !0xff00) | u64::from(endpoint) << 8;
        slot.word.store(word, Ordering::Release);
    }
}

/// The calling thread's published view of itself, if it owns a slot.
pub fn current() -> Option<ThreadView> {
    let slot = CURRENT.with(Cell::get)?;
    let index = board().slots.iter().position(|s| std::ptr::eq(s, slot))?;
    view(index, slot)
}

/// What one thread published, as read by an observer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadView {
    /// The slot's index in the table (stable while the thread lives).
    pub slot: usize,
    pub role: Role,
    pub state: ThreadState,
    /// The job being run or waited for; 0 for none.
    pub job: u64,
    /// The job's endpoint index plus one; 0 for none or unknown.
    pub endpoint: u8,
    /// How long the thread has been in `state`.
    pub for_: Duration,
}

fn view(index: usize, slot: &Slot) -> Option<ThreadView> {
    let role = Role::from_code(slot.role.load(Ordering::Acquire))?;
    let word = slot.word.load(Ordering::Acquire);
    let since = slot.since.load(Ordering::Acquire);
    Some(ThreadView {
        slot: index,
        role,
        state: ThreadState::from_code((word & 0xff) as u8),
        job: word >> 16,
        endpoint: ((word >> 8) & 0xff) as u8,
        for_: Duration::from_nanos(board().now_nanos().saturating_sub(since)),
    })
}

/// Every thread that owns a slot now, in slot order. Only loads atomics:
/// it never waits for, and is never waited for by, the threads it reports.
#[must_use]
pub fn threads() -> Vec<ThreadView> {
    board()
        .slots
        .iter()
        .enumerate()
        .filter_map(|(i, slot)| view(i, slot))
        .collect()
}

/// How many of `threads` have `role` and `state`.
#[must_use]
pub fn count(threads: &[ThreadView], role: Role, state: ThreadState) -> usize {
    threads
        .iter()
        .filter(|t| t.role == role && t.state == state)
        .count()
}

/// "3.2 ms" under a second, "4.1 s" above.
fn human(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{:.1} ms", d.as_secs_f64() * 1000.0)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

impl ThreadView {
    /// The endpoint's name, when the slot names one.
    #[must_use]
    pub fn endpoint_name(&self) -> Option<&'static str> {
        let index = usize::from(self.endpoint).checked_sub(1)?;
        crate::stats::Endpoint::ALL.get(index).map(|e| e.name())
    }

    /// One line a person reads: `running job_id_7 (best5) for 3.2 ms`,
    /// `waiting for job_id_7 for 12.0 ms`, `idle keep-alive for 1.3 s`.
    #[must_use]
    pub fn describe(&self) -> String {
        let doing = match (self.state, self.job) {
            (ThreadState::Running, job) if job > 0 => match self.endpoint_name() {
                Some(endpoint) => format!("running job_id_{job} ({endpoint})"),
                None => format!("running job_id_{job}"),
            },
            (ThreadState::WaitingForJob, job) if job > 0 => format!("waiting for job_id_{job}"),
            (state, _) => state.name().to_owned(),
        };
        format!("{doing} for {}", human(self.for_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;

    #[test]
    fn a_claimed_slot_publishes_states_and_is_freed_on_drop() {
        let guard = claim(Role::Persister, ThreadState::Idle).expect("a free slot");
        let me = current().expect("this thread owns a slot");
        assert_eq!(
            (me.role, me.state, me.job),
            (Role::Persister, ThreadState::Idle, 0)
        );
        set_job(ThreadState::Flushing, 42);
        set_endpoint(3);
        let me = current().unwrap();
        assert_eq!(
            (me.state, me.job, me.endpoint),
            (ThreadState::Flushing, 42, 3)
        );
        assert!(threads().iter().any(|t| t.slot == me.slot && t.job == 42));
        drop(guard);
        assert_eq!(current(), None);
        assert!(!threads().iter().any(|t| t.slot == me.slot));
        // Without a slot, publishing is a no-op, not a panic.
        set(ThreadState::Writing);
        assert_eq!(current(), None);
    }

    #[test]
    fn concurrent_claims_never_share_a_slot() {
        const THREADS: usize = 16;
        let barrier = Barrier::new(THREADS);
        let slots: Vec<usize> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        let _guard = claim(Role::Connection, ThreadState::ReadingHead).unwrap();
                        let slot = current().unwrap().slot;
                        // Hold every slot until all threads have claimed theirs.
                        barrier.wait();
                        slot
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut unique = slots.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), THREADS, "{slots:?}");
    }

    #[test]
    fn slots_do_not_share_cache_lines() {
        assert_eq!(std::mem::align_of::<Slot>(), 64);
        assert_eq!(std::mem::size_of::<Slot>(), 64);
    }

    #[test]
    fn the_state_word_keeps_large_job_ids() {
        let _guard = claim(Role::Worker, ThreadState::Idle).unwrap();
        let id = (1u64 << 47) + 5;
        set_job(ThreadState::Running, id);
        set_endpoint(9);
        let me = current().unwrap();
        assert_eq!(
            (me.state, me.job, me.endpoint),
            (ThreadState::Running, id, 9)
        );
        assert!(me.describe().starts_with(&format!(
            "running job_id_{id} (state_mean_by_category) for "
        )));
    }
}
