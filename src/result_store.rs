//! Result files: `DIR/job_id_N.json`, written atomically, surviving restarts.
//!
//! # Layout
//!
//! ```text
//! DIR/job_id_7.json            the JSON text of job 7's `data`, nothing else
//! DIR/job_id_8.error           why job 8 failed (UTF-8 text), for a job that did
//! DIR/blobs/<hash>.json        one file per distinct result (content-addressed)
//! DIR/.tmp-<pid>-<n>           a file being written (deleted on the next start)
//! DIR/reserved_ids             ids below this number may have been handed out
//! ```
//!
//! # Atomicity
//!
//! A reader must never see half a file. Every file is written to a fresh
//! temporary name in the same directory (same file system), then renamed
//! over its final name: `rename` replaces the directory entry in one step,
//! so the name shows either nothing or the complete file. A job file is
//! normally a *hard link* to its blob, and `link` is just as atomic.
//!
//! There is no `fsync`. Atomic renames guarantee that a crash of the
//! *process* (SIGKILL, panic, abort) never leaves a torn result file, and
//! that is what the shutdown tests check. Surviving a power loss or kernel
//! crash would need `fsync` of the file and the directory on every result;
//! that is out of scope for a statistics cache whose results can be
//! recomputed.
//!
//! # Deduplication, and what a job costs
//!
//! The same question asked twice gives the same bytes, and a busy server
//! answers the same few hundred questions over and over. So results are
//! stored once per distinct content:
//!
//! - on disk, `blobs/<hash>.json` is written once (per process) and every
//!   job with those bytes gets a hard link to it: a directory entry, no
//!   data blocks. If the file system refuses hard links (EXDEV, EPERM,
//!   FAT…), the job file is written as a plain atomic copy instead.
//! - in memory, an interner maps the hash to one `Arc<[u8]>`, so every done
//!   job holding the same bytes shares one allocation.
//!
//! `hash` is 64-bit FNV-1a: stable across Rust versions and runs (file names
//! must be), not cryptographic. A collision is detected by comparing the
//! bytes; the colliding result is then simply not deduplicated.
//!
//! Per job that costs one directory entry (plus one small file per distinct
//! result) on disk, and in memory nothing here beyond the shared bytes; the
//! job table adds its own entry (see [`crate::jobs`]).
//!
//! Orphan blobs (whose jobs were deleted by hand) are not collected; there
//! is at most one per distinct result ever computed.

use crate::jobs::JobId;
use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Prefix of temporary files; any file so named at start-up is a leftover
/// of a crash and is deleted.
const TEMP_PREFIX: &str = ".tmp-";
/// Sub-directory of the content-addressed blobs.
const BLOBS_DIR: &str = "blobs";
/// The file holding the id reservation: see [`ResultStore::reserve_ids_below`].
const RESERVED_IDS_FILE: &str = "reserved_ids";

/// The results directory.
#[derive(Debug)]
pub struct ResultStore {
    dir: PathBuf,
    blobs_dir: PathBuf,
    /// Distinct result bytes, by [`hash`].
    ///
    /// Invariant: if `hash → bytes` is in the map, then `blobs/<hash>.json`
    /// was written *by this process* with exactly `bytes`, so a job with
    /// those bytes may be linked to it. (A blob left by an earlier run is
    /// never trusted: it is rewritten, which is safe even if it differs,
    /// because existing hard links keep pointing at the old contents.)
    /// New blobs are written while holding the lock, so two workers cannot
    /// race to write one blob name with different bytes.
    ///
    /// Poisoning: an entry is inserted only after its blob is complete, in
    /// one `insert`; a panic cannot leave a wrong entry, so the lock is
    /// recovered with [`PoisonError::into_inner`].
    interned: Mutex<HashMap<u64, Arc<[u8]>>>,
    /// Numbers temporary files: with the process id, their names are unique.
    next_temp: AtomicU64,
    /// The reservation found at start-up (0 if none): no id below it may be
    /// given to a new job.
    reserved_at_start: u64,
}

