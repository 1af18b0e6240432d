//! The API: routing, request validation, JSON bodies, and — in one place,
//! [`ApiError::into_response`] — the mapping from every error to its status.
//!
//! [`Api`] implements [`Handler`], so it is tested without a socket: build a
//! [`Request`], call [`Handler::handle`], look at the [`Response`].

use crate::dataset::Dataset;
use crate::http::response::StreamBody;
use crate::http::{Handler, Request, Response};
use crate::jobs::{JobId, JobOutcome, Jobs, Refused};
use crate::lifecycle::Lifecycle;
use crate::limits::{MAX_JSON_DEPTH, RESULT_WAIT};
use crate::log::Logger;
use crate::stats::{self, Direction, Endpoint, Query, StatsError};
use serde_json::Value;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::sync::Arc;

/// The chart page served at `/`, compiled into the binary.
const INDEX_HTML: &str = include_str!("web/index.html");

/// How many jobs `/api/jobs` copies from the table per lock.
pub const JOBS_PAGE: usize = 4096;

/// How many "did you mean" suggestions an unknown name gets at most.
const MAX_SUGGESTIONS: usize = 3;

/// How much of an unknown name an error message repeats.
const MAX_ECHOED_CHARS: usize = 60;

/// Everything a request can go wrong with, before or instead of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// The body is not what the endpoint takes (400).
    BadRequest {
        reason: String,
        did_you_mean: Vec<String>,
    },
    /// No such path (404).
    NotFound,
    /// `get_results` for an id that is not a job (404).
    InvalidJobId,
    /// A known path with a method it does not take (405).
    MethodNotAllowed { allow: &'static str },
    /// A computing request after shutdown began (503).
    ShuttingDown,
    /// A computing request while the job queue is full (503, `Retry-After`).
    QueueFull,
}

impl ApiError {
    fn bad_request(reason: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            reason: reason.into(),
            did_you_mean: Vec::new(),
        }
    }

    /// The one place where API errors become statuses and bodies; every body
    /// is `{"status": "error", "reason": ...}` (see [`Response::error`]).
    pub fn into_response(self) -> Response {
        match self {
            ApiError::BadRequest {
                reason,
                did_you_mean,
            } if !did_you_mean.is_empty() => {
                Response::json(400, suggestion_body(&reason, &did_you_mean))
            }
            ApiError::BadRequest { reason, .. } => Response::error(400, &reason),
            ApiError::NotFound => Response::error(404, "not found"),
            ApiError::InvalidJobId => Response::error(404, "Invalid job_id"),
            ApiError::MethodNotAllowed { allow } => {
                Response::error(405, "method not allowed").with_header("Allow", allow)
            }
            ApiError::ShuttingDown => Response::error(503, "shutting down"),
            ApiError::QueueFull => Response::error(503, &Refused::QueueFull.to_string())
                .with_header("Retry-After", "1"),
        }
    }
}

/// An error body with suggestions:
/// `{"status": "error", "reason": ..., "did_you_mean": [...]}`.
fn suggestion_body(reason: &str, did_you_mean: &[String]) -> String {
    let names: Vec<String> = did_you_mean.iter().map(|name| json_string(name)).collect();
    format!(
        r#"{{"status": "error", "reason": {}, "did_you_mean": [{}]}}"#,
        json_string(reason),
        names.join(", ")
    )
}

fn json_string(text: &str) -> String {
    // Serialising a `&str` cannot fail: serde_json only fails on maps with
    // non-string keys and on I/O errors, neither possible here.
    serde_json::to_string(text).expect("serialising a string cannot fail")
}

/// What a route does; the router picks one from the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route<'a> {
    Index,
    Compute(Endpoint),
    GetResults(&'a str),
    Jobs,
    NumJobs,
    GracefulShutdown,
    Questions,
    States,
}

impl Route<'_> {
    /// The methods the route takes, as the `Allow` header lists them.
    fn allow(self) -> &'static str {
        match self {
            Route::Compute(_) => "POST",
            // The course's clients shut down with GET; POST is accepted too
            // because the request changes server state. Not HEAD: a HEAD
            // must be safe (RFC 9110 §9.3.2), and a link checker or a
            // monitoring probe must not stop the server.
            Route::GracefulShutdown => "GET, POST",
            _ => "GET, HEAD",
        }
    }
}

