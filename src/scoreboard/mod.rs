//! The scoreboard: what every thread of the server is doing right now, in
//! the manner of Apache's `mod_status` and Postgres' `pg_stat_activity`.
//!
//! Every thread the server owns (the accept loop, each connection, each
//! worker, the log writer, a persister if there is one; not the start-up
//! thread that lists the results directory, which ends before the
//! scoreboard is set up) claims one [`Slot`]
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
//! Every state change also closes the span of the state it leaves on the
//! thread's track of the timeline ([`crate::trace`]), so the scoreboard and
//! the timeline cannot tell different stories.
//!
//! Files: here the table and the thread-facing API; `job_counts.rs` the
//! jobs queued, running and saving (one atomic word); `status_json.rs` the
//! `/api/status` body.

mod job_counts;
mod status_json;
mod timeline;

pub use job_counts::{job_counts, job_moved, JobCounts, Stage};
pub use status_json::render_json;
pub use timeline::{job_queued, job_taken, record_span, render_trace};

use crate::descriptors::Budget;
use crate::limits::{Limits, MAX_CONNECTIONS, MAX_PENDING_JOBS};
use crate::trace::Timeline;
use std::cell::Cell;
// A slot's atomics are loom's under `--cfg loom`, so that the slot
// protocol itself is model-checked (`loom_model` below, with every memory
// ordering); std's otherwise. Under loom (and shuttle) the process-wide
// table has no slots (`table_size`): loom's atomics live only inside one
// model run, and every thread of the other protocols' models runs unseen.
#[cfg(loom)]
use loom::sync::atomic::{AtomicU64, AtomicU8};
use std::sync::atomic::Ordering;
#[cfg(not(loom))]
use std::sync::atomic::{AtomicU64, AtomicU8};
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
    /// A worker writing its job's result file (the job is still `running`).
    WritingResult = 10,
}

impl ThreadState {
    /// Every state, in the order of the status page's legend.
    pub const ALL: [ThreadState; 11] = [
        ThreadState::Accepting,
        ThreadState::Idle,
        ThreadState::Running,
        ThreadState::WritingResult,
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
            ThreadState::WritingResult => "writing result",
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
/// - `owner` is 0 while the slot is free, else the [`Role`] code of its one
///   owner. It changes only by [`claim`]'s `compare_exchange(0, role)` and
///   by the owner's release (a store of 0), so a slot never has two owners
///   (test `concurrent_claims_never_share_a_slot`). It is the ownership
///   token only: readers never read it.
/// - Only the owner stores to `word` and `since`; readers only load. The
///   owner writes its role into `word` when it claims the slot and resets
///   `word` to 0 before it releases it.
/// - `word` packs the state, the endpoint, the owner's role and the job id
///   into one atomic (`state | endpoint << 8 | role << 13 | job << 16`;
///   endpoints below 32, roles below 8, job ids below 2^48, which a million
///   jobs a second would take nine years to pass). Every value `word` ever
///   holds was written whole by one owner, so a reader that loads it once
///   sees a role, a state and a job of the *same* owner, never a reused
///   slot's old role with a new owner's state (test
///   `a_reader_never_pairs_one_owners_role_with_anothers_state`).
///   `since` is a second atomic: a reader may pair a new state with the
///   previous state's start for an instant, which only misreports a
///   duration, never a role, state or job (test
///   `the_state_word_keeps_large_job_ids`).
///
/// Aligned to a cache line (64 bytes), so that two threads publishing on
/// every request never write to the same line (no false sharing; test
/// `slots_do_not_share_cache_lines`).
#[repr(align(64))]
struct Slot {
    owner: AtomicU8,
    word: AtomicU64,
    /// When the current state began, in nanoseconds since the table's epoch.
    since: AtomicU64,
}

/// The fields of a slot's `word`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Word {
    state: ThreadState,
    endpoint: u8,
    role: Option<Role>,
    job: u64,
}

impl Word {
    const ENDPOINT_BITS: u32 = 5;
    const ROLE_SHIFT: u32 = 8 + Word::ENDPOINT_BITS;
    const JOB_SHIFT: u32 = 16;

    fn pack(self) -> u64 {
        u64::from(self.state as u8)
            | u64::from(self.endpoint & 0x1f) << 8
            | u64::from(self.role.map_or(0, |r| r as u8)) << Word::ROLE_SHIFT
            | self.job << Word::JOB_SHIFT
    }

