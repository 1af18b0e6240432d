//! The results directory: `DIR/job_id_N.json`, written atomically and
//! durably, surviving restarts, owned by one server at a time.
//!
//! # Layout
//!
//! The folder is flat and course-shaped: only regular files, no
//! sub-folders, so a client may delete its entries with a plain file remove.
//!
//! ```text
//! DIR/job_id_7.json            the JSON text of job 7's `data`, nothing else
//! DIR/job_id_8.error           why job 8 failed (UTF-8 text)
//! DIR/.lock                    locked (flock) by the server that owns DIR
//! DIR/.reserved_ids            ids below this number may have been handed out
//! DIR/.tmp-job_id_9.json       a file being written (deleted at the next start)
//! ```
//!
//! # One server per directory
//!
//! [`ResultsLock::acquire`] takes an exclusive lock on `DIR/.lock`
//! ([`File::try_lock`]) and the [`ResultStore`] keeps it for its whole life.
//! A second server fails there, before it has written anything, so it
//! cannot hand out the first one's ids, delete its temporary files or append
//! to its log (`main` takes the lock before opening the log). The kernel
//! drops the lock when the process dies, even by `SIGKILL`.
//!
//! # Atomicity and durability
//!
//! A reader must never see half a file. Every file is written to a temporary
//! name in the same directory, then renamed over its final name: `rename`
//! replaces the directory entry in one step. A job whose bytes an earlier
//! job of this process already wrote gets a *hard link* to that job's file
//! instead (one directory entry, no data blocks); should that file have
//! been deleted, the job's file is written out again.
//!
//! Durable mode (the default): the temporary file's data is flushed
//! (`sync_data`) before the rename, and the directory is flushed
//! (`sync_all` on the directory, [`ResultStore::flush_dir`]) after it, before
//! the job turns `done` — so a `done` result survives a power loss. The
//! directory flush is a *group commit* ([`Persister`]): a worker hands its
//! renamed job to the persister thread and takes its next job; the
//! persister flushes once for every job handed over meanwhile.
//! With `--no-fsync` nothing is flushed: files survive a crash of the
//! process (atomic rename), not a power loss.
//!
//! # A directory that disappears
//!
//! A write that finds the directory gone re-creates it (and takes the lock
//! on its new `.lock`), then retries once. Other failures (a full disk, a
//! read-only mount) are returned; [`crate::jobs`] keeps such results in
//! memory and writes them when writing works again.

use crate::jobs::JobId;
use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

/// The lock file: see [`ResultsLock`].
pub const LOCK_FILE: &str = ".lock";
/// The file holding the id reservation: see [`ResultStore::reserve_ids_below`].
pub const RESERVED_IDS_FILE: &str = ".reserved_ids";
/// Where servers before the flat layout kept the reservation; still read,
/// so that an upgrade never reuses an id.
const LEGACY_RESERVED_IDS_FILE: &str = "reserved_ids";
/// Prefix of temporary files: `.tmp-` + the final name. Only names of this
/// shape whose final name is ours are deleted at start-up.
const TEMP_PREFIX: &str = ".tmp-";

/// An exclusive lock on a results directory, held until dropped.
#[derive(Debug)]
pub struct ResultsLock {
    dir: PathBuf,
    /// The open, locked `DIR/.lock`: never read, only held, because the
    /// lock lives exactly as long as this open file.
    #[allow(dead_code)]
    file: File,
}

/// Why [`ResultsLock::acquire`] failed.
#[derive(Debug)]
pub enum LockError {
    /// Another process holds the lock; `holder` is the process id it wrote
    /// into the lock file, if readable.
    Held { dir: PathBuf, holder: Option<u32> },
    /// The directory or its lock file cannot be created or locked.
    Io { dir: PathBuf, error: io::Error },
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::Held { dir, holder } => {
                write!(
                    f,
                    "results directory {} is in use: another server",
                    dir.display()
                )?;
                if let Some(pid) = holder {
                    write!(f, " (pid {pid})")?;
                }
                write!(
                    f,
                    " holds its lock {}; stop it or choose another --results-dir",
                    dir.join(LOCK_FILE).display()
                )
            }
            LockError::Io { dir, error } => {
                write!(
                    f,
                    "cannot lock results directory {}: {error}",
                    dir.display()
                )
            }
        }
    }
}

