//! The API: routing, request validation, JSON bodies, and — in one place,
//! [`ApiError::into_response`] — the mapping from every error to its status.
//!
//! [`Api`] implements [`Handler`], so it is tested without a socket: build a
//! [`Request`], call [`Handler::handle`], look at the [`Response`].
//!
//! Where each concept lives:
//!
//! | file | concern |
//! |---|---|
//! | `mod.rs` | [`Api`]: dispatch and the handlers of each route; a computing request's JSON body → `Query`, with the JSON depth scan |
//! | `route.rs` | paths → routes, and the methods each route takes |
//! | `errors.rs` | [`ApiError`], [`BodyProblem`], errors → statuses and teaching messages |
//! | `query_string.rs` | the query string; `get_results`' `?wait=` |
//! | `job_list.rs` | the streamed `/api/jobs` listing and its paging |
//! | `index.rs` | the `GET /api` index |
//! | `suggest.rs` | "did you mean" for unknown names |
//! | `pages.rs` | the HTML pages and their Content-Security-Policies |
//! | `access.rs` | who may drive the server: `Host`, cross-site and remote-shutdown checks |

mod access;
mod errors;
mod index;
mod job_list;
mod pages;
mod query_string;
mod route;
mod suggest;

pub use access::{is_loopback, AccessPolicy};
pub use errors::{ApiError, BodyProblem};
pub use job_list::{write_job_list, JobsPaging, JOBS_PAGE};

use crate::dataset::Dataset;
use crate::http::response::StreamBody;
use crate::http::{Handler, Request, Response};
use crate::jobs::{JobId, JobOutcome, Jobs, Refused};
use crate::lifecycle::Lifecycle;
use crate::limits::{MAX_JSON_DEPTH, RESULT_WAIT};
use crate::log::Logger;
use crate::metrics::Refusal;
use crate::scoreboard;
use crate::stats::{self, Direction, Endpoint, Query};
use route::{route, Route};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The API over one dataset and one job table.
pub struct Api {
    dataset: Arc<Dataset>,
    jobs: Arc<Jobs>,
    lifecycle: Arc<Lifecycle>,
    /// The logs whose queue depth and dropped lines `/metrics` and
    /// `/api/status` report (the server log and the access log).
    logs: Vec<Logger>,
    /// Which requests are answered at all, and which may change state.
    access: AccessPolicy,
    /// How long every job sleeps on its worker before it computes
    /// (`--job-delay`): zero, or at most [`crate::limits::MAX_JOB_DELAY`].
    job_delay: Duration,
}

impl Handler for Api {
    fn handle(&self, request: &Request) -> Response {
        self.dispatch(request)
            .unwrap_or_else(ApiError::into_response)
    }
}

impl Api {
    #[must_use]
    pub fn new(dataset: Arc<Dataset>, jobs: Arc<Jobs>, lifecycle: Arc<Lifecycle>) -> Api {
        Api {
            dataset,
            jobs,
            lifecycle,
            logs: Vec::new(),
            access: AccessPolicy::default(),
            job_delay: Duration::ZERO,
        }
    }

    /// Answers and refuses requests by `access` instead of the strict
    /// default policy.
    #[must_use]
    pub fn with_access_policy(mut self, access: AccessPolicy) -> Api {
        self.access = access;
        self
    }

    /// Every job sleeps `delay` on its worker before it computes (a
    /// demonstration knob: it makes the queue and the workers visible).
    #[must_use]
    pub fn with_job_delay(mut self, delay: Duration) -> Api {
        self.job_delay = delay;
        self
    }

    /// Reports these logs' queue depth and dropped lines (summed) in
    /// `/metrics` and `/api/status`.
    #[must_use]
    pub fn reporting_logs(mut self, logs: Vec<Logger>) -> Api {
        self.logs = logs;
        self
    }

