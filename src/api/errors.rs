//! Everything a request can go wrong with, and — in one place,
//! [`ApiError::into_response`] — the status and body each error becomes.
//!
//! A client's mistake is answered with what to send instead: a body
//! problem with a `curl` line that works ([`ApiError::from_body_problem`]),
//! an unknown name with "did you mean" suggestions
//! ([`ApiError::from_stats_error`]).

use super::json_string;
use super::suggest::{case_hint, suggestions};
use crate::dataset::Dataset;
use crate::http::Response;
use crate::jobs::Refused;
use crate::lifecycle::Requested;
use crate::limits::MAX_JSON_DEPTH;
use crate::stats::{self, Endpoint, StatsError};

/// How much of an unknown name an error message repeats.
const MAX_ECHOED_CHARS: usize = 60;

/// The host an example `curl` line names when the request had no `Host`.
const DEFAULT_HOST: &str = "localhost:5000";

/// Everything a request can go wrong with, before or instead of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// The body or the query string is not what the endpoint takes (400).
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
    /// A `Host` that names this server by a name it does not answer to
    /// (421); the value as sent.
    MisdirectedHost { host: String },
    /// A request that changes state (`action`), sent by a page of another
    /// site (403); `why` says how the request shows it.
    CrossSite { action: &'static str, why: String },
    /// `graceful_shutdown` from a peer that is not on this machine (403).
    RemoteShutdown { peer: Option<std::net::IpAddr> },
    /// A computing request after shutdown began (503); the reason says why
    /// and what to do.
    ShuttingDown(Requested),
    /// A computing request while the job queue is full (503, `Retry-After`).
    QueueFull,
    /// A computing request while job ids cannot be reserved on disk (503,
    /// `Retry-After`).
    IdsUnavailable,
    /// A computing request while results cannot be saved (503,
    /// `Retry-After`); the cause.
    Degraded(std::sync::Arc<str>),
    /// A computing request once every job id is used (503, no retry).
    IdsExhausted,
}

