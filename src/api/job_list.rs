//! `GET /api/jobs`: the job list, streamed page by page, and its paging
//! (`?after=job_id_N&limit=K`).

use super::errors::{quoted, ApiError};
use crate::http::response::push_decimal_text;
use crate::jobs::{JobId, JobStatus, Jobs};
use std::fmt::Write as _;
use std::io::{self, Write};

/// How many jobs `/api/jobs` copies from the table per lock.
pub const JOBS_PAGE: usize = 4096;

/// The paging a `/api/jobs` request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobsPaging {
    /// List only jobs with a higher id (`?after=job_id_N` or `?after=N`).
    pub after: Option<JobId>,
    /// List at most this many jobs (`?limit=K`, K ≥ 1).
    pub limit: Option<usize>,
}

impl JobsPaging {
    /// Reads `after` and `limit` from a query string; other parameters are
    /// refused (a typo must not turn one page into the whole list).
    ///
    /// # Errors
    /// A 400 with a reason for an `after` that is not a job id, a `limit`
    /// that is not a positive integer, either given twice, or another parameter.
    pub fn parse(query: &str) -> Result<JobsPaging, ApiError> {
        let mut paging = JobsPaging {
            after: None,
            limit: None,
        };
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match name {
                "after" if paging.after.is_some() => {
                    return Err(ApiError::bad_request("after given twice"))
                }
                "after" => {
                    let id = JobId::parse(value).ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "after must be a job id such as job_id_7, not {}",
                            quoted(value)
                        ))
                    })?;
                    paging.after = Some(id);
                }
                "limit" if paging.limit.is_some() => {
                    return Err(ApiError::bad_request("limit given twice"))
                }
                "limit" => {
                    let limit = value
                        .parse::<usize>()
                        .ok()
                        .filter(|&limit| limit > 0 && value.bytes().all(|b| b.is_ascii_digit()))
                        .ok_or_else(|| {
                            ApiError::bad_request(format!(
                                "limit must be a positive integer, not {}",
                                quoted(value)
                            ))
                        })?;
                    paging.limit = Some(limit);
                }
                // A typo (`?lmit=3`) must not silently turn one page into
                // the whole list, which can be many megabytes.
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "unknown query parameter {}: /api/jobs takes ?after=job_id_N and ?limit=K",
                        quoted(name)
                    )))
                }
            }
        }
        Ok(paging)
    }

    /// True if and only if the client asked for paging: the answer then has
    /// a `next` member.
    #[must_use]
    pub fn is_paged(self) -> bool {
        self.after.is_some() || self.limit.is_some()
    }
}

/// Writes the `/api/jobs` body to `out`, [`JOBS_PAGE`] jobs at a time:
/// `{"status": "done", "data": [{"job_id_1": "done"}, ...]}` and a newline,
/// with `, "next": "job_id_N"` (or `null`) before the closing brace when
/// `paging` asked for it.
///
/// The list ends at the last job that existed when it began, so it ends
/// even while jobs keep being submitted (test
/// `jobs_listing_ends_at_the_last_job_when_it_began`); each job's status is
/// the one it had when its page was read. The table lock is held only while
/// one page is copied ([`Jobs::statuses_after`]), never while writing, and
/// each write holds at most one page (test
/// `jobs_listing_is_streamed_a_page_at_a_time_without_the_lock`).
///
/// `next` names the last job listed when a job with a higher id exists (the
/// client asks `?after=<next>` for the following page), and is `null` when
/// the list is complete.
///
/// # Errors
/// Only those of `out`.
pub fn write_job_list(jobs: &Jobs, paging: JobsPaging, out: &mut dyn Write) -> io::Result<()> {
    let end = jobs.last_id();
    let mut after = paging.after;
    let mut last_listed = None;
    let mut remaining = paging.limit.unwrap_or(usize::MAX);
    let mut text = String::with_capacity(64 * 1024);
    text.push_str(r#"{"status": "done", "data": ["#);
    while remaining > 0 {
        let want = remaining.min(JOBS_PAGE);
        let page = jobs.statuses_after(after, want);
        let full = page.len() == want;
        let mut past_end = false;
        for (id, status) in page {
            // `None < Some(_)`: with no job at the start, every id is past it.
            if Some(id) > end {
                past_end = true;
                break;
            }
            if last_listed.is_some() {
                text.push_str(", ");
            }
            push_item(&mut text, id, status);
            last_listed = Some(id);
            remaining -= 1;
        }
        after = last_listed.or(after);
        out.write_all(text.as_bytes())?;
        text.clear();
        if !full || past_end {
            break;
        }
    }
    text.push(']');
    if paging.is_paged() {
        // `end` is a job, so one exists past the last listed iff it is higher.
        match (last_listed, end) {
            (Some(last), Some(end)) if last < end => {
                let _ = write!(text, r#", "next": "{last}""#);
            }
            _ => text.push_str(r#", "next": null"#),
        }
    }
    text.push_str("}\n");
    out.write_all(text.as_bytes())
}

/// Appends `{"job_id_N": "status"}` without the formatting machinery: this
/// runs once per job, a million times for a large table.
fn push_item(text: &mut String, id: JobId, status: JobStatus) {
    text.push_str(r#"{"job_id_"#);
    push_decimal_text(text, id.0);
    text.push_str(r#"": ""#);
    text.push_str(status.as_str());
    text.push_str(r#""}"#);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paging_reads_after_and_limit_and_refuses_the_rest() {
        assert!(JobsPaging::parse("lmit=3").is_err());
        assert!(JobsPaging::parse("t=1&limit=3").is_err());
        assert_eq!(
            JobsPaging::parse("after=job_id_7&limit=3"),
            Ok(JobsPaging {
                after: Some(JobId(7)),
                limit: Some(3)
            })
        );
        let unpaged = JobsPaging::parse("").expect("no paging");
        assert!(!unpaged.is_paged());
        assert!(JobsPaging::parse("limit=1").expect("paged").is_paged());
    }
}