    /// Checks `Host`, routes `request`, checks its method and, for a
    /// request that changes state, where it comes from; then runs the
    /// route's handler.
    fn dispatch(&self, request: &Request) -> Result<Response, ApiError> {
        self.access.check_host(request)?;
        let route = route(request.path()).ok_or_else(|| ApiError::NotFound {
            path: request.path().to_owned(),
        })?;
        // Where HEAD is allowed it is answered as GET; the response writer
        // drops the body.
        if !route.allows(&request.method) {
            return Err(ApiError::MethodNotAllowed {
                allow: route.allowed_methods(),
                method: request.method.clone(),
                path: request.path().to_owned(),
            });
        }
        if let Some(action) = route.changes_state() {
            self.access.check_cross_site(request, action)?;
        }
        if route == Route::GracefulShutdown {
            self.access.check_shutdown_peer(request)?;
        }
        let query = query_string::query_string(&request.target);
        match route {
            Route::Index => Ok(pages::index_page()),
            Route::ApiIndex => Ok(index::api_index()),
            Route::Compute(endpoint) => self.submit(endpoint, request),
            Route::GetResults(id) => self.get_results(id, query),
            Route::Jobs => self.list_jobs(query),
            Route::NumJobs => Ok(Response::json(200, num_jobs_body(self.jobs.pending()))),
            Route::GracefulShutdown => Ok(self.graceful_shutdown()),
            Route::Questions => Ok(self.questions()),
            Route::States => Ok(self.states()),
            Route::Metrics => Ok(Response {
                status: 200,
                content_type: crate::metrics::CONTENT_TYPE,
                headers: Vec::new(),
                body: crate::metrics::render(&self.observed()).into_bytes(),
                stream: None,
            }),
            Route::Status => Ok(Response::json(
                200,
                scoreboard::render_json(&self.observed()),
            )),
            Route::StatusPage => Ok(pages::status_page()),
            Route::Trace => Ok(Response::json(
                200,
                scoreboard::render_trace(query_string::parse_trace_seconds(query)?),
            )),
            #[cfg(feature = "lock-order-selftest")]
            Route::LockOrderSelftest => Ok(lock_order_inversion()),
        }
    }

    /// What `/metrics` and `/api/status` report that this API owns.
    fn observed(&self) -> scoreboard::Snapshot {
        scoreboard::Snapshot {
            accepting: self.jobs.is_accepting(),
            log_queue_depth: self.logs.iter().map(Logger::queue_depth).sum(),
            log_lines_dropped: self.logs.iter().map(Logger::dropped_lines).sum(),
            degraded: self.jobs.degraded_cause(),
        }
    }

