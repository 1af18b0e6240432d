//! The id reservation: every id handed out is below a reservation already
//! on stable storage (`.reserved_ids`), so that a restart after a crash
//! never gives an id twice — and no file I/O happens under the job table's
//! lock.
//!
//! A submission calls it twice, a pair a reader of the job path can skip:
//! [`IdReservation::ready`] before taking the table lock, which does any
//! I/O, and [`IdReservation::hand_out`] under it, one atomic load. The
//! file is written by one writer at a time, with no lock held: ahead of
//! need, by the first submission after the last id handed out crossed the
//! low-water mark; and for an id `hand_out` refused (the file was lost, or
//! the ids ran out first) by that id's submitter, who writes it or waits
//! on a Condvar for the one writing, then tries again. Besides the first
//! block, written at start-up, only an id read under the table lock while
//! it accepted jobs is ever covered that way, and nothing is written after
//! shutdown's shrink ([`IdReservation::shrink_to`]), so the shrunk value
//! is what a clean restart reads (a submission refused before the shrink
//! may have written a block; the shrink overwrites it). The file is kept
//! open: its link count dropping to 0 (deleted, or the directory removed)
//! makes the next submission rewrite it before any id is handed out. Held by
//! `tests/integration/jobs.rs::a_deleted_reservation_is_rewritten_before_the_next_id`
//! and, with the flush held by a shim, `fault_e2e::a_held_reservation_flush_blocks_no_reader`;
//! after shutdown, by
//! `tests/integration/jobs.rs::a_submission_after_shutdown_leaves_no_gap_in_the_ids`,
//! `tests::a_cover_after_the_shrink_writes_nothing` and the shuttle model
//! `jobs::shuttle_model::submissions_racing_two_shut_downs_no_fsync`.

use super::table::JobTable;
use crate::results::{ResultStore, MAX_RESTORED_ID};
use crate::sync::lock_order::JOB_RESERVATION;
use crate::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// How many ids one reservation covers: one small file write and two
/// flushes per block. The price is a gap of at most one and a half blocks
/// of ids after a crash (the next block is written while up to
/// [`LOW_WATER`] ids are left); a clean shutdown trims the reservation, so
/// a clean restart has no gap.
pub(super) const ID_RESERVATION_BLOCK: u64 = 1 << 16;

/// The next block is written once at most this many ids are left.
const LOW_WATER: u64 = ID_RESERVATION_BLOCK / 2;

pub(super) struct IdReservation {
    /// Ids below this may be handed out: the reservation on stable storage,
    /// its file in place as far as this process knows; 0 once the file is
    /// found gone. Only raised by a writer after its write succeeded.
    usable_below: AtomicU64,
    /// The last id [`hand_out`](Self::hand_out) allowed: when to write the
    /// next block ahead. Stored only under the job table's lock, so it only
    /// grows. Only a hint (a stale value read by [`ready`](Self::ready) can
    /// only delay a write ahead; the check that no uncovered id goes out
    /// is `usable_below`'s, under that lock), so `Relaxed`.
    last_handed_out: AtomicU64,
    /// Invariant: one writer at a time (`writing`), with no lock held
    /// while it writes; `written_below` is the last value written, and
    /// covers every id handed out. Poisoning: each update is one
    /// assignment; recovered.
    state: Mutex<ReservationState>,
    /// Condition: "`writing` is false" (a write ended, in success or not).
    write_ended: Condvar,
}

struct ReservationState {
    written_below: u64,
    writing: bool,
    /// The file last written, open (`None` before the first write).
    file: Option<Arc<File>>,
    /// Bumped by every failed write: a waiter whose writer failed fails too.
    failed_writes: u64,
    /// Set by [`IdReservation::shrink_to`] at shutdown: no write after it,
    /// so the shrunk reservation stays what a clean restart reads.
    closed: bool,
}

