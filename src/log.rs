//! The request and job log: one line per request and per job event, written
//! by a dedicated thread, rotated by size.
//!
//! # Design
//!
//! Request threads must not wait for the disk, so a [`Logger`] only queues
//! the raw fields of a line (plus the time, taken at once) for one writer
//! thread. That thread owns the file and does everything slow: formatting
//! the time stamp, writing through a `BufWriter`, rotating.
//!
//! The queue is a textbook bounded buffer: one `Mutex<Queue>` and two
//! Condvars named for their conditions, `not_empty` (the writer waits on it)
//! and `not_full` (loggers wait on it when the queue is full).
//!
//! **Group commit.** Waking the writer for every line would cost a thread
//! switch per request — measured at a fifth of the server's request rate.
//! So a logger wakes the writer only when the queue goes from empty to
//! non-empty (or a batch fills, or a flush is asked for); the woken writer
//! then lets up to [`LOG_LINGER`] pass for more lines to join the batch,
//! takes them all at once, and writes them with one `write` call. A line
//! therefore reaches the file at most `LOG_LINGER` (2 ms) after it was
//! logged, and under load thousands of lines cost one wake-up.
//!
//! Lines look like this:
//!
//! ```text
//! 2026-11-27T20:54:39.123Z INFO GET /api/num_jobs 200 0.123ms
//! 2026-11-27T20:54:39.124Z INFO job_id_7 submitted: states_mean
//! 2026-11-27T20:54:39.124Z INFO job_id_7 done in 0.400ms
//! 2026-11-27T20:54:39.125Z ERROR job_id_8 error: cannot write result file
//! ```
//!
//! # Failure
//!
//! Logging never panics. The queue is bounded ([`LOG_QUEUE_LINES`]): a disk
//! slower than the request rate makes loggers wait for the writer
//! (back-pressure) instead of growing memory without bound. The writer keeps
//! draining the queue even when the file has become unwritable (the lines
//! are then dropped), so a full queue always empties and a wait lasts as
//! long as one batch takes to write, not longer. The first I/O error is
//! reported once to stderr; later ones are dropped silently (a full disk
//! would otherwise flood stderr too). After a failed write the writer drops
//! its buffer and reopens the file before the next line, so logging resumes
//! by itself once the cause is gone.
//!
//! There is no `fsync`: [`Logger::flush`] hands every line to the operating
//! system, which survives a crash of the process (what the shutdown tests
//! check); surviving a power loss is out of scope for a request log.
//!
//! # Lifetime
//!
//! Every clone of a `Logger` shares one queue. When the last clone is
//! dropped the queue is closed; the writer drains what is left, flushes and
//! exits, and that last drop waits for it — so no line logged before the
//! drop is lost.

use crate::limits::{LOG_BATCH_LINES, LOG_LINGER, LOG_QUEUE_LINES};
use crate::scoreboard::{Role, State};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A cheap, cloneable handle; every clone sends to the same writer thread.
#[derive(Clone, Debug)]
pub struct Logger {
    /// `None` for [`Logger::disabled`]: every line is dropped on the spot.
    inner: Option<Arc<Inner>>,
}

/// What the clones of one enabled `Logger` share.
#[derive(Debug)]
struct Inner {
    /// The queue, shared with the writer thread.
    shared: Arc<Shared>,
    /// The writer thread, joined when the last clone goes away. Invariant:
    /// `Some` until that join. The mutex only exists because `JoinHandle`
    /// must be taken out by value in `Drop`; nobody else locks it.
    writer: Mutex<Option<JoinHandle<()>>>,
}

/// The bounded queue between loggers and the writer.
#[derive(Debug)]
struct Shared {
    /// Invariant: `messages.len() <= LOG_QUEUE_LINES`; once `closed` is
    /// set no message is added. Every condition below is read under it.
    ///
    /// Poisoning: each critical section is one push, one swap or one flag
    /// assignment, none of which a panic can leave half done, so a poisoned
    /// lock is recovered with [`PoisonError::into_inner`].
    queue: Mutex<Queue>,
    /// Signalled when the writer has something to do: the queue went from
    /// empty to non-empty, a batch filled, a flush was asked for, or the
    /// queue was closed.
    not_empty: Condvar,
    /// Signalled when the writer has taken a batch, so the queue has room.
    not_full: Condvar,
}

