//! One server per results directory: an exclusive lock on `DIR/.lock`.

use std::fmt;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// The lock file: see [`ResultsLock`].
pub const LOCK_FILE: &str = ".lock";

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
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }
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
}