impl std::error::Error for LockError {}

impl From<LockError> for io::Error {
    fn from(error: LockError) -> io::Error {
        let kind = match &error {
            LockError::Held { .. } => io::ErrorKind::WouldBlock,
            LockError::Io { error, .. } => error.kind(),
        };
        io::Error::new(kind, error)
    }
}

impl ResultsLock {
    /// Creates `dir` if needed and takes the exclusive lock on `dir/.lock`,
    /// without waiting; then records this process's id in the lock file.
    ///
    /// When another process holds the lock, nothing in `dir` is changed.
    ///
    /// # Errors
    /// [`LockError::Held`] when another process holds the lock;
    /// [`LockError::Io`] when the directory or lock file cannot be made.
    pub fn acquire(dir: &Path) -> Result<ResultsLock, LockError> {
        let io_error = |error| LockError::Io {
            dir: dir.to_path_buf(),
            error,
        };
        fs::create_dir_all(dir).map_err(io_error)?;
        let path = dir.join(LOCK_FILE);
        // Neither `create` of an existing file nor opening it for writing
        // changes it: the holder's lock file stays as it is.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_error)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let holder = file
                    .read_to_string(&mut text)
                    .ok()
                    .and_then(|_| text.trim().parse().ok());
                return Err(LockError::Held {
                    dir: dir.to_path_buf(),
                    holder,
                });
            }
            Err(TryLockError::Error(error)) => return Err(io_error(error)),
        }
        // Only informative (for the message above): failure is harmless.
        let _ = file
            .set_len(0)
            .and_then(|()| writeln!(file, "{}", std::process::id()));
        Ok(ResultsLock {
            dir: dir.to_path_buf(),
            file,
        })
    }

    /// The locked directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Group commit: one thread flushes the results directory for a whole batch
/// of finished jobs, then hands the batch on.
///
/// Workers [`push`](Persister::push) an item once its file is renamed into
/// place and go on to their next job; the persister thread ([`run`]) takes
/// *every* item queued, runs one flush — which covers all their renames,
/// since each happened before its push — and then delivers the batch (the
/// job table marks those jobs `done`). Items pushed during a flush form the
/// next batch, so N jobs finishing while the disk is busy share one flush.
///
/// [`run`]: Persister::run
#[derive(Debug)]
pub struct Persister<T> {
    /// Invariant: `items` were pushed and not yet taken by `run`; once
    /// `closed`, nothing more is pushed, and `run` returns when `items` is
    /// empty. Poisoning: each update is one push, swap or assignment;
    /// recovered with [`PoisonError::into_inner`].
    queue: Mutex<PersisterQueue<T>>,
    /// Condition: "there are items, or the persister is closed".
    not_empty_or_closed: Condvar,
    /// Flushes run, successful or not (for tests and measurements).
    flushes: AtomicU64,
}

#[derive(Debug)]
struct PersisterQueue<T> {
    items: Vec<T>,
    closed: bool,
}

impl<T> Default for Persister<T> {
    fn default() -> Persister<T> {
        Persister {
            queue: Mutex::new(PersisterQueue {
                items: Vec::new(),
                closed: false,
            }),
            not_empty_or_closed: Condvar::new(),
            flushes: AtomicU64::new(0),
        }
    }
}

impl<T> Persister<T> {
    fn lock_queue(&self) -> MutexGuard<'_, PersisterQueue<T>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `item` for the next flush.
    ///
    /// # Errors
    /// Gives `item` back once [`close`](Persister::close) was called.
    pub fn push(&self, item: T) -> Result<(), T> {
        let mut queue = self.lock_queue();
        if queue.closed {
            return Err(item);
        }
        queue.items.push(item);
        let was_empty = queue.items.len() == 1;
        drop(queue);
        // Only the first item of a batch can find the thread asleep.
        if was_empty {
            self.not_empty_or_closed.notify_one();
        }
        Ok(())
    }

