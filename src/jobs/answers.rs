//! Reading the job table: outcomes (with a bounded wait), listing pages,
//! counts. Restored jobs are read from their files, outside any lock.

use super::table::JobRecords;
use super::{JobId, JobOutcome, JobStatus, Jobs, DAMAGED_REASON};
use crate::results::ReadBack;
use crate::sync::PoisonError;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

impl JobOutcome {
    fn status(&self) -> JobStatus {
        match self {
            JobOutcome::Running => JobStatus::Running,
            JobOutcome::Done(_) => JobStatus::Done,
            JobOutcome::Error(_) => JobStatus::Error,
        }
    }
}

impl JobRecords {
    /// The id and status of `restored[index]` (which must exist).
    fn restored_status(&self, index: usize) -> (JobId, JobStatus) {
        let job = self.restored[index];
        let status = if job.succeeded && !self.damaged[index].load(Ordering::Relaxed) {
            JobStatus::Done
        } else {
            JobStatus::Error
        };
        (job.id, status)
    }

    /// Marks `restored[index]` damaged (logging it the first time) and
    /// returns the outcome to answer.
    fn damaged_file(&self, index: usize, details: &str) -> JobOutcome {
        if !self.damaged[index].swap(true, Ordering::Relaxed) {
            let id = self.restored[index].id;
            self.logger
                .error(format!("{id}: {DAMAGED_REASON}: {details}"));
        }
        JobOutcome::Error(DAMAGED_REASON.into())
    }

    /// The outcome of restored job `restored[index]`, read from its file
    /// now (outside any lock: restored jobs never change).
    fn restored_outcome(&self, index: usize) -> JobOutcome {
        if self.damaged[index].load(Ordering::Relaxed) {
            return JobOutcome::Error(DAMAGED_REASON.into());
        }
        let job = self.restored[index];
        match self.store.read_back(job) {
            Ok(ReadBack::Result(bytes)) => JobOutcome::Done(Arc::from(bytes)),
            Ok(ReadBack::Failure(reason)) => JobOutcome::Error(reason.into()),
            Ok(ReadBack::Damaged(details)) => self.damaged_file(index, &details),
            Err(error) => {
                self.logger
                    .error(format!("{}: cannot read its result file: {error}", job.id));
                JobOutcome::Error("internal error: cannot read the result file".into())
            }
        }
    }
}

impl Jobs {
    /// The outcome of job `id`, waiting up to `wait` for it to finish if it
    /// is running; `None` if there is no such job.
    ///
    /// This is what `get_results` uses: a client that polls in a tight loop
    /// then sends one or two requests per job instead of dozens, which
    /// leaves the CPU to the workers that finish the jobs.
    #[must_use]
    pub fn outcome_within(&self, id: JobId, wait: Duration) -> Option<JobOutcome> {
        let Some(index) = self.records.index_of(id) else {
            return self.outcome(id);
        };
        let table = self.records.lock_table();
        table.entries.get(index)?;
        // `wait_timeout_while` re-checks the condition after every wake-up
        // (ours, another job's in the same shard, or a spurious one) and
        // returns when it no longer holds or the time is up.
        let (table, _timed_out) = self.records.recorded[JobRecords::shard(id)]
            .wait_timeout_while(table, wait, |table| {
                matches!(table.entries.get(index), Some(JobOutcome::Running))
            })
            .unwrap_or_else(PoisonError::into_inner);
        table.entries.get(index).cloned()
    }

    /// The outcome of job `id`; `None` if there is no such job.
    ///
    /// A job restored from an earlier run is `Done` with its file's bytes, or
    /// `Error` with its recorded reason, read now; if the file has become
    /// unreadable or damaged it is `Error`.
    #[must_use]
    pub fn outcome(&self, id: JobId) -> Option<JobOutcome> {
        if let Some(index) = self.records.index_of(id) {
            return self.records.lock_table().entries.get(index).cloned();
        }
        let index = self
            .records
            .restored
            .binary_search_by_key(&id, |job| job.id)
            .ok()?;
        Some(self.records.restored_outcome(index))
    }

    /// Up to `limit` jobs with an id above `after` (from the first job when
    /// `None`), with their status, in id order: one page of the job list.
    ///
    /// The table lock is taken once, for copying at most `limit` entries, so
    /// a caller listing a large table page by page holds it only briefly at a
    /// time and never copies the whole table at once.
    #[must_use]
    pub fn statuses_after(&self, after: Option<JobId>, limit: usize) -> Vec<(JobId, JobStatus)> {
        let after = after.map_or(0, |id| id.0);
        let restored = &self.records.restored;
        let first_restored = restored.partition_point(|job| job.id.0 <= after);
        let mut page: Vec<(JobId, JobStatus)> = (first_restored..restored.len())
            .take(limit)
            .map(|i| self.records.restored_status(i))
            .collect();
        if page.len() < limit {
            let first_id = self.records.first_id;
            // Ids of the first entry above `after`, and its index; past the
            // end when `after` is beyond every job (saturating: no overflow).
            let first_listed = after.saturating_add(1).max(first_id);
            let skip = usize::try_from(first_listed - first_id).unwrap_or(usize::MAX);
            let table = self.records.lock_table();
            let entries = table.entries.get(skip..).unwrap_or(&[]);
            page.extend(
                (first_listed..)
                    .zip(entries.iter().take(limit - page.len()))
                    .map(|(id, entry)| (JobId(id), entry.status())),
            );
        }
        page
    }

    /// The highest job id handed out (by this process or an earlier run
    /// whose result is still on disk); `None` when there is no job at all.
    #[must_use]
    pub fn last_id(&self) -> Option<JobId> {
        let next = self.records.next_id(&self.records.lock_table());
        match next {
            Some(next) if next.0 > self.records.first_id => Some(JobId(next.0 - 1)),
            // No job of this process yet (or every id used, which no table
            // can hold): the highest restored one.
            _ => self.records.restored.last().map(|job| job.id),
        }
    }

    /// How many jobs are queued or running.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.records.lock_table().pending
    }
}