/// Why a body is not what a computing endpoint takes;
/// [`ApiError::from_body_problem`] turns it into a 400 that shows what to
/// send instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyProblem {
    /// No body at all (or only whitespace).
    Missing,
    /// Not JSON; `serde_json`'s description.
    NotJson(String),
    /// JSON, but not an object.
    NotObject,
    /// Nested deeper than [`MAX_JSON_DEPTH`]: refused before parsing, so
    /// that no body can exhaust a connection thread's stack (tests
    /// `deeply_nested_bodies_are_rejected_not_overflowed` and, in a debug
    /// build, `deeply_nested_bodies_are_a_400_and_the_server_keeps_serving`).
    TooDeep,
    /// The object lacks this member.
    MissingField(&'static str),
    /// This member is not a string.
    NotString(&'static str),
}

impl ApiError {
    /// A 400 with `reason` and no suggestions.
    pub(super) fn bad_request(reason: impl Into<String>) -> ApiError {
        ApiError::BadRequest {
            reason: reason.into(),
            did_you_mean: Vec::new(),
        }
    }

    /// The 503 for a job the table refused; `cause` is asked only when it
    /// refused because shutdown began.
    pub(super) fn from_refused(refused: Refused, cause: impl FnOnce() -> Requested) -> ApiError {
        match refused {
            Refused::ShuttingDown => ApiError::ShuttingDown(cause()),
            Refused::QueueFull => ApiError::QueueFull,
            Refused::IdsUnavailable => ApiError::IdsUnavailable,
            Refused::IdsExhausted => ApiError::IdsExhausted,
            Refused::Degraded(cause) => ApiError::Degraded(cause),
        }
    }

    /// The 400 for a body that is not what `endpoint` takes: it says what
    /// the endpoint takes and shows a `curl` line that works on the server
    /// the client reached (`host`, its `Host` header).
    pub(super) fn from_body_problem(
        dataset: &Dataset,
        endpoint: Endpoint,
        host: Option<&str>,
        problem: BodyProblem,
    ) -> ApiError {
        let path = format!("/api/{}", endpoint.name());
        let fields = if endpoint.needs_state() {
            r#""question" and "state" (strings)"#
        } else {
            r#""question" (a string)"#
        };
        let example = curl_example(dataset, endpoint, host);
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

    /// The 400 for a question or state the dataset does not have, with the
    /// names the client may have meant.
    pub(super) fn from_stats_error(dataset: &Dataset, error: &StatsError) -> ApiError {
        let (reason, did_you_mean) = match error {
            StatsError::UnknownQuestion { question } => {
                let known = dataset.questions();
                let reason = format!(
                    "unknown question: {}{}; GET /api/questions lists them",
                    quoted(question),
                    case_hint(question, &known)
                );
                (reason, suggestions(question, &known))
            }
            StatsError::UnknownState { question, state } => {
                let known = dataset.locations_for(question);
                let reason = format!(
                    "unknown state {} for this question{}",
                    quoted(state),
                    case_hint(state, &known)
                );
                (reason, suggestions(state, &known))
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

    /// The one place where API errors become statuses and bodies; every body
    /// is `{"status": "error", "reason": ...}` (see [`Response::error`]).
    #[must_use]
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
            ApiError::MisdirectedHost { host } => Response::error(
                421,
                &format!(
                    "misdirected request: this server does not answer to the name in \
                     Host: {}; it answers to its IP addresses, localhost, and names given \
                     with --allowed-host NAME (a guard against DNS rebinding)",
                    shortened(&host)
                ),
            ),
            ApiError::CrossSite { action, why } => Response::error(
                403,
                &format!(
                    "forbidden: {why}, and pages of other sites may not {action}; start \
                     the server with --allowed-origin ORIGIN to let the pages of ORIGIN \
                     (e.g. http://localhost:3000) do so"
                ),
            ),
            ApiError::RemoteShutdown { peer } => Response::error(
                403,
                &format!(
                    "forbidden: graceful_shutdown from {}, which is not this machine; \
                     start the server with --allow-remote-shutdown to allow it",
                    peer.map_or_else(|| "an unknown address".to_owned(), |ip| ip.to_string())
                ),
            ),
            // The reason starts with "shutting down", which clients match.
            ApiError::ShuttingDown(Requested::Drain) => Response::error(
                503,
                "shutting down: graceful_shutdown was requested; restart the server to submit jobs",
            ),
            ApiError::ShuttingDown(Requested::Exit) => Response::error(
                503,
                "shutting down: the server is stopping (Ctrl-C or SIGTERM); restart it to submit jobs",
            ),
            ApiError::QueueFull => Response::error(503, &Refused::QueueFull.to_string())
                .with_header("Retry-After", "1"),
            ApiError::IdsUnavailable => Response::error(503, &Refused::IdsUnavailable.to_string())
                .with_header("Retry-After", "1"),
            ApiError::IdsExhausted => Response::error(503, &Refused::IdsExhausted.to_string()),
            ApiError::Degraded(cause) => {
                Response::error(503, &Refused::Degraded(cause).to_string())
                    .with_header("Retry-After", "1")
            }
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

/// A `curl` line that submits a valid request to `endpoint` on `host` (or
/// [`DEFAULT_HOST`]), with a real question (one with a best/worst direction
/// when there is one) and state.
fn curl_example(dataset: &Dataset, endpoint: Endpoint, host: Option<&str>) -> String {
    let host = host.filter(|h| !h.is_empty()).unwrap_or(DEFAULT_HOST);
    let questions = dataset.questions();
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
        let locations = dataset.locations_for(question);
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

/// `text` as a quoted JSON-style string for an error message, cut after
/// [`MAX_ECHOED_CHARS`] characters: a client's megabyte-long question is
/// not worth echoing back (test `a_huge_unknown_name_is_cheap_and_not_echoed`).
pub(super) fn quoted(text: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

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
    fn shell_words_survive_the_shell() {
        assert_eq!(shell_word("localhost:5000"), "localhost:5000");
        assert_eq!(shell_word(r#"{"q": "it's"}"#), r#"'{"q": "it'\''s"}'"#);
        assert_eq!(shell_word(""), "''");
    }
}
