//! The bounded queue between the loggers and the writer thread.
//!
//! A textbook bounded buffer with one twist: a producer never waits. When
//! the queue is full the line is dropped and counted, because every
//! producer is a request, a job or the shutdown path, none of which may
//! wait for a disk (or a FIFO, or a network mount) that has stopped.
//!
//! # Time in the model
//!
//! The writer lingers up to 2 ms for a batch to fill (`wait_timeout_while`),
//! and a flush waits until a deadline. loom's timed waits never time out
//! (`crate::sync`), so in the loom model (`log::queue::loom_model`) every
//! wait must be ended by a notification — a skipped notify that matters
//! shows as a deadlock — and the linger's timer is made explicit: under
//! `cfg(loom)`, [`QueueState::linger_timer_fired`] is a flag that a model
//! thread sets ([`Queue::fire_linger_timer`]) at whatever point loom
//! chooses, once per test, so both "the timer ends the linger" and "a
//! notification ends it first" are explored; once fired it stays fired
//! (every later linger is over at once, as after a long stall). In every other build the flag
//! is the constant `false` and the timeout is the real 2 ms.

use super::Message;
use crate::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use crate::sync::lock_order::LOG_QUEUE;
use crate::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

#[derive(Debug)]
pub(super) struct Queue {
    /// Invariant: `messages.len() <= capacity`; once `closed` is set no
    /// message is added. Every condition below is read under it.
    ///
    /// Poisoning: each critical section is one push, one swap or a few
    /// counter and flag assignments, none of which a panic can leave half
    /// done, so a poisoned lock is recovered with [`PoisonError::into_inner`].
    state: Mutex<QueueState>,
    /// Signalled when the writer has something to do: the queue went from
    /// empty to non-empty, a batch filled, a flush was asked for, or the
    /// queue was closed.
    not_empty: Condvar,
    /// Signalled when `written` advanced or the writer exited; flushers and
    /// the last `Logger` wait on it, always with a deadline.
    written_or_gone: Condvar,
    capacity: usize,
    batch_lines: usize,
    linger: Duration,
    /// Lines dropped so far (queue full, or logged after the close). Only
    /// ever increased; an atomic so that it can be read without the lock.
    dropped: AtomicU64,
    /// A copy of `messages.len()`, stored under the lock at every change,
    /// so that metrics can read it without taking the lock.
    depth: AtomicUsize,
}

/// Everything the queue's lock guards: the messages and the progress
/// counters and flags its two Condvars' conditions read.
#[derive(Debug, Default)]
struct QueueState {
    /// Messages in the order they were logged.
    messages: Vec<Message>,
    /// How many messages were ever queued: the sequence number of the last.
    pushed: u64,
    /// Every message up to this sequence number has been handed to the
    /// operating system (or given up on). `written <= pushed`.
    written: u64,
    /// A flusher waits: the writer must not linger.
    flush_wanted: bool,
    /// The last `Logger` is gone: the writer drains what is left and exits.
    closed: bool,
    /// The writer thread has exited (or unwound out of its loop).
    writer_gone: bool,
    /// The model's linger timer has fired (see "Time in the model").
    #[cfg(loom)]
    timer_fired: bool,
}

impl QueueState {
    /// Whether the linger's timer has fired: always false outside loom,
    /// where the timer is the wait's own timeout (see "Time in the model").
    #[cfg_attr(not(loom), allow(clippy::unused_self))]
    fn linger_timer_fired(&self) -> bool {
        #[cfg(loom)]
        return self.timer_fired;
        #[cfg(not(loom))]
        false
    }
}

