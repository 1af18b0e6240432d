//! The timeline: what each thread did recently, as spans in fixed-capacity
//! ring buffers, answered by `GET /api/trace` in Chrome's Trace Event
//! Format and drawn live by `/status`.
//!
//! # Writing without locks
//!
//! Each thread that owns a scoreboard slot writes to the ring of its slot
//! (its *track*), and only that thread does: a ring has one writer at a
//! time (a slot has one owner; a new owner's claim happens after the last
//! owner's release), so the writer needs no read-modify-write at all. One
//! span costs the writer a load of its own head and five stores (see
//! [`Ring::push`]): no lock, no allocation, no shared cache line with
//! another writer. Readers never block writers: each entry is a sequence
//! lock (an odd `seq` while it is being written), and a reader that sees
//! `seq` odd or changed across its loads skips the entry
//! (test `a_reader_never_sees_a_torn_span`).
//!
//! # Fixed capacity
//!
//! A ring is made on the first span of its track and never grows:
//! [`CONNECTION_SPANS`] entries for a connection's track, [`THREAD_SPANS`]
//! for the others (workers, persister, log writer, accept loop), 32 bytes
//! each. The tracks are the scoreboard's slots, so memory is bounded by the
//! slot table whatever the number of jobs or requests: 2 KB per track
//! first written by a connection (about 4 MB for the default 2048
//! connections) and 32 KB per track of another thread (a worker, the
//! persister, a log writer, the accept loop), plus 1 MB of queueing times.
//! The server's whole RSS after 200,000 jobs stays under 40 MB: checked by
//! `make bench` (its `RSS MB after … jobs` row), not by `make test`. A full
//! ring overwrites its oldest span; the
//! answer of `/api/trace` says how far back every track is still complete.
//!
//! Files: here the rings; `chrome_json.rs` the Trace Event Format answer.

mod chrome_json;

pub use chrome_json::render;

use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::sync::OnceLock;

/// Spans kept per connection track.
pub const CONNECTION_SPANS: usize = 64;
/// Spans kept per track of a worker, the persister, the log writer or the
/// accept loop (a worker keeps about 340 jobs: three spans each).
pub const THREAD_SPANS: usize = 1024;
/// Jobs whose queueing time is remembered until a worker takes them;
/// more queued at once lose their `job queued` span (never a wrong one).
const QUEUE_TIMES: usize = 1 << 16;
// `Timeline::queued_at`'s entries are never reused while read.
const _: () = assert!(crate::limits::MAX_PENDING_JOBS < QUEUE_TIMES);

/// What a span shows. The code is stored in the ring; the name and the
/// category are what the Trace Event Format answer shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Span {
    /// The accept loop handing a new connection to its thread.
    Accept = 1,
    ReadHead = 2,
    ReadBody = 3,
    Handle = 4,
    WaitForJob = 5,
    WriteResponse = 6,
    /// From a job's submission until a worker takes it.
    JobQueued = 7,
    /// A worker running a job (its `--job-delay` sleep included).
    JobRun = 8,
    /// A worker writing the job's result file.
    Save = 9,
    /// The persister flushing the results directory for a batch of jobs.
    Flush = 10,
    /// The log writer writing (and flushing) a batch of lines.
    LogWrite = 11,
}

impl Span {
    const ALL: [Span; 11] = [
        Span::Accept,
        Span::ReadHead,
        Span::ReadBody,
        Span::Handle,
        Span::WaitForJob,
        Span::WriteResponse,
        Span::JobQueued,
        Span::JobRun,
        Span::Save,
        Span::Flush,
        Span::LogWrite,
    ];

    /// The event's `name`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Span::Accept => "accept",
            Span::ReadHead => "read head",
            Span::ReadBody => "read body",
            Span::Handle => "handle",
            Span::WaitForJob => "wait for job",
            Span::WriteResponse => "write response",
            Span::JobQueued => "job queued",
            Span::JobRun => "job run",
            Span::Save => "save",
            Span::Flush => "flush",
            Span::LogWrite => "log write",
        }
    }

    /// The event's `cat`: `http`, `job` or `disk`.
    #[must_use]
    pub fn category(self) -> &'static str {
        match self {
            Span::Accept
            | Span::ReadHead
            | Span::ReadBody
            | Span::Handle
            | Span::WaitForJob
            | Span::WriteResponse => "http",
            Span::JobQueued | Span::JobRun => "job",
            Span::Save | Span::Flush | Span::LogWrite => "disk",
        }
    }

    fn from_code(code: u8) -> Option<Span> {
        Span::ALL.into_iter().find(|s| *s as u8 == code)
    }
}