impl ResultStore {
    /// Opens `dir` (creating it and `dir/blobs`), deletes temporary files
    /// left by a crash, and returns the jobs whose files it found, in
    /// ascending id order: `true` for a result, `false` for a failure.
    ///
    /// A job file is a regular file named exactly `job_id_<N>.json` (a
    /// result) or `job_id_<N>.error` (a failure), with N accepted by
    /// [`JobId::parse`] and below [`MAX_RESTORED_ID`]; every other name is
    /// ignored.
    ///
    /// # Errors
    /// When a directory cannot be created or listed.
    pub fn open(dir: &Path) -> io::Result<(ResultStore, Vec<(JobId, bool)>)> {
        let blobs_dir = dir.join(BLOBS_DIR);
        fs::create_dir_all(&blobs_dir)?;
        remove_temp_files(&blobs_dir)?;
        let mut ids = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                continue; // not UTF-8: certainly not ours
            };
            if name.starts_with(TEMP_PREFIX) {
                remove_leftover(&entry.path());
            } else if let Some((id, succeeded)) = parse_job_file_name(name) {
                // A symlink or directory so named is not a result we wrote.
                let is_file = entry.file_type().is_ok_and(|t| t.is_file());
                if id.0 < MAX_RESTORED_ID && is_file {
                    ids.push((id, succeeded));
                }
            }
        }
        // A job has a result or a failure, never both; should both files
        // exist (edited by hand), the result wins: it sorts first and
        // `dedup` keeps the first of equal ids.
        ids.sort_unstable_by_key(|&(id, succeeded)| (id, !succeeded));
        ids.dedup_by_key(|(id, _)| *id);
        let store = ResultStore {
            dir: dir.to_path_buf(),
            blobs_dir,
            interned: Mutex::new(HashMap::new()),
            next_temp: AtomicU64::new(0),
            reserved_at_start: read_reservation(&dir.join(RESERVED_IDS_FILE)),
        };
        Ok((store, ids))
    }

    /// The id reservation an earlier run left (0 if none): every id below it
    /// may have been handed out, whether or not its job finished.
    pub fn reserved_at_start(&self) -> u64 {
        self.reserved_at_start
    }

    /// Records, atomically, that ids below `limit` may be handed out. A
    /// restarted server starts numbering at or above the recorded limit, so
    /// an id given to a job that never finished (the process was killed
    /// while it was queued) is never given to another job.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn reserve_ids_below(&self, limit: u64) -> io::Result<()> {
        let path = self.dir.join(RESERVED_IDS_FILE);
        self.write_atomic(&self.dir, &path, limit.to_string().as_bytes())
    }

    /// Where job `id`'s result lives.
    pub fn path_of(&self, id: JobId) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Writes `bytes` as job `id`'s result file, atomically, deduplicated,
    /// and returns the bytes as a shared allocation (the same `Arc` for
    /// every job with equal bytes).
    ///
    /// # Errors
    /// When the file cannot be written; no file (and no partial file) then
    /// exists under the job's name.
    pub fn save(&self, id: JobId, bytes: Vec<u8>) -> io::Result<Arc<[u8]>> {
        let job_path = self.path_of(id);
        let key = hash(&bytes);
        let blob_path = self.blobs_dir.join(format!("{key:016x}.json"));
        let (shared, blob) = {
            let mut interned = self.interned.lock().unwrap_or_else(PoisonError::into_inner);
            match interned.get(&key) {
                Some(known) if **known == *bytes => (Arc::clone(known), true),
                // A hash collision: keep it out of the map and the blob name.
                Some(_) => (Arc::from(bytes), false),
                None => {
                    let shared: Arc<[u8]> = Arc::from(bytes);
                    // Under the lock: see the invariant at the field.
                    let blob = match self.write_atomic(&self.blobs_dir, &blob_path, &shared) {
                        Ok(()) => {
                            interned.insert(key, Arc::clone(&shared));
                            true
                        }
                        // No blob (e.g. a full disk): try the plain file below,
                        // which reports the error if it fails too.
                        Err(_) => false,
                    };
                    (shared, blob)
                }
            }
        };
        if blob {
            match fs::hard_link(&blob_path, &job_path) {
                Ok(()) => return Ok(shared),
                // The blob's inode has reached the file system's link limit
                // (65 000 on ext4: a result asked for that often). Replace
                // the blob with a fresh inode holding the same bytes; the
                // old links keep the old inode. Safe without the lock: every
                // writer of this blob name writes these very bytes.
                Err(error) if error.kind() == io::ErrorKind::TooManyLinks => {
                    if self
                        .write_atomic(&self.blobs_dir, &blob_path, &shared)
                        .and_then(|()| fs::hard_link(&blob_path, &job_path))
                        .is_ok()
                    {
                        return Ok(shared);
                    }
                }
                Err(_) => {}
            }
        }
        // No blob, or no hard links here (other file system, no permission,
        // unsupported) — or, impossibly, a job file already there: a plain
        // atomic write covers them all (rename replaces an existing name).
        self.write_atomic(&self.dir, &job_path, &shared)?;
        Ok(shared)
    }

    /// Where job `id`'s failure is recorded.
    pub fn error_path_of(&self, id: JobId) -> PathBuf {
        self.dir.join(format!("{id}.error"))
    }

    /// Records, atomically, why job `id` failed, so that a restarted server
    /// still answers its id with the reason.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn save_error(&self, id: JobId, reason: &str) -> io::Result<()> {
        self.write_atomic(&self.dir, &self.error_path_of(id), reason.as_bytes())
    }

    /// Reads why job `id` failed (the text [`ResultStore::save_error`] wrote).
    ///
    /// # Errors
    /// When the file cannot be read or is not UTF-8.
    pub fn read_error(&self, id: JobId) -> io::Result<String> {
        fs::read_to_string(self.error_path_of(id))
    }

    /// Reads job `id`'s result file.
    ///
    /// # Errors
    /// When the file cannot be read.
    pub fn read(&self, id: JobId) -> io::Result<Vec<u8>> {
        fs::read(self.path_of(id))
    }

    /// Writes `bytes` to a new temporary file in `dir`, then renames it to
    /// `target` (which must be in `dir`: `rename` is atomic only within one
    /// file system). On error the temporary file is removed.
    fn write_atomic(&self, dir: &Path, target: &Path, bytes: &[u8]) -> io::Result<()> {
        let n = self.next_temp.fetch_add(1, Ordering::Relaxed);
        let temp = dir.join(format!("{TEMP_PREFIX}{}-{n}", std::process::id()));
        let result = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .and_then(|mut file| file.write_all(bytes))
            .and_then(|()| fs::rename(&temp, target));
        if result.is_err() {
            // Best effort: it may not even exist; a leftover is removed at
            // the next start anyway.
            let _ = fs::remove_file(&temp);
        }
        result
    }
}

