//! One server per results directory: an exclusive lock (`flock`) on the
//! directory itself.
//!
//! The lock is taken on the directory, opened read-only, not on a file in
//! it: a client may delete any entry of the folder (`.lock` included), and
//! deleting an entry must not free the folder for a second server. `DIR/.lock`
//! only records the holder's process id, for the refusal message.

use std::fmt;
use std::fs::{self, File, Metadata, TryLockError};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The file recording the lock holder's process id (informational only: the
/// lock is on the directory, see [`ResultsLock`]).
pub const LOCK_FILE: &str = ".lock";

/// An exclusive lock on a results directory, held until dropped.
#[derive(Debug)]
pub struct ResultsLock {
    dir: PathBuf,
    /// The directory itself, opened read-only and locked: never read, only
    /// held, because the lock lives exactly as long as this open handle.
    #[allow(dead_code)]
    handle: File,
    /// The locked directory's device and inode: [`ResultsLock::is`] tells
    /// whether a path still names this directory.
    identity: (u64, u64),
}

/// Why [`ResultsLock::acquire`] failed.
#[derive(Debug)]
pub enum LockError {
    /// Another process holds the lock; `holder` is the process id it wrote
    /// into the lock file, if readable.
    Held { dir: PathBuf, holder: Option<u32> },
    /// The directory cannot be created, opened or locked.
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
                    " holds its lock; stop it or choose another --results-dir"
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
    /// Creates `dir` if needed and takes the exclusive lock on the directory
    /// itself, without waiting; then records this process's id in
    /// `dir/.lock` (best effort: only the refusal message reads it).
    ///
    /// When another process (or another handle of this one) holds the
    /// lock, nothing in `dir` is changed.
    ///
    /// # Errors
    /// [`LockError::Held`] when another holds the lock;
    /// [`LockError::Io`] when the directory cannot be made, opened or locked.
    pub fn acquire(dir: &Path) -> Result<ResultsLock, LockError> {
        let io_error = |error| LockError::Io {
            dir: dir.to_path_buf(),
            error,
        };
        if !dir.is_dir() {
            fs::create_dir_all(dir).map_err(io_error)?;
            // The new directory's own entry in its parent: without this
            // flush a power loss could take the directory, and every result
            // saved in it, away (`fault_e2e::a_new_results_directory_s_entry_is_flushed_before_the_first_done`).
            flush_parent(dir).map_err(io_error)?;
        }
        // `flock` on a directory opened read-only works on Linux; it is
        // released when this handle is closed, or the process dies.
        let handle = File::open(dir).map_err(io_error)?;
        let metadata = handle.metadata().map_err(io_error)?;
        match handle.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = fs::read_to_string(dir.join(LOCK_FILE))
                    .ok()
                    .and_then(|text| text.trim().parse().ok());
                return Err(LockError::Held {
                    dir: dir.to_path_buf(),
                    holder,
                });
            }
            Err(TryLockError::Error(error)) => return Err(io_error(error)),
        }
        // Only informative (for the message above): failure is harmless.
        let _ = fs::write(dir.join(LOCK_FILE), format!("{}\n", std::process::id()));
        Ok(ResultsLock {
            dir: dir.to_path_buf(),
            handle,
            identity: identity(&metadata),
        })
    }

    /// The locked directory.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether `metadata` (of a path, followed) is this locked directory's:
    /// `false` once the directory was removed and another made in its place.
    #[must_use]
    pub fn is(&self, metadata: &Metadata) -> bool {
        metadata.is_dir() && identity(metadata) == self.identity
    }
}

/// Flushes the directory that holds `dir`, so that `dir`'s entry in it is
/// on stable storage.
fn flush_parent(dir: &Path) -> io::Result<()> {
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)?.sync_all()
}

fn identity(metadata: &Metadata) -> (u64, u64) {
    (metadata.dev(), metadata.ino())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_directory_is_refused_and_changes_nothing() {
        let dir = std::env::temp_dir().join(format!("lss-lock-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let first = ResultsLock::acquire(&dir).unwrap();
        let before = fs::read(dir.join(LOCK_FILE)).unwrap();
        match ResultsLock::acquire(&dir) {
            Err(LockError::Held { holder, .. }) => {
                assert_eq!(holder, Some(std::process::id()));
            }
            other => panic!("expected Held, got {other:?}"),
        }
        assert_eq!(fs::read(dir.join(LOCK_FILE)).unwrap(), before);
        drop(first);
        ResultsLock::acquire(&dir).unwrap();
        let _ = fs::remove_dir_all(&dir);
    }

    /// The lock is on the directory itself: a client deleting `.lock` (as
    /// it may delete any entry) does not let a second server in.
    #[test]
    fn deleting_the_lock_file_does_not_free_the_directory() {
        let dir = std::env::temp_dir().join(format!("lss-lock-deleted-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let first = ResultsLock::acquire(&dir).unwrap();
        fs::remove_file(dir.join(LOCK_FILE)).unwrap();
        match ResultsLock::acquire(&dir) {
            Err(LockError::Held { holder, .. }) => assert_eq!(holder, None),
            other => panic!("expected Held, got {other:?}"),
        }
        assert!(
            !dir.join(LOCK_FILE).exists(),
            "the refused one wrote nothing"
        );
        drop(first);
        ResultsLock::acquire(&dir).unwrap();
        let _ = fs::remove_dir_all(&dir);
    }
}
