//! The writer thread: it alone touches the file. It formats, writes through
//! a `BufWriter`, rotates by size, and survives its own panics.

use super::format::{access_line, server_line, Stamps};
use super::queue::Queue;
use super::{Level, Logger, Message};
use crate::pool::panic_message;
use crate::scoreboard::{self, Role, ThreadState};
use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// Where the writer reports lines the queue dropped.
pub(super) enum DropNotices {
    /// As a `WARN` line in this very file (the server log).
    Inline,
    /// As a `WARN` line in another log (the access log reports to the
    /// server log, so that its own file stays pure Combined Log Format).
    To(Logger),
}

/// The writer thread's state.
pub(super) struct Writer {
    pub(super) path: PathBuf,
    pub(super) max_bytes: u64,
    pub(super) keep: usize,
    /// `None` after an I/O error; reopening is retried before the next line
    /// (a cheap `open` call, paid only while the file is broken).
    pub(super) file: Option<BufWriter<File>>,
    /// Bytes in the current file, including those still in the buffer.
    pub(super) size: u64,
    /// Whether the log is rotated: only when `path` itself (not followed,
    /// as `rename` does not follow it) is the regular file being written.
    /// A log sent to `/dev/null`, a FIFO, a terminal or through a symlink
    /// such as `/dev/stdout` is written and never renamed: renaming
    /// `/dev/null` as root replaces the device with a plain file for every
    /// program on the machine (`log::a_log_that_is_not_a_regular_file_is_never_rotated`,
    /// `log::a_log_reached_through_a_symlink_is_never_rotated`). Checked
    /// again just before each rotation: a log moved, deleted or replaced
    /// meanwhile is reopened at `path` instead — noticed at that next
    /// rotation, not before (`log::a_log_replaced_by_a_symlink_is_reopened_through_it`).
    pub(super) rotates: bool,
    /// The size at which the next rotation happens: `max_bytes`, or, after
    /// a rotation failed, another `max_bytes` further on (so a rename that
    /// keeps failing costs one try per `max_bytes`, not one per line;
    /// `log::a_failed_rotation_is_retried_after_another_max_bytes`).
    pub(super) rotate_at: u64,
    /// Whether an I/O error was already reported to stderr (we report once).
    pub(super) reported_error: bool,
    pub(super) notices: DropNotices,
    /// The queue's drop count when it was last reported.
    pub(super) reported_drops: u64,
    /// The line being formatted, kept from one line to the next so that
    /// formatting does not allocate once it has grown.
    pub(super) line: String,
    /// The current second's time stamps, formatted once per second.
    pub(super) stamps: Stamps,
}

/// Tells the queue the writer is gone when the thread leaves `run`, even by
/// a panic that escaped (there should be none), so that no flusher waits
/// for a writer that will never answer.
struct ExitGuard<'q>(&'q Queue);

impl Drop for ExitGuard<'_> {
    fn drop(&mut self) {
        self.0.writer_exited();
    }
}