    fn unpack(word: u64) -> Word {
        // Each field is masked to its width first: the casts cannot truncate.
        Word {
            state: ThreadState::from_code((word & 0xff) as u8),
            endpoint: ((word >> 8) & 0x1f) as u8,
            role: Role::from_code(((word >> Word::ROLE_SHIFT) & 0x7) as u8),
            job: word >> Word::JOB_SHIFT,
        }
    }
}

impl Slot {
    fn new() -> Slot {
        Slot {
            owner: AtomicU8::new(0),
            word: AtomicU64::new(0),
            since: AtomicU64::new(0),
        }
    }

    /// Publishes `next` (the owner only) as of `now`, in nanoseconds on the
    /// table's clock, or as of the last state's start if that is later (a
    /// reading taken before it), so that `since` never goes back. The
    /// state it leaves, if it is one the timeline shows, becomes a span on
    /// track `track`.
    fn publish(&self, track: usize, next: Word, now: u64) {
        let since = self.since.load(Ordering::Relaxed);
        let now = now.max(since);
        let was = Word::unpack(self.word.load(Ordering::Relaxed));
        if let (Some(role), Some(span)) = (was.role, span_of(was)) {
            board()
                .timeline
                .record(track, role as u8, span, since, now, was.job);
        }
        self.word.store(next.pack(), Ordering::Release);
        self.since.store(now, Ordering::Release);
    }
}

/// The timeline span a thread in `word`'s state is drawing, if any (waiting
/// states — idle, accepting, keep-alive — are not drawn).
fn span_of(word: Word) -> Option<crate::trace::Span> {
    use crate::trace::Span;
    Some(match (word.role?, word.state) {
        (Role::Connection, ThreadState::ReadingHead) => Span::ReadHead,
        (Role::Connection, ThreadState::ReadingBody) => Span::ReadBody,
        (Role::Connection, ThreadState::Handling) => Span::Handle,
        (Role::Connection, ThreadState::WaitingForJob) => Span::WaitForJob,
        (Role::Connection, ThreadState::Writing) => Span::WriteResponse,
        (Role::Worker, ThreadState::Running) => Span::JobRun,
        (Role::Worker, ThreadState::WritingResult) => Span::Save,
        (Role::Persister, ThreadState::Flushing) => Span::Flush,
        (Role::LogWriter, ThreadState::Flushing) => Span::LogWrite,
        _ => return None,
    })
}

/// The table of slots, and the epoch its times count from.
struct Scoreboard {
    slots: Box<[Slot]>,
    /// One track per slot.
    timeline: Timeline,
    /// When the table was made: the origin of `Slot::since`, of the
    /// timeline's times, and of the uptime.
    epoch: Instant,
}

impl Scoreboard {
    fn new(slots: usize) -> Scoreboard {
        Scoreboard {
            slots: (0..slots).map(|_| Slot::new()).collect(),
            timeline: Timeline::new(slots),
            epoch: Instant::now(),
        }
    }

    fn now_nanos(&self) -> u64 {
        self.nanos_at(Instant::now())
    }

    /// `at` on this table's clock: nanoseconds since the epoch (0 for a
    /// time before it).
    fn nanos_at(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }
}

/// Nanoseconds since the table's epoch: the clock of every slot's `since`
/// and of the timeline ([`crate::trace`]).
#[must_use]
pub fn now_nanos() -> u64 {
    board().now_nanos()
}

/// The configuration the status endpoints report as "limits in force".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Configured {
    limits: Limits,
    workers: usize,
    max_pending_jobs: usize,
    /// Where `limits.max_connections` comes from.
    descriptors: Budget,
    /// How long every job sleeps before it computes (`--job-delay`).
    job_delay: Duration,
}

static BOARD: OnceLock<Scoreboard> = OnceLock::new();
static CONFIGURED: OnceLock<Configured> = OnceLock::new();

thread_local! {
    /// The slot this thread owns, if it claimed one, and its index.
    static CURRENT: Cell<Option<(&'static Slot, usize)>> = const { Cell::new(None) };
}

/// Sizes the table for `limits.max_connections` connections and records the
/// limits `/api/status` reports, with the descriptor budget that set the
/// connection limit and the job delay. Call once, before the server starts;
/// a second call (or a call after a thread already claimed a slot, which
/// sizes the table for the default limits) changes nothing.
pub fn configure(limits: Limits, workers: usize, descriptors: Budget, job_delay: Duration) {
    let _ = CONFIGURED.set(Configured {
        limits,
        workers,
        max_pending_jobs: MAX_PENDING_JOBS,
        descriptors,
        job_delay,
    });
    let _ = BOARD.set(Scoreboard::new(table_size(limits.max_connections)));
}

/// The limits recorded by [`configure`], if it was called.
fn configured() -> Option<Configured> {
    CONFIGURED.get().copied()
}

fn board() -> &'static Scoreboard {
    BOARD.get_or_init(|| Scoreboard::new(table_size(MAX_CONNECTIONS)))
}

