//! The id reservation: every id this process may hand out is first recorded
//! on disk, so that a restart after a crash never gives an id twice.

use super::table::{JobRecords, JobTable};
use super::{JobId, Refused};
use crate::results::MAX_RESTORED_ID;

/// How many ids one reservation covers: one small file write (and, durable,
/// two flushes) per block, under the table lock. Large, so that a submit
/// flood pays it rarely (a block of 1,024 cost a flood's p99 15 ms in `make
/// bench`); the price is a gap of at most this many ids after a crash (a
/// clean shutdown trims the reservation, so a clean restart has no gap).
pub(super) const ID_RESERVATION_BLOCK: u64 = 1 << 16;

/// The reservation's state, kept in the [`JobTable`] under its lock.
#[derive(Debug)]
pub(super) struct IdReservation {
    /// Every id below this is recorded on disk as possibly handed out (see
    /// [`crate::results::ResultStore::reserve_ids_below`]) — unless `lost`.
    reserved_below: u64,
    /// The results directory was re-created since the reservation was last
    /// written, so the file is gone: it must be written again before the
    /// next id is handed out.
    lost: bool,
    /// The last reservation write failed (its error was logged): log the
    /// next failure only after a success, not once per refused submission.
    failing: bool,
}

impl IdReservation {
    /// The reservation at start-up: ids below `first_id` are used up.
    pub(super) fn starting_at(first_id: u64) -> IdReservation {
        IdReservation {
            reserved_below: first_id,
            lost: false,
            failing: false,
        }
    }
}

impl JobRecords {
    /// Makes sure `id` is reserved on disk before it is handed out; called
    /// by `submit` under the table lock. If the results directory was
    /// re-created since the last write ([`crate::results::ResultStore::take_recreated`]),
    /// the reservation is written again first, covering every id handed
    /// out.
    ///
    /// File I/O under the table lock, once per [`ID_RESERVATION_BLOCK`]
    /// ids: the reservation must be on disk before the id is returned, and
    /// every submission waiting for the lock meanwhile would need this
    /// id's block anyway.
    ///
    /// # Errors
    /// [`Refused::IdsUnavailable`] when the reservation cannot be written;
    /// nothing changes then, so the next submission tries the same id.
    pub(super) fn reserve(&self, table: &mut JobTable, id: JobId) -> Result<(), Refused> {
        let reservation = &mut table.reservation;
        if self.store.take_recreated() {
            reservation.lost = true;
        }
        if id.0 < reservation.reserved_below && !reservation.lost {
            return Ok(());
        }
        // Never past the last id (a larger number would be read back as
        // damaged, and so as no reservation at all).
        let limit = if id.0 < reservation.reserved_below {
            reservation.reserved_below
        } else {
            id.0.saturating_add(ID_RESERVATION_BLOCK)
                .min(MAX_RESTORED_ID)
        };
        if let Err(error) = self.store.reserve_ids_below(limit) {
            // Handing out the id anyway could let a restart after a crash
            // give it again: refuse, and do not advance.
            if !reservation.failing {
                reservation.failing = true;
                self.logger.error(format!(
                    "cannot record the id reservation in {}: {error}; refusing new jobs until it can",
                    self.store.dir().display()
                ));
            }
            return Err(Refused::IdsUnavailable);
        }
        reservation.failing = false;
        reservation.lost = false;
        reservation.reserved_below = limit;
        Ok(())
    }

    /// At shutdown, once every accepted job has finished and no more are
    /// accepted: shrinks the reservation to the ids really handed out, so
    /// that a clean restart numbers on right after them, without a gap.
    ///
    /// The file is written with no lock held. That is race-free because
    /// nothing else writes the reservation any more: `submit` writes it
    /// only under the table lock after checking `accepting`, which
    /// `stop_accepting` cleared before this is called, and only the first
    /// caller of `close_and_wait` calls this.
    pub(super) fn shrink_reservation(&self) {
        let (next, reserved_below, lost) = {
            let table = self.lock_table();
            let lost = table.reservation.lost || self.store.take_recreated();
            (self.next_id(&table), table.reservation.reserved_below, lost)
        };
        let Some(next) = next else {
            return; // every id used: nothing to shrink to
        };
        // A lost reservation is written even when there is nothing to trim.
        if next.0 >= reserved_below && !lost {
            return;
        }
        match self.store.reserve_ids_below(next.0) {
            Ok(()) => {
                let mut table = self.lock_table();
                table.reservation.reserved_below = next.0;
                table.reservation.lost = false;
            }
            Err(error) => self
                .logger
                .error(format!("cannot record the id reservation: {error}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::table::Entry;
    use crate::log::Logger;
    use crate::results::{ResultStore, ResultsLock, RESERVED_IDS_FILE};
    use std::fs;

    fn on_disk(dir: &std::path::Path) -> String {
        fs::read_to_string(dir.join(RESERVED_IDS_FILE)).unwrap()
    }

    /// One write per block: the first id reserves a block, the ids inside
    /// it write nothing, the first past it the next block; at shutdown the
    /// reservation shrinks to the next id (so a clean restart has no gap).
    #[test]
    fn ids_are_reserved_a_block_at_a_time_and_shrunk_at_shutdown() {
        let dir = std::env::temp_dir().join(format!("lss-reserve-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let (store, restored) =
            ResultStore::open(ResultsLock::acquire(&dir).unwrap(), false).unwrap();
        let records = JobRecords::new(store, restored, Logger::disabled());
        let mut table = records.lock_table();
        records.reserve(&mut table, JobId(1)).unwrap();
        assert_eq!(on_disk(&dir), (1 + ID_RESERVATION_BLOCK).to_string());
        fs::remove_file(dir.join(RESERVED_IDS_FILE)).unwrap();
        records
            .reserve(&mut table, JobId(ID_RESERVATION_BLOCK))
            .unwrap();
        assert!(
            !dir.join(RESERVED_IDS_FILE).exists(),
            "inside the block: no write"
        );
        records
            .reserve(&mut table, JobId(ID_RESERVATION_BLOCK + 1))
            .unwrap();
        assert_eq!(on_disk(&dir), (1 + 2 * ID_RESERVATION_BLOCK).to_string());
        table.entries.extend((0..3).map(|_| Entry::Running));
        drop(table);
        records.shrink_reservation();
        assert_eq!(on_disk(&dir), "4");
        let _ = fs::remove_dir_all(&dir);
    }
}