#[derive(Debug, Default)]
struct Queue {
    /// Messages in the order they were logged.
    messages: Vec<Message>,
    /// A `Flush` is queued: the writer must not linger.
    flush_waiting: bool,
    /// The last `Logger` is gone: the writer drains what is left and exits.
    closed: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `message`, waiting while the queue is full.
    fn push(&self, message: Message) {
        let queue = self.lock();
        let mut queue = self
            .not_full
            .wait_while(queue, |q| q.messages.len() >= LOG_QUEUE_LINES && !q.closed)
            .unwrap_or_else(PoisonError::into_inner);
        if queue.closed {
            return;
        }
        let was_empty = queue.messages.is_empty();
        let is_flush = matches!(message, Message::Flush(_));
        queue.flush_waiting |= is_flush;
        queue.messages.push(message);
        let batch_full = queue.messages.len() == LOG_BATCH_LINES;
        drop(queue);
        // Group commit: while the queue is non-empty the writer is awake or
        // lingering on purpose and will take this line with the others, so
        // only these transitions need to wake it.
        if was_empty || is_flush || batch_full {
            self.not_empty.notify_one();
        }
    }

    /// Blocks until there is work, lingers for a batch, then swaps the
    /// queued messages into `batch` (which must be empty). Returns false
    /// once the queue is closed and drained.
    fn take_batch(&self, batch: &mut Vec<Message>) -> bool {
        let queue = self.lock();
        let queue = self
            .not_empty
            .wait_while(queue, |q| q.messages.is_empty() && !q.closed)
            .unwrap_or_else(PoisonError::into_inner);
        // Let more lines join the batch, unless someone waits for them.
        let (mut queue, _) = self
            .not_empty
            .wait_timeout_while(queue, LOG_LINGER, |q| {
                !q.closed && !q.flush_waiting && q.messages.len() < LOG_BATCH_LINES
            })
            .unwrap_or_else(PoisonError::into_inner);
        if queue.messages.is_empty() {
            // Only reachable when closed (see the first wait).
            return false;
        }
        std::mem::swap(&mut queue.messages, batch);
        queue.flush_waiting = false;
        drop(queue);
        self.not_full.notify_all();
        true
    }

    fn close(&self) {
        self.lock().closed = true;
        self.not_empty.notify_one();
        self.not_full.notify_all();
    }
}

/// One request to the writer thread. The fields are raw: formatting happens
/// on the writer thread, off the request path.
#[derive(Debug)]
enum Message {
    Request {
        at: SystemTime,
        method: String,
        path: String,
        status: u16,
        duration: Duration,
    },
    Line {
        at: SystemTime,
        level: Level,
        text: String,
    },
    /// Write everything queued before it, then answer on this channel.
    Flush(Sender<()>),
}

#[derive(Debug, Clone, Copy)]
enum Level {
    Info,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Info => "INFO",
            Level::Error => "ERROR",
        }
    }
}

