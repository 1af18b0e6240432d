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
use crate::limits::{MAX_JSON_DEPTH, MAX_RESULT_WAIT, RESULT_WAIT};
use crate::log::Logger;
use crate::stats::{self, Direction, Endpoint, Query, StatsError};
use serde_json::Value;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::sync::Arc;
use std::time::Duration;

/// The chart page served at `/`, compiled into the binary.
const INDEX_HTML: &str = include_str!("web/index.html");

/// The page's Content-Security-Policy: it may run only its own inline script
/// and style (named by their SHA-256, so an injected `<script>` does not run),
/// fetch only from this server, and load nothing from anywhere else.
/// Editing the page's `<script>` or `<style>` changes their hashes: the test
/// `index_csp_hashes_match_the_page` prints the new ones.
const INDEX_CSP: &str = "default-src 'none'; \
    script-src 'sha256-lmP2scWFEGJ9eA4vqpy/B32hhEnxYC/crZI6QEE43E0='; \
    style-src 'sha256-iJmIezfadys23W4C/0CNLL7iMLGobmXmTHVA//qBc/4='; \
    connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// The live scoreboard page served at `/status`, compiled into the binary.
const STATUS_HTML: &str = include_str!("web/status.html");

/// The status page fetches only from this server and sets text, never HTML.
const STATUS_PAGE_CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// How many jobs `/api/jobs` copies from the table per lock.
pub const JOBS_PAGE: usize = 4096;

/// How many "did you mean" suggestions an unknown name gets at most.
const MAX_SUGGESTIONS: usize = 3;

/// How much of an unknown name an error message repeats.
const MAX_ECHOED_CHARS: usize = 60;

/// Longest name that is also looked up word by word ("fruit" finds the
/// question about fruit): a longer one cannot be a few typed words, and
/// matching a megabyte of words against every question is not worth it.
const MAX_WORDS_QUERY_CHARS: usize = 200;

/// The host an example `curl` line names when the request had no `Host`.
const DEFAULT_HOST: &str = "localhost:5000";

/// Everything a request can go wrong with, before or instead of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// The body is not what the endpoint takes (400).
    BadRequest {
        reason: String,
        did_you_mean: Vec<String>,
    },
    /// No such path (404); the path as requested.
    NotFound { path: String },
    /// `get_results` for an id that is not a job (404).
    InvalidJobId,
    /// A known path with a method it does not take (405). The body lists
    /// the allowed methods too: curl hides the `Allow` header.
    MethodNotAllowed {
        allow: &'static str,
        method: String,
        path: String,
    },
    /// A computing request after shutdown began (503).
    ShuttingDown,
    /// A computing request while the job queue is full (503, `Retry-After`).
    QueueFull,
    /// A computing request while job ids cannot be reserved on disk (503,
    /// `Retry-After`).
    IdsUnavailable,
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
            ApiError::NotFound { path } => Response::error(
                404,
                &format!(
                    "not found: no endpoint at {}; GET /api lists every endpoint",
                    shortened(&path)
                ),
            ),
            ApiError::InvalidJobId => Response::error(404, "Invalid job_id"),
            ApiError::MethodNotAllowed {
                allow,
                method,
                path,
            } => Response::error(
                405,
                &format!(
                    "method not allowed: {} takes {allow}, not {}",
                    shortened(&path),
                    shortened(&method)
                ),
            )
            .with_header("Allow", allow),
            ApiError::ShuttingDown => Response::error(503, "shutting down"),
            ApiError::QueueFull => Response::error(503, &Refused::QueueFull.to_string())
                .with_header("Retry-After", "1"),
            ApiError::IdsUnavailable => Response::error(503, &Refused::IdsUnavailable.to_string())
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
    ApiIndex,
    Compute(Endpoint),
    GetResults(&'a str),
    Jobs,
    NumJobs,
    GracefulShutdown,
    Questions,
    States,
    Metrics,
    Status,
    StatusPage,
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
    match path {
        "/api" | "/api/" => return Some(Route::ApiIndex),
        "/metrics" => return Some(Route::Metrics),
        "/status" => return Some(Route::StatusPage),
        _ => {}
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
        "status" => Route::Status,
        name => Route::Compute(Endpoint::from_name(name)?),
    })
}