/// One span as read back: times in nanoseconds since the scoreboard's
/// epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanRecord {
    pub track: usize,
    /// The scoreboard role code of the thread that wrote it.
    pub role: u8,
    pub span: Span,
    pub start: u64,
    pub end: u64,
    /// The job it is about; 0 for none.
    pub job: u64,
    /// Still going on (read from the scoreboard, not from a ring).
    pub open: bool,
}

/// One entry of a ring: a sequence lock over three words.
///
/// Invariant: `seq` is odd exactly while the ring's writer is storing the
/// other three fields; it grows by two per span written here, so a reader
/// that loads the same even `seq` before and after the fields read one
/// span whole.
#[derive(Default)]
struct Entry {
    seq: AtomicU64,
    start: AtomicU64,
    end: AtomicU64,
    /// `span | role << 8 | job << 16` (job ids below 2^48).
    meta: AtomicU64,
}

/// One track's spans.
struct Ring {
    /// Spans written so far (the next goes to `head % len`). Stored only by
    /// the track's one writer.
    head: AtomicU64,
    entries: Box<[Entry]>,
}

impl Ring {
    fn new(capacity: usize) -> Ring {
        Ring {
            head: AtomicU64::new(0),
            entries: (0..capacity).map(|_| Entry::default()).collect(),
        }
    }

    /// Writes one span (by the track's one writer only).
    fn push(&self, meta: u64, start: u64, end: u64) {
        let head = self.head.load(Ordering::Relaxed);
        let len = self.entries.len() as u64;
        // `head % len` is below the length: the cast cannot truncate.
        #[allow(clippy::cast_possible_truncation)]
        let entry = &self.entries[(head % len) as usize];
        let seq = entry.seq.load(Ordering::Relaxed);
        entry.seq.store(seq + 1, Ordering::Relaxed);
        // The odd `seq` is visible before any field changes.
        fence(Ordering::Release);
        entry.start.store(start, Ordering::Relaxed);
        entry.end.store(end, Ordering::Relaxed);
        entry.meta.store(meta, Ordering::Relaxed);
        entry.seq.store(seq + 2, Ordering::Release);
        self.head.store(head + 1, Ordering::Release);
    }

    /// Every whole span in the ring (entries being written are skipped),
    /// and whether the ring has wrapped (lost its oldest spans).
    fn read(&self, track: usize, into: &mut Vec<SpanRecord>) -> bool {
        for entry in &*self.entries {
            let before = entry.seq.load(Ordering::Acquire);
            if before == 0 || before % 2 == 1 {
                continue;
            }
            let start = entry.start.load(Ordering::Relaxed);
            let end = entry.end.load(Ordering::Relaxed);
            let meta = entry.meta.load(Ordering::Relaxed);
            // The loads above happen before the re-check below.
            fence(Ordering::Acquire);
            if entry.seq.load(Ordering::Relaxed) != before {
                continue;
            }
            // Masked to 8 bits: the casts cannot truncate.
            #[allow(clippy::cast_possible_truncation)]
            let (code, role) = ((meta & 0xff) as u8, ((meta >> 8) & 0xff) as u8);
            if let Some(span) = Span::from_code(code) {
                into.push(SpanRecord {
                    track,
                    role,
                    span,
                    start,
                    end,
                    job: meta >> 16,
                    open: false,
                });
            }
        }
        self.head.load(Ordering::Acquire) > self.entries.len() as u64
    }
}

/// Every track's ring, and when each queued job was queued.
pub struct Timeline {
    /// `rings[track]`, made by the track's first span.
    rings: Box<[OnceLock<Ring>]>,
    /// `queued_at[id % QUEUE_TIMES]`: `(id, when)`. Jobs are queued in id
    /// order (under the job-table lock), and at most `MAX_PENDING_JOBS`
    /// (< `QUEUE_TIMES`, asserted below) are queued or running at once, so
    /// job `id + QUEUE_TIMES`, the next to use `id`'s entry, is queued only
    /// after job `id` was taken by its worker: the worker reads an entry
    /// no one writes meanwhile. The id is stored after the time and checked
    /// by the reader; past that bound a reader could pair the old id with
    /// the new time.
    queued_at: Box<[(AtomicU64, AtomicU64)]>,
}