impl Logger {
    /// Opens (appending to) `path` and starts the writer thread. The file is
    /// rotated to `path.1` … `path.keep` when it would exceed `max_bytes`.
    ///
    /// # Errors
    /// When the file cannot be opened for appending, or the writer thread
    /// cannot be started.
    pub fn open(path: &Path, max_bytes: u64, keep: usize) -> io::Result<Logger> {
        let file = open_append(path)?;
        let size = file.metadata()?.len();
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
        });
        let writer = Writer {
            path: path.to_path_buf(),
            max_bytes,
            keep,
            file: Some(BufWriter::new(file)),
            size,
            reported_error: false,
        };
        let handle = thread::Builder::new()
            .name("log-writer".to_string())
            .spawn({
                let shared = Arc::clone(&shared);
                move || writer.run(&shared)
            })?;
        Ok(Logger {
            inner: Some(Arc::new(Inner {
                shared,
                writer: Mutex::new(Some(handle)),
            })),
        })
    }

    /// A logger that drops every line (for tests that do not read the log).
    pub fn disabled() -> Logger {
        Logger { inner: None }
    }

    /// Logs one answered request.
    pub fn request(&self, method: &str, path: &str, status: u16, duration: Duration) {
        self.send(|| Message::Request {
            at: SystemTime::now(),
            method: method.to_string(),
            path: path.to_string(),
            status,
            duration,
        });
    }

    /// Logs a job event or any other informational line.
    pub fn info(&self, message: impl Into<String>) {
        self.line(Level::Info, message.into());
    }

    /// Logs an error.
    pub fn error(&self, message: impl Into<String>) {
        self.line(Level::Error, message.into());
    }

    /// Blocks until every line logged before this call is written to the file
    /// (handed to the operating system: see the module doc about `fsync`).
    /// Returns at once for a disabled logger.
    pub fn flush(&self) {
        let Some(inner) = &self.inner else { return };
        let (reply_to, reply) = mpsc::channel();
        inner.shared.push(Message::Flush(reply_to));
        // The writer answers every Flush it takes; if it is gone (it
        // panicked) the message, and with it the reply sender, is dropped
        // with the queue or never queued, so `recv` returns `Err` instead of
        // waiting forever. Either way we are done.
        let _ = reply.recv();
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
        if let Some(inner) = &self.inner {
            inner.shared.push(make());
        }
    }
}

impl Drop for Inner {
    /// Runs when the last `Logger` clone is dropped: close the queue, then
    /// wait for the writer to drain it, so no logged line is lost.
    fn drop(&mut self) {
        self.shared.close();
        // Poison is harmless here: the Option holds no invariant a panic
        // could have broken half-way.
        let handle = self
            .writer
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            if handle.join().is_err() {
                eprintln!("log: the writer thread panicked; some log lines may be lost");
            }
        }
    }
}

/// The writer thread's state: it alone touches the file.
struct Writer {
    path: PathBuf,
    max_bytes: u64,
    keep: usize,
    /// `None` after an I/O error; reopening is retried before the next line
    /// (a cheap `open` call, paid only while the file is broken).
    file: Option<BufWriter<File>>,
    /// Bytes in the current file, including those still in the buffer.
    size: u64,
    /// Whether an I/O error was already reported to stderr (we report once).
    reported_error: bool,
}

impl Writer {
    fn run(mut self, shared: &Shared) {
        let _scoreboard = crate::scoreboard::claim(Role::LogWriter, State::Idle);
        // Two vectors swapped back and forth with the queue's, so that
        // taking a batch never allocates once they have grown.
        let mut batch = Vec::new();
        while shared.take_batch(&mut batch) {
            crate::scoreboard::set(State::Flushing);
            for message in batch.drain(..) {
                self.handle(message);
            }
            // The batch is written: push it to the file before waiting, so
            // lines never sit in the buffer while the server idles.
            self.flush_buffer();
            crate::scoreboard::set(State::Idle);
        }
    }

    fn handle(&mut self, message: Message) {
        let line = match message {
            Message::Request {
                at,
                method,
                path,
                status,
                duration,
            } => format!(
                "{} INFO {method} {path} {status} {}\n",
                format_utc(at),
                format_millis(duration)
            ),
            Message::Line { at, level, text } => {
                format!(
                    "{} {} {}\n",
                    format_utc(at),
                    level.as_str(),
                    one_line(&text)
                )
            }
            Message::Flush(reply_to) => {
                self.flush_buffer();
                // The flusher may have given up waiting; nothing to do then.
                let _ = reply_to.send(());
                return;
            }
        };
        self.write_line(line.as_bytes());
    }

