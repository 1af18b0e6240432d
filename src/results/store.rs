//! The job files: atomic writes, hard-link de-duplication of equal
//! results, the id reservation, and damaged-file checks when a restored
//! job's file is read back. See the [module docs](super) for the layout.
//!
//! Longer than most files here (about 440 lines before its tests) on
//! purpose: the write path, the re-creation of a vanished directory and the
//! read-back share one invariant — a file is only ever written into the
//! directory this store holds the lock on — and read best side by side.

use super::names::{
    is_our_temp_name, parse_job_file_name, read_reservation, RestoredJob, LEGACY_RESERVED_IDS_FILE,
    MAX_RESTORED_ID, RESERVED_IDS_FILE, TEMP_PREFIX,
};
use super::{LockError, ResultsLock};
use crate::jobs::JobId;
use crate::sync::lock_order::{RESULT_DIR_LOCK, RESULT_INTERNED};
use crate::sync::{Mutex, MutexGuard, PoisonError};
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// What a restored job's file holds, read back by [`ResultStore::read_back`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadBack {
    /// A result file holding valid JSON: these bytes.
    Result(Vec<u8>),
    /// A failure record: why the job failed.
    Failure(String),
    /// Not what this server writes — a result that is not valid JSON, or
    /// an empty failure record (torn by a power loss, or edited by hand);
    /// why, for the log.
    Damaged(String),
}

/// The results directory, owned through its [`ResultsLock`].
#[derive(Debug)]
pub struct ResultStore {
    dir: PathBuf,
    /// Flush files and the directory before a write returns (not with
    /// `--no-fsync`).
    durable: bool,
    /// The lock on the directory `dir` names. Invariant: every write goes
    /// into the directory this lock holds — a write first checks that `dir`
    /// still names it, and if not (the directory was removed) re-creates
    /// and locks the directory at `dir`, under this mutex, or fails. Held
    /// only for that check and re-creation. Poisoning: the one update is an
    /// assignment; recovered with [`PoisonError::into_inner`].
    lock: Mutex<ResultsLock>,
    /// Set when the directory was re-created, so its `.reserved_ids` went
    /// with the old one; cleared by [`ResultStore::take_recreated`], whose
    /// caller then writes the reservation again.
    recreated: AtomicBool,
    /// Distinct result bytes, by [`hash`], and a job whose file holds them.
    ///
    /// Invariant: `file_of`, when set, names a job whose file this process
    /// wrote with exactly `bytes` (it may have been deleted since: linking
    /// then fails and the bytes are written out). Only lookups and inserts
    /// happen under the lock, no I/O. Poisoning: each update is one insert
    /// or assignment; recovered with [`PoisonError::into_inner`].
    interned: Mutex<HashMap<u64, Interned>>,
    /// Directory flushes run by [`ResultStore::flush_dir`].
    flushes: AtomicU64,
    /// The reservation found at start-up (0 if none).
    reserved_at_start: u64,
}

#[derive(Debug)]
struct Interned {
    bytes: Arc<[u8]>,
    file_of: Option<JobId>,
}

