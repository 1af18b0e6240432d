//! A histogram of durations: fixed buckets, one atomic per bucket, so an
//! observation is two `fetch_add`s and never takes a lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the duration buckets, in seconds (50 µs to 5 s), as
/// written in the `le` label; a last, implicit bucket is `+Inf`.
const BUCKETS: [(&str, u64); 16] = [
    ("0.00005", 50_000),
    ("0.0001", 100_000),
    ("0.00025", 250_000),
    ("0.0005", 500_000),
    ("0.001", 1_000_000),
    ("0.0025", 2_500_000),
    ("0.005", 5_000_000),
    ("0.01", 10_000_000),
    ("0.025", 25_000_000),
    ("0.05", 50_000_000),
    ("0.1", 100_000_000),
    ("0.25", 250_000_000),
    ("0.5", 500_000_000),
    ("1", 1_000_000_000),
    ("2.5", 2_500_000_000),
    ("5", 5_000_000_000),
];

/// A histogram of durations with the fixed [`BUCKETS`].
///
/// `counts[i]` counts observations in bucket `i` alone (not cumulative;
/// `counts[BUCKETS.len()]` is above the last bound), so an observation is
/// one `fetch_add` there and one on `sum_nanos`. Rendering accumulates them,
/// so the `+Inf` bucket always equals `_count`.
pub(super) struct Histogram {
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Histogram {
    /// A histogram with no observations.
    pub(super) const fn new() -> Histogram {
        Histogram {
            counts: [const { AtomicU64::new(0) }; BUCKETS.len() + 1],
            sum_nanos: AtomicU64::new(0),
        }
    }

    /// Counts `duration` in the first bucket whose bound holds it (a
    /// duration beyond `u64::MAX` nanoseconds counts as that).
    pub(super) fn observe(&self, duration: Duration) {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        let bucket = BUCKETS
            .iter()
            .position(|&(_, bound)| nanos <= bound)
            .unwrap_or(BUCKETS.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Each bucket's `le` label (`+Inf` last) and its own count (not
    /// cumulative), in bound order.
    pub(super) fn buckets(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.counts.iter().enumerate().map(|(i, count)| {
            let le = BUCKETS.get(i).map_or("+Inf", |&(le, _)| le);
            (le, count.load(Ordering::Relaxed))
        })
    }

    /// The sum of the observations, in seconds.
    pub(super) fn sum_seconds(&self) -> f64 {
        self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9
    }

    /// The number of observations.
    #[cfg(test)]
    pub(super) fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}
