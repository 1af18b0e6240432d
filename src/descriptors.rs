//! File descriptors: how many the process may open, how many it keeps for
//! itself, and the connection limit that follows.
//!
//! The limit is the soft "Max open files" of `/proc/self/limits`, read once
//! at start. The crate forbids `unsafe`, so it cannot call `setrlimit` to
//! raise it: the operator does, before the server starts (`ulimit -n N` in
//! the shell, `LimitNOFILE=N` in a systemd unit, `prlimit --nofile=N:N`).
//!
//! Every connection costs up to [`PER_CONNECTION`] descriptors. The rest of
//! the process needs at most [`reserve`] of them; the connection limit in
//! force is the smaller of `--max-connections` and what is left once the
//! reserve is set aside. So a flood of connections is refused at that limit
//! (`503 too many connections`) before it can take a descriptor a save
//! needs (`tests/integration/descriptors_e2e.rs`,
//! `a_connection_flood_under_a_low_descriptor_limit_is_refused_and_saves_go_on`,
//! which also checks that what the server holds besides its connections
//! fits [`FIXED_RESERVE`]). A limit that leaves no room for one connection
//! stops the start, naming how to raise it
//! (`a_limit_too_low_for_one_connection_stops_the_start_and_names_the_fix`).

use std::fmt;

/// What `/proc/self/limits` calls the open-files limit.
const OPEN_FILES_ROW: &str = "Max open files";

/// Each connection: its socket, and one result or error file it may be
/// reading for `get_results` (a read opens, reads and closes it).
pub const PER_CONNECTION: usize = 2;

/// Descriptors held or briefly needed outside connections and savers:
///
/// - stdin, stdout, stderr: 3;
/// - the listening socket: 1;
/// - the accept loop's spare (a duplicate of the listener, dropped to answer
///   `503` when `accept` runs out of descriptors) and the one connection it
///   is refusing at a time (over the cap, or with the spare): 2;
/// - the results directory's lock handle, and while a vanished directory is
///   re-created, the new handle and its lock file: 3;
/// - each log's file (a rotation closes it before it opens the next): 2;
/// - the id reservation file and a handle on it: 2.
///
/// None for the data file (read whole before the server starts serving,
/// then closed) or the `ctrlc` crate (a semaphore, not a pipe, on Linux).
/// Descriptors the process inherited beyond stdin, stdout and stderr come
/// out of the [`MARGIN`].
pub const FIXED_RESERVE: usize = 3 + 1 + 2 + 3 + 2 + 2;

/// Each thread that saves results (every worker, and the persister): the
/// temporary file, the result or error file, a handle on the directory.
pub const PER_SAVER: usize = 3;

/// Room for descriptors nobody counted above (a library's, a change that
/// forgets to update this file): a margin, not a count.
pub const MARGIN: usize = 8;

/// Descriptors kept out of the connection budget for a server with
/// `workers` worker threads (and one persister).
#[must_use]
pub fn reserve(workers: usize) -> usize {
    FIXED_RESERVE + PER_SAVER * (workers + 1) + MARGIN
}

/// The connection limit in force and where it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The soft open-files limit; `None` when unknown or unlimited.
    pub open_files: Option<u64>,
    /// Descriptors kept for everything but connections ([`reserve`]).
    pub reserved: usize,
    /// `--max-connections` as given.
    pub requested: usize,
    /// The connection limit in force: `requested`, lowered to fit.
    pub max_connections: usize,
}

impl Budget {
    /// The budget for `requested` connections and `workers` workers under
    /// the soft limit `open_files`.
    ///
    /// # Errors
    /// When the limit leaves no room for a single connection.
    pub fn new(
        requested: usize,
        workers: usize,
        open_files: Option<u64>,
    ) -> Result<Budget, TooFewDescriptors> {
        let reserved = reserve(workers);
        let max_connections = match open_files {
            None => requested,
            Some(limit) => {
                let limit = usize::try_from(limit).unwrap_or(usize::MAX);
                let room = limit.saturating_sub(reserved) / PER_CONNECTION;
                if room == 0 {
                    return Err(TooFewDescriptors { limit, reserved });
                }
                requested.min(room)
            }
        };
        Ok(Budget {
            open_files,
            reserved,
            requested,
            max_connections,
        })
    }

