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
//! DIR/.lock                    the owning server's pid (informational; DIR itself is locked)
//! DIR/.reserved_ids            ids below this number may have been handed out
//! DIR/.tmp-job_id_9.json       a file being written (deleted at the next start)
//! ```
//!
//! # One server per directory
//!
//! [`ResultsLock::acquire`] opens the directory itself read-only and takes
//! an exclusive lock on that handle ([`File::try_lock`](std::fs::File::try_lock),
//! `flock`), and the [`ResultStore`] keeps it for its whole life. A second
//! server fails there, before it has written anything, so it cannot hand
//! out the first one's ids, delete its temporary files or append to its log
//! (`main` takes the lock before opening the log). The kernel drops the lock
//! when the process dies, even by `SIGKILL`. The lock does not depend on
//! any entry of the folder: a client deleting `.lock` (which only records
//! the holder's pid, for the refusal message) frees nothing.
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
//! Every write first checks (one `stat`) that the path still names the
//! directory this server locked. A write that finds it gone (or another
//! directory in its place) re-creates it if needed and locks it, then
//! writes; if another server holds the lock on the directory now at the
//! path, nothing is written into it and the write fails with an error
//! saying so. The re-creation is reported to [`crate::jobs`]
//! ([`ResultStore::take_recreated`]), whose next submission writes the id
//! reservation (`.reserved_ids`, gone with the old directory) again before
//! handing out its id. Other failures (a full disk, a read-only mount) are
//! returned; [`crate::jobs`] keeps such results in memory and writes them
//! when writing works again.

//!
//! # Files of this module
//!
//! - `lock`: [`ResultsLock`], one server per directory;
//! - `persister`: [`Persister`], the group commit of directory flushes;
//! - `store`: [`ResultStore`], the job files — atomic writes, hard-link
//!   de-duplication, the id reservation, damaged-file checks on reading.

mod lock;
mod names;
mod persister;
mod store;

pub use lock::{LockError, ResultsLock};
pub use names::{RestoredJob, MAX_RESTORED_ID, RESERVED_IDS_FILE};
pub use persister::Persister;
pub use store::{ReadBack, ResultStore};

#[cfg(test)]
pub(crate) use store::flush_gate;