fn route(path: &str) -> Option<Route<'_>> {
    if path == "/" || path == "/index.html" {
        return Some(Route::Index);
    }
    let rest = path.strip_prefix("/api/")?;
    if let Some(id) = rest.strip_prefix("get_results/") {
        return Some(Route::GetResults(id));
    }
    Some(match rest {
        "jobs" => Route::Jobs,
        "num_jobs" => Route::NumJobs,
        "graceful_shutdown" => Route::GracefulShutdown,
        "questions" => Route::Questions,
        "states" => Route::States,
        name => Route::Compute(Endpoint::from_name(name)?),
    })
}

/// The API over one dataset and one job table.
pub struct Api {
    dataset: Arc<Dataset>,
    jobs: Arc<Jobs>,
    lifecycle: Arc<Lifecycle>,
    logger: Logger,
}

impl Api {
    pub fn new(
        dataset: Arc<Dataset>,
        jobs: Arc<Jobs>,
        lifecycle: Arc<Lifecycle>,
        logger: Logger,
    ) -> Api {
        Api {
            dataset,
            jobs,
            lifecycle,
            logger,
        }
    }

    fn dispatch(&self, request: &Request) -> Result<Response, ApiError> {
        let route = route(request.path()).ok_or(ApiError::NotFound)?;
        let allow = route.allow();
        // Where HEAD is allowed it is answered as GET; the response writer
        // drops the body.
        if !allow.split(", ").any(|m| m == request.method) {
            return Err(ApiError::MethodNotAllowed { allow });
        }
        match route {
            Route::Index => Ok(Response {
                status: 200,
                content_type: "text/html; charset=utf-8",
                headers: Vec::new(),
                body: INDEX_HTML.as_bytes().to_vec(),
                stream: None,
            }),
            Route::Compute(endpoint) => self.submit(endpoint, &request.body),
            Route::GetResults(id) => self.get_results(id),
            Route::Jobs => self.list_jobs(request.target.split_once('?').map(|(_, q)| q)),
            Route::NumJobs => Ok(Response::json(
                200,
                format!(r#"{{"num_jobs": {}}}"#, self.jobs.pending()),
            )),
            Route::GracefulShutdown => Ok(self.graceful_shutdown()),
            Route::Questions => Ok(self.questions()),
            Route::States => Ok(self.states()),
        }
    }

    /// Validates a computing request and queues its job.
    fn submit(&self, endpoint: Endpoint, body: &[u8]) -> Result<Response, ApiError> {
        let query = parse_query(endpoint, body)
            .and_then(|query| match stats::validate(&self.dataset, &query) {
                Ok(()) => Ok(query),
                Err(error) => Err(self.explain(error)),
            })
            // After shutdown began every computing request is a 503, valid
            // or not. Checked only for invalid ones: `Jobs::submit` refuses
            // valid ones itself, under its lock.
            .map_err(|error| {
                if self.jobs.is_accepting() {
                    error
                } else {
                    ApiError::ShuttingDown
                }
            })?;
        let dataset = Arc::clone(&self.dataset);
        let id = self
            .jobs
            .submit(Box::new(move || {
                stats::compute(&dataset, &query)
                    .map(|answer| answer.to_json())
                    .map_err(|e| e.to_string())
            }))
            .map_err(|refused| match refused {
                Refused::ShuttingDown => ApiError::ShuttingDown,
                Refused::QueueFull => ApiError::QueueFull,
            })?;
        self.logger
            .info(format!("{id} submitted: {}", endpoint.name()));
        Ok(Response::json(200, format!(r#"{{"job_id": "{id}"}}"#)))
    }

    /// Turns a validation error into a 400 with suggestions.
    fn explain(&self, error: StatsError) -> ApiError {
        let (reason, did_you_mean) = match &error {
            StatsError::UnknownQuestion { question } => (
                format!("unknown question: {}", quoted(question)),
                closest(question, self.dataset.questions()),
            ),
            StatsError::UnknownState { question, state } => (
                format!("unknown state {} for this question", quoted(state)),
                closest(state, self.dataset.locations_for(question)),
            ),
            StatsError::NoDirection { question } => (
                format!("question has no best/worst direction: {}", quoted(question)),
                Vec::new(),
            ),
        };
        ApiError::BadRequest {
            reason,
            did_you_mean,
        }
    }

    fn get_results(&self, id: &str) -> Result<Response, ApiError> {
        let id = JobId::parse(id).ok_or(ApiError::InvalidJobId)?;
        let outcome = self.jobs.outcome_within(id, RESULT_WAIT);
        let body = match outcome.ok_or(ApiError::InvalidJobId)? {
            JobOutcome::Running => r#"{"status": "running"}"#.as_bytes().to_vec(),
            JobOutcome::Done(data) => {
                const HEAD: &[u8] = br#"{"status": "done", "data": "#;
                let mut body = Vec::with_capacity(HEAD.len() + data.len() + 1);
                body.extend_from_slice(HEAD);
                body.extend_from_slice(&data);
                body.push(b'}');
                body
            }
            // A job that failed is still a successful request: 200.
            JobOutcome::Error(reason) => return Ok(Response::error(200, &reason)),
        };
        Ok(Response::json(200, body))
    }

    /// `/api/jobs[?after=job_id_N][&limit=K]`: the job list, streamed page
    /// by page (see [`write_job_list`]), never built whole in memory.
    fn list_jobs(&self, query: Option<&str>) -> Result<Response, ApiError> {
        let paging = JobsPaging::parse(query.unwrap_or(""))?;
        let jobs = Arc::clone(&self.jobs);
        Ok(Response::json_stream(
            200,
            StreamBody::new(move |out| write_job_list(&jobs, paging, out)),
        ))
    }

    /// Stops accepting jobs at once (later submissions get 503), then wakes
    /// the main thread, which joins the workers once the queue is empty.
    fn graceful_shutdown(&self) -> Response {
        self.jobs.stop_accepting();
        self.lifecycle.request_drain();
        let status = if self.jobs.pending() == 0 {
            "done"
        } else {
            "running"
        };
        Response::json(200, format!(r#"{{"status": "{status}"}}"#))
    }

    fn questions(&self) -> Response {
        let items: Vec<Value> = self
            .dataset
            .questions()
            .into_iter()
            .map(|q| {
                let direction = match stats::direction(q) {
                    Some(Direction::LowerIsBetter) => Value::from("min"),
                    Some(Direction::HigherIsBetter) => Value::from("max"),
                    None => Value::Null,
                };
                serde_json::json!({"question": q, "direction": direction})
            })
            .collect();
        done_list(items)
    }

    fn states(&self) -> Response {
        done_list(
            self.dataset
                .locations()
                .into_iter()
                .map(Value::from)
                .collect(),
        )
    }
}

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
    /// ignored (a cache-busting `?t=…` is harmless).
    ///
    /// # Errors
    /// A 400 with a reason for an `after` that is not a job id, a `limit`
    /// that is not a positive integer, or either given twice.
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
                _ => {}
            }
        }
        Ok(paging)
    }

    /// True if and only if the client asked for paging: the answer then has
    /// a `next` member.
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
/// even while jobs keep being submitted; each job's status is the one it had
/// when its page was read. The table lock is held only while one page is
/// copied ([`Jobs::statuses_after`]), never while writing.
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
            // `{"job_id_N": "status"}` without the formatting machinery:
            // this runs once per job, a million times for a large table.
            text.push_str(r#"{"job_id_"#);
            push_decimal(&mut text, id.0);
            text.push_str(r#"": ""#);
            text.push_str(status.as_str());
            text.push_str(r#""}"#);
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

/// Appends `n` in decimal.
fn push_decimal(text: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    text.extend(digits[i..].iter().map(|&d| char::from(d)));
}

fn done_list(items: Vec<Value>) -> Response {
    let body = serde_json::json!({"status": "done", "data": items});
    Response::json(200, body.to_string())
}

impl Handler for Api {
    fn handle(&self, request: &Request) -> Response {
        self.dispatch(request)
            .unwrap_or_else(ApiError::into_response)
    }
}

/// Reads `{"question": Q}` (and `"state": S` where the endpoint needs it)
/// from a body, whatever its Content-Type says. Other members are ignored.
///
/// # Errors
/// A body that is not a JSON object, or a missing or non-string field.
pub fn parse_query(endpoint: Endpoint, body: &[u8]) -> Result<Query, ApiError> {
    if json_depth_exceeds(body, MAX_JSON_DEPTH) {
        return Err(ApiError::bad_request(format!(
            "JSON body nested deeper than {MAX_JSON_DEPTH} levels"
        )));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
    let object = value
        .as_object()
        .ok_or_else(|| ApiError::bad_request("the body must be a JSON object"))?;
    let field = |name: &str| -> Result<String, ApiError> {
        match object.get(name) {
            Some(Value::String(text)) => Ok(text.clone()),
            Some(_) => Err(ApiError::bad_request(format!("{name:?} must be a string"))),
            None => Err(ApiError::bad_request(format!("missing field {name:?}"))),
        }
    };
    let question = field("question")?;
    let state = if endpoint.needs_state() {
        Some(field("state")?)
    } else {
        None
    };
    Ok(Query {
        endpoint,
        question,
        state,
    })
}

/// True if and only if `body` opens more than `max` arrays or objects
/// inside one another, counting only brackets and braces outside JSON
/// strings (a `\"` inside a string does not end it). A byte scan with no
/// recursion and no allocation, so it is safe on any input; it does not
/// check that the body is valid JSON (`serde_json` does that next).
pub fn json_depth_exceeds(body: &[u8], max: usize) -> bool {
    let mut depth = 0_usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in body {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            // Unbalanced closers are serde_json's to report.
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// `text` as a quoted JSON-style string for an error message, cut after
/// [`MAX_ECHOED_CHARS`] characters: a client's megabyte-long question is
/// not worth echoing back.
fn quoted(text: &str) -> String {
    match text.char_indices().nth(MAX_ECHOED_CHARS) {
        Some((cut, _)) => format!("{:?}...", &text[..cut]),
        None => format!("{text:?}"),
    }
}

/// Up to three (`MAX_SUGGESTIONS`) of `known`, closest to `wanted` first, by edit
/// distance over lower-cased characters; only names within half their
/// length of `wanted` count as close.
///
/// The edit distance is at least the difference in length, so a name whose
/// length alone is out of budget is skipped without computing it: a client
/// sending a megabyte-long name costs a length comparison per known name,
/// not a megabyte-by-name distance table.
pub fn closest(wanted: &str, known: Vec<&str>) -> Vec<String> {
    let wanted_len = wanted.chars().count();
    let budget = |len: usize| wanted_len.max(len) / 2;
    let candidates: Vec<&str> = known
        .into_iter()
        .filter(|name| {
            let len = name.chars().count();
            wanted_len.abs_diff(len) <= budget(len)
        })
        .collect();
    if candidates.is_empty() {
        return Vec::new();
    }
    let wanted: Vec<char> = wanted.to_lowercase().chars().collect();
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .filter_map(|name| {
            let candidate: Vec<char> = name.to_lowercase().chars().collect();
            let distance = edit_distance(&wanted, &candidate);
            (distance <= budget(name.chars().count())).then_some((distance, name))
        })
        .collect();
    scored.sort();
    scored
        .into_iter()
        .take(MAX_SUGGESTIONS)
        .map(|(_, name)| name.to_string())
        .collect()
}

/// Levenshtein distance, two rows of memory.
fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("/"), Some(Route::Index));
        assert_eq!(route("/api/jobs"), Some(Route::Jobs));
        assert_eq!(
            route("/api/get_results/job_id_3"),
            Some(Route::GetResults("job_id_3"))
        );
        assert_eq!(route("/api/best5"), Some(Route::Compute(Endpoint::Best5)));
        assert_eq!(route("/api/best6"), None);
        assert_eq!(route("/api/jobs/"), None);
        assert_eq!(route("/jobs"), None);
    }

    #[test]
    fn queries_are_read_from_json_whatever_the_content_type() {
        let q = parse_query(
            Endpoint::StateMean,
            br#"{"question": "Q", "state": "Ohio", "x": 1}"#,
        );
        assert_eq!(
            q,
            Ok(Query {
                endpoint: Endpoint::StateMean,
                question: "Q".into(),
                state: Some("Ohio".into())
            })
        );
        for (endpoint, body) in [
            (Endpoint::Best5, &b""[..]),
            (Endpoint::Best5, b"{"),
            (Endpoint::Best5, b"[1]"),
            (Endpoint::Best5, br#"{"question": 5}"#),
            (Endpoint::Best5, br#"{"q": "x"}"#),
            (Endpoint::StateMean, br#"{"question": "Q"}"#),
            (Endpoint::StateMean, br#"{"question": "Q", "state": null}"#),
        ] {
            assert!(
                parse_query(endpoint, body).is_err(),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn deeply_nested_bodies_are_rejected_not_overflowed() {
        let body = "[".repeat(100_000);
        let reason = "JSON body nested deeper than 8 levels";
        assert_eq!(
            parse_query(Endpoint::Best5, body.as_bytes()),
            Err(ApiError::bad_request(reason))
        );
    }

    #[test]
    fn json_depth_counts_brackets_outside_strings_only() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(!json_depth_exceeds(nested(8).as_bytes(), 8));
        assert!(json_depth_exceeds(nested(9).as_bytes(), 8));
        assert!(json_depth_exceeds(br#"{"a": {"b": [[[[[[[1]]]]]]]}}"#, 8));
        assert!(!json_depth_exceeds(
            br#"{"a": [1], "b": [2], "c": {"d": 3}}"#,
            2
        ));
        // Brackets inside strings do not count, escaped quotes do not end a
        // string, and an escaped backslash does not escape the closing quote.
        let in_string = format!(r#"{{"question": "{}"}}"#, "[{".repeat(50));
        assert!(!json_depth_exceeds(in_string.as_bytes(), 1));
        assert!(!json_depth_exceeds(br#"{"q": "\"[[[[\""}"#, 1));
        assert!(json_depth_exceeds(br#"{"q": "\\", "r": [[1]]}"#, 2));
        assert!(!json_depth_exceeds(br#"{"q": "\\", "r": [1]}"#, 2));
        // Unbalanced closers and unterminated strings are not a depth error.
        assert!(!json_depth_exceeds(b"]]]]]]]]]][", 1));
        assert!(!json_depth_exceeds(br#"{"q": "[[[[[[[[[["#, 1));
        // A flat body at the limit parses as before.
        let flat = br#"{"question": "Q [x] {y}", "state": "Ohio"}"#;
        assert!(parse_query(Endpoint::StateMean, flat).is_ok());
    }

    #[test]
    fn suggestions_are_the_closest_names() {
        let known = vec!["Ohio", "Iowa", "Idaho", "Texas"];
        assert_eq!(closest("ohio", known.clone()), vec!["Ohio"]);
        assert_eq!(closest("Idaoh", known.clone())[0], "Idaho");
        assert!(closest("zzzzzzzzzz", known).is_empty());
        assert_eq!(edit_distance(&['a', 'b'], &['b', 'a']), 2);
    }

    #[test]
    fn error_bodies_are_json() {
        let r = ApiError::MethodNotAllowed { allow: "POST" }.into_response();
        assert_eq!(r.status, 405);
        assert_eq!(r.headers, vec![("Allow", "POST".to_string())]);
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["status"], "error");
        let r = ApiError::BadRequest {
            reason: "unknown \"x\"".into(),
            did_you_mean: vec!["a".into()],
        }
        .into_response();
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["did_you_mean"][0], "a");
        assert_eq!(body["reason"], "unknown \"x\"");
    }
}
