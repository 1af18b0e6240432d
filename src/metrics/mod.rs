//! Counters, gauges and histograms, rendered in the Prometheus text
//! exposition format 0.0.4 at `GET /metrics`.
//!
//! Cheap enough to update on every request: every label set is fixed in
//! advance (routes and endpoints are fixed lists), so each series is a
//! static atomic and an update is at most three `fetch_add`s (a counter, and
//! a histogram's bucket and sum) — no lock, no map lookup, no allocation. The registry is process-wide (a `static`), like
//! the Prometheus clients' default registry: one process runs one server.
//!
//! Gauges about threads (workers busy or idle, connections by state) are
//! not kept here: they are counted from the [`scoreboard`] at scrape time.
//! Jobs queued, running and saving come from the scoreboard's one-word
//! counts; values owned by other modules (the log queue) come in a
//! [`Snapshot`](crate::scoreboard::Snapshot) that the API fills when it
//! renders. Nothing here imports the job path: it is told about jobs
//! through `job_events`.

//!
//! Files: `histogram.rs` (the duration histogram), `render.rs` (the text
//! format), and here the registry and the functions that update it.

mod histogram;
mod render;

pub use render::render;

use crate::http::RequestRecord;
use crate::scoreboard;
use crate::stats::Endpoint;
use histogram::Histogram;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Every metric name starts with this.
const PREFIX: &str = "lss";

/// The `Content-Type` of `/metrics`.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The `route` label of every request, in a fixed order; a path that is
/// none of these (a 404, or a request line that could not be parsed) is
/// `other`, so a client cannot create series.
const ROUTES: [&str; 24] = [
    "/",
    "/api",
    "/api/states_mean",
    "/api/state_mean",
    "/api/best5",
    "/api/worst5",
    "/api/global_mean",
    "/api/diff_from_mean",
    "/api/state_diff_from_mean",
    "/api/mean_by_category",
    "/api/state_mean_by_category",
    "/api/get_results",
    "/api/jobs",
    "/api/num_jobs",
    "/api/graceful_shutdown",
    "/api/questions",
    "/api/states",
    "/api/status",
    "/metrics",
    "/status",
    "/favicon.ico",
    "/index.html",
    "/api/",
    "other",
];

const OTHER_ROUTE: usize = ROUTES.len() - 1;

/// The `route` label index of `path`. A path with one trailing slash is
/// counted under its route without it (the router ignores that slash),
/// unless it has its own label (`/api/`).
fn route_index(path: &str) -> usize {
    let path = if path.starts_with("/api/get_results/") {
        "/api/get_results"
    } else {
        path
    };
    let position = |path: &str| ROUTES.iter().position(|r| *r == path);
    position(path)
        .or_else(|| position(path.strip_suffix('/')?))
        .unwrap_or(OTHER_ROUTE)
}

const ENDPOINTS: usize = Endpoint::ALL.len();

/// Every counter and histogram of the process.
struct Registry {
    /// `[route][status class]`: classes 1xx..5xx at indexes 0..5.
    requests: [[AtomicU64; 5]; ROUTES.len()],
    request_duration: [Histogram; ROUTES.len()],
    jobs_submitted: [AtomicU64; ENDPOINTS],
    jobs_done: [AtomicU64; ENDPOINTS],
    jobs_error: [AtomicU64; ENDPOINTS],
    job_queue_wait: [Histogram; ENDPOINTS],
    job_run: [Histogram; ENDPOINTS],
    refused_queue_full: AtomicU64,
    refused_shutting_down: AtomicU64,
    refused_ids_unavailable: AtomicU64,
    refused_degraded: AtomicU64,
    /// Fed by the result store's owner: one per result file not written.
    result_write_failures: AtomicU64,
    /// Connections served (under the connection cap).
    connections_accepted: AtomicU64,
    /// Connections answered `503` because the cap was reached.
    connections_refused: AtomicU64,
}

impl Registry {
    const fn new() -> Registry {
        Registry {
            requests: [const { [const { AtomicU64::new(0) }; 5] }; ROUTES.len()],
            request_duration: [const { Histogram::new() }; ROUTES.len()],
            jobs_submitted: [const { AtomicU64::new(0) }; ENDPOINTS],
            jobs_done: [const { AtomicU64::new(0) }; ENDPOINTS],
            jobs_error: [const { AtomicU64::new(0) }; ENDPOINTS],
            job_queue_wait: [const { Histogram::new() }; ENDPOINTS],
            job_run: [const { Histogram::new() }; ENDPOINTS],
            refused_queue_full: AtomicU64::new(0),
            refused_shutting_down: AtomicU64::new(0),
            refused_ids_unavailable: AtomicU64::new(0),
            refused_degraded: AtomicU64::new(0),
            result_write_failures: AtomicU64::new(0),
            connections_accepted: AtomicU64::new(0),
            connections_refused: AtomicU64::new(0),
        }
    }
}