/// The API over one dataset and one job table.
pub struct Api {
    dataset: Arc<Dataset>,
    jobs: Arc<Jobs>,
    lifecycle: Arc<Lifecycle>,
    /// The logs whose queue depth and dropped lines `/metrics` and
    /// `/api/status` report (the server log and the access log).
    logs: Vec<Logger>,
}

impl Api {
    pub fn new(dataset: Arc<Dataset>, jobs: Arc<Jobs>, lifecycle: Arc<Lifecycle>) -> Api {
        Api {
            dataset,
            jobs,
            lifecycle,
            logs: Vec::new(),
        }
    }

    /// Reports these logs' queue depth and dropped lines (summed) in
    /// `/metrics` and `/api/status`.
    #[must_use]
    pub fn reporting_logs(mut self, logs: Vec<Logger>) -> Api {
        self.logs = logs;
        self
    }

    fn dispatch(&self, request: &Request) -> Result<Response, ApiError> {
        let route = route(request.path()).ok_or_else(|| ApiError::NotFound {
            path: request.path().to_owned(),
        })?;
        let allow = route.allow();
        // Where HEAD is allowed it is answered as GET; the response writer
        // drops the body.
        if !allow.split(", ").any(|m| m == request.method) {
            return Err(ApiError::MethodNotAllowed {
                allow,
                method: request.method.clone(),
                path: request.path().to_owned(),
            });
        }
        match route {
            Route::Index => Ok(Response {
                status: 200,
                content_type: "text/html; charset=utf-8",
                headers: vec![("Content-Security-Policy", INDEX_CSP.to_owned())],
                body: INDEX_HTML.as_bytes().to_vec(),
                stream: None,
            }),
            Route::ApiIndex => Ok(api_index()),
            Route::Compute(endpoint) => self.submit(endpoint, request),
            Route::GetResults(id) => self.get_results(id, query_string(&request.target)),
            Route::Jobs => self.list_jobs(query_string(&request.target)),
            Route::NumJobs => Ok(Response::json(
                200,
                format!(r#"{{"num_jobs": {}}}"#, self.jobs.pending()),
            )),
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
                crate::scoreboard::render_json(&self.observed()),
            )),
            Route::StatusPage => Ok(Response {
                status: 200,
                content_type: "text/html; charset=utf-8",
                headers: vec![("Content-Security-Policy", STATUS_PAGE_CSP.to_owned())],
                body: STATUS_HTML.as_bytes().to_vec(),
                stream: None,
            }),
        }
    }

    /// What `/metrics` and `/api/status` report that this API owns.
    fn observed(&self) -> crate::metrics::Snapshot {
        crate::metrics::Snapshot {
            pending_jobs: self.jobs.pending(),
            accepting: self.jobs.is_accepting(),
            log_queue_depth: self.logs.iter().map(Logger::queue_depth).sum(),
            log_lines_dropped: self.logs.iter().map(Logger::dropped_lines).sum(),
        }
    }

    /// Validates a computing request and queues its job.
    fn submit(&self, endpoint: Endpoint, request: &Request) -> Result<Response, ApiError> {
        let query = parse_query(endpoint, &request.body)
            .map_err(|problem| self.teach(endpoint, request, problem))
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
        let submitted = std::time::Instant::now();
        let id = self
            .jobs
            .submit_as(
                endpoint.name(),
                Box::new(move || {
                    crate::metrics::job_endpoint(endpoint, submitted);
                    stats::compute(&dataset, &query)
                        .map(|answer| answer.to_json())
                        .map_err(|e| e.to_string())
                }),
            )
            .map_err(|refused| match crate::metrics::job_refused(refused) {
                Refused::ShuttingDown => ApiError::ShuttingDown,
                Refused::QueueFull => ApiError::QueueFull,
                Refused::IdsUnavailable => ApiError::IdsUnavailable,
            })?;
        crate::metrics::job_submitted(endpoint);
        Ok(Response::json(200, format!(r#"{{"job_id": "{id}"}}"#)))
    }

    /// Turns a body that is not what `endpoint` takes into a 400 that says
    /// what it takes and shows a `curl` line that works.
    fn teach(&self, endpoint: Endpoint, request: &Request, problem: BodyProblem) -> ApiError {
        let path = format!("/api/{}", endpoint.name());
        let fields = if endpoint.needs_state() {
            r#""question" and "state" (strings)"#
        } else {
            r#""question" (a string)"#
        };
        let example = self.curl_example(endpoint, request.header("host"));
        ApiError::bad_request(match problem {
            BodyProblem::Missing => {
                format!("missing body: {path} takes a JSON object with {fields}; e.g. {example}")
            }
            BodyProblem::NotJson(why) => format!(
                "the body is not JSON ({why}): {path} takes a JSON object with {fields}; \
                 e.g. {example}"
            ),
            BodyProblem::NotObject => {
                format!("the body must be a JSON object: {path} takes {fields}; e.g. {example}")
            }
            BodyProblem::MissingField(name) => {
                format!("missing field {name:?}: {path} takes {fields}; e.g. {example}")
            }
            BodyProblem::NotString(name) => format!("{name:?} must be a string"),
            BodyProblem::TooDeep => format!(
                "JSON body nested deeper than {MAX_JSON_DEPTH} levels: {path} takes a flat \
                 JSON object with {fields}; e.g. {example}"
            ),
        })
    }

    /// A `curl` line that submits a valid request to `endpoint` on the
    /// server the client reached (its `Host`), with a real question (one
    /// with a best/worst direction when there is one) and state.
    fn curl_example(&self, endpoint: Endpoint, host: Option<&str>) -> String {
        let host = host.filter(|h| !h.is_empty()).unwrap_or(DEFAULT_HOST);
        let questions = self.dataset.questions();
        // The shortest question with a direction: an example that also
        // works for best5/worst5, and short enough to read.
        let question = questions
            .iter()
            .filter(|q| stats::direction(q).is_some())
            .min_by_key(|q| q.len())
            .or(questions.first())
            .copied()
            .unwrap_or("Q");
        let body = if endpoint.needs_state() {
            let locations = self.dataset.locations_for(question);
            let state = locations.first().copied().unwrap_or("S");
            format!(
                r#"{{"question": {}, "state": {}}}"#,
                json_string(question),
                json_string(state)
            )
        } else {
            format!(r#"{{"question": {}}}"#, json_string(question))
        };
        format!(
            "curl -s -X POST {}/api/{} -d {}",
            shell_word(host),
            endpoint.name(),
            shell_word(&body)
        )
    }

    /// Turns a validation error into a 400 with suggestions.
    fn explain(&self, error: StatsError) -> ApiError {
        let (reason, did_you_mean) = match &error {
            StatsError::UnknownQuestion { question } => {
                let known = self.dataset.questions();
                (
                    format!(
                        "unknown question: {}{}; GET /api/questions lists them",
                        quoted(question),
                        case_hint(question, &known)
                    ),
                    suggestions(question, known),
                )
            }
            StatsError::UnknownState { question, state } => {
                let known = self.dataset.locations_for(question);
                (
                    format!(
                        "unknown state {} for this question{}",
                        quoted(state),
                        case_hint(state, &known)
                    ),
                    suggestions(state, known),
                )
            }
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

    /// The job's outcome, after waiting for a running job up to `?wait=`
    /// seconds (default [`RESULT_WAIT`]). The wait happens on this
    /// connection's thread, on the job table's Condvar: no worker is held.
    fn get_results(&self, id: &str, query: Option<&str>) -> Result<Response, ApiError> {
        let wait = parse_wait(query)?.unwrap_or(RESULT_WAIT);
        let id = JobId::parse(id).ok_or(ApiError::InvalidJobId)?;
        crate::scoreboard::set_job(crate::scoreboard::ThreadState::WaitingForJob, id.0);
        let outcome = self.jobs.outcome_within(id, wait);
        crate::scoreboard::set(crate::scoreboard::ThreadState::Handling);
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

/// `{"status": "done", "data": [items]}` in the house style; each item is
/// already JSON.
fn done_list(items: &[String]) -> Response {
    Response::json(
        200,
        format!(r#"{{"status": "done", "data": [{}]}}"#, items.join(", ")),
    )
}

/// What every non-computing path does, for the `GET /api` index, in the
/// order the index lists them (the computing endpoints come first).
const OTHER_ENDPOINTS: [(&str, &str); 8] = [
    (
        "/api/get_results/<job_id>",
        "the job's status and result; ?wait=SECONDS (0-30) waits for a running job",
    ),
    ("/api/jobs", "every job and its status, in id order"),
    ("/api/num_jobs", "how many jobs are queued or running"),
    (
        "/api/graceful_shutdown",
        "stop accepting jobs, finish the queued ones",
    ),
    (
        "/api/questions",
        "the questions, with their best/worst direction",
    ),
    ("/api/states", "the states and territories"),
    ("/api", "this index"),
    ("/", "the chart page (?question=Q preselects a question)"),
];

/// What a computing endpoint's job answers, for the `GET /api` index.
fn about(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::StatesMean => "the mean of every state, ascending",
        Endpoint::StateMean => "the mean of one state",
        Endpoint::Best5 => "the 5 best states, best first",
        Endpoint::Worst5 => "the 5 worst states, worst first",
        Endpoint::GlobalMean => "the mean over all rows",
        Endpoint::DiffFromMean => "global mean minus each state's mean",
        Endpoint::StateDiffFromMean => "global mean minus one state's mean",
        Endpoint::MeanByCategory => "the mean of every (state, category, stratification)",
        Endpoint::StateMeanByCategory => {
            "the mean of every (category, stratification) of one state"
        }
    }
}

/// `GET /api`: every endpoint, its methods (as `Allow` lists them, read from
/// the router so the two cannot differ), its body fields and what it does.
fn api_index() -> Response {
    let mut items = Vec::with_capacity(Endpoint::ALL.len() + OTHER_ENDPOINTS.len());
    for endpoint in Endpoint::ALL {
        let body = if endpoint.needs_state() {
            r#"["question", "state"]"#
        } else {
            r#"["question"]"#
        };
        items.push(index_entry(
            &format!("/api/{}", endpoint.name()),
            Route::Compute(endpoint).allow(),
            body,
            about(endpoint),
        ));
    }
    for (path, what) in OTHER_ENDPOINTS {
        let routed = route(path.replace("<job_id>", "1").as_str()).map(Route::allow);
        // Every path of the table is routed (a unit test checks it).
        let allow = routed.unwrap_or("GET, HEAD");
        items.push(index_entry(path, allow, "[]", what));
    }
    done_list(&items)
}

fn index_entry(path: &str, allow: &str, body: &str, about: &str) -> String {
    format!(
        r#"{{"path": {}, "method": {}, "body": {body}, "about": {}}}"#,
        json_string(path),
        json_string(allow),
        json_string(about)
    )
}

/// The query string of a request target: after the first `?`, before any `#`.
fn query_string(target: &str) -> Option<&str> {
    let rest = &target[target.find('?')? + 1..];
    Some(&rest[..rest.find('#').unwrap_or(rest.len())])
}

/// Reads `get_results`' query: only `wait=SECONDS`, a decimal number from 0
/// to 30 (`MAX_RESULT_WAIT`), fractions allowed. An unknown or repeated
/// parameter is a 400 rather than ignored, so that a typo (`?wiat=5`) does
/// not silently turn a long wait into a short one.
///
/// # Errors
/// A 400 naming the accepted parameter and range.
fn parse_wait(query: Option<&str>) -> Result<Option<Duration>, ApiError> {
    let max = MAX_RESULT_WAIT.as_secs();
    let mut wait = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if name != "wait" {
            return Err(ApiError::bad_request(format!(
                "unknown query parameter {}: get_results takes only ?wait=SECONDS (0 to {max})",
                quoted(name)
            )));
        }
        if wait.is_some() {
            return Err(ApiError::bad_request("wait is given twice"));
        }
        let digits = value.bytes().filter(u8::is_ascii_digit).count();
        let dots = value.bytes().filter(|&b| b == b'.').count();
        let seconds = (digits > 0 && digits + dots == value.len() && dots <= 1)
            .then(|| value.parse::<f64>().ok())
            .flatten()
            .filter(|s| *s <= MAX_RESULT_WAIT.as_secs_f64());
        let Some(seconds) = seconds else {
            return Err(ApiError::bad_request(format!(
                "wait must be a number of seconds from 0 to {max} (e.g. ?wait=5 or ?wait=0.5), not {}",
                quoted(value)
            )));
        };
        wait = Some(Duration::from_secs_f64(seconds));
    }
    Ok(wait)
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

impl Handler for Api {
    fn handle(&self, request: &Request) -> Response {
        self.dispatch(request)
            .unwrap_or_else(ApiError::into_response)
    }
}

/// Why a body is not what a computing endpoint takes; [`Api`] turns it
/// into a 400 that shows what to send instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyProblem {
    /// No body at all (or only whitespace).
    Missing,
    /// Not JSON; serde_json's description.
    NotJson(String),
    /// JSON, but not an object.
    NotObject,
    /// Nested deeper than [`MAX_JSON_DEPTH`]: refused before parsing, so
    /// that no body can exhaust a connection thread's stack.
    TooDeep,
    MissingField(&'static str),
    NotString(&'static str),
}

/// Reads `{"question": Q}` (and `"state": S` where the endpoint needs it)
/// from a body, whatever its Content-Type says. Other members are ignored.
///
/// # Errors
/// A body that is empty or not a JSON object, or a missing or non-string field.
pub fn parse_query(endpoint: Endpoint, body: &[u8]) -> Result<Query, BodyProblem> {
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

/// `text` cut after [`MAX_ECHOED_CHARS`] characters, for echoing a path or
/// a method (which the parser has checked are printable) in a message.
fn shortened(text: &str) -> String {
    match text.char_indices().nth(MAX_ECHOED_CHARS) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_owned(),
    }
}

/// `text` as one shell word: bare when it is only safe characters, else in
/// single quotes (a `'` inside written `'\''`).
fn shell_word(text: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c);
    if !text.is_empty() && text.chars().all(safe) {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// `" (names are case-sensitive)"` when `wanted` is one of `known` but for
/// letter case, else `""`: the suggestion then carries the right spelling.
fn case_hint(wanted: &str, known: &[&str]) -> &'static str {
    if known
        .iter()
        .any(|name| name.to_lowercase() == wanted.to_lowercase())
    {
        " (names are case-sensitive)"
    } else {
        ""
    }
}

/// The "did you mean" list for an unknown name: the [`closest`] names by
/// spelling, then the names that [`contain_every_word`] of it, without
/// repeats, at most `MAX_SUGGESTIONS`. Suggestions only: the request is
/// still refused, never answered for a guessed name.
pub fn suggestions(wanted: &str, known: Vec<&str>) -> Vec<String> {
    let mut found = closest(wanted, known.clone());
    for name in contain_every_word(wanted, known) {
        if found.len() == MAX_SUGGESTIONS {
            break;
        }
        if !found.contains(&name) {
            found.push(name);
        }
    }
    found
}

/// The names of `known` (in their order) that contain every word of
/// `wanted`, ignoring letter case: "obesity" finds the obesity question.
/// Words are runs of letters and digits; a `wanted` with no word, or longer
/// than `MAX_WORDS_QUERY_CHARS`, finds nothing.
pub fn contain_every_word(wanted: &str, known: Vec<&str>) -> Vec<String> {
    if wanted.len() > MAX_WORDS_QUERY_CHARS {
        return Vec::new();
    }
    let wanted = wanted.to_lowercase();
    let words: Vec<&str> = wanted
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() {
        return Vec::new();
    }
    known
        .into_iter()
        .filter(|name| {
            let name = name.to_lowercase();
            words.iter().all(|word| name.contains(word))
        })
        .map(str::to_owned)
        .collect()
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

    /// SHA-256 (FIPS 180-4), for checking the page's CSP hashes without a
    /// dependency.
    fn sha256(data: &[u8]) -> [u8; 32] {
        const K: [u32; 64] = [
            0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
            0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
            0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
            0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
            0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
            0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
            0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
            0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
            0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
            0xc67178f2,
        ];
        let mut h: [u32; 8] = [
            0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
            0x5be0cd19,
        ];
        let mut msg = data.to_vec();
        msg.push(0x80);
        while msg.len() % 64 != 56 {
            msg.push(0);
        }
        msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
        for block in msg.chunks(64) {
            let mut w = [0u32; 64];
            for (i, word) in block.chunks(4).enumerate() {
                w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
            }
            for i in 16..64 {
                let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
                let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
                w[i] = w[i - 16]
                    .wrapping_add(s0)
                    .wrapping_add(w[i - 7])
                    .wrapping_add(s1);
            }
            let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
            for i in 0..64 {
                let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
                let ch = (e & f) ^ (!e & g);
                let t1 = hh
                    .wrapping_add(s1)
                    .wrapping_add(ch)
                    .wrapping_add(K[i])
                    .wrapping_add(w[i]);
                let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
                let maj = (a & b) ^ (a & c) ^ (b & c);
                let t2 = s0.wrapping_add(maj);
                hh = g;
                g = f;
                f = e;
                e = d.wrapping_add(t1);
                d = c;
                c = b;
                b = a;
                a = t1.wrapping_add(t2);
            }
            for (x, y) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
                *x = x.wrapping_add(y);
            }
        }
        let mut out = [0u8; 32];
        for (chunk, word) in out.chunks_mut(4).zip(h) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        out
    }

    fn base64(data: &[u8]) -> String {
        const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in data.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
            for i in 0..4 {
                out.push(if i <= chunk.len() {
                    char::from(ABC[(n >> (18 - 6 * i)) as usize & 63])
                } else {
                    '='
                });
            }
        }
        out
    }

    #[test]
    fn sha256_and_base64_match_known_answers() {
        assert_eq!(
            base64(&sha256(b"abc")),
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
        );
        assert_eq!(
            base64(&sha256(b"")),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }

    /// The page's one inline `<tag>` element's text.
    fn inline(tag: &str) -> &'static str {
        let open = format!("<{tag}>");
        let close = format!("</{tag}>");
        assert_eq!(INDEX_HTML.matches(&open).count(), 1, "one {open}");
        let start = INDEX_HTML.find(&open).expect("counted above") + open.len();
        let end = INDEX_HTML[start..].find(&close).expect("closed") + start;
        &INDEX_HTML[start..end]
    }

    #[test]
    fn index_csp_hashes_match_the_page() {
        for (tag, directive) in [("script", "script-src"), ("style", "style-src")] {
            let hash = base64(&sha256(inline(tag).as_bytes()));
            let wanted = format!("{directive} 'sha256-{hash}'");
            assert!(
                INDEX_CSP.split("; ").any(|d| d.trim() == wanted),
                "INDEX_CSP must say `{wanted}` (the page's <{tag}> changed)"
            );
        }
        // Nothing but the page itself: no host, scheme or wildcard sources.
        for word in INDEX_CSP.split_whitespace() {
            assert!(
                !word.contains("http") && !word.contains('*') && word != "data:",
                "{word}"
            );
        }
        assert!(
            !INDEX_HTML.contains(" style=\""),
            "inline style attributes are blocked"
        );
        assert!(
            !INDEX_HTML.contains("innerHTML"),
            "text is set with textContent"
        );
    }

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
        assert_eq!(route("/metrics"), Some(Route::Metrics));
        assert_eq!(route("/api/status"), Some(Route::Status));
        assert_eq!(route("/status"), Some(Route::StatusPage));
        assert_eq!(Route::Metrics.allow(), "GET, HEAD");
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
        let r = ApiError::MethodNotAllowed {
            allow: "POST",
            method: "GET".into(),
            path: "/api/best5".into(),
        }
        .into_response();
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

    #[test]
    fn every_index_path_is_routed() {
        for (path, _) in OTHER_ENDPOINTS {
            assert!(route(&path.replace("<job_id>", "1")).is_some(), "{path}");
        }
        let index: Value = serde_json::from_slice(&api_index().body).unwrap();
        let entries = index["data"].as_array().unwrap();
        assert_eq!(entries.len(), 17);
        assert_eq!(entries[1]["path"], "/api/state_mean");
        assert_eq!(entries[1]["method"], "POST");
        assert_eq!(entries[1]["body"], serde_json::json!(["question", "state"]));
        assert_eq!(entries[11]["path"], "/api/num_jobs");
        assert_eq!(entries[11]["method"], "GET, HEAD");
        assert_eq!(entries[12]["method"], "GET, POST");
    }

    #[test]
    fn wait_is_the_only_query_of_get_results() {
        let ms = |n| Ok(Some(Duration::from_millis(n)));
        assert_eq!(query_string("/a?wait=1#x"), Some("wait=1"));
        assert_eq!(query_string("/a#x?y"), Some("y"));
        assert_eq!(query_string("/a"), None);
        assert_eq!(parse_wait(None), Ok(None));
        assert_eq!(parse_wait(Some("")), Ok(None));
        assert_eq!(parse_wait(Some("wait=0")), ms(0));
        assert_eq!(parse_wait(Some("wait=0.25")), ms(250));
        assert_eq!(parse_wait(Some("wait=.5")), ms(500));
        assert_eq!(parse_wait(Some("wait=30")), ms(30_000));
        assert_eq!(parse_wait(Some("wait=30.0")), ms(30_000));
        for bad in [
            "wait=30.01",
            "wait=31",
            "wait=-1",
            "wait=1e1",
            "wait=inf",
            "wait=NaN",
            "wait=",
            "wait",
            "wait=.",
            "wait=1.2.3",
            "wait=+1",
            "wait=1&wait=2",
            "wiat=1",
            "wait=1&x=2",
        ] {
            let Err(ApiError::BadRequest { reason, .. }) = parse_wait(Some(bad)) else {
                panic!("{bad} accepted");
            };
            assert!(
                reason.contains("0 to 30") || reason.contains("twice"),
                "{reason}"
            );
        }
    }

    #[test]
    fn shell_words_survive_the_shell() {
        assert_eq!(shell_word("localhost:5000"), "localhost:5000");
        assert_eq!(shell_word(r#"{"q": "it's"}"#), r#"'{"q": "it'\''s"}'"#);
        assert_eq!(shell_word(""), "''");
    }

    #[test]
    fn short_names_and_wrong_case_are_suggested() {
        let questions = vec![
            "Percent of adults who have obesity",
            "Percent of adults who report consuming fruit less than one time daily",
            "Percent of adults who report consuming vegetables less than one time daily",
        ];
        assert_eq!(
            suggestions("obesity", questions.clone()),
            vec!["Percent of adults who have obesity"]
        );
        assert_eq!(
            suggestions("FRUIT daily", questions.clone()),
            vec![questions[1]]
        );
        assert_eq!(suggestions("less than one", questions.clone()).len(), 2);
        assert!(suggestions("fruit vegetables", questions.clone()).is_empty());
        assert!(suggestions("  ", questions.clone()).is_empty());
        let long = "obesity ".repeat(30);
        assert!(contain_every_word(&long, questions).is_empty());
        let states = vec!["Iowa", "Ohio", "Oregon"];
        assert_eq!(suggestions("ohio", states.clone()), vec!["Ohio"]);
        assert_eq!(case_hint("ohio", &states), " (names are case-sensitive)");
        assert_eq!(case_hint("Ohoi", &states), "");
    }
}