    /// Validates a computing request and queues its job.
    fn submit(&self, endpoint: Endpoint, request: &Request) -> Result<Response, ApiError> {
        let host = request.header("host");
        let query = parse_query(endpoint, &request.body)
            .map_err(|problem| ApiError::from_body_problem(&self.dataset, endpoint, host, problem))
            .and_then(|query| match stats::validate(&self.dataset, &query) {
                Ok(()) => Ok(query),
                Err(error) => Err(ApiError::from_stats_error(&self.dataset, &error)),
            })
            // After shutdown began every computing request is a 503, valid
            // or not. Checked only for invalid ones: `Jobs::submit` refuses
            // valid ones itself, under its lock.
            .map_err(|error| {
                if self.jobs.is_accepting() {
                    error
                } else {
                    ApiError::ShuttingDown(self.lifecycle.requested())
                }
            })?;
        let dataset = Arc::clone(&self.dataset);
        let submitted = Instant::now();
        let delay = self.job_delay;
        let id = self
            .jobs
            .submit_as(
                endpoint.name(),
                Box::new(move || {
                    crate::metrics::job_endpoint(endpoint, submitted);
                    if !delay.is_zero() {
                        std::thread::sleep(delay);
                    }
                    stats::compute(&dataset, &query)
                        .map(|answer| answer.to_json())
                        .map_err(|e| e.to_string())
                }),
            )
            .map_err(|refused| {
                crate::metrics::job_refused(match refused {
                    Refused::QueueFull => Refusal::QueueFull,
                    Refused::ShuttingDown => Refusal::ShuttingDown,
                    Refused::IdsUnavailable | Refused::IdsExhausted => Refusal::NoIds,
                    Refused::Degraded(_) => Refusal::Degraded,
                });
                ApiError::from_refused(refused, || self.lifecycle.requested())
            })?;
        crate::metrics::job_submitted(endpoint);
        Ok(Response::json(200, format!(r#"{{"job_id": "{id}"}}"#)))
    }

    /// The job's outcome, after waiting for a running job up to `?wait=`
    /// seconds (default [`RESULT_WAIT`]). The wait happens on this
    /// connection's thread, on the job table's Condvar: no worker is held
    /// (test `waits_hold_until_done_without_taking_a_worker`).
    fn get_results(&self, id: &str, query: Option<&str>) -> Result<Response, ApiError> {
        let wait = query_string::parse_wait(query)?.unwrap_or(RESULT_WAIT);
        let id = JobId::parse(id).ok_or(ApiError::InvalidJobId)?;
        scoreboard::set_job(scoreboard::ThreadState::WaitingForJob, id.0);
        let outcome = self.jobs.outcome_within(id, wait);
        scoreboard::set(scoreboard::ThreadState::Handling);
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
            JobOutcome::Error(reason) => return Ok(Response::error(200, reason.as_str())),
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

    /// `/api/questions`: every question and its best/worst direction.
    fn questions(&self) -> Response {
        let items: Vec<String> = self
            .dataset
            .questions()
            .into_iter()
            .map(|q| {
                let direction = match stats::direction(q) {
                    Some(Direction::LowerIsBetter) => r#""min""#,
                    Some(Direction::HigherIsBetter) => r#""max""#,
                    None => "null",
                };
                format!(
                    r#"{{"question": {}, "direction": {direction}}}"#,
                    json_string(q)
                )
            })
            .collect();
        done_list(&items)
    }

    /// `/api/states`: every state and territory.
    fn states(&self) -> Response {
        let items: Vec<String> = self
            .dataset
            .locations()
            .into_iter()
            .map(json_string)
            .collect();
        done_list(&items)
    }
}

/// `{"num_jobs": N}`, the most polled answer, built without `core::fmt`
/// and with room for the newline `Response::json` adds.
fn num_jobs_body(pending: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(32);
    body.extend_from_slice(br#"{"num_jobs": "#);
    body.extend_from_slice(crate::http::response::decimal(pending as u64, &mut [0; 20]));
    body.push(b'}');
    body
}

/// `{"status": "done", "data": [items]}` in the house style; each item is
/// already JSON.
fn done_list(items: &[String]) -> Response {
    Response::json(
        200,
        format!(r#"{{"status": "done", "data": [{}]}}"#, items.join(", ")),
    )
}

/// `text` as a JSON string literal, quotes included.
fn json_string(text: &str) -> String {
    // Serialising a `&str` cannot fail: serde_json only fails on maps with
    // non-string keys and on I/O errors, neither possible here.
    serde_json::to_string(text).expect("serialising a string cannot fail")
}
/// Takes a lock ranked like `JobRecords::table` while holding one ranked
/// like `ThreadPool::sender`: the inversion CONCURRENCY.md's lock order
/// forbids. The `lock-order` checker panics before the second `lock`; the
/// connection thread answers 500 (`lock_order_e2e` in `tests/integration`).
#[cfg(feature = "lock-order-selftest")]
fn lock_order_inversion() -> Response {
    use crate::sync::lock_order::{JOB_TABLE, POOL_SENDER};
    use crate::sync::{Mutex, PoisonError};
    let table = Mutex::new(JOB_TABLE, ());
    let sender = Mutex::new(POOL_SENDER, ());
    let _sender = sender.lock().unwrap_or_else(PoisonError::into_inner);
    let _table = table.lock().unwrap_or_else(PoisonError::into_inner);
    Response::json(200, r#"{"lock_order": "not checked"}"#.to_owned())
}

/// Reads `{"question": Q}` (and `"state": S` where the endpoint needs it)
/// from a body, whatever its Content-Type says. Other members are ignored.
///
/// # Errors
/// A body that is empty, nested too deep, or not a JSON object, or a
/// missing or non-string field (see [`BodyProblem`]).
pub(super) fn parse_query(endpoint: Endpoint, body: &[u8]) -> Result<Query, BodyProblem> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(BodyProblem::Missing);
    }
    if json_depth_exceeds(body, MAX_JSON_DEPTH) {
        return Err(BodyProblem::TooDeep);
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| BodyProblem::NotJson(e.to_string()))?;
    let object = value.as_object().ok_or(BodyProblem::NotObject)?;
    let field = |name: &'static str| -> Result<String, BodyProblem> {
        match object.get(name) {
            Some(Value::String(text)) => Ok(text.clone()),
            Some(_) => Err(BodyProblem::NotString(name)),
            None => Err(BodyProblem::MissingField(name)),
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
fn json_depth_exceeds(body: &[u8], max: usize) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            parse_query(Endpoint::Best5, body.as_bytes()),
            Err(BodyProblem::TooDeep)
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
}