impl Queue {
    pub(super) fn new(capacity: usize, batch_lines: usize, linger: Duration) -> Queue {
        Queue {
            state: Mutex::new(LOG_QUEUE, QueueState::default()),
            not_empty: Condvar::new(),
            written_or_gone: Condvar::new(),
            capacity,
            batch_lines,
            linger,
            dropped: AtomicU64::new(0),
            depth: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `message`, or drops and counts it when the queue is full or
    /// closed. Never waits for the writer: the lock is held for one push.
    pub(super) fn push(&self, message: Message) {
        let mut state = self.lock();
        if state.closed || state.messages.len() >= self.capacity {
            drop(state);
            self.count_dropped(1);
            // `message` is freed here, after the lock is released.
            return;
        }
        let was_empty = state.messages.is_empty();
        state.messages.push(message);
        state.pushed += 1;
        let len = state.messages.len();
        self.depth.store(len, Ordering::Relaxed);
        drop(state);
        // Group commit: while the queue is non-empty the writer is awake or
        // lingering on purpose and will take this line with the others, so
        // only these transitions need to wake it.
        if was_empty || len == self.batch_lines {
            self.not_empty.notify_one();
        }
    }

    pub(super) fn count_dropped(&self, lines: u64) {
        self.dropped.fetch_add(lines, Ordering::Relaxed);
    }

    pub(super) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub(super) fn depth(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }

    /// Blocks until there is work, lingers for a batch, then swaps the
    /// queued messages into `batch` (which must be empty). Returns the
    /// sequence number of the last message taken, or `None` once the queue
    /// is closed and drained.
    pub(super) fn take_batch(&self, batch: &mut Vec<Message>) -> Option<u64> {
        let state = self.lock();
        let state = self
            .not_empty
            .wait_while(state, |s| s.messages.is_empty() && !s.closed)
            .unwrap_or_else(PoisonError::into_inner);
        // Let more lines join the batch, unless someone waits for them.
        let (mut state, _) = self
            .not_empty
            .wait_timeout_while(state, self.linger, |s| {
                !s.closed
                    && !s.flush_wanted
                    && s.messages.len() < self.batch_lines
                    && !s.linger_timer_fired()
            })
            .unwrap_or_else(PoisonError::into_inner);
        if state.messages.is_empty() {
            // Only reachable when closed (see the first wait).
            return None;
        }
        std::mem::swap(&mut state.messages, batch);
        state.flush_wanted = false;
        self.depth.store(0, Ordering::Relaxed);
        Some(state.pushed)
    }

    /// The model's clock: ends the writer's linger as its 2 ms timeout
    /// would (see "Time in the model").
    #[cfg(loom)]
    pub(super) fn fire_linger_timer(&self) {
        self.lock().timer_fired = true;
        self.not_empty.notify_one();
    }

    /// The writer has handed every message up to `upto` to the system.
    pub(super) fn mark_written(&self, upto: u64) {
        let mut state = self.lock();
        state.written = state.written.max(upto);
        drop(state);
        self.written_or_gone.notify_all();
    }

    /// Waits until every message queued before this call is written, or the
    /// writer is gone, or `deadline` passes. Returns true if and only if
    /// everything queued before the call was written.
    pub(super) fn flush_until(&self, deadline: Instant) -> bool {
        let mut state = self.lock();
        let target = state.pushed;
        if state.written >= target {
            return true;
        }
        state.flush_wanted = true;
        self.not_empty.notify_one();
        let timeout = deadline.saturating_duration_since(Instant::now());
        let (state, _) = self
            .written_or_gone
            .wait_timeout_while(state, timeout, |s| s.written < target && !s.writer_gone)
            .unwrap_or_else(PoisonError::into_inner);
        state.written >= target
    }

    /// No more messages: the writer drains what is left and exits. Lines
    /// logged after this are dropped and counted.
    pub(super) fn close(&self) {
        self.lock().closed = true;
        self.not_empty.notify_one();
    }

    /// Called by the writer thread as it exits, however it exits.
    pub(super) fn writer_exited(&self) {
        self.lock().writer_gone = true;
        self.written_or_gone.notify_all();
    }

    /// Waits until the writer thread has exited, at most until `deadline`.
    /// Returns true if and only if it has.
    pub(super) fn wait_writer_gone(&self, deadline: Instant) -> bool {
        let state = self.lock();
        let timeout = deadline.saturating_duration_since(Instant::now());
        let (state, _) = self
            .written_or_gone
            .wait_timeout_while(state, timeout, |s| !s.writer_gone)
            .unwrap_or_else(PoisonError::into_inner);
        state.writer_gone
    }
}

#[cfg(test)]
mod tests {
    use super::super::Level;
    use super::*;
    use std::time::SystemTime;

    fn line(text: &str) -> Message {
        Message::Line {
            at: SystemTime::now(),
            level: Level::Info,
            text: text.to_owned(),
        }
    }

    /// No writer at all (as if its thread had died): producers still never
    /// wait; what does not fit is dropped and counted, and a flush gives up
    /// at its deadline.
    #[test]
    fn without_a_writer_pushes_drop_and_count_and_flush_gives_up() {
        let queue = Queue::new(100, 10, Duration::from_millis(1));
        for i in 0..1000 {
            queue.push(line(&format!("{i}")));
        }
        assert_eq!(queue.depth(), 100);
        assert_eq!(queue.dropped(), 900);
        let start = Instant::now();
        assert!(!queue.flush_until(Instant::now() + Duration::from_millis(50)));
        assert!(start.elapsed() >= Duration::from_millis(50));
        queue.close();
        queue.push(line("after close"));
        assert_eq!(queue.dropped(), 901);
    }

    #[test]
    fn a_taken_batch_frees_room_and_a_flush_sees_it_written() {
        let queue = Queue::new(3, 10, Duration::ZERO);
        for i in 0..5 {
            queue.push(line(&format!("{i}")));
        }
        assert_eq!(queue.dropped(), 2);
        let mut batch = Vec::new();
        assert_eq!(queue.take_batch(&mut batch), Some(3));
        assert_eq!((batch.len(), queue.depth()), (3, 0));
        queue.push(line("3"));
        assert_eq!(queue.depth(), 1);
        batch.clear();
        assert_eq!(queue.take_batch(&mut batch), Some(4));
        queue.mark_written(4);
        assert!(queue.flush_until(Instant::now()));
        queue.close();
        batch.clear();
        assert_eq!(queue.take_batch(&mut batch), None);
    }
}

/// The model tests (loom) of the queue's protocol, run on this very
/// `Queue`. The writer thread is modelled by its three queue calls
/// (`take_batch`, `mark_written`, `writer_exited`, as `Writer::run` makes
/// them) with a `Vec` for the file. CONCURRENCY.md says how to run them.
#[cfg(all(test, loom))]
mod loom_model {
    use super::super::Level;
    use super::*;
    use crate::sync::lock_order::TEST_LEAF;
    use crate::sync::{thread, Arc};
    use std::time::SystemTime;

    fn line(text: &str) -> Message {
        Message::Line {
            at: SystemTime::now(),
            level: Level::Info,
            text: text.to_owned(),
        }
    }

    fn text(message: Message) -> String {
        match message {
            Message::Line { text, .. } => text,
            _ => unreachable!("the model logs lines only"),
        }
    }

    /// `Writer::run`'s loop over the queue, writing into `file`; with
    /// `batches: Some(n)` the writer dies after `n` batches (as if its
    /// thread were gone), without draining the rest.
    fn writer(queue: &Queue, file: &Mutex<Vec<String>>, batches: Option<usize>) {
        let mut batch = Vec::new();
        let mut taken = 0;
        while batches.is_none_or(|n| taken < n) {
            let Some(upto) = queue.take_batch(&mut batch) else {
                break;
            };
            file.lock().unwrap().extend(batch.drain(..).map(text));
            queue.mark_written(upto);
            taken += 1;
        }
        queue.writer_exited();
    }

    /// `Writer::run`'s loop, ended by the model once `lines` lines are in
    /// `file` (no flush or close wakes this writer: only the pushes do).
    fn writer_until(queue: &Queue, file: &Mutex<Vec<String>>, lines: usize) {
        let mut batch = Vec::new();
        while file.lock().unwrap().len() < lines {
            let upto = queue
                .take_batch(&mut batch)
                .expect("the queue is never closed");
            file.lock().unwrap().extend(batch.drain(..).map(text));
            queue.mark_written(upto);
        }
        queue.writer_exited();
    }

    /// Pushes `lines` then flushes; returns whether the flush said every
    /// earlier line was written, after checking that it was.
    fn push_and_flush(queue: &Queue, file: &Mutex<Vec<String>>, lines: &[&str]) -> bool {
        for l in lines {
            queue.push(line(l));
        }
        let flushed = queue.flush_until(std::time::Instant::now());
        let written = file.lock().unwrap();
        let all_written = lines.iter().all(|l| written.iter().any(|w| w == l));
        assert!(
            !flushed || all_written,
            "flush returned true before {lines:?} were written: {:?}",
            *written
        );
        flushed
    }

    /// A queue of 8 lines with batches of `batch_lines`, its model file,
    /// and `writer` running on clones of both.
    fn start(
        batch_lines: usize,
        writer: impl FnOnce(&Queue, &Mutex<Vec<String>>) + Send + 'static,
    ) -> (Arc<Queue>, Arc<Mutex<Vec<String>>>, thread::JoinHandle<()>) {
        let queue = Arc::new(Queue::new(8, batch_lines, Duration::ZERO));
        let file = Arc::new(Mutex::new(TEST_LEAF, Vec::new()));
        let handle = {
            let (queue, file) = (Arc::clone(&queue), Arc::clone(&file));
            thread::spawn(move || writer(&queue, &file))
        };
        (queue, file, handle)
    }

    /// No lost wake-up when notifications are skipped: with batches of
    /// two, only a push onto an empty queue or one that fills a batch
    /// notifies, yet with no flush and no close every line pushed reaches
    /// the writer — a missed wake-up leaves it asleep forever, which loom
    /// reports as a deadlock.
    #[test]
    fn no_lost_wake_up_when_notifications_are_skipped() {
        crate::sync::loom_model(Some(2), || {
            let (queue, file, writer) = start(2, |queue, file| writer_until(queue, file, 3));
            let clock = {
                let queue = Arc::clone(&queue);
                thread::spawn(move || queue.fire_linger_timer())
            };
            for l in ["1", "2", "3"] {
                queue.push(line(l));
            }
            writer.join().unwrap();
            clock.join().unwrap();
            assert_eq!(*file.lock().unwrap(), ["1", "2", "3"]);
        });
    }

    /// Both flushes (one behind three lines, one concurrent) return true,
    /// and only once their lines are written, whether the linger timer or
    /// a flush ends the writer's linger.
    #[test]
    fn flushes_return_true_with_every_earlier_line_written() {
        crate::sync::loom_model(Some(1), || {
            let (queue, file, writer) = start(2, |queue, file| writer(queue, file, None));
            let three = {
                let (queue, file) = (Arc::clone(&queue), Arc::clone(&file));
                thread::spawn(move || push_and_flush(&queue, &file, &["a1", "a2", "a3"]))
            };
            let clock = {
                let queue = Arc::clone(&queue);
                thread::spawn(move || queue.fire_linger_timer())
            };
            assert!(push_and_flush(&queue, &file, &["b1"]));
            assert!(three.join().unwrap());
            clock.join().unwrap();
            queue.close();
            writer.join().unwrap();
            assert_eq!(file.lock().unwrap().len(), 4);
        });
    }

    /// With the writer gone after one batch, concurrent flushers neither
    /// wait forever nor claim a line that was not written (each checks its
    /// own lines when its flush returns true).
    #[test]
    fn a_flush_never_outwaits_a_dead_writer_nor_claims_unwritten_lines() {
        crate::sync::loom_model(Some(2), || {
            let (queue, file, writer) = start(8, |queue, file| writer(queue, file, Some(1)));
            let other = {
                let (queue, file) = (Arc::clone(&queue), Arc::clone(&file));
                thread::spawn(move || push_and_flush(&queue, &file, &["a"]))
            };
            push_and_flush(&queue, &file, &["b"]);
            other.join().unwrap();
            writer.join().unwrap();
        });
    }
}