    /// Refuses further pushes; [`run`](Persister::run) delivers what is
    /// queued and returns. Idempotent.
    pub fn close(&self) {
        self.lock_queue().closed = true;
        self.not_empty_or_closed.notify_all();
    }

    /// The persister thread's body: until closed and empty, takes every
    /// queued item, runs `flush` once (no lock held) and passes the batch
    /// and the flush's result to `deliver`.
    pub fn run(
        &self,
        mut flush: impl FnMut() -> io::Result<()>,
        mut deliver: impl FnMut(Vec<T>, io::Result<()>),
    ) {
        loop {
            let batch = {
                let queue = self
                    .not_empty_or_closed
                    .wait_while(self.lock_queue(), |q| q.items.is_empty() && !q.closed)
                    .unwrap_or_else(PoisonError::into_inner);
                let mut queue = queue;
                if queue.items.is_empty() {
                    return; // closed, and everything delivered
                }
                std::mem::take(&mut queue.items)
            };
            let result = flush();
            self.flushes.fetch_add(1, Ordering::Relaxed);
            deliver(batch, result);
        }
    }

    /// How many flushes have run.
    pub fn flushes(&self) -> u64 {
        self.flushes.load(Ordering::Relaxed)
    }
}

/// The results directory, owned through its [`ResultsLock`].
#[derive(Debug)]
pub struct ResultStore {
    dir: PathBuf,
    /// Flush files and the directory before a write returns (not with
    /// `--no-fsync`).
    durable: bool,
    /// The lock on `dir`; replaced when the directory is re-created.
    lock: Mutex<ResultsLock>,
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
    /// the jobs whose files it found, in ascending id order: `true` for a
    /// result, `false` for a failure.
    ///
    /// A job file is a regular file named exactly `job_id_<N>.json` (a
    /// result) or `job_id_<N>.error` (a failure), with N accepted by
    /// [`JobId::parse`] and below [`MAX_RESTORED_ID`]; every other name is
    /// ignored. `durable` selects durable writes (see the module docs).
    ///
    /// # Errors
    /// When the directory cannot be listed.
    pub fn open(lock: ResultsLock, durable: bool) -> io::Result<(ResultStore, Vec<(JobId, bool)>)> {
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
        let reserved_at_start = read_reservation(&dir.join(RESERVED_IDS_FILE))
            .max(read_reservation(&dir.join(LEGACY_RESERVED_IDS_FILE)));
        let store = ResultStore {
            dir,
            durable,
            lock: Mutex::new(lock),
            interned: Mutex::new(HashMap::new()),
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
    pub fn path_of(&self, id: JobId) -> PathBuf {
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
        // The source's data is already durable (this process wrote it, in
        // the same mode): a link needs only the directory flush. Any
        // failure — the source deleted, another file system, the link
        // limit, the name taken — falls back to writing the bytes out.
        let linked = source.is_some_and(|source| {
            source != id && fs::hard_link(self.path_of(source), self.dir.join(&name)).is_ok()
        });
        if !linked {
            self.write_file(&name, bytes)?;
            if let Some(known) = self.lock_interned().get_mut(&key) {
                if *known.bytes == *bytes {
                    known.file_of = Some(id);
                }
            }
        }
        Ok(())
    }

    /// Where job `id`'s failure is recorded.
    pub fn error_path_of(&self, id: JobId) -> PathBuf {
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
    /// renames it to `NAME`. If the directory has gone, re-creates it (and
    /// re-takes the lock) and tries once more.
    fn write_file(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        match self.try_write_file(name, bytes) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                self.recreate_dir()?;
                self.try_write_file(name, bytes)
            }
            result => result,
        }
    }

    fn try_write_file(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        // Unique without a counter: one job's file is written by one thread
        // at a time, and the reservation under the job table's lock.
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

    /// Re-creates a vanished results directory and locks its new `.lock`
    /// (the old lock went with the old directory). Does nothing if the
    /// directory exists: the `NotFound` was then a file a client removed
    /// (a temporary one, mid-write), and a retry is all it takes.
    ///
    /// # Errors
    /// When it cannot be created, or another server locked it meanwhile.
    fn recreate_dir(&self) -> io::Result<()> {
        // Under the lock's mutex, so that of two writers that both found
        // the directory gone, one re-creates and locks it and the other
        // then finds it there (instead of meeting its own process's lock).
        let mut held = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        if self.dir.is_dir() {
            return Ok(());
        }
        *held = ResultsLock::acquire(&self.dir)?;
        Ok(())
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

/// Whether `name` is a temporary file this server makes: `.tmp-` followed
/// by a job file name or the reservation file name.
fn is_our_temp_name(name: &str) -> bool {
    name.strip_prefix(TEMP_PREFIX)
        .is_some_and(|rest| rest == RESERVED_IDS_FILE || parse_job_file_name(rest).is_some())
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
    use std::sync::mpsc;
    use std::thread;
    use std::time::Duration;

    const DEADLINE: Duration = Duration::from_secs(20);

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

    /// The group commit with a flush the test holds open: while the first
    /// flush runs, nine more items arrive; one more flush delivers them
    /// all — 2 flushes for 10 items, deterministically — and each batch is
    /// delivered only after its flush.
    #[test]
    fn a_burst_of_items_shares_flushes() {
        const ITEMS: usize = 10;
        let owned = Persister::<usize>::default();
        let persister = &owned;
        let (release_tx, release) = mpsc::channel::<()>();
        let (entered_tx, entered) = mpsc::channel::<()>();
        let mut delivered = Vec::new();
        let delivered_ref = &mut delivered;
        thread::scope(|scope| {
            let thread = scope.spawn(move || {
                let flush = || {
                    let _ = entered_tx.send(());
                    // The first flush waits for the test; later ones find
                    // the channel closed and return at once.
                    let _ = release.recv();
                    Ok(())
                };
                persister.run(flush, |batch, result| {
                    assert!(result.is_ok());
                    // Delivered after its flush.
                    delivered_ref.push((batch, persister.flushes()));
                });
            });
            persister.push(0).unwrap();
            entered.recv_timeout(DEADLINE).unwrap();
            for item in 1..ITEMS {
                persister.push(item).unwrap();
            }
            drop(release_tx);
            persister.close();
            assert_eq!(persister.push(99), Err(99), "closed");
            thread.join().unwrap();
        });
        assert_eq!(persister.flushes(), 2);
        assert_eq!(
            delivered,
            [(vec![0], 1), ((1..ITEMS).collect::<Vec<_>>(), 2)]
        );
    }

    /// `run` returns at once when closed with nothing queued: nothing hangs.
    #[test]
    fn a_closed_empty_persister_returns() {
        let persister = Persister::<()>::default();
        persister.close();
        persister.close(); // idempotent
        persister.run(|| Ok(()), |_, _| panic!("nothing to deliver"));
        assert_eq!(persister.flushes(), 0);
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

    #[test]
    fn a_second_lock_on_the_same_directory_is_refused_and_changes_nothing() {
        let scratch = Scratch::new("lock");
        let first = ResultsLock::acquire(&scratch.0).unwrap();
        let before = fs::read(scratch.0.join(LOCK_FILE)).unwrap();
        match ResultsLock::acquire(&scratch.0) {
            Err(LockError::Held { holder, .. }) => {
                assert_eq!(holder, Some(std::process::id()));
            }
            other => panic!("expected Held, got {other:?}"),
        }
        assert_eq!(fs::read(scratch.0.join(LOCK_FILE)).unwrap(), before);
        drop(first);
        ResultsLock::acquire(&scratch.0).unwrap();
    }
}