impl IdReservation {
    /// Nothing usable yet: ids from `first_id` on need a write (made at
    /// start by [`IdReservation::ready`]). `reserved_at_start` is what the
    /// file says.
    pub(super) fn new(first_id: u64, reserved_at_start: u64) -> IdReservation {
        IdReservation {
            usable_below: AtomicU64::new(first_id),
            last_handed_out: AtomicU64::new(first_id.saturating_sub(1)),
            state: Mutex::new(
                JOB_RESERVATION,
                ReservationState {
                    written_below: reserved_at_start.max(first_id),
                    writing: false,
                    file: None,
                    failed_writes: 0,
                    closed: false,
                },
            ),
            write_ended: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ReservationState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Before the table lock: covers `uncovered` (an id
    /// [`hand_out`](Self::hand_out) refused under the table lock), writing
    /// the reservation or waiting for the one writing (after shutdown's
    /// shrink it returns at once, covering nothing: the table refuses the
    /// submission). Without one, writes
    /// the next block ahead if few ids are left after the last handed out
    /// (unless someone is writing), and writes nothing for an id not
    /// covered: that id's submitter meets it under the table lock first,
    /// where a shutdown or a full queue refuses it.
    ///
    /// # Errors
    /// The write's error, when the reservation cannot cover `uncovered`. A
    /// failed write ahead is not an error: the submission that needs the
    /// next block meets it, as an uncovered id.
    pub(super) fn ready(&self, store: &ResultStore, uncovered: Option<u64>) -> io::Result<()> {
        self.check_in_place(store);
        if let Some(id) = uncovered {
            return self.cover(store, id);
        }
        let next = self
            .last_handed_out
            .load(Ordering::Relaxed)
            .saturating_add(1);
        if self.is_low(next) {
            self.write_ahead(store, next);
        }
        Ok(())
    }

    /// Under the table lock (`_table`, its guard, is the proof): whether
    /// `id` may be handed out now (one atomic load, no I/O); if so it
    /// counts as handed out.
    pub(super) fn hand_out(&self, _table: &MutexGuard<'_, JobTable>, id: u64) -> bool {
        let covered = self.covers(id);
        if covered {
            self.last_handed_out.store(id, Ordering::Relaxed);
        }
        covered
    }

    fn covers(&self, id: u64) -> bool {
        id < self.usable_below.load(Ordering::Acquire)
    }

    /// Whether `next` is covered with at most [`LOW_WATER`] ids left.
    fn is_low(&self, next: u64) -> bool {
        let usable_below = self.usable_below.load(Ordering::Acquire);
        next < usable_below && usable_below - next <= LOW_WATER
    }

    /// Before the table lock: if the file was deleted (its link count is
    /// 0) or the directory re-created, nothing is usable until it is
    /// written again. One `fstat`.
    fn check_in_place(&self, store: &ResultStore) {
        let recreated = store.take_recreated();
        let Some(file) = self.lock().file.clone() else {
            return;
        };
        let gone = recreated || file.metadata().is_ok_and(|m| m.nlink() == 0);
        if gone {
            let state = self.lock();
            // Not if a writer replaced the file meanwhile (that, too,
            // drops the old one's link count to 0).
            if recreated || state.file.as_ref().is_some_and(|f| Arc::ptr_eq(f, &file)) {
                self.usable_below.store(0, Ordering::Release);
            }
        }
    }

    /// Returns once `id` is covered, writing the reservation itself if no
    /// one is, or waiting for the one who is; or once the reservation is
    /// closed (after shutdown's shrink), covering nothing.
    ///
    /// # Errors
    /// The write's error, when the write this call made or waited for
    /// failed and the reservation is not closed.
    fn cover(&self, store: &ResultStore, id: u64) -> io::Result<()> {
        let mut state = self.lock();
        loop {
            // Closed: the table stopped accepting before the shrink, so
            // the caller is refused under the table lock; write nothing.
            if self.covers(id) || state.closed {
                return Ok(());
            }
            if !state.writing {
                // Rewrite what was written if that covers `id` (the file was
                // lost), else a new block past `id`.
                let limit = if id < state.written_below {
                    state.written_below
                } else {
                    id.saturating_add(ID_RESERVATION_BLOCK).min(MAX_RESTORED_ID)
                };
                // Claimed in the section that chose `limit`: no other
                // writer can write a higher limit before this one lands.
                state.writing = true;
                drop(state);
                return self.write_claimed(store, limit);
            }
            let failed_before = state.failed_writes;
            state = self
                .write_ended
                .wait_while(state, |s| s.writing)
                .unwrap_or_else(PoisonError::into_inner);
            // The write waited for may have been the shrink's: after it,
            // closed wins over its outcome (the caller is refused anyway).
            if state.failed_writes != failed_before && !state.closed {
                return Err(io::Error::other("the id reservation could not be written"));
            }
        }
    }

    /// Writes the next block past `next`, unless someone is writing, or a
    /// write that ended meanwhile made it needless (an economy, not a
    /// guarantee: no test counts the writes). A failure is left for
    /// [`cover`](Self::cover) to meet.
    fn write_ahead(&self, store: &ResultStore, next: u64) {
        let limit = {
            let mut state = self.lock();
            // Checked again under the lock: a write that landed since
            // `ready` looked may have raised the limit already.
            if state.writing || state.closed || !self.is_low(next) {
                return;
            }
            let limit = self
                .usable_below
                .load(Ordering::Acquire)
                .max(state.written_below)
                .saturating_add(ID_RESERVATION_BLOCK)
                .min(MAX_RESTORED_ID);
            // At the last ids there is no further block to write.
            if limit <= state.written_below {
                return;
            }
            // Claimed in the section that chose `limit` (see `cover`).
            state.writing = true;
            limit
        };
        let _ = self.write_claimed(store, limit);
    }

    /// The write of the one writer, which set `writing` in the same
    /// critical section that chose `limit` from `written_below`: so limits
    /// are written in increasing order (a rewrite of a lost file writes
    /// the same limit again), and the reservation on disk never goes
    /// down. No lock is held during the I/O; wakes the waiters.
    fn write_claimed(&self, store: &ResultStore, limit: u64) -> io::Result<()> {
        let written = store.reserve_ids_below(limit);
        let mut state = self.lock();
        state.writing = false;
        let result = match written {
            Ok(file) => {
                state.written_below = limit;
                state.file = Some(Arc::new(file));
                self.usable_below.store(limit, Ordering::Release);
                Ok(())
            }
            Err(error) => {
                state.failed_writes += 1;
                Err(error)
            }
        };
        drop(state);
        self.write_ended.notify_all();
        result
    }

    /// At shutdown, once no id can be handed out any more: shrinks the
    /// reservation to `next` (the first id not handed out), so that a clean
    /// restart numbers on without a gap; also rewrites a lost file. Waits
    /// for a writer still at work (a submitter that started before
    /// shutdown), then writes as the one writer, and closes the
    /// reservation: a submission refused after shutdown writes nothing
    /// (`tests/integration/jobs.rs::a_submission_after_shutdown_leaves_no_gap_in_the_ids`).
    pub(super) fn shrink_to(&self, store: &ResultStore, next: u64) -> io::Result<()> {
        self.check_in_place(store);
        let mut state = self
            .write_ended
            .wait_while(self.lock(), |s| s.writing)
            .unwrap_or_else(PoisonError::into_inner);
        state.closed = true;
        let lost = self.usable_below.load(Ordering::Acquire) == 0;
        if next >= state.written_below && !lost {
            return Ok(());
        }
        state.writing = true;
        drop(state);
        self.write_claimed(store, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{ResultsLock, RESERVED_IDS_FILE};
    use std::fs;

    /// A table whose lock's guard is `hand_out`'s proof.
    fn table() -> Mutex<JobTable> {
        Mutex::new(
            crate::sync::lock_order::JOB_TABLE,
            JobTable {
                entries: Vec::new(),
                pending: 0,
                accepting: true,
            },
        )
    }

    fn scratch(name: &str) -> (std::path::PathBuf, ResultStore) {
        let dir = std::env::temp_dir().join(format!("lss-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let store = ResultStore::open(ResultsLock::acquire(&dir).unwrap(), false)
            .unwrap()
            .store;
        (dir, store)
    }

    /// After shutdown's shrink, covering an id (as a submitter refused by
    /// `hand_out` just before the shutdown would) writes nothing: the file
    /// keeps the shrunk value a clean restart reads.
    #[test]
    fn a_cover_after_the_shrink_writes_nothing() {
        let (dir, store) = scratch("reserve-closed");
        let reservation = IdReservation::new(1, 0);
        let table = table();
        // Locked only around `hand_out`, as `submit` does: no I/O under it.
        let hand_out = |id| reservation.hand_out(&table.lock().unwrap(), id);
        reservation.ready(&store, Some(1)).unwrap();
        assert!(hand_out(1));
        assert!(hand_out(2));
        reservation.shrink_to(&store, 3).unwrap();
        assert!(!hand_out(3));
        reservation.ready(&store, Some(3)).unwrap();
        reservation.ready(&store, None).unwrap();
        assert_eq!(
            fs::read_to_string(dir.join(RESERVED_IDS_FILE)).unwrap(),
            "3"
        );
        let _ = fs::remove_dir_all(&dir);
    }

    /// One write per block, ahead of need; a deleted file is noticed by its
    /// link count and written again; shutdown shrinks to the next id.
    #[test]
    fn blocks_are_written_ahead_and_a_deleted_file_is_rewritten() {
        let (dir, store) = scratch("reserve");
        let on_disk = || fs::read_to_string(dir.join(RESERVED_IDS_FILE)).unwrap();
        let reservation = IdReservation::new(1, 0);
        let table = table();
        // Locked only around `hand_out`, as `submit` does: no I/O under it.
        let hand_out = |id| reservation.hand_out(&table.lock().unwrap(), id);
        assert!(!hand_out(1));
        reservation.ready(&store, Some(1)).unwrap();
        assert_eq!(on_disk(), (1 + ID_RESERVATION_BLOCK).to_string());
        assert!(hand_out(1));
        reservation.ready(&store, None).unwrap();
        assert_eq!(
            on_disk(),
            (1 + ID_RESERVATION_BLOCK).to_string(),
            "not low yet"
        );
        assert!(hand_out(LOW_WATER - 1));
        reservation.ready(&store, None).unwrap();
        assert_eq!(
            on_disk(),
            (1 + ID_RESERVATION_BLOCK).to_string(),
            "not low yet"
        );
        assert!(hand_out(LOW_WATER));
        reservation.ready(&store, None).unwrap();
        assert_eq!(on_disk(), (1 + 2 * ID_RESERVATION_BLOCK).to_string());
        fs::remove_file(dir.join(RESERVED_IDS_FILE)).unwrap();
        reservation.check_in_place(&store);
        assert!(!hand_out(2), "nothing usable once the file is gone");
        reservation.ready(&store, Some(2)).unwrap();
        assert_eq!(on_disk(), (1 + 2 * ID_RESERVATION_BLOCK).to_string());
        reservation.ready(&store, None).unwrap();
        assert!(hand_out(2), "a rewritten file is in place");
        reservation.shrink_to(&store, 3).unwrap();
        assert_eq!(on_disk(), "3");
        let _ = fs::remove_dir_all(&dir);
    }
}