/// How a role's tracks are shown: `role code` → (role name, the rank of its
/// rows, top first).
pub type RoleName = fn(u8) -> (&'static str, u32);

impl Timeline {
    /// A timeline of `tracks` tracks, each one empty.
    #[must_use]
    pub fn new(tracks: usize) -> Timeline {
        Timeline {
            rings: (0..tracks).map(|_| OnceLock::new()).collect(),
            queued_at: (0..QUEUE_TIMES)
                .map(|_| (AtomicU64::new(0), AtomicU64::new(0)))
                .collect(),
        }
    }

    /// Records a span on `track` (by the track's owner only). A track
    /// beyond the table is ignored.
    pub fn record(&self, track: usize, role: u8, span: Span, start: u64, end: u64, job: u64) {
        let Some(ring) = self.rings.get(track) else {
            return;
        };
        let ring = ring.get_or_init(|| {
            // 2: the scoreboard's code for a connection.
            Ring::new(if role == 2 {
                CONNECTION_SPANS
            } else {
                THREAD_SPANS
            })
        });
        let meta = u64::from(span as u8) | u64::from(role) << 8 | job << 16;
        ring.push(meta, start.min(end), end);
    }

    /// Notes that job `id` was queued at `now`.
    pub fn job_queued(&self, id: u64, now: u64) {
        let (job, at) = &self.queued_at[Timeline::queue_index(id)];
        at.store(now, Ordering::Relaxed);
        job.store(id, Ordering::Release);
    }

    /// When job `id` was queued, if that is still known.
    #[must_use]
    pub fn queued_at(&self, id: u64) -> Option<u64> {
        let (job, at) = &self.queued_at[Timeline::queue_index(id)];
        (job.load(Ordering::Acquire) == id).then(|| at.load(Ordering::Relaxed))
    }

    fn queue_index(id: u64) -> usize {
        // Below QUEUE_TIMES: the cast cannot truncate.
        #[allow(clippy::cast_possible_truncation)]
        let index = (id % QUEUE_TIMES as u64) as usize;
        index
    }

    /// Every span in every ring, and the earliest time from which every
    /// track is complete (0 when no ring has wrapped: complete since
    /// start).
    #[must_use]
    pub fn spans(&self) -> (Vec<SpanRecord>, u64) {
        let mut spans = Vec::new();
        let mut complete_since = 0;
        for (track, ring) in self.rings.iter().enumerate() {
            let Some(ring) = ring.get() else { continue };
            let first = spans.len();
            if ring.read(track, &mut spans) {
                let oldest = spans[first..].iter().map(|s| s.end).min().unwrap_or(0);
                complete_since = complete_since.max(oldest);
            }
        }
        (spans, complete_since)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    #[test]
    fn a_ring_keeps_its_newest_spans_and_says_it_wrapped() {
        let timeline = Timeline::new(4);
        for i in 0..(THREAD_SPANS as u64 + 10) {
            timeline.record(1, 3, Span::JobRun, i * 10, i * 10 + 5, i + 1);
        }
        let (spans, complete_since) = timeline.spans();
        assert_eq!(spans.len(), THREAD_SPANS);
        let oldest = spans.iter().map(|s| s.job).min().unwrap();
        assert_eq!(oldest, 11, "the ten oldest were overwritten");
        assert_eq!(complete_since, 10 * 10 + 5);
        assert!(spans.iter().all(|s| s.track == 1 && s.role == 3 && !s.open));
        // A connection's track keeps fewer.
        for i in 0..100 {
            timeline.record(2, 2, Span::Handle, i, i + 1, 0);
        }
        assert_eq!(
            timeline.spans().0.iter().filter(|s| s.track == 2).count(),
            CONNECTION_SPANS
        );
        // Beyond the table: ignored, not a panic.
        timeline.record(99, 3, Span::JobRun, 0, 1, 0);
    }

    #[test]
    fn queue_times_are_found_by_id_and_never_mislabelled() {
        let timeline = Timeline::new(1);
        timeline.job_queued(7, 1234);
        assert_eq!(timeline.queued_at(7), Some(1234));
        timeline.job_queued(7 + QUEUE_TIMES as u64, 99);
        assert_eq!(timeline.queued_at(7), None, "its entry was taken");
        assert_eq!(timeline.queued_at(8), None);
    }

    /// A writer rewrites one ring as fast as it can with spans whose three
    /// fields agree (start = job, end = job + 1); a reader reading all the
    /// while must never get a span whose fields disagree.
    #[test]
    fn a_reader_never_sees_a_torn_span() {
        let timeline = Timeline::new(1);
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut i = 1u64;
                while !stop.load(Ordering::Relaxed) {
                    timeline.record(0, 3, Span::Save, i, i + 1, i);
                    i += 1;
                }
            });
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            let mut seen = 0;
            while seen < 20_000 {
                assert!(std::time::Instant::now() < deadline, "the writer never ran");
                let (spans, _) = timeline.spans();
                for span in &spans {
                    assert_eq!((span.start, span.end), (span.job, span.job + 1));
                }
                seen += spans.len();
            }
            stop.store(true, Ordering::Relaxed);
        });
    }
}
