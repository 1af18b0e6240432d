//! The two logs: the server log (start-up, shutdown, job events, errors)
//! and the access log (one Combined Log Format line per request), each
//! written by its own thread, rotated by size, and neither able to block
//! the server.
//!
//! One concern per file: `queue.rs` (the bounded queue that drops rather
//! than waits), `writer.rs` (the thread that owns the file), `format.rs`
//! (time stamps and escaping).
//!
//! # Design
//!
//! A [`Logger`] only queues the raw fields of a line (plus the time, taken
//! at once) for its writer thread. That thread owns the file and does
//! everything slow: formatting, writing through a `BufWriter`, rotating.
//! The same queue and writer serve both logs; only the message kinds differ.
//!
//! **Group commit.** Waking the writer for every line would cost a thread
//! switch per request. So a logger wakes the writer only when the queue
//! goes from empty to non-empty (or a batch fills, or a flush is asked
//! for); the woken writer then lets up to [`LOG_LINGER`] pass for more
//! lines to join the batch, takes them all at once (one swap of the
//! queue's vector), and writes them through its `BufWriter`, flushing once
//! per batch. Under load one wake-up serves up to [`LOG_BATCH_LINES`]
//! lines. (A performance property, not asserted by any test;
//! `queue::tests::a_taken_batch_frees_room_and_a_flush_sees_it_written`
//! checks that one take gets every queued line.)
//!
//! Server log lines:
//!
//! ```text
//! 2026-11-27T20:54:39.124Z INFO job_id_7 submitted: states_mean
//! 2026-11-27T20:54:39.124Z INFO job_id_7 done in 0.400ms
//! 2026-11-27T20:54:39.125Z ERROR job_id_8 error: cannot write result file
//! 2026-11-27T20:54:40.002Z WARN log: 1200 lines dropped for access.log (the log could not keep up; 1200 in all)
//! ```
//!
//! Access log lines (Combined Log Format, then the duration in seconds):
//!
//! ```text
//! 127.0.0.1 - - [28/Nov/2026:03:12:45 +0000] "POST /api/states_mean?x=1 HTTP/1.1" 200 22 "-" "curl/8.5.0" 0.245
//! ```
//!
//! # Failure: the log never blocks its callers
//!
//! What is true, and tested:
//!
//! - **Logging never waits for the sink.** The queue is bounded
//!   ([`LOG_QUEUE_LINES`]); a logger holds its lock for one push and never
//!   waits on a condition. When the queue is full (the sink is slower than
//!   the server, or stalled: a FIFO whose reader stopped, a hung network
//!   mount) the line is dropped and counted. The count is readable at any
//!   time ([`Logger::dropped_lines`]); the writer logs it when writing
//!   resumes, and the binary prints it at exit. (`tests/integration/log_stall_e2e.rs`:
//!   a server whose logs are FIFOs nobody reads keeps answering, and exits
//!   0 on SIGTERM; `tests/integration/log.rs`:
//!   `a_stalled_sink_drops_and_counts_and_the_count_is_logged_when_writing_resumes`.)
//! - **A flush has a deadline.** [`Logger::flush`] waits at most
//!   [`LOG_FLUSH_TIMEOUT`] and says whether everything got written
//!   (`queue::tests::without_a_writer_pushes_drop_and_count_and_flush_gives_up`);
//!   the last `Logger`'s drop waits as long for the writer to drain, then
//!   leaves it behind (`the_last_drop_gives_up_on_a_stalled_writer_at_the_deadline`).
//! - **The writer contains its panics.** A panic while writing (a bug) is
//!   caught: the rest of that batch is counted as dropped, the file is
//!   reopened and the writer goes on
//!   (`tests::a_panic_in_the_writer_is_contained_and_logging_goes_on`).
//!   Were the thread to die anyway, the queue would fill and every later
//!   line would be dropped and counted: callers still never wait (the
//!   queue test without a writer above).
//! - **I/O errors.** The writer keeps draining when the file has become
//!   unwritable (those lines are lost). The first I/O error is reported
//!   once to stderr; after a failed write the writer drops its buffer and
//!   reopens the file before the next line, so logging resumes by itself
//!   once the cause is gone
//!   (`an_unwritable_log_neither_panics_nor_blocks_and_recovers`).
//!
//! There is no `fsync`: a flush hands every line to the operating system,
//! which survives a crash of the process (what the shutdown tests check);
//! surviving a power loss is out of scope for a log.
//!
//! # Lifetime
//!
//! Every clone of a `Logger` shares one queue. When the last clone is
//! dropped the queue is closed; the writer drains what is left, flushes and
//! exits, and that last drop waits for it, at most [`LOG_FLUSH_TIMEOUT`]
//! (`every_clone_writes_and_the_last_drop_waits_for_the_writer`).
//!
//! Tests named without a path are in `tests/integration/log.rs`.

mod format;
mod queue;
mod writer;

pub use format::{format_millis, push_escaped};