    /// The start-up line: the connection limit in force and why.
    #[must_use]
    pub fn describe(&self) -> String {
        match self.open_files {
            None => format!(
                "at most {} connections at once (the open-file limit is unknown or unlimited)",
                self.max_connections
            ),
            Some(limit) if self.max_connections < self.requested => format!(
                "at most {} connections at once, fewer than --max-connections {}: the open-file \
                 limit is {limit}, {} descriptors are kept for saves and logs and each connection \
                 may need {PER_CONNECTION}; {RAISE_IT}",
                self.max_connections, self.requested, self.reserved
            ),
            Some(limit) => format!(
                "at most {} connections at once (open-file limit {limit}, {} descriptors kept \
                 for saves and logs)",
                self.max_connections, self.reserved
            ),
        }
    }
}

/// How to raise the limit: the process cannot (no `unsafe`, no `setrlimit`).
const RAISE_IT: &str = "raise the limit before starting the server \
    (`ulimit -n N` in the shell, LimitNOFILE=N in a systemd unit)";

/// The open-files limit leaves no descriptor for a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooFewDescriptors {
    pub limit: usize,
    pub reserved: usize,
}

impl fmt::Display for TooFewDescriptors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the open-file limit is {}: too low to serve, since {} descriptors are kept for \
             saves and logs and each connection may need {PER_CONNECTION}; {RAISE_IT}",
            self.limit, self.reserved
        )
    }
}

/// The soft open-files limit of this process, from `/proc/self/limits`;
/// `None` when it cannot be read (not Linux) or is `unlimited`.
#[must_use]
pub fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    soft_open_files(&text)
}

/// The soft limit of the "Max open files" row of a `/proc/PID/limits` text.
fn soft_open_files(limits: &str) -> Option<u64> {
    limits
        .lines()
        .find_map(|line| line.strip_prefix(OPEN_FILES_ROW))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|soft| soft.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: &str = "\
Limit                     Soft Limit           Hard Limit           Units     
Max cpu time              unlimited            unlimited            seconds   
Max open files            1024                 1048576              files     
Max locked memory         8388608              8388608              bytes     
";

    #[test]
    fn the_soft_open_files_limit_is_read_and_unlimited_is_none() {
        assert_eq!(soft_open_files(LIMITS), Some(1024));
        let unlimited = LIMITS.replace("1024      ", "unlimited ");
        assert_eq!(soft_open_files(&unlimited), None);
        assert_eq!(soft_open_files("Limit Soft Hard\n"), None);
    }

    #[test]
    fn the_connection_limit_leaves_the_reserve_and_two_per_connection() {
        // 2 workers: 13 fixed + 3 × 3 savers + 8 margin.
        assert_eq!(reserve(2), 30);
        let low = Budget::new(2048, 2, Some(64)).unwrap();
        assert_eq!(low.max_connections, (64 - 30) / 2);
        assert!(low.describe().contains("ulimit -n"), "{}", low.describe());
        let high = Budget::new(2048, 2, Some(1_048_576)).unwrap();
        assert_eq!(high.max_connections, 2048);
        assert!(!high.describe().contains("ulimit"), "{}", high.describe());
        assert_eq!(Budget::new(2048, 2, None).unwrap().max_connections, 2048);
        assert_eq!(Budget::new(2048, 2, Some(32)).unwrap().max_connections, 1);
        let error = Budget::new(2048, 2, Some(31)).unwrap_err();
        assert_eq!(
            error,
            TooFewDescriptors {
                limit: 31,
                reserved: 30
            }
        );
        assert!(error.to_string().contains("LimitNOFILE"));
    }
}