impl ResultStore {
    /// Opens the locked directory, deletes the temporary files a crash of an
    /// earlier server left (only names this server makes, and only because
    /// it holds the lock, so no live server is writing them), and returns
    /// the jobs whose files it found, in ascending id order.
    ///
    /// A job file is a regular file named exactly `job_id_<N>.json` (a
    /// result) or `job_id_<N>.error` (a failure), with N accepted by
    /// [`JobId::parse`] and below [`MAX_RESTORED_ID`]; every other name is
    /// ignored. `durable` selects durable writes (see the module docs).
    ///
    /// # Errors
    /// When the directory cannot be listed.
    pub fn open(lock: ResultsLock, durable: bool) -> io::Result<(ResultStore, Vec<RestoredJob>)> {
        let dir = lock.dir().to_path_buf();
        let mut ids = Vec::new();
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                continue; // not UTF-8: certainly not ours
            };
            if is_our_temp_name(name) {
                remove_leftover(&entry.path());
            } else if let Some(job) = parse_job_file_name(name) {
                // A symlink or directory so named is not a result we wrote.
                let is_file = entry.file_type().is_ok_and(|t| t.is_file());
                if job.id.0 < MAX_RESTORED_ID && is_file {
                    ids.push(job);
                }
            }
        }
        // A job has a result or a failure, never both; should both files
        // exist (edited by hand), the result wins: it sorts first and
        // `dedup` keeps the first of equal ids.
        ids.sort_unstable_by_key(|job| (job.id, !job.succeeded));
        ids.dedup_by_key(|job| job.id);
        let reserved_at_start = read_reservation(&dir.join(RESERVED_IDS_FILE))
            .max(read_reservation(&dir.join(LEGACY_RESERVED_IDS_FILE)));
        let store = ResultStore {
            dir,
            durable,
            lock: Mutex::new(RESULT_DIR_LOCK, lock),
            recreated: AtomicBool::new(false),
            interned: Mutex::new(RESULT_INTERNED, HashMap::new()),
            flushes: AtomicU64::new(0),
            reserved_at_start,
        };
        Ok((store, ids))
    }

    /// The id reservation an earlier run left (0 if none): every id below it
    /// may have been handed out, whether or not its job finished.
    pub fn reserved_at_start(&self) -> u64 {
        self.reserved_at_start
    }

    /// Whether the directory was re-created since the last call (so the id
    /// reservation on disk is gone); clears the mark. The caller must write
    /// the reservation again ([`ResultStore::reserve_ids_below`]) before it
    /// hands out another id.
    pub fn take_recreated(&self) -> bool {
        self.recreated.swap(false, Ordering::AcqRel)
    }

    /// The results directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Records, atomically (and durably, in durable mode), that ids below
    /// `limit` may be handed out. A restarted server starts numbering at or
    /// above the recorded limit, so an id given to a job that never
    /// finished is never given to another job.
    ///
    /// # Errors
    /// When the file cannot be written; the caller must then not hand out
    /// ids at or above the previous limit.
    pub fn reserve_ids_below(&self, limit: u64) -> io::Result<()> {
        self.write_file(RESERVED_IDS_FILE, limit.to_string().as_bytes())?;
        self.flush_dir()
    }

    /// Where job `id`'s result lives.
    fn path_of(&self, id: JobId) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// `bytes` as a shared allocation: the same `Arc` for every result with
    /// equal bytes, so that equal results cost memory once.
    pub fn intern(&self, bytes: Vec<u8>) -> Arc<[u8]> {
        let key = hash(&bytes);
        let mut interned = self.lock_interned();
        match interned.get(&key) {
            Some(known) if *known.bytes == *bytes => Arc::clone(&known.bytes),
            // A hash collision: keep it out of the map.
            Some(_) => Arc::from(bytes),
            None => {
                let shared: Arc<[u8]> = Arc::from(bytes);
                interned.insert(
                    key,
                    Interned {
                        bytes: Arc::clone(&shared),
                        file_of: None,
                    },
                );
                shared
            }
        }
    }

    /// Writes `bytes` as job `id`'s result file, atomically — a hard link
    /// to an earlier job's file with the same bytes when there is one. In
    /// durable mode the file's data is on stable storage when this returns;
    /// its directory entry is once [`ResultStore::flush_dir`] has run.
    ///
    /// # Errors
    /// When the file cannot be written; no file (and no partial file) then
    /// exists under the job's name.
    pub fn write_result(&self, id: JobId, bytes: &[u8]) -> io::Result<()> {
        let key = hash(bytes);
        let source = self
            .lock_interned()
            .get(&key)
            .filter(|known| *known.bytes == *bytes)
            .and_then(|known| known.file_of);
        let name = format!("{id}.json");
        // Before linking too: a link into a directory another server made at
        // our path would be a write into it.
        self.ensure_own_dir()?;
        // The source's data is already durable (this process wrote it, in
        // the same mode): a link needs only the directory flush. Any
        // failure — the source deleted, another file system, the link
        // limit, the name taken — falls back to writing the bytes out.
        let linked = source.is_some_and(|source| {
            source != id && fs::hard_link(self.path_of(source), self.dir.join(&name)).is_ok()
        });
        if !linked {
            self.write_in_own_dir(&name, bytes)?;
            if let Some(known) = self.lock_interned().get_mut(&key) {
                if *known.bytes == *bytes {
                    known.file_of = Some(id);
                }
            }
        }
        Ok(())
    }

    /// Where job `id`'s failure is recorded.
    fn error_path_of(&self, id: JobId) -> PathBuf {
        self.dir.join(format!("{id}.error"))
    }

    /// Records, atomically, why job `id` failed, so that a restarted server
    /// still answers its id with the reason. Durable as
    /// [`ResultStore::write_result`] is.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn write_error(&self, id: JobId, reason: &str) -> io::Result<()> {
        self.write_file(&format!("{id}.error"), reason.as_bytes())
    }

    /// Reads why job `id` failed (the text [`ResultStore::write_error`] wrote).
    ///
    /// # Errors
    /// When the file cannot be read or is not UTF-8.
    fn read_error(&self, id: JobId) -> io::Result<String> {
        fs::read_to_string(self.error_path_of(id))
    }

    /// Reads job `id`'s result file.
    ///
    /// # Errors
    /// When the file cannot be read.
    fn read(&self, id: JobId) -> io::Result<Vec<u8>> {
        fs::read(self.path_of(id))
    }

    /// Reads a restored job's file and checks it is one this server could
    /// have written, so that a torn file never reaches a client.
    ///
    /// # Errors
    /// When the file cannot be read (or a failure record is not UTF-8).
    pub fn read_back(&self, job: RestoredJob) -> io::Result<ReadBack> {
        if job.succeeded {
            let bytes = self.read(job.id)?;
            Ok(match serde_json::from_slice::<serde_json::Value>(&bytes) {
                Ok(_) => ReadBack::Result(bytes),
                Err(error) => ReadBack::Damaged(error.to_string()),
            })
        } else {
            let reason = self.read_error(job.id)?;
            Ok(if reason.is_empty() {
                ReadBack::Damaged("empty failure record".to_string())
            } else {
                ReadBack::Failure(reason)
            })
        }
    }

    /// Whether writes are flushed to stable storage (not `--no-fsync`).
    pub fn is_durable(&self) -> bool {
        self.durable
    }

    /// In durable mode, flushes the directory: every rename and link done
    /// before this call is then on stable storage. Otherwise nothing.
    ///
    /// # Errors
    /// When the directory cannot be opened or flushed.
    pub fn flush_dir(&self) -> io::Result<()> {
        if !self.durable {
            return Ok(());
        }
        flush_gate::pass(&self.dir)?;
        self.flushes.fetch_add(1, Ordering::Relaxed);
        File::open(&self.dir)?.sync_all()
    }

    /// Directory flushes run so far.
    pub fn directory_flushes(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }

    fn lock_interned(&self) -> MutexGuard<'_, HashMap<u64, Interned>> {
        self.interned.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes `bytes` to `.tmp-NAME`, flushes it in durable mode, and
    /// renames it to `NAME`, in this store's own locked directory (see
    /// [`ResultStore::ensure_own_dir`]).
    fn write_file(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.ensure_own_dir()?;
        self.write_in_own_dir(name, bytes)
    }

    /// [`ResultStore::write_file`] once `dir` was checked: if the directory
    /// has gone meanwhile, re-creates (and locks) it and tries once more.
    fn write_in_own_dir(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        match self.try_write_file(name, bytes) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                self.recreate_dir()?;
                self.try_write_file(name, bytes)
            }
            result => result,
        }
    }

    /// Makes sure `dir` names the directory this store holds the lock on:
    /// one `stat`, and a comparison under the mutex. When it does not (the
    /// directory was removed, and perhaps another made in its place),
    /// [`ResultStore::recreate_dir`].
    ///
    /// # Errors
    /// As [`ResultStore::recreate_dir`].
    fn ensure_own_dir(&self) -> io::Result<()> {
        let found = fs::metadata(&self.dir).ok();
        let own = found.is_some_and(|metadata| {
            self.lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is(&metadata)
        });
        if own {
            Ok(())
        } else {
            self.recreate_dir()
        }
    }

    fn try_write_file(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        // Unique without a counter: one job's file is written by one thread
        // at a time, and the reservation by one thread at a time too (under
        // the job table's lock, or at shutdown once no submission can; see
        // `jobs/reservation.rs`).
        let temp = self.dir.join(format!("{TEMP_PREFIX}{name}"));
        let result = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp)
            .and_then(|mut file| {
                file.write_all(bytes)?;
                if self.durable {
                    file.sync_data()?;
                }
                Ok(())
            })
            .and_then(|()| fs::rename(&temp, self.dir.join(name)));
        if result.is_err() {
            // Best effort: it may not even exist; a leftover is removed at
            // the next start anyway.
            let _ = fs::remove_file(&temp);
        }
        result
    }

    /// Re-creates a vanished results directory and locks it (the old lock
    /// went with the old directory), marking the id reservation lost
    /// ([`ResultStore::take_recreated`]). Does nothing if `dir` still names
    /// the locked directory: a `NotFound` was then a file a client removed
    /// (a temporary one, mid-write), and a retry is all it takes.
    ///
    /// A directory someone else made at `dir` meanwhile is locked and used
    /// the same way — unless another server holds its lock: then nothing is
    /// written into it.
    ///
    /// # Errors
    /// When it cannot be created or locked, or another server holds it.
    fn recreate_dir(&self) -> io::Result<()> {
        // Under the lock's mutex, so that of two writers that both found
        // the directory gone, one re-creates and locks it and the other
        // then finds it is ours (instead of meeting its own process's lock).
        let mut held = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        if fs::metadata(&self.dir).is_ok_and(|metadata| held.is(&metadata)) {
            return Ok(());
        }
        *held = ResultsLock::acquire(&self.dir).map_err(|error| match error {
            LockError::Held { dir, holder } => io::Error::new(
                io::ErrorKind::WouldBlock,
                format!(
                    "results directory {} was removed, and another server{} holds the lock on the one now in its place: not writing into it",
                    dir.display(),
                    holder.map(|pid| format!(" (pid {pid})")).unwrap_or_default()
                ),
            ),
            error @ LockError::Io { .. } => error.into(),
        })?;
        self.recreated.store(true, Ordering::Release);
        Ok(())
    }
}

