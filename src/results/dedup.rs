//! De-duplication of equal results: a job whose bytes an earlier job of this
//! process already saved gets a hard link to that job's file instead of a
//! copy — checked *after* linking to be still the file that was written.
//!
//! Each file written is remembered with its device, inode, size and
//! modification time. A link is made by path, so the path may name another
//! file by then (a client replaced it with `mv`): the new link is `stat`ed
//! and must be that same file, or it is removed and the bytes are written
//! out instead (a file rewritten in place, or a new one on a reused inode
//! number, has another modification time:
//! `tests::a_source_rewritten_in_place_is_not_linked`). Linking itself may
//! fail (the source deleted, `EMLINK` at 65,000 links on ext4): the
//! bytes are written out then too
//! (`tests/integration/jobs.rs::a_replaced_source_file_is_not_linked`).
//! The store calls one function, [`Dedup::link_or_write`].

use crate::jobs::JobId;
use crate::sync::lock_order::RESULT_INTERNED;
use crate::sync::{Mutex, MutexGuard, PoisonError};
use std::collections::HashMap;
use std::fs::{self, File, Metadata};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Equal results share one allocation and, on disk, one file.
#[derive(Debug)]
pub(super) struct Dedup {
    /// Distinct result bytes, by [`hash`], and the file that holds them.
    ///
    /// Invariant: `saved`, when set, is a file this process wrote with
    /// exactly `bytes`, identified by device, inode, size and modification
    /// time (it may have been deleted or replaced since: [`link`] checks). Only lookups and
    /// inserts under the lock, no I/O. Poisoning: each update is one insert
    /// or assignment; recovered with [`PoisonError::into_inner`].
    interned: Mutex<HashMap<u64, Interned>>,
}

impl Default for Dedup {
    fn default() -> Dedup {
        Dedup {
            interned: Mutex::new(RESULT_INTERNED, HashMap::new()),
        }
    }
}

#[derive(Debug)]
struct Interned {
    bytes: Arc<[u8]>,
    saved: Option<SavedFile>,
}

/// A result file this process wrote: whose it is, and what it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SavedFile {
    pub(super) id: JobId,
    dev: u64,
    ino: u64,
    size: u64,
    /// Modification time in nanoseconds: an inode number freed by a
    /// deleted file and reused for a new one of the same size is not taken
    /// for ours (a link changes the change time, never this).
    mtime_ns: i128,
}

impl SavedFile {
    fn is(&self, metadata: &Metadata) -> bool {
        metadata.is_file()
            && metadata.dev() == self.dev
            && metadata.ino() == self.ino
            && metadata.len() == self.size
            && mtime_ns(metadata) == self.mtime_ns
    }
}