use crate::http::RequestRecord;
use crate::limits::{LOG_BATCH_LINES, LOG_FLUSH_TIMEOUT, LOG_LINGER, LOG_QUEUE_LINES};
use crate::sync::lock_order::LOG_WRITER_HANDLE;
use crate::sync::thread::{self, JoinHandle};
use crate::sync::{Arc, Mutex, PoisonError};
use format::Stamps;
use queue::Queue;
use std::io::{self, BufWriter};
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};
use writer::{open_append, size_and_rotates, DropNotices, Writer};

/// A cheap, cloneable handle; every clone sends to the same writer thread.
#[derive(Clone, Debug)]
pub struct Logger {
    /// `None` for [`Logger::disabled`]: every line is dropped on the spot.
    shared: Option<Arc<OpenLog>>,
}

/// An open log: what the clones of one enabled `Logger` share.
#[derive(Debug)]
struct OpenLog {
    /// The queue, shared with the writer thread.
    queue: Arc<Queue>,
    /// The writer thread, joined when the last clone goes away (if it
    /// exits in time). Invariant: `Some` until then. The mutex only exists
    /// because `JoinHandle` must be taken out by value in `Drop`; nobody
    /// else locks it.
    writer: Mutex<Option<JoinHandle<()>>>,
}

/// One line for the writer thread. The fields are raw: formatting happens
/// on the writer thread, off the request path.
#[derive(Debug)]
enum Message {
    Line {
        at: SystemTime,
        level: Level,
        text: String,
    },
    Access(Box<AccessEntry>),
    /// Makes the writer panic, to test that the panic is contained.
    #[cfg(test)]
    Panic,
}

/// The owned fields of one access-log line (see [`RequestRecord`]).
#[derive(Debug)]
struct AccessEntry {
    /// When the request's first byte arrived.
    at: SystemTime,
    peer: Option<IpAddr>,
    version: &'static str,
    status: u16,
    body_bytes: u64,
    duration: Duration,
    /// The method, the target, the `Referer` and the `User-Agent` as sent,
    /// back to back in one allocation (two per request with the entry's
    /// `Box`, where each text had its own). A header not sent is empty
    /// here, which the line prints as `-`, as it prints one sent empty.
    text: Vec<u8>,
    /// Where each of the four ends in `text`.
    ends: [usize; 4],
}

impl AccessEntry {
    fn new(record: &RequestRecord<'_>, at: SystemTime) -> AccessEntry {
        let parts = [
            record.method.as_bytes(),
            record.target.as_bytes(),
            record.referer.unwrap_or_default(),
            record.user_agent.unwrap_or_default(),
        ];
        let mut text = Vec::with_capacity(parts.iter().map(|part| part.len()).sum());
        let mut ends = [0; 4];
        for (end, part) in ends.iter_mut().zip(parts) {
            text.extend_from_slice(part);
            *end = text.len();
        }
        AccessEntry {
            at,
            peer: record.peer,
            version: record.version,
            status: record.status,
            body_bytes: record.body_bytes,
            duration: record.duration,
            text,
            ends,
        }
    }

    /// Part `i` of `text` (0 to 3, in the order of `ends`).
    fn part(&self, i: usize) -> &[u8] {
        let start = i.checked_sub(1).map_or(0, |before| self.ends[before]);
        // In range by construction; empty rather than a panic otherwise.
        self.text.get(start..self.ends[i]).unwrap_or_default()
    }

    fn method(&self) -> &[u8] {
        self.part(0)
    }

    fn target(&self) -> &[u8] {
        self.part(1)
    }

    fn referer(&self) -> &[u8] {
        self.part(2)
    }

    fn user_agent(&self) -> &[u8] {
        self.part(3)
    }
}

#[derive(Debug, Clone, Copy)]
enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

impl Logger {
    /// Opens (appending to) the server log at `path` and starts its writer
    /// thread. The file is rotated to `path.1` … `path.keep` when it would
    /// exceed `max_bytes`. Dropped lines are reported in the file itself.
    ///
    /// # Errors
    /// When the file cannot be opened for appending, or the writer thread
    /// cannot be started.
    pub fn open(path: &Path, max_bytes: u64, keep: usize) -> io::Result<Logger> {
        Logger::start(path, max_bytes, keep, DropNotices::Inline)
    }

    /// Opens the access log at `path`, like [`Logger::open`]; its file
    /// holds access lines only, so the lines it drops are reported to
    /// `notices` (the server log) instead.
    ///
    /// # Errors
    /// As [`Logger::open`].
    pub fn open_access(
        path: &Path,
        max_bytes: u64,
        keep: usize,
        notices: Logger,
    ) -> io::Result<Logger> {
        Logger::start(path, max_bytes, keep, DropNotices::To(notices))
    }