    fn write_line(&mut self, line: &[u8]) {
        let len = line.len() as u64;
        // Rotate *before* a write that would overflow, so no file exceeds
        // `max_bytes` unless a single line does (an empty file always takes
        // its first line, or a huge line would rotate forever).
        if self.file.is_none() {
            self.reopen();
        } else if self.size > 0 && self.size.saturating_add(len) > self.max_bytes {
            self.rotate();
        }
        let Some(file) = self.file.as_mut() else {
            return;
        };
        match file.write_all(line) {
            Ok(()) => self.size = self.size.saturating_add(len),
            Err(error) => self.report(&error),
        }
    }

    /// `path.(keep-1)` → `path.keep`, …, `path.1` → `path.2`, `path` →
    /// `path.1`, then a fresh `path`. The oldest file is overwritten by the
    /// rename, so at most `keep` old files remain. With `keep == 0` the log
    /// simply starts over.
    fn rotate(&mut self) {
        // Push buffered lines into the file that is about to be renamed.
        self.flush_buffer();
        self.file = None;
        let result = if self.keep == 0 {
            fs::remove_file(&self.path)
        } else {
            self.shift_old_files()
        };
        if let Err(error) = result {
            self.report(&error);
        }
        self.reopen();
    }

    /// Opens `path` for appending (after a rotation, or to recover from an
    /// error); on failure `file` stays `None` and the line is dropped.
    fn reopen(&mut self) {
        match open_append(&self.path) {
            Ok(file) => {
                // 0 after a rotation; after a failed rename or a recovery we
                // go on appending to what is there.
                self.size = file.metadata().map(|m| m.len()).unwrap_or(0);
                self.file = Some(BufWriter::new(file));
            }
            Err(error) => self.report(&error),
        }
    }

    fn shift_old_files(&self) -> io::Result<()> {
        for k in (1..self.keep).rev() {
            match fs::rename(numbered(&self.path, k), numbered(&self.path, k + 1)) {
                Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
                _ => {}
            }
        }
        fs::rename(&self.path, numbered(&self.path, 1))
    }

    fn flush_buffer(&mut self) {
        if let Some(file) = self.file.as_mut() {
            if let Err(error) = file.flush() {
                self.report(&error);
                // Drop the stuck buffer (BufWriter would retry the same
                // bytes forever); the next line reopens the file.
                self.file = None;
            }
        }
    }

