//! The degraded state: after a save failed, new jobs are refused until a
//! save works again.
//!
//! The job path calls it through two functions: [`Degraded::admit`] when a
//! job is submitted, and [`Degraded::after_save`] when a save ends. A
//! failed save (a result, a failure record, the id reservation, or the
//! directory flush of a batch) enters the state, logged once with its
//! cause; a successful save of a result or a batch leaves it, logged once
//! (the id reservation reports its failures only). While degraded,
//! [`Degraded::admit`] refuses new jobs with the cause
//! ([`Refused::Degraded`], a `503` with `Retry-After`) — except that at most
//! once a [`PROBE_INTERVAL`] one submission first runs a probe (a small
//! file saved the way a result is): if it works, the state ends and that
//! submission goes on. Reads never look at this state. Held by
//! `fault_e2e::a_full_disk_answers_errors_then_recovers`.

use super::Refused;
use crate::log::Logger;
use crate::sync::lock_order::JOB_DEGRADED;
use crate::sync::{Mutex, MutexGuard, PoisonError};
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// At most one probe per this interval while degraded.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// Whether saves work, and why not.
#[derive(Debug)]
pub(super) struct Degraded {
    /// Whether degraded: mirrors `state.cause.is_some()`, so that the common case (healthy)
    /// costs one load, no lock.
    active: AtomicBool,
    /// Invariant: `cause` is `Some` exactly while degraded; `probing` while
    /// one caller of `admit` runs the probe (no lock held meanwhile).
    /// Poisoning: each update is one assignment; recovered.
    state: Mutex<DegradedState>,
}

impl Default for Degraded {
    fn default() -> Degraded {
        Degraded {
            active: AtomicBool::new(false),
            state: Mutex::new(JOB_DEGRADED, DegradedState::default()),
        }
    }
}

#[derive(Debug, Default)]
struct DegradedState {
    cause: Option<Arc<str>>,
    last_probe: Option<Instant>,
    probing: bool,
}

impl Degraded {
    fn lock(&self) -> MutexGuard<'_, DegradedState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cause, while degraded.
    pub(super) fn cause(&self) -> Option<Arc<str>> {
        if !self.active.load(Ordering::Acquire) {
            return None;
        }
        self.lock().cause.clone()
    }

    /// A save into `dir` ended: a failure enters the degraded state, a
    /// success leaves it (each logged once, when the state changes).
    pub(super) fn after_save(&self, logger: &Logger, dir: &Path, saved: Result<(), &io::Error>) {
        match saved {
            Ok(()) => self.save_worked(logger),
            Err(error) => self.save_failed(logger, dir, error),
        }
    }

    fn save_failed(&self, logger: &Logger, dir: &Path, error: &io::Error) {
        let mut state = self.lock();
        if state.cause.is_some() {
            return;
        }
        let cause: Arc<str> = format!("cannot save results in {}: {error}", dir.display()).into();
        state.cause = Some(Arc::clone(&cause));
        state.last_probe = Some(Instant::now());
        self.active.store(true, Ordering::Release);
        drop(state);
        logger.error(format!(
            "degraded: {cause}; new jobs are refused (503) until a save works again; saved results are still served"
        ));
    }

    fn save_worked(&self, logger: &Logger) {
        if !self.active.load(Ordering::Acquire) {
            return;
        }
        let mut state = self.lock();
        let Some(cause) = state.cause.take() else {
            return;
        };
        self.active.store(false, Ordering::Release);
        drop(state);
        logger.info(format!(
            "no longer degraded: saving works again (it failed: {cause})"
        ));
    }

    /// Whether a new job may be accepted: yes when healthy; while degraded,
    /// only if a probe is due and `probe` (run with no lock held) works.
    ///
    /// # Errors
    /// [`Refused::Degraded`] with the cause.
    pub(super) fn admit(
        &self,
        logger: &Logger,
        probe: impl FnOnce() -> io::Result<()>,
    ) -> Result<(), Refused> {
        if !self.active.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut state = self.lock();
        let Some(cause) = state.cause.clone() else {
            return Ok(());
        };
        let due = state
            .last_probe
            .is_none_or(|at| at.elapsed() >= PROBE_INTERVAL);
        if state.probing || !due {
            return Err(Refused::Degraded(cause));
        }
        state.probing = true;
        state.last_probe = Some(Instant::now());
        drop(state);
        // A probe that panics counts as failed: `probing` must be cleared,
        // or no later submission would ever probe again.
        let probed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(probe))
            .unwrap_or_else(|_| Err(io::Error::other("the save probe panicked")));
        self.lock().probing = false;
        match probed {
            Ok(()) => {
                self.save_worked(logger);
                Ok(())
            }
            Err(_) => Err(Refused::Degraded(cause)),
        }
    }
}

/// The reason a job whose result could not be saved reports: the cause and
/// what to do.
pub(super) fn unsaved_reason(error: &io::Error) -> String {
    let advice = match (error.kind(), error.raw_os_error()) {
        (io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded, _) => {
            "resubmit once the disk has room"
        }
        (io::ErrorKind::ReadOnlyFilesystem, _) => {
            "resubmit once the results directory is writable again"
        }
        // EMFILE, ENFILE
        (_, Some(24 | 23)) => "resubmit once the server has file descriptors to spare",
        _ => "resubmit once the results directory works again (the server log says more)",
    };
    format!("the result could not be saved: {error}; {advice}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_name_the_cause_and_what_to_do() {
        let full = io::Error::from_raw_os_error(28);
        assert_eq!(
            unsaved_reason(&full),
            "the result could not be saved: No space left on device (os error 28); resubmit once the disk has room"
        );
        let emfile = io::Error::from_raw_os_error(24);
        assert!(unsaved_reason(&emfile).ends_with("file descriptors to spare"));
    }

    /// Enter once, refuse without probing inside the interval, leave on a
    /// working save.
    #[test]
    fn a_failed_save_refuses_until_a_save_works() {
        let degraded = Degraded::default();
        let logger = Logger::disabled();
        assert_eq!(
            degraded.admit(&logger, || panic!("healthy: no probe")),
            Ok(())
        );
        degraded.after_save(
            &logger,
            Path::new("/r"),
            Err(&io::Error::from_raw_os_error(5)),
        );
        let cause = degraded.cause().unwrap();
        assert_eq!(
            &*cause,
            "cannot save results in /r: Input/output error (os error 5)"
        );
        assert_eq!(
            degraded.admit(&logger, || panic!("not due yet")),
            Err(Refused::Degraded(Arc::clone(&cause)))
        );
        degraded.lock().last_probe = None;
        assert_eq!(
            degraded.admit(&logger, || Err(io::Error::from_raw_os_error(5))),
            Err(Refused::Degraded(Arc::clone(&cause)))
        );
        degraded.lock().last_probe = None;
        assert!(degraded
            .admit(&logger, || panic!("a broken probe"))
            .is_err());
        degraded.lock().last_probe = None;
        assert_eq!(degraded.admit(&logger, || Ok(())), Ok(()));
        assert_eq!(degraded.cause(), None);
    }
}