    fn start(path: &Path, max_bytes: u64, keep: usize, notices: DropNotices) -> io::Result<Logger> {
        let file = open_append(path)?;
        let (size, rotates) = size_and_rotates(&file, path);
        let queue = Arc::new(Queue::new(LOG_QUEUE_LINES, LOG_BATCH_LINES, LOG_LINGER));
        let writer = Writer {
            path: path.to_path_buf(),
            max_bytes,
            keep,
            file: Some(BufWriter::new(file)),
            size,
            rotates,
            rotate_at: max_bytes,
            reported_error: false,
            notices,
            reported_drops: 0,
            line: String::new(),
            stamps: Stamps::default(),
        };
        let handle = thread::Builder::new()
            .name("log-writer".to_string())
            .spawn({
                let queue = Arc::clone(&queue);
                move || writer.run(&queue)
            })?;
        Ok(Logger {
            shared: Some(Arc::new(OpenLog {
                queue,
                writer: Mutex::new(LOG_WRITER_HANDLE, Some(handle)),
            })),
        })
    }

    /// A logger that drops every line (for tests that do not read the log).
    #[must_use]
    pub fn disabled() -> Logger {
        Logger { shared: None }
    }

    /// Logs one answered request as an access-log line. Never waits.
    pub fn access(&self, record: &RequestRecord<'_>) {
        self.send(|| {
            let at = SystemTime::now()
                .checked_sub(record.duration)
                .unwrap_or_else(SystemTime::now);
            Message::Access(Box::new(AccessEntry::new(record, at)))
        });
    }

    /// Logs a job event or any other informational line. Never waits.
    pub fn info(&self, message: impl Into<String>) {
        self.line(Level::Info, message.into());
    }

    /// Logs a warning. Never waits.
    pub fn warn(&self, message: impl Into<String>) {
        self.line(Level::Warn, message.into());
    }

    /// Logs an error. Never waits.
    pub fn error(&self, message: impl Into<String>) {
        self.line(Level::Error, message.into());
    }

    /// Waits until every line logged before this call is written to the
    /// file (handed to the operating system: see the module doc about
    /// `fsync`), at most [`LOG_FLUSH_TIMEOUT`]. Returns true if and only if
    /// they all were (always true for a disabled logger).
    // Called for its effect as often as for its answer.
    #[allow(clippy::must_use_candidate)]
    pub fn flush(&self) -> bool {
        self.flush_until(Instant::now() + LOG_FLUSH_TIMEOUT)
    }

    /// [`Logger::flush`] with an explicit deadline.
    #[allow(clippy::must_use_candidate)] // as `flush`
    pub fn flush_until(&self, deadline: Instant) -> bool {
        match &self.shared {
            Some(log) => log.queue.flush_until(deadline),
            None => true,
        }
    }

    /// Lines dropped so far because the queue was full (the sink could not
    /// keep up) or the logger was closing. One atomic load.
    #[must_use]
    pub fn dropped_lines(&self) -> u64 {
        self.shared.as_ref().map_or(0, |log| log.queue.dropped())
    }

    /// Lines queued and not yet taken by the writer. One atomic load.
    #[must_use]
    pub fn queue_depth(&self) -> usize {
        self.shared.as_ref().map_or(0, |log| log.queue.depth())
    }

    fn line(&self, level: Level, text: String) {
        self.send(|| Message::Line {
            at: SystemTime::now(),
            level,
            text,
        });
    }

    /// Queues the message built by `make` (built only when the logger is
    /// enabled, so a disabled logger does not even allocate).
    fn send(&self, make: impl FnOnce() -> Message) {
        if let Some(log) = &self.shared {
            log.queue.push(make());
        }
    }
}

impl Drop for OpenLog {
    /// Runs when the last `Logger` clone is dropped: close the queue, then
    /// wait (at most [`LOG_FLUSH_TIMEOUT`]) for the writer to drain it. A
    /// writer stuck on its sink is left behind rather than waited for.
    fn drop(&mut self) {
        self.queue.close();
        // Poison is harmless here: the Option holds no invariant a panic
        // could have broken half-way.
        let handle = self
            .writer
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if !self
            .queue
            .wait_writer_gone(Instant::now() + LOG_FLUSH_TIMEOUT)
        {
            eprintln!("log: the writer did not finish within {LOG_FLUSH_TIMEOUT:?}; the lines it still holds may be lost");
            return; // the handle is dropped: the thread is detached
        }
        if let Some(handle) = handle {
            // The writer has signalled its exit, so this join is immediate.
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn temp_path(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("lss-log-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir.join("log")
    }

    #[test]
    fn a_panic_in_the_writer_is_contained_and_logging_goes_on() {
        let path = temp_path("panic");
        let logger = Logger::open(&path, 1 << 20, 1).unwrap();
        logger.info("before");
        assert!(logger.flush());
        logger.send(|| Message::Panic);
        logger.info("lost with the panicking batch, or written after it");
        assert!(logger.flush());
        logger.info("after");
        assert!(logger.flush(), "the writer is still there");
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.lines().next().unwrap().ends_with(" INFO before"));
        assert!(
            text.lines().last().unwrap().ends_with(" INFO after"),
            "{text}"
        );
        drop(logger);
        let _ = fs::remove_dir_all(path.parent().unwrap());
    }
}
