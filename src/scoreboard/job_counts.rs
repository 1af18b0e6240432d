//! How many jobs are queued, running and saving, in one atomic word, so
//! that the three counts a reader gets always belong together.

use std::sync::atomic::{AtomicU64, Ordering};

/// Bits per count in [`STAGES`].
const BITS: u32 = 21;
/// The largest count a field holds (2,097,151).
const MAX: u64 = (1 << BITS) - 1;
// Every job that can be pending fits one field.
const _: () = assert!(crate::limits::MAX_PENDING_JOBS as u64 <= MAX);

/// `queued | running << 21 | saving << 42`.
///
/// Invariant: each field counts the jobs of this process in that stage; a
/// job moves from one stage to the next in one `fetch_update`, so a reader
/// that loads the word once sees every job in exactly one stage (never a
/// job counted twice or not at all, as two separate counters would show
/// between their updates). No lock: the job table's lock is not taken to
/// read or change it (test `counts_move_between_stages_in_one_word`).
static STAGES: AtomicU64 = AtomicU64::new(0);

/// A stage of a job's life the scoreboard counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Accepted, not yet taken by a worker.
    Queued = 0,
    /// A worker computes it and writes its file.
    Running = 1,
    /// Written, waiting for the directory flush that makes it durable (or,
    /// without durability, being recorded).
    Saving = 2,
}

/// The three counts, read together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JobCounts {
    pub queued: u64,
    pub running: u64,
    pub saving: u64,
}

impl JobCounts {
    /// Jobs accepted and not yet ended: the sum of the three.
    #[must_use]
    pub fn pending(&self) -> u64 {
        self.queued + self.running + self.saving
    }

    fn unpack(word: u64) -> JobCounts {
        JobCounts {
            queued: word & MAX,
            running: (word >> BITS) & MAX,
            saving: (word >> (2 * BITS)) & MAX,
        }
    }
}

/// The counts now, from one load.
#[must_use]
pub fn job_counts() -> JobCounts {
    JobCounts::unpack(STAGES.load(Ordering::Acquire))
}

/// Moves one job from stage `from` (`None`: not counted yet) to stage `to`
/// (`None`: ended). A field never wraps: a count at 0 (or at its maximum)
/// stays there, so a broken caller shows wrong numbers, never garbage in
/// the other fields.
pub fn job_moved(from: Option<Stage>, to: Option<Stage>) {
    let _ = STAGES.fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
        Some(moved(word, from, to))
    });
}

/// `word` with one job moved from `from` to `to` (see [`job_moved`]).
fn moved(mut word: u64, from: Option<Stage>, to: Option<Stage>) -> u64 {
    if let Some(from) = from {
        let shift = from as u32 * BITS;
        if (word >> shift) & MAX > 0 {
            word -= 1 << shift;
        }
    }
    if let Some(to) = to {
        let shift = to as u32 * BITS;
        if (word >> shift) & MAX < MAX {
            word += 1 << shift;
        }
    }
    word
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A job's whole life on a word this test owns (other tests of this
    /// binary move jobs on the process-wide one): each move changes two
    /// fields at once, and a field never wraps into its neighbour.
    #[test]
    fn counts_move_between_stages_in_one_word() {
        let counts = |w| JobCounts::unpack(w);
        let mut w = 0;
        w = moved(w, None, Some(Stage::Queued));
        w = moved(w, None, Some(Stage::Queued));
        assert_eq!(
            counts(w),
            JobCounts {
                queued: 2,
                running: 0,
                saving: 0
            }
        );
        w = moved(w, Some(Stage::Queued), Some(Stage::Running));
        assert_eq!(
            counts(w),
            JobCounts {
                queued: 1,
                running: 1,
                saving: 0
            }
        );
        w = moved(w, Some(Stage::Running), Some(Stage::Saving));
        assert_eq!(
            counts(w),
            JobCounts {
                queued: 1,
                running: 0,
                saving: 1
            }
        );
        assert_eq!(counts(w).pending(), 2);
        w = moved(w, Some(Stage::Saving), None);
        assert_eq!(
            counts(w),
            JobCounts {
                queued: 1,
                running: 0,
                saving: 0
            }
        );
        // Saturating at both ends.
        assert_eq!(moved(w, Some(Stage::Running), None), w);
        let full = MAX << BITS;
        assert_eq!(moved(full, None, Some(Stage::Running)), full);
        assert_eq!(counts(MAX << (2 * BITS)).saving, MAX);
    }
}