impl Dedup {
    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Interned>> {
        self.interned.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `bytes` as a shared allocation: the same `Arc` for every result with
    /// equal bytes, so that equal results cost memory once.
    pub(super) fn intern(&self, bytes: Vec<u8>) -> Arc<[u8]> {
        let key = hash(&bytes);
        let mut interned = self.lock();
        match interned.get(&key) {
            Some(known) if *known.bytes == *bytes => Arc::clone(&known.bytes),
            // A hash collision: keep it out of the map.
            Some(_) => Arc::from(bytes),
            None => {
                let shared: Arc<[u8]> = Arc::from(bytes);
                let entry = Interned {
                    bytes: Arc::clone(&shared),
                    saved: None,
                };
                interned.insert(key, entry);
                shared
            }
        }
    }

    /// Saves `bytes` at `target` for job `id`: a hard link to the file an
    /// earlier job of this process saved with the same bytes, if the link
    /// is still that file (`path_of` names a job's file); otherwise
    /// `write()`, whose file is remembered for the next equal result. The
    /// source's data is already durable (this process wrote it, in the same
    /// mode), so a link needs only the directory flush.
    ///
    /// # Errors
    /// `write`'s error.
    pub(super) fn link_or_write(
        &self,
        bytes: &[u8],
        id: JobId,
        target: &Path,
        path_of: impl Fn(JobId) -> PathBuf,
        write: impl FnOnce() -> io::Result<File>,
    ) -> io::Result<()> {
        let linked = self
            .saved_copy(bytes)
            .is_some_and(|source| source.id != id && link(source, &path_of(source.id), target));
        if !linked {
            let file = write()?;
            if let Ok(metadata) = file.metadata() {
                self.remember(bytes, id, &metadata);
            }
        }
        Ok(())
    }

    /// The file an earlier job saved `bytes` in, if any.
    fn saved_copy(&self, bytes: &[u8]) -> Option<SavedFile> {
        self.lock()
            .get(&hash(bytes))
            .filter(|known| *known.bytes == *bytes)
            .and_then(|known| known.saved)
    }

    /// Remembers that job `id`'s file, described by `metadata`, holds `bytes`.
    fn remember(&self, bytes: &[u8], id: JobId, metadata: &Metadata) {
        if let Some(known) = self.lock().get_mut(&hash(bytes)) {
            if *known.bytes == *bytes {
                known.saved = Some(SavedFile {
                    id,
                    dev: metadata.dev(),
                    ino: metadata.ino(),
                    size: metadata.len(),
                    mtime_ns: mtime_ns(metadata),
                });
            }
        }
    }
}

/// Links `target` to `source` (found at `source_path`); whether `target` is
/// now that very file. `false` when linking failed or the path named
/// another file; a wrong link is removed at once, so that if the caller's
/// write then fails too, nothing is left under the job's name
/// (`tests::a_wrong_link_is_removed_when_the_write_after_it_fails`).
///
/// The link is made at the job's own name, not under a temporary one
/// renamed into place: that rename, a second directory update per linked
/// job, cost 27% of the `--no-fsync` end-to-end throughput when measured
/// (`docs/bench.md`, run A).
/// The price is a window of two system calls in which a crash leaves the
/// wrong bytes under the job's name, which a restarted server would then
/// answer as that job's result — only ever when a client has replaced an
/// earlier result file (a client that writes into `results/` can change
/// any result anyway).
fn link(source: SavedFile, source_path: &Path, target: &Path) -> bool {
    if fs::hard_link(source_path, target).is_err() {
        return false;
    }
    // After linking, not before: the path may have been replaced at any
    // moment up to the link.
    let same = fs::symlink_metadata(target).is_ok_and(|metadata| source.is(&metadata));
    if !same {
        // Should this fail as well, the caller's atomic rename still
        // replaces the link when its write succeeds.
        let _ = fs::remove_file(target);
    }
    same
}

fn mtime_ns(metadata: &Metadata) -> i128 {
    i128::from(metadata.mtime()) * 1_000_000_000 + i128::from(metadata.mtime_nsec())
}

/// 64-bit FNV-1a of `bytes`: tiny and stable; collisions are checked.
fn hash(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET_BASIS, |h, &b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory of result files and a `Dedup` over it, with job 1's
    /// bytes `{"a": 1}` already saved (as the store saves: by
    /// [`Dedup::link_or_write`]). The directory is removed on drop.
    struct Saved {
        dir: PathBuf,
        dedup: Dedup,
        bytes: Arc<[u8]>,
    }

    impl Saved {
        fn job_1(tag: &str) -> Saved {
            let dir = std::env::temp_dir().join(format!("lss-dedup-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            let dedup = Dedup::default();
            let bytes = dedup.intern(b"{\"a\": 1}".to_vec());
            let saved = Saved { dir, dedup, bytes };
            saved.save(JobId(1)).unwrap();
            saved
        }

        fn path_of(&self, id: JobId) -> PathBuf {
            self.dir.join(format!("job_id_{}.json", id.0))
        }

        /// Saves the bytes for job `id`, writing them out when not linked.
        fn save(&self, id: JobId) -> io::Result<()> {
            let path = self.path_of(id);
            let write = || {
                fs::write(&path, &*self.bytes)?;
                File::open(&path)
            };
            self.save_with(id, write)
        }

        fn save_with(&self, id: JobId, write: impl FnOnce() -> io::Result<File>) -> io::Result<()> {
            let path_of = |job| self.path_of(job);
            self.dedup
                .link_or_write(&self.bytes, id, &self.path_of(id), path_of, write)
        }
    }

    impl Drop for Saved {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }

    /// Job 1's file is replaced by other bytes (`mv`); job 2 has job 1's
    /// bytes, its link finds the replaced file, and its write then fails
    /// (a full disk): nothing may be left at job 2's path.
    #[test]
    fn a_wrong_link_is_removed_when_the_write_after_it_fails() {
        let saved = Saved::job_1("wrong-link");
        let other = saved.dir.join("other");
        fs::write(&other, b"{\"b\": 2}").unwrap();
        fs::rename(&other, saved.path_of(JobId(1))).unwrap();
        let full = || Err(io::Error::other("no space left on device"));
        assert!(saved.save_with(JobId(2), full).is_err());
        assert!(
            !saved.path_of(JobId(2)).exists(),
            "job 2's path holds job 1's replaced bytes"
        );
    }

    /// Job 1's file is rewritten in place with other bytes of the same
    /// size (same inode; its modification time set apart explicitly, as
    /// the file system's clock is coarse): job 2, with job 1's bytes, is
    /// not linked to it but written out. Fails without the time check.
    #[test]
    fn a_source_rewritten_in_place_is_not_linked() {
        let saved = Saved::job_1("in-place");
        let rewritten = fs::OpenOptions::new()
            .write(true)
            .open(saved.path_of(JobId(1)))
            .unwrap();
        std::io::Write::write_all(&mut &rewritten, b"{\"b\": 2}").unwrap();
        rewritten
            .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1))
            .unwrap();
        saved.save(JobId(2)).unwrap();
        assert_eq!(fs::read(saved.path_of(JobId(2))).unwrap(), &*saved.bytes);
    }

    #[test]
    fn fnv1a_known_values() {
        // Reference values of 64-bit FNV-1a.
        assert_eq!(hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(hash(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