    fn report(&mut self, error: &io::Error) {
        if !self.reported_error {
            self.reported_error = true;
            eprintln!(
                "log: cannot write {}: {error}; logging continues, further errors are not reported",
                self.path.display()
            );
        }
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// `path` with `.k` appended to its file name: `webserver.log.2`.
fn numbered(path: &Path, k: usize) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(format!(".{k}"));
    PathBuf::from(name)
}

/// A message must stay on one line: a newline in it (a request path cannot
/// hold one, but an error text might) would forge a second log line.
fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains(['\n', '\r']) {
        std::borrow::Cow::Owned(text.replace('\n', "\\n").replace('\r', "\\r"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// `d` in milliseconds with three decimals (microsecond resolution): `0.123ms`.
pub fn format_millis(d: Duration) -> String {
    let micros = d.as_micros();
    format!("{}.{:03}ms", micros / 1000, micros % 1000)
}

/// `t` as UTC ISO-8601 with milliseconds, e.g. `2026-11-27T20:54:39.123Z`.
///
/// Instants before 1970 work too (`1969-12-31T23:59:59.000Z`); the
/// milliseconds are truncated toward the past, like every clock display.
pub fn format_utc(t: SystemTime) -> String {
    // Signed milliseconds since the epoch. `SystemTime` spans far less than
    // i128 milliseconds, so the conversion cannot saturate in practice; if
    // it ever did, a wrong date in a log beats a panic.
    let millis: i128 = match t.duration_since(UNIX_EPOCH) {
        Ok(after) => i128::try_from(after.as_millis()).unwrap_or(i128::MAX),
        Err(before) => {
            // Round toward the past: -0.5 ms is 23:59:59.999 on the day before.
            let d = before.duration();
            let ms = i128::try_from(d.as_millis()).unwrap_or(i128::MAX);
            let partial = i128::from(d.subsec_nanos() % 1_000_000 != 0);
            -(ms + partial)
        }
    };
    let secs = millis.div_euclid(1000);
    let ms = millis.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let second_of_day = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

/// Days since 1970-01-01 → proleptic Gregorian (year, month, day), after
/// Howard Hinnant's `civil_from_days` ("chrono-Compatible Low-Level Date
/// Algorithms"). The trick: count from 0000-03-01 so that the leap day is
/// the *last* day of a year, and split time into 400-year eras of exactly
/// 146 097 days, in which every calendar repeats.
fn civil_from_days(days: i128) -> (i128, u32, u32) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097); // [0, 146096]
                                            // Years of 365 days, minus the leap days of years 4, 100 (not) and 400.
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365; // [0, 399]
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100); // [0, 365]
    let month_from_march = (5 * day_of_year + 2) / 153; // [0, 11], 0 = March
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1; // [1, 31]
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    }; // [1, 12]
    let year = year_of_era + era * 400 + i128::from(month <= 2);
    // Both casts are lossless: the ranges are stated on the lines above.
    (year, month as u32, day as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64, millis: u32) -> SystemTime {
        let base = if secs >= 0 {
            UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
        } else {
            UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
        };
        base + Duration::from_millis(u64::from(millis))
    }

    #[test]
    fn known_instants() {
        // Expected values from `date -u -d @SECS`.
        let cases = [
            (0, 0, "1970-01-01T00:00:00.000Z"),
            (1_709_210_096, 789, "2024-02-29T12:34:56.789Z"),
            (951_868_800, 0, "2000-03-01T00:00:00.000Z"),
            (951_782_400, 0, "2000-02-29T00:00:00.000Z"),
            (946_684_799, 999, "1999-12-31T23:59:59.999Z"),
            (1_795_812_879, 123, "2026-11-27T20:54:39.123Z"),
            (4_107_542_400, 0, "2100-03-01T00:00:00.000Z"),
            (253_402_300_799, 0, "9999-12-31T23:59:59.000Z"),
            (-1, 0, "1969-12-31T23:59:59.000Z"),
            (-1, 500, "1969-12-31T23:59:59.500Z"),
        ];
        for (secs, millis, expected) in cases {
            assert_eq!(format_utc(at(secs, millis)), expected, "{secs}.{millis}");
        }
    }

    #[test]
    fn before_epoch_rounds_toward_the_past() {
        let t = UNIX_EPOCH - Duration::from_micros(500);
        assert_eq!(format_utc(t), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn every_day_of_four_centuries_is_consecutive() {
        // Walk 1900-01-01 .. 2300-01-01 and check the date advances by
        // exactly one calendar day each time.
        let mut previous = civil_from_days(-25_567); // 1900-01-01
        assert_eq!(previous, (1900, 1, 1));
        for days in -25_566..120_000 {
            let (y, m, d) = civil_from_days(days);
            let (py, pm, pd) = previous;
            let next_ok = (y == py && m == pm && d == pd + 1)
                || (y == py && m == pm + 1 && d == 1)
                || (y == py + 1 && m == 1 && d == 1 && pm == 12 && pd == 31);
            assert!(next_ok, "{previous:?} -> {:?}", (y, m, d));
            previous = (y, m, d);
        }
    }

    #[test]
    fn millis_format() {
        assert_eq!(format_millis(Duration::from_micros(123)), "0.123ms");
        assert_eq!(format_millis(Duration::from_micros(400)), "0.400ms");
        assert_eq!(format_millis(Duration::from_millis(1234)), "1234.000ms");
        assert_eq!(format_millis(Duration::ZERO), "0.000ms");
    }

    #[test]
    fn newlines_cannot_forge_lines() {
        assert_eq!(one_line("a\nb\rc"), "a\\nb\\rc");
        assert_eq!(one_line("plain"), "plain");
    }
}