fn remove_leftover(path: &Path) {
    if let Err(error) = fs::remove_file(path) {
        eprintln!(
            "results: cannot remove leftover {}: {error}",
            path.display()
        );
    }
}

/// 64-bit FNV-1a of `bytes`: tiny and stable; collisions are checked.
fn hash(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET_BASIS, |h, &b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

/// Outside tests the directory flush passes no gate (see the test build's
/// `flush_gate` below).
#[cfg(not(test))]
mod flush_gate {
    use std::io;
    use std::path::Path;

    #[inline]
    #[allow(
        clippy::unnecessary_wraps,
        reason = "the signature of the test build's gate, which can fail"
    )]
    pub(super) fn pass(_dir: &Path) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the temp dir, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let path = std::env::temp_dir().join(format!(
                "lss-store-{tag}-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&path);
            Scratch(path)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn open(dir: &Path, durable: bool) -> ResultStore {
        ResultStore::open(ResultsLock::acquire(dir).unwrap(), durable)
            .unwrap()
            .0
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn fnv1a_known_values() {
        // Reference values of 64-bit FNV-1a.
        assert_eq!(hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(hash(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn job_file_names() {
        let job = |id, succeeded| {
            Some(RestoredJob {
                id: JobId(id),
                succeeded,
            })
        };
        assert_eq!(parse_job_file_name("job_id_1.json"), job(1, true));
        assert_eq!(parse_job_file_name("job_id_42.json"), job(42, true));
        assert_eq!(parse_job_file_name("job_id_7.error"), job(7, false));
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
            ".lock",
            ".reserved_ids",
        ] {
            assert_eq!(parse_job_file_name(junk), None, "{junk}");
        }
    }

    #[test]
    fn only_our_temp_names_are_ours() {
        for ours in [
            ".tmp-job_id_1.json",
            ".tmp-job_id_9.error",
            ".tmp-.reserved_ids",
        ] {
            assert!(is_our_temp_name(ours), "{ours}");
        }
        for theirs in [
            ".tmp-4242-1",
            ".tmp-notes",
            "job_id_1.json",
            ".tmp-",
            ".lock",
        ] {
            assert!(!is_our_temp_name(theirs), "{theirs}");
        }
    }

    /// Atomic write: a file replaced in place never leaves its temporary
    /// name behind; a temporary file a crash left is deleted at the next
    /// open (ours only), and the jobs found come back sorted, a result
    /// winning over a failure record of the same id.
    #[test]
    fn writes_leave_no_temporary_file_and_open_clears_a_crash_s_leftovers() {
        let scratch = Scratch::new("atomic");
        let store = open(&scratch.0, true);
        store.write_result(JobId(2), b"[1]").unwrap();
        store.write_result(JobId(2), b"[2]").unwrap();
        store.write_error(JobId(1), "no data").unwrap();
        store.write_error(JobId(2), "both").unwrap();
        assert_eq!(store.read(JobId(2)).unwrap(), b"[2]");
        assert_eq!(
            names(&scratch.0),
            [".lock", "job_id_1.error", "job_id_2.error", "job_id_2.json"]
        );
        drop(store);
        fs::write(scratch.0.join(".tmp-job_id_3.json"), b"[tor").unwrap();
        fs::write(scratch.0.join(".tmp-notes"), b"not ours").unwrap();
        let (_store, found) =
            ResultStore::open(ResultsLock::acquire(&scratch.0).unwrap(), true).unwrap();
        assert_eq!(
            found,
            [
                RestoredJob {
                    id: JobId(1),
                    succeeded: false
                },
                RestoredJob {
                    id: JobId(2),
                    succeeded: true
                },
            ]
        );
        let left = names(&scratch.0);
        assert!(
            !left.contains(&".tmp-job_id_3.json".to_string()),
            "{left:?}"
        );
        assert!(left.contains(&".tmp-notes".to_string()), "{left:?}");
    }

    #[test]
    fn durable_mode_flushes_the_directory_and_no_fsync_does_not() {
        let scratch = Scratch::new("durable");
        let store = open(&scratch.0, true);
        store.write_result(JobId(1), b"[1]").unwrap();
        store.flush_dir().unwrap();
        store.reserve_ids_below(10).unwrap();
        assert_eq!(store.directory_flushes(), 2);
        drop(store);
        let scratch = Scratch::new("no-fsync");
        let store = open(&scratch.0, false);
        store.write_result(JobId(1), b"[1]").unwrap();
        store.flush_dir().unwrap();
        store.reserve_ids_below(10).unwrap();
        assert_eq!(store.directory_flushes(), 0);
        assert_eq!(store.read(JobId(1)).unwrap(), b"[1]");
    }

    /// The reservation written is the one the next open finds; a damaged
    /// or absurd one counts as none.
    #[test]
    fn the_id_reservation_survives_a_restart() {
        let scratch = Scratch::new("reserve");
        let store = open(&scratch.0, false);
        assert_eq!(store.reserved_at_start(), 0);
        store.reserve_ids_below(1025).unwrap();
        drop(store);
        assert_eq!(open(&scratch.0, false).reserved_at_start(), 1025);
        fs::write(
            scratch.0.join(RESERVED_IDS_FILE),
            MAX_RESTORED_ID.to_string(),
        )
        .unwrap();
        assert_eq!(open(&scratch.0, false).reserved_at_start(), MAX_RESTORED_ID);
        fs::write(
            scratch.0.join(RESERVED_IDS_FILE),
            (MAX_RESTORED_ID + 1).to_string(),
        )
        .unwrap();
        assert_eq!(open(&scratch.0, false).reserved_at_start(), 0);
    }

    #[test]
    fn equal_results_are_hard_links_and_a_deleted_source_is_rewritten() {
        use std::os::unix::fs::MetadataExt;
        let scratch = Scratch::new("links");
        let store = open(&scratch.0, false);
        let bytes = store.intern(b"{\"same\": 1}".to_vec());
        store.write_result(JobId(1), &bytes).unwrap();
        store.write_result(JobId(2), &bytes).unwrap();
        let ino = |id| fs::metadata(store.path_of(id)).unwrap().ino();
        assert_eq!(ino(JobId(1)), ino(JobId(2)));
        // A client deletes the source: the next job writes its own file.
        fs::remove_file(store.path_of(JobId(1))).unwrap();
        fs::remove_file(store.path_of(JobId(2))).unwrap();
        store.write_result(JobId(3), &bytes).unwrap();
        assert_eq!(store.read(JobId(3)).unwrap(), b"{\"same\": 1}");
        store.write_result(JobId(4), &bytes).unwrap();
        assert_eq!(ino(JobId(3)), ino(JobId(4)));
    }

    /// Damaged-file checks: a torn result and an empty failure record read
    /// back as `Damaged`; sound files as what was written.
    #[test]
    fn torn_files_read_back_as_damaged() {
        let scratch = Scratch::new("damaged");
        let store = open(&scratch.0, false);
        let result = |id| RestoredJob {
            id: JobId(id),
            succeeded: true,
        };
        let failure = |id| RestoredJob {
            id: JobId(id),
            succeeded: false,
        };
        store.write_result(JobId(1), b"{\"a\": 1}").unwrap();
        store.write_error(JobId(2), "no data").unwrap();
        fs::write(store.path_of(JobId(3)), b"{\"a\": ").unwrap();
        fs::write(store.error_path_of(JobId(4)), b"").unwrap();
        assert_eq!(
            store.read_back(result(1)).unwrap(),
            ReadBack::Result(b"{\"a\": 1}".to_vec())
        );
        assert_eq!(
            store.read_back(failure(2)).unwrap(),
            ReadBack::Failure("no data".to_string())
        );
        assert!(matches!(
            store.read_back(result(3)),
            Ok(ReadBack::Damaged(_))
        ));
        assert_eq!(
            store.read_back(failure(4)).unwrap(),
            ReadBack::Damaged("empty failure record".to_string())
        );
        assert!(store.read_back(result(5)).is_err(), "no such file");
    }

    /// The directory is removed and another server makes and locks a new
    /// one at the same path: this store must not write into it.
    #[test]
    fn a_directory_replaced_under_another_server_s_lock_is_not_written_into() {
        let scratch = Scratch::new("replaced");
        let store = open(&scratch.0, false);
        store.write_result(JobId(1), b"[1]").unwrap();
        fs::remove_dir_all(&scratch.0).unwrap();
        let other = ResultsLock::acquire(&scratch.0).unwrap();
        let error = store.write_result(JobId(2), b"[2]").unwrap_err();
        assert!(error.to_string().contains("another server"), "{error}");
        let error = store.write_error(JobId(3), "no").unwrap_err();
        assert!(error.to_string().contains("another server"), "{error}");
        assert!(store.reserve_ids_below(10).is_err());
        assert_eq!(names(&scratch.0), [".lock"]);
        assert!(!store.take_recreated(), "nothing was re-created");
        // Once the other server is gone, the directory is this store's
        // again: locked, and its loss of the reservation reported once.
        drop(other);
        store.write_result(JobId(2), b"[2]").unwrap();
        assert_eq!(store.read(JobId(2)).unwrap(), b"[2]");
        assert!(store.take_recreated());
        assert!(!store.take_recreated());
        assert!(matches!(
            ResultsLock::acquire(&scratch.0),
            Err(LockError::Held { .. })
        ));
    }
}

/// Test builds only: a gate every [`ResultStore::flush_dir`] passes, so
/// that a unit test can hold one directory's flushes, make one panic, or
/// make one fail. Keyed by directory, so tests running in parallel on
/// other directories are not affected.
#[cfg(test)]
pub(crate) mod flush_gate {
    use std::io;
    use std::path::{Path, PathBuf};
    use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Action {
        Hold,
        PanicOnce,
        FailOnce,
    }

    /// Invariant: the directories whose flushes a test has armed, each
    /// with what happens to its next flushes.
    static GATES: Mutex<Vec<(PathBuf, Action)>> = Mutex::new(Vec::new());
    /// Condition: "no `Hold` for the waiting flush's directory".
    static RELEASED: Condvar = Condvar::new();

    fn gates() -> MutexGuard<'static, Vec<(PathBuf, Action)>> {
        GATES.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Called by `flush_dir` (before it counts or flushes).
    pub(crate) fn pass(dir: &Path) -> io::Result<()> {
        let mut gates = RELEASED
            .wait_while(gates(), |g| {
                g.iter().any(|(d, a)| d == dir && *a == Action::Hold)
            })
            .unwrap_or_else(PoisonError::into_inner);
        let Some(at) = gates.iter().position(|(d, _)| d == dir) else {
            return Ok(());
        };
        let (_, action) = gates.remove(at);
        drop(gates);
        match action {
            Action::PanicOnce => panic!("test-made panic in the directory flush"),
            Action::FailOnce => Err(io::Error::other("test-made flush failure")),
            Action::Hold => unreachable!("waited until no Hold is left"),
        }
    }

    /// Holds `dir`'s flushes until the returned guard is dropped.
    #[must_use]
    pub(crate) fn hold(dir: &Path) -> Held {
        gates().push((dir.to_path_buf(), Action::Hold));
        Held(dir.to_path_buf())
    }

    /// The next flush of `dir` panics (once).
    pub(crate) fn panic_once(dir: &Path) {
        gates().push((dir.to_path_buf(), Action::PanicOnce));
    }

    /// The next flush of `dir` fails (once).
    pub(crate) fn fail_once(dir: &Path) {
        gates().push((dir.to_path_buf(), Action::FailOnce));
    }

    /// See [`hold`]; releases on drop, also when a test fails.
    pub(crate) struct Held(PathBuf);

    impl Drop for Held {
        fn drop(&mut self) {
            gates().retain(|(d, a)| !(*d == self.0 && *a == Action::Hold));
            RELEASED.notify_all();
        }
    }
}
