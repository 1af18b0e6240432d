//! The job files: atomic writes (file flushed, renamed into place,
//! directory flushed), the id reservation's file, the save probe, and
//! damaged-file checks when a restored job's file is read back. See the
//! [module docs](super) for the layout. De-duplication is in
//! [`super::dedup`], directory re-creation in `own_dir`.

use super::dedup::Dedup;
use super::names::{
    is_our_temp_name, parse_job_file_name, read_reservation, RestoredJob, LEGACY_RESERVED_IDS_FILE,
    MAX_RESTORED_ID, PROBE_FILE, RESERVED_IDS_FILE, TEMP_PREFIX,
};
use super::own_dir::OwnDir;
use super::ResultsLock;
use crate::jobs::JobId;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
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

/// A results directory just opened by [`ResultStore::open`], the only
/// maker of one: the store, and the jobs its files hold, in ascending id
/// order with one entry per id. New ids start after the last of them, or
/// at the id reservation if that is higher (`jobs::table::JobRecords::new`),
/// so a list filtered or reordered on the way could hand an id out again;
/// outside this crate it can only be passed on whole (to
/// [`crate::jobs::Jobs::open_restored`]), as this doctest checks:
///
/// ```compile_fail,E0616
/// fn drop_the_last(opened: &mut le_stats_sportif::results::OpenedResults) {
///     opened.restored.pop();
/// }
/// ```
#[derive(Debug)]
pub struct OpenedResults {
    pub(crate) store: ResultStore,
    pub(crate) restored: Vec<RestoredJob>,
}