/// Slots for `connections` connections and the other threads; none under
/// loom (see the imports) or shuttle (whose threads share one OS thread,
/// and so the thread-local that names a thread's slot).
fn table_size(connections: usize) -> usize {
    if cfg!(any(loom, shuttle)) {
        0
    } else {
        connections + OTHER_SLOTS
    }
}

/// How many slots the table has: the timeline's tracks are numbered below.
#[must_use]
pub fn slot_count() -> usize {
    board().slots.len()
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
        self.slot.release();
    }
}

impl Slot {
    /// Takes the slot for `role` if it is free (test, then test-and-set: a
    /// plain load skips a taken slot without taking its cache line away
    /// from the thread publishing there), and publishes `state`.
    fn try_claim(&self, index: usize, role: Role, state: ThreadState) -> bool {
        let taken = self.owner.load(Ordering::Relaxed) == 0
            && self
                .owner
                .compare_exchange(0, role as u8, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok();
        if taken {
            let word = Word {
                state,
                endpoint: 0,
                role: Some(role),
                job: 0,
            };
            self.publish(index, word, now_nanos());
        }
        taken
    }

    /// Frees the slot (its owner only): the word first, so that no reader
    /// sees the old owner's role once the slot can be claimed again.
    fn release(&self) {
        self.word.store(0, Ordering::Release);
        self.owner.store(0, Ordering::Release);
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
    let (index, slot) = board()
        .slots
        .iter()
        .enumerate()
        .find(|(index, slot)| slot.try_claim(*index, role, state))?;
    CURRENT.with(|c| c.set(Some((slot, index))));
    Some(SlotGuard { slot })
}

/// The calling thread's slot and its index, if it owns one.
fn mine() -> Option<(&'static Slot, usize)> {
    CURRENT.with(Cell::get)
}

/// The calling thread's slot index: its track on the timeline.
#[must_use]
pub fn my_track() -> Option<usize> {
    mine().map(|(_, index)| index)
}

/// Publishes `state` for the calling thread (no job). A no-op on a thread
/// without a slot.
pub fn set(state: ThreadState) {
    set_job(state, 0);
}

/// [`set`] as of `at`, a clock reading the caller already took: a
/// connection reads the clock once per step of a request and shares the
/// reading between this and its deadlines.
pub fn set_at(state: ThreadState, at: Instant) {
    publish_mine(state, 0, Some(at));
}

/// Publishes `state` about job `job` (0: none) for the calling thread.
pub fn set_job(state: ThreadState, job: u64) {
    publish_mine(state, job, None);
}

/// Publishes `state` and `job` for the calling thread, as of `at` or, if
/// `None`, now (the clock is read only by a thread that owns a slot).
fn publish_mine(state: ThreadState, job: u64, at: Option<Instant>) {
    if let Some((slot, index)) = mine() {
        let role = Word::unpack(slot.word.load(Ordering::Relaxed)).role;
        let now = at.map_or_else(now_nanos, |at| board().nanos_at(at));
        let word = Word {
            state,
            endpoint: 0,
            role,
            job,
        };
        slot.publish(index, word, now);
    }
}

/// Publishes `state` for the calling thread, keeping its job and endpoint.
pub fn set_keeping_job(state: ThreadState) {
    if let Some((slot, index)) = mine() {
        let was = Word::unpack(slot.word.load(Ordering::Relaxed));
        slot.publish(index, Word { state, ..was }, now_nanos());
    }
}

/// Records which endpoint (its index in [`crate::stats::Endpoint::ALL`],
/// plus one) the calling thread's current job is for, keeping its state,
/// job and start time.
pub fn set_endpoint(endpoint: u8) {
    if let Some((slot, _)) = mine() {
        let was = Word::unpack(slot.word.load(Ordering::Relaxed));
        slot.word
            .store(Word { endpoint, ..was }.pack(), Ordering::Release);
    }
}

/// The calling thread's published view of itself, if it owns a slot.
#[must_use]
pub fn current() -> Option<ThreadView> {
    let (slot, index) = mine()?;
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

/// Reads one slot: role, state, endpoint and job from one load of `word`
/// (see [`Slot`]); `None` for a free slot.
fn view(index: usize, slot: &Slot) -> Option<ThreadView> {
    let word = Word::unpack(slot.word.load(Ordering::Acquire));
    let since = slot.since.load(Ordering::Acquire);
    Some(ThreadView {
        slot: index,
        role: word.role?,
        state: word.state,
        job: word.job,
        endpoint: word.endpoint,
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

/// The reader this module had before the role moved into the state word,
/// kept for tests only: it loads the slot's owner token, *then* its state
/// word, with no re-check, so it can pair a reused slot's old role with a
/// state its owner never had. `between` runs between its two loads (a test
/// puts another thread's moves there). The loom model
/// `loom_model::the_old_reader_fails_the_same_model` finds the interleaving
/// that breaks it; `tests::the_old_reader_can_pair_a_stale_role_with_a_new_state`
/// plays it in order.
#[cfg(test)]
fn old_view(slot: &Slot, between: impl FnOnce()) -> Option<(Option<Role>, ThreadState)> {
    let owner = slot.owner.load(Ordering::Acquire);
    if owner == 0 {
        return None;
    }
    between();
    let word = Word::unpack(slot.word.load(Ordering::Acquire));
    Some((Role::from_code(owner), word.state))
}

/// Values owned by other modules, read by the API when it renders
/// `/api/status` and `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// False once shutdown has begun.
    pub accepting: bool,
    /// Lines waiting for the log writer.
    pub log_queue_depth: usize,
    /// Lines the logger dropped since start.
    pub log_lines_dropped: u64,
    /// Why results cannot be saved, while the server is degraded
    /// (`Jobs::degraded_cause`, read by the API).
    pub degraded: Option<std::sync::Arc<str>>,
}

impl Snapshot {
    /// `serving`, `draining` (no new jobs; some still pending) or `drained`,
    /// with `pending` jobs not yet ended.
    #[must_use]
    pub fn shutdown_phase(&self, pending: u64) -> &'static str {
        match (self.accepting, pending) {
            (true, _) => "serving",
            (false, 0) => "drained",
            (false, _) => "draining",
        }
    }
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

/// The slot protocol under loom (CONCURRENCY.md, "Model tests"): claim,
/// publish, release and read, with the orderings the code uses.
#[cfg(all(test, loom))]
mod loom_model {
    use super::*;
    use crate::sync::{thread, Arc};

    /// What a reader reports for a slot: the owner's role and its state.
    type Seen = Option<(Option<Role>, ThreadState)>;

    /// The reader the server uses ([`view`]): one load of the state word.
    fn reader_in_use(slot: &Slot) -> Seen {
        view(0, slot).map(|v| (Some(v.role), v.state))
    }

    /// The old reader ([`old_view`]): the owner token, then the state word.
    fn old_reader(slot: &Slot) -> Seen {
        old_view(slot, || ())
    }

    /// What a reader may report while a worker (running a job) hands the
    /// slot over to a connection (reading a head): either owner in its own
    /// state, or a free slot.
    fn consistent(seen: Seen) -> bool {
        matches!(
            seen,
            None | Some(
                (Some(Role::Worker), ThreadState::Running)
                    | (Some(Role::Connection), ThreadState::ReadingHead)
            )
        )
    }

    /// A worker owns a slot; it releases the slot while a connection tries
    /// to claim it and `read` reads it, and `on_read` judges what it saw.
    /// Afterwards the slot shows the connection if and only if its claim
    /// succeeded — which holds only if the release's `Release` store of the
    /// owner token orders the old owner's `word = 0` before the new
    /// owner's publish (the claim's `Acquire`).
    fn a_slot_changing_owner(
        read: fn(&Slot) -> Seen,
        on_read: impl Fn(Seen) + Send + Sync + 'static,
    ) {
        crate::sync::loom_model(None, move || {
            // Tracks beyond the timeline's: no spans are recorded.
            let track = usize::MAX;
            let slot = Arc::new(Slot::new());
            assert!(slot.try_claim(track, Role::Worker, ThreadState::Running));
            let worker = {
                let slot = Arc::clone(&slot);
                thread::spawn(move || slot.release())
            };
            let connection = {
                let slot = Arc::clone(&slot);
                thread::spawn(move || {
                    slot.try_claim(track, Role::Connection, ThreadState::ReadingHead)
                })
            };
            on_read(read(&slot));
            worker.join().unwrap();
            let claimed = connection.join().unwrap();
            let expected = claimed.then_some((Some(Role::Connection), ThreadState::ReadingHead));
            assert_eq!(reader_in_use(&slot), expected, "claimed: {claimed}");
        });
    }

    /// The slot protocol and the reader in use, in every interleaving: the
    /// handover leaves the slot showing its new owner, and the reader
    /// reports only what an owner published (this part holds by
    /// construction: role and state come from one load of one word).
    #[test]
    fn the_reader_never_pairs_one_owners_role_with_anothers_state() {
        a_slot_changing_owner(reader_in_use, |seen| {
            assert!(
                consistent(seen),
                "the reader paired a role with a state its owner never had: {seen:?}"
            );
        });
    }

    /// The same model with the old reader: loom finds the interleavings
    /// it cannot survive — among them the owner token loaded (a worker),
    /// the slot released and re-claimed by a connection, then the word
    /// loaded: "a worker reading a request head".
    #[test]
    fn the_old_reader_fails_the_same_model() {
        let wrong = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = std::sync::Arc::clone(&wrong);
        a_slot_changing_owner(old_reader, move |seen| {
            if !consistent(seen) {
                record.lock().unwrap().push(seen);
            }
        });
        let wrong = wrong.lock().unwrap();
        assert!(
            wrong.contains(&Some((Some(Role::Worker), ThreadState::ReadingHead))),
            "loom never found the stale pairing: {wrong:?}"
        );
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
    fn set_at_dates_a_state_from_the_given_reading_and_never_back() {
        let _guard = claim(Role::Connection, ThreadState::Idle).expect("a free slot");
        let read_before = Instant::now();
        std::thread::sleep(Duration::from_millis(30));
        set_at(ThreadState::KeepAlive, read_before);
        let me = current().unwrap();
        assert_eq!(me.state, ThreadState::KeepAlive);
        assert!(me.for_ >= Duration::from_millis(30), "{:?}", me.for_);
        // A reading older than the state now shown dates the next one from
        // that state's start instead: `since` does not go back.
        let writing_from = Instant::now();
        set(ThreadState::Writing);
        set_at(ThreadState::Handling, read_before);
        let me = current().unwrap();
        assert_eq!(me.state, ThreadState::Handling);
        assert!(me.for_ <= writing_from.elapsed(), "{:?}", me.for_);
    }

    #[test]
    fn shutdown_phases() {
        let mut s = Snapshot {
            accepting: true,
            ..Snapshot::default()
        };
        assert_eq!(s.shutdown_phase(3), "serving");
        s.accepting = false;
        assert_eq!(s.shutdown_phase(3), "draining");
        assert_eq!(s.shutdown_phase(0), "drained");
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

    /// Two threads take turns owning one slot (a worker that is always
    /// `running`, a connection always `reading head`) while a reader reads
    /// it: every view pairs a role with its own owner's state.
    #[test]
    fn a_reader_never_pairs_one_owners_role_with_anothers_state() {
        let slot = Slot::new();
        // Beyond the timeline's tracks: no spans are recorded.
        let track = usize::MAX;
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            for (role, state) in [
                (Role::Worker, ThreadState::Running),
                (Role::Connection, ThreadState::ReadingHead),
            ] {
                let (slot, stop) = (&slot, &stop);
                s.spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        if slot.try_claim(track, role, state) {
                            slot.release();
                        }
                    }
                });
            }
            let deadline = Instant::now() + Duration::from_secs(30);
            let mut seen = 0;
            while seen < 20_000 {
                assert!(Instant::now() < deadline, "the owners never ran");
                if let Some(v) = view(0, &slot) {
                    seen += 1;
                    let expected = match v.role {
                        Role::Worker => ThreadState::Running,
                        _ => ThreadState::ReadingHead,
                    };
                    assert_eq!(v.state, expected, "{v:?}");
                }
            }
            stop.store(true, Ordering::Relaxed);
        });
    }

    /// The interleaving the old reader cannot survive, played in order: it
    /// loads the owner (a worker), the worker releases the slot and a
    /// connection claims it, then it loads the word: "a worker reading a
    /// request head". The reader in use takes both from the one word.
    #[test]
    fn the_old_reader_can_pair_a_stale_role_with_a_new_state() {
        let slot = Slot::new();
        assert!(slot.try_claim(usize::MAX, Role::Worker, ThreadState::Running));
        let seen = old_view(&slot, || {
            slot.release();
            assert!(slot.try_claim(usize::MAX, Role::Connection, ThreadState::ReadingHead));
        });
        assert_eq!(seen, Some((Some(Role::Worker), ThreadState::ReadingHead)));
        let now = view(0, &slot).unwrap();
        assert_eq!(
            (now.role, now.state),
            (Role::Connection, ThreadState::ReadingHead)
        );
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