impl Writer {
    pub(super) fn run(mut self, queue: &Queue) {
        let _guard = ExitGuard(queue);
        let _scoreboard = scoreboard::claim(Role::LogWriter, ThreadState::Idle);
        // Swapped back and forth with the queue's vector, so that taking a
        // batch never allocates once both have grown.
        let mut batch = Vec::new();
        while let Some(upto) = queue.take_batch(&mut batch) {
            scoreboard::set(ThreadState::Flushing);
            // A panic while writing (a bug: nothing here should panic) is
            // contained: the rest of the batch is counted as dropped, the
            // file is reopened before the next line, and the writer goes on.
            // `AssertUnwindSafe`: after a panic the state kept is `self`,
            // whose file and time stamps are reset below (the line buffer
            // is rebuilt by the next line), and the emptied batch. (No
            // reachable panic leaves the stamps half-written, so no test
            // can show the reset; it is there for the panic that is a bug.)
            let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
                self.report_drops(queue);
                for message in batch.drain(..) {
                    self.handle(message);
                }
                // Push the batch to the file before waiting, so lines never
                // sit in the buffer while the server idles.
                self.flush_buffer();
            }));
            if let Err(payload) = outcome {
                queue.count_dropped(batch.len() as u64);
                batch.clear();
                self.file = None;
                self.stamps = Stamps::default();
                eprintln!(
                    "log: the writer for {} panicked ({}); the rest of its batch is dropped, logging goes on",
                    self.path.display(),
                    panic_message(&*payload)
                );
            }
            queue.mark_written(upto);
            scoreboard::set(ThreadState::Idle);
        }
    }

    /// Logs how many lines the queue dropped since the last report, if any.
    fn report_drops(&mut self, queue: &Queue) {
        let dropped = queue.dropped();
        if dropped == self.reported_drops {
            return;
        }
        let text = format!(
            "log: {} lines dropped for {} (the log could not keep up; {dropped} in all)",
            dropped - self.reported_drops,
            self.path.display()
        );
        self.reported_drops = dropped;
        match &self.notices {
            DropNotices::Inline => {
                self.format_and_write(|line, stamps| {
                    server_line(
                        line,
                        std::time::SystemTime::now(),
                        Level::Warn,
                        &text,
                        stamps,
                    );
                });
            }
            DropNotices::To(logger) => logger.warn(text),
        }
    }

    fn handle(&mut self, message: Message) {
        self.format_and_write(|line, stamps| match message {
            Message::Access(entry) => access_line(line, &entry, stamps),
            Message::Line { at, level, text } => server_line(line, at, level, &text, stamps),
            #[cfg(test)]
            Message::Panic => panic!("a test asked the log writer to panic"),
        });
    }

    /// Formats one line with `format` into the reused buffer and writes it.
    fn format_and_write(&mut self, format: impl FnOnce(&mut String, &mut Stamps)) {
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        format(&mut line, &mut self.stamps);
        self.write_line(line.as_bytes());
        self.line = line;
    }

    fn write_line(&mut self, line: &[u8]) {
        let len = line.len() as u64;
        // Rotate *before* a write that would overflow, so no file exceeds
        // `max_bytes` unless a single line does (an empty file always takes
        // its first line, or a huge line would rotate forever).
        if self.file.is_none() {
            self.reopen();
        } else if self.rotates && self.size > 0 && self.size.saturating_add(len) > self.rotate_at {
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
        let Some(file) = self.file.take() else {
            self.reopen();
            return;
        };
        // What `path` names now, not followed: it may have changed since
        // it was opened. Moved, deleted, or replaced (by another file, a
        // symlink, a device): reopen `path`, renaming nothing; the reopen
        // decides whether what is there now rotates.
        let ours = file
            .get_ref()
            .metadata()
            .is_ok_and(|open| is_the_file_at(&open, &self.path));
        drop(file);
        if !ours {
            self.reopen();
            return;
        }
        let result = if self.keep == 0 {
            fs::remove_file(&self.path)
        } else {
            self.shift_old_files()
        };
        let failed = result.is_err();
        if let Err(error) = result {
            self.report(&error);
        }
        self.reopen();
        if failed {
            self.rotate_at = self.size.saturating_add(self.max_bytes);
        }
    }

    /// Opens `path` for appending (after a rotation, or to recover from an
    /// error); on failure `file` stays `None` and the line is dropped.
    fn reopen(&mut self) {
        match open_append(&self.path) {
            Ok(file) => {
                // 0 after a rotation; after a failed rename or a recovery we
                // go on appending to what is there.
                (self.size, self.rotates) = size_and_rotates(&file, &self.path);
                self.rotate_at = self.max_bytes;
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

pub(super) fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// The bytes `file` (just opened at `path`) holds, and whether it may be
/// rotated (see [`Writer::rotates`]); `(0, false)` when it cannot be told.
pub(super) fn size_and_rotates(file: &File, path: &Path) -> (u64, bool) {
    file.metadata()
        .map_or((0, false), |open| (open.len(), is_the_file_at(&open, path)))
}

/// Whether `path`, not followed, is the regular file whose open
/// descriptor's metadata is `open`.
fn is_the_file_at(open: &Metadata, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::symlink_metadata(path).is_ok_and(|named| {
        named.file_type().is_file() && open.dev() == named.dev() && open.ino() == named.ino()
    })
}

/// `path` with `.k` appended to its file name: `webserver.log.2`.
fn numbered(path: &Path, k: usize) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(format!(".{k}"));
    PathBuf::from(name)
}