/// The results directory, owned through its [`ResultsLock`].
#[derive(Debug)]
pub struct ResultStore {
    dir: PathBuf,
    /// Flush files and the directory (not with `--no-fsync`).
    durable: bool,
    /// The locked directory, re-created if removed.
    own_dir: OwnDir,
    /// Equal results: one allocation, one file.
    dedup: Dedup,
    /// Directory flushes run by [`ResultStore::flush_dir`].
    flushes: AtomicU64,
    /// Directory flushes that failed: only ever increases. `AcqRel`/`Acquire`:
    /// a worker that reads it before saving and the persister that reads it
    /// after its flush see every failure ordered with their own steps.
    failed_flushes: AtomicU64,
    /// The reservation found at start-up (0 if none).
    reserved_at_start: u64,
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
    pub fn open(lock: ResultsLock, durable: bool) -> io::Result<OpenedResults> {
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
            own_dir: OwnDir::new(lock),
            dedup: Dedup::default(),
            flushes: AtomicU64::new(0),
            failed_flushes: AtomicU64::new(0),
            reserved_at_start,
        };
        Ok(OpenedResults {
            store,
            restored: ids,
        })
    }

    /// The id reservation an earlier run left (0 if none): every id below it
    /// may have been handed out, whether or not its job finished.
    pub fn reserved_at_start(&self) -> u64 {
        self.reserved_at_start
    }

    /// Whether the directory was re-created since the last call (so the id
    /// reservation on disk is gone); clears the mark.
    pub fn take_recreated(&self) -> bool {
        self.own_dir.take_recreated()
    }

    /// The results directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Records, atomically and (durable mode) on stable storage — file,
    /// rename, directory — that ids below `limit` may be handed out. A
    /// restarted server starts numbering at or above the recorded limit.
    /// Returns the file written, open: its link count drops to 0 once it is
    /// deleted or replaced.
    ///
    /// # Errors
    /// When the file cannot be written or flushed.
    pub fn reserve_ids_below(&self, limit: u64) -> io::Result<File> {
        self.own_dir.ensure()?;
        let file = self.write_in_own_dir(RESERVED_IDS_FILE, limit.to_string().as_bytes())?;
        self.flush_dir()?;
        Ok(file)
    }

    /// Whether a save works now: a small file written, flushed, renamed and
    /// removed, and the directory flushed, as a job's result would be.
    ///
    /// # Errors
    /// Why a save would fail.
    pub fn probe(&self) -> io::Result<()> {
        self.own_dir.ensure()?;
        self.write_in_own_dir(PROBE_FILE, b"probe")?;
        self.flush_dir()?;
        fs::remove_file(self.dir.join(PROBE_FILE))
    }

    /// Where job `id`'s result lives.
    fn path_of(&self, id: JobId) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// `bytes` as a shared allocation: the same `Arc` for every result with
    /// equal bytes, so that equal results cost memory once.
    pub fn intern(&self, bytes: Vec<u8>) -> Arc<[u8]> {
        self.dedup.intern(bytes)
    }

    /// Writes `bytes` as job `id`'s result file, atomically — a checked
    /// hard link to an earlier job's file with the same bytes when there
    /// is one ([`super::dedup`]). Durable mode: the file's data is on stable
    /// storage before it is renamed into place; its directory entry is once
    /// [`ResultStore::flush_dir`] has run.
    ///
    /// # Errors
    /// When the file cannot be written; no file (and no partial file) then
    /// exists under the job's name.
    pub fn write_result(&self, id: JobId, bytes: &[u8]) -> io::Result<()> {
        // Before linking too: a link into a directory another server made
        // at our path would be a write into it.
        self.own_dir.ensure()?;
        let name = format!("{id}.json");
        self.dedup.link_or_write(
            bytes,
            id,
            &self.dir.join(&name),
            |job| self.path_of(job),
            || self.write_in_own_dir(&name, bytes),
        )
    }

    /// Removes job `id`'s result file (best effort): its job ended `error`
    /// because the directory flush meant to make it durable failed.
    pub fn remove_result(&self, id: JobId) {
        let _ = fs::remove_file(self.path_of(id));
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
        self.own_dir.ensure()?;
        self.write_in_own_dir(&format!("{id}.error"), reason.as_bytes())
            .map(drop)
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
        let flushed = flush_gate::pass(&self.dir).and_then(|()| {
            self.flushes.fetch_add(1, Ordering::Relaxed);
            File::open(&self.dir)?.sync_all()
        });
        if flushed.is_err() {
            self.failed_flushes.fetch_add(1, Ordering::AcqRel);
        }
        flushed
    }

    /// Directory flushes that failed so far (see `RanJob::failed_flushes_before`).
    pub fn failed_flushes(&self) -> u64 {
        self.failed_flushes.load(Ordering::Acquire)
    }

    /// Directory flushes run so far.
    pub fn directory_flushes(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }

    /// Writes `bytes` to `.tmp-NAME`, flushes it in durable mode, and
    /// renames it to `NAME`, in the locked directory (checked by the
    /// caller): if the directory has gone meanwhile, re-creates (and locks)
    /// it and tries once more, with a new file. Returns the file, open.
    fn write_in_own_dir(&self, name: &str, bytes: &[u8]) -> io::Result<File> {
        match self.try_write_file(name, bytes) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                self.own_dir.recreate()?;
                self.try_write_file(name, bytes)
            }
            result => result,
        }
    }

    fn try_write_file(&self, name: &str, bytes: &[u8]) -> io::Result<File> {
        // Unique without a counter: one job's file is written by one thread
        // at a time, and the reservation and the probe by one thread at a
        // time too (see `jobs/reservation.rs` and `jobs/degraded.rs`).
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
                fs::rename(&temp, self.dir.join(name))?;
                Ok(file)
            });
        if result.is_err() {
            // Best effort: it may not even exist; a leftover is removed at
            // the next start anyway. A failed flush is never retried on
            // this file: a retry writes a new one.
            let _ = fs::remove_file(&temp);
        }
        result
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
    use crate::results::LockError;

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
            .store
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
        let found = ResultStore::open(ResultsLock::acquire(&scratch.0).unwrap(), true)
            .unwrap()
            .restored;
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
        /// Marks a flush waiting at a `Hold` (see `is_waiting`).
        Waiting,
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
        let held =
            |g: &Vec<(PathBuf, Action)>| g.iter().any(|(d, a)| d == dir && *a == Action::Hold);
        let mut gates = gates();
        if held(&gates) {
            gates.push((dir.to_path_buf(), Action::Waiting));
        }
        gates = RELEASED
            .wait_while(gates, |g| held(g))
            .unwrap_or_else(PoisonError::into_inner);
        gates.retain(|(d, a)| !(d == dir && *a == Action::Waiting));
        let Some(at) = gates.iter().position(|(d, _)| d == dir) else {
            return Ok(());
        };
        let (_, action) = gates.remove(at);
        drop(gates);
        match action {
            Action::PanicOnce => panic!("test-made panic in the directory flush"),
            Action::FailOnce => Err(io::Error::other("test-made flush failure")),
            Action::Hold | Action::Waiting => unreachable!("none is left for this directory"),
        }
    }

    /// Holds `dir`'s flushes until the returned guard is dropped.
    #[must_use]
    pub(crate) fn hold(dir: &Path) -> HeldFlush {
        gates().push((dir.to_path_buf(), Action::Hold));
        HeldFlush(dir.to_path_buf())
    }

    /// Whether a flush of `dir` is waiting at a `Hold`.
    pub(crate) fn is_waiting(dir: &Path) -> bool {
        gates()
            .iter()
            .any(|(d, a)| d == dir && *a == Action::Waiting)
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
    pub(crate) struct HeldFlush(PathBuf);

    impl Drop for HeldFlush {
        fn drop(&mut self) {
            gates().retain(|(d, a)| !(*d == self.0 && *a == Action::Hold));
            RELEASED.notify_all();
        }
    }
}
