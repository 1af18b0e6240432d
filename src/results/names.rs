//! The names in the results directory: job files (`job_id_N.json`,
//! `job_id_N.error`), the id reservation, and our temporary files — what a
//! name means, and the one limit every job id stays below.

use crate::jobs::JobId;
use std::fs;
use std::path::Path;

/// The file holding the id reservation: see [`super::ResultStore::reserve_ids_below`].
pub const RESERVED_IDS_FILE: &str = ".reserved_ids";
/// Where servers before the flat layout kept the reservation; still read,
/// so that an upgrade never reuses an id.
pub(super) const LEGACY_RESERVED_IDS_FILE: &str = "reserved_ids";
/// The file a save probe writes and removes (see `ResultStore::probe`).
pub(super) const PROBE_FILE: &str = ".probe";
/// Prefix of temporary files: `.tmp-` + the final name. Only names of this
/// shape whose final name is ours are deleted at start-up.
pub(super) const TEMP_PREFIX: &str = ".tmp-";

/// A job file found at start-up: an earlier run's job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestoredJob {
    pub id: JobId,
    /// `true` for a result (`job_id_N.json`), `false` for a recorded
    /// failure (`job_id_N.error`).
    pub succeeded: bool,
}

/// Every job id, restored or handed out, is below this: 2^48 - 1.
///
/// Why 48 bits: the scoreboard ([`crate::scoreboard`]) packs a thread's
/// state, endpoint and job id into one `u64` word (`job << 16`), so a job id
/// must fit 48 bits. (It is also well below 2^53, the largest integer a JSON
/// client written in JavaScript reads exactly.) Job files with an id at or
/// above it are ignored at start-up — honouring a planted
/// `job_id_18446744073709551615.json` would leave no ids for new jobs — and
/// submissions are refused (`IdsExhausted`) once the next id would reach it.
pub const MAX_RESTORED_ID: u64 = (1 << 48) - 1;

/// `job_id_<N>.json` → job N succeeded, `job_id_<N>.error` → job N failed;
/// `None` for every other name.
pub(super) fn parse_job_file_name(name: &str) -> Option<RestoredJob> {
    let (stem, succeeded) = match name.strip_suffix(".json") {
        Some(stem) => (stem, true),
        None => (name.strip_suffix(".error")?, false),
    };
    // `JobId::parse` also accepts a bare `N`; a file name must be spelled out.
    if !stem.starts_with("job_id_") {
        return None;
    }
    JobId::parse(stem).map(|id| RestoredJob { id, succeeded })
}

/// Whether `name` is a temporary file this server makes: `.tmp-` followed
/// by a job file name, the reservation's or the probe's.
pub(super) fn is_our_temp_name(name: &str) -> bool {
    name.strip_prefix(TEMP_PREFIX).is_some_and(|rest| {
        rest == RESERVED_IDS_FILE || rest == PROBE_FILE || parse_job_file_name(rest).is_some()
    })
}

/// The number in a reservation file; 0 when there is none or it is not a
/// plain number up to [`MAX_RESTORED_ID`] (a damaged file must not exhaust
/// the ids any more than a planted job file can; a reservation of exactly
/// `MAX_RESTORED_ID` is one that used every id, and is honoured).
pub(super) fn read_reservation(path: &Path) -> u64 {
    fs::read_to_string(path)
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok())
        .filter(|&n| n <= MAX_RESTORED_ID)
        .unwrap_or(0)
}
