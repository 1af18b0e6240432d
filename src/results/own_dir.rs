//! The results directory this store holds the lock on, re-created when a
//! client removes it: every write goes into the locked directory, never
//! into one another server made at the same path
//! (`results::store::tests::a_directory_replaced_under_another_server_s_lock_is_not_written_into`,
//! `tests/integration/jobs.rs::a_vanished_results_directory_is_recreated_on_the_next_write`).

use super::{LockError, ResultsLock};
use crate::sync::lock_order::RESULT_DIR_LOCK;
use crate::sync::{Mutex, PoisonError};
use std::fs;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug)]
pub(super) struct OwnDir {
    dir: PathBuf,
    /// The lock on the directory `dir` names. Invariant: every write goes
    /// into the directory this lock holds — [`OwnDir::ensure`] checks that
    /// `dir` still names it, and if not re-creates and locks the directory
    /// at `dir`, under this mutex, or fails. Held only for that check and
    /// re-creation. Poisoning: the one update is an assignment; recovered
    /// with [`PoisonError::into_inner`].
    lock: Mutex<ResultsLock>,
    /// Set when the directory was re-created (its `.reserved_ids` went with
    /// the old one); cleared by [`OwnDir::take_recreated`].
    recreated: AtomicBool,
}

impl OwnDir {
    pub(super) fn new(lock: ResultsLock) -> OwnDir {
        OwnDir {
            dir: lock.dir().to_path_buf(),
            lock: Mutex::new(RESULT_DIR_LOCK, lock),
            recreated: AtomicBool::new(false),
        }
    }

    /// Makes sure `dir` names the directory this store holds the lock on:
    /// one `stat`, and a comparison under the mutex; otherwise
    /// [`OwnDir::recreate`].
    ///
    /// # Errors
    /// As [`OwnDir::recreate`].
    pub(super) fn ensure(&self) -> io::Result<()> {
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
            self.recreate()
        }
    }

    /// Whether the directory was re-created since the last call; clears it.
    pub(super) fn take_recreated(&self) -> bool {
        self.recreated.swap(false, Ordering::AcqRel)
    }

    /// Re-creates a vanished results directory and locks it (the old lock
    /// went with the old directory). Does nothing if `dir` still names the
    /// locked directory (a `NotFound` was then a file a client removed
    /// mid-write: a retry is all it takes). A directory someone else made
    /// at `dir` is locked and used the same way — unless another server
    /// holds its lock: then nothing is written into it.
    ///
    /// # Errors
    /// When it cannot be created or locked, or another server holds it.
    pub(super) fn recreate(&self) -> io::Result<()> {
        // Under the mutex, so that of two writers that both found the
        // directory gone, one re-creates it and the other finds it ours.
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
