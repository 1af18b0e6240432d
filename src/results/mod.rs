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
//! # Atomicity and durability: `done` means saved
//!
//! A reader must never see half a file. Every file is written to a temporary
//! name in the same directory, then renamed over its final name: `rename`
//! replaces the directory entry in one step. A job whose bytes an earlier
//! job of this process already saved gets a *hard link* to that job's file
//! instead, checked after linking to be that very file ([`dedup`]).
//!
//! Durable mode (the default), in this order: the temporary file's data is
//! flushed (`fdatasync`), the file is renamed (or linked) into place, and
//! the directory is flushed (`fsync`, [`ResultStore::flush_dir`]) — and only
//! then does the job turn `done`. The shim test
//! `fault_e2e::failing_flushes_never_answer_done` logs the calls and checks
//! that order for every job answered `done`. The directory flush is a *group
//! commit* (the persister thread, `jobs/run.rs`): one flush for every job handed over meanwhile;
//! if it fails, every job of that batch ends `error`. With `--no-fsync`
//! nothing is flushed: a job is `done` once its file is in place; files
//! survive a crash of the process (atomic rename), not a power loss.
//!
//! A result that cannot be saved (a full disk, `EIO`, a read-only mount, no
//! file descriptor left, a vanished directory that cannot be re-created)
//! ends its job `error` with the cause; nothing is kept to be written later
//! (see [`crate::jobs`] for the degraded state that follows).
//!
//! # A directory that disappears
//!
//! Every write first checks (one `stat`) that the path still names the
//! directory this server locked (`own_dir`). A write that finds it gone
//! re-creates and locks it, then writes; if another server holds the lock
//! on the directory now at the path, nothing is written into it and the
//! write fails with an error saying so. The id reservation
//! (`.reserved_ids`, gone with the old directory) is written again before
//! the next id is handed out (see `jobs/reservation.rs`).
//!
//! # Files of this module
//!
//! - `lock`: [`ResultsLock`], one server per directory;
//! - `store`: [`ResultStore`], the job files — atomic writes, the id
//!   reservation's file, the save probe, damaged-file checks on reading;
//! - `dedup`: equal results as checked hard links;
//! - `own_dir`: the locked directory, re-created when removed;
//! - `names`: what a file name means.

mod dedup;
mod lock;
mod names;
mod own_dir;
mod store;

pub use lock::{LockError, ResultsLock};
pub use names::{RestoredJob, MAX_RESTORED_ID, RESERVED_IDS_FILE};
pub use store::{OpenedResults, ReadBack, ResultStore};

#[cfg(test)]
pub(crate) use store::flush_gate;