/// Job files with an id at or above this are ignored at start-up: no server
/// numbers that far (it is 2^53, the largest integer a JSON client written in
/// JavaScript reads exactly), and honouring a planted `job_id_18446744073709551615.json`
/// would leave no ids for new jobs.
pub const MAX_RESTORED_ID: u64 = 1 << 53;

/// `job_id_<N>.json` → (N, true), `job_id_<N>.error` → (N, false); `None`
/// for every other name.
fn parse_job_file_name(name: &str) -> Option<(JobId, bool)> {
    let (stem, succeeded) = match name.strip_suffix(".json") {
        Some(stem) => (stem, true),
        None => (name.strip_suffix(".error")?, false),
    };
    // `JobId::parse` also accepts a bare `N`; a file name must be spelled out.
    if !stem.starts_with("job_id_") {
        return None;
    }
    JobId::parse(stem).map(|id| (id, succeeded))
}

fn remove_temp_files(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry
            .file_name()
            .to_str()
            .is_some_and(|name| name.starts_with(TEMP_PREFIX))
        {
            remove_leftover(&entry.path());
        }
    }
    Ok(())
}

fn remove_leftover(path: &Path) {
    if let Err(error) = fs::remove_file(path) {
        eprintln!(
            "results: cannot remove leftover {}: {error}",
            path.display()
        );
    }
}

/// 64-bit FNV-1a of `bytes`: tiny, stable forever (it names files on
/// disk), and good enough to spread result texts; collisions are checked.
pub fn hash(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET_BASIS, |h, &b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

/// The number in a reservation file; 0 when there is none or it is not a
/// plain number below [`MAX_RESTORED_ID`] (a damaged file must not exhaust
/// the ids any more than a planted job file can).
fn read_reservation(path: &Path) -> u64 {
    fs::read_to_string(path)
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok())
        .filter(|&n| n < MAX_RESTORED_ID)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_known_values() {
        // Reference values of 64-bit FNV-1a.
        assert_eq!(hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(hash(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn job_file_names() {
        assert_eq!(parse_job_file_name("job_id_1.json"), Some((JobId(1), true)));
        assert_eq!(
            parse_job_file_name("job_id_42.json"),
            Some((JobId(42), true))
        );
        assert_eq!(
            parse_job_file_name("job_id_7.error"),
            Some((JobId(7), false))
        );
        for junk in [
            "job_id_0.json",
            "job_id_x.json",
            "job_id_01.json",
            "job_id_1.json.tmp",
            "job_id_1",
            "1.json",
            "job_id_.json",
            "job_id_-1.json",
            "JOB_ID_1.json",
            "blobs",
        ] {
            assert_eq!(parse_job_file_name(junk), None, "{junk}");
        }
    }
}