static REGISTRY: Registry = Registry::new();

/// Counts one answered request (the server calls this for every request it
/// reports to its request log).
pub fn record_request(record: &RequestRecord<'_>) {
    let route = route_index(record.path);
    let class = usize::from(record.status / 100).clamp(1, 5) - 1;
    REGISTRY.requests[route][class].fetch_add(1, Ordering::Relaxed);
    REGISTRY.request_duration[route].observe(record.duration);
}

/// Counts a connection accepted under the connection cap.
pub fn connection_accepted() {
    REGISTRY
        .connections_accepted
        .fetch_add(1, Ordering::Relaxed);
}

/// Counts a connection refused (`503`) at the connection cap.
pub fn connection_refused() {
    REGISTRY.connections_refused.fetch_add(1, Ordering::Relaxed);
}

/// Counts a job whose result could not be saved (it ends `error`).
pub fn result_write_failed() {
    REGISTRY
        .result_write_failures
        .fetch_add(1, Ordering::Relaxed);
}

/// The slot code of `endpoint`: its index in [`Endpoint::ALL`] plus one
/// (0 means "no endpoint" on the scoreboard).
fn endpoint_code(endpoint: Endpoint) -> u8 {
    let index = Endpoint::ALL
        .iter()
        .position(|e| *e == endpoint)
        .unwrap_or(0);
    // ENDPOINTS is 9: the index fits a u8.
    (index + 1) as u8
}

/// Counts a job accepted for `endpoint`.
pub fn job_submitted(endpoint: Endpoint) {
    REGISTRY.jobs_submitted[usize::from(endpoint_code(endpoint) - 1)]
        .fetch_add(1, Ordering::Relaxed);
}

/// Why a submission was refused, as `lss_jobs_refused_total` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    QueueFull,
    ShuttingDown,
    /// No id can be handed out (the reservation cannot be written, or every
    /// id is used).
    NoIds,
    /// Results cannot be saved (the server is degraded).
    Degraded,
}

/// Counts a refused submission.
pub fn job_refused(refusal: Refusal) {
    match refusal {
        Refusal::QueueFull => &REGISTRY.refused_queue_full,
        Refusal::ShuttingDown => &REGISTRY.refused_shutting_down,
        Refusal::NoIds => &REGISTRY.refused_ids_unavailable,
        Refusal::Degraded => &REGISTRY.refused_degraded,
    }
    .fetch_add(1, Ordering::Relaxed);
}

/// On a worker, inside the job's work: records the job's endpoint on the
/// worker's slot and how long the job waited in the queue since `submitted`.
pub fn job_endpoint(endpoint: Endpoint, submitted: Instant) {
    let code = endpoint_code(endpoint);
    scoreboard::set_endpoint(code);
    REGISTRY.job_queue_wait[usize::from(code - 1)].observe(submitted.elapsed());
}

/// On a worker, once its job is computed and its file written (see
/// `job_events::saving`): counts it done or error under the
/// endpoint its work named on the worker's slot, and records its run time
/// `run` (computing and writing). A job whose work never named its
/// endpoint (jobs submitted without the API) is not counted.
pub fn job_ran(done: bool, run: Duration) {
    let Some(me) = scoreboard::current() else {
        return;
    };
    let Some(index) = usize::from(me.endpoint).checked_sub(1) else {
        return;
    };
    if index < ENDPOINTS {
        let outcome = if done {
            &REGISTRY.jobs_done
        } else {
            &REGISTRY.jobs_error
        };
        outcome[index].fetch_add(1, Ordering::Relaxed);
        REGISTRY.job_run[index].observe(run);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_a_fixed_set() {
        assert_eq!(ROUTES[route_index("/api/best5")], "/api/best5");
        assert_eq!(
            ROUTES[route_index("/api/get_results/job_id_7")],
            "/api/get_results"
        );
        assert_eq!(
            ROUTES[route_index("/api/get_results/../../etc")],
            "/api/get_results"
        );
        assert_eq!(ROUTES[route_index("/metrics")], "/metrics");
        assert_eq!(ROUTES[route_index("/api/best5/")], "/api/best5");
        assert_eq!(ROUTES[route_index("/api/")], "/api/");
        assert_eq!(ROUTES[route_index("/api/best5//")], "other");
        assert_eq!(ROUTES[route_index("/no/such/path")], "other");
        assert_eq!(ROUTES[route_index("-")], "other");
        for endpoint in Endpoint::ALL {
            let path = format!("/api/{}", endpoint.name());
            assert_eq!(ROUTES[route_index(&path)], path);
        }
    }
}
