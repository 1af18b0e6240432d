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
//! Values owned by other modules (pending jobs, the log queue) come in a
//! [`Snapshot`] that the API fills when it renders.

//!
//! Files: `histogram.rs` (the duration histogram), `render.rs` (the text
//! format), and here the registry and the functions that update it.

mod histogram;
mod render;

pub use render::render;

use crate::http::RequestRecord;
use crate::jobs::Refused;
use crate::scoreboard::{self, ThreadState};
use crate::stats::Endpoint;
use histogram::Histogram;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

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

/// The `route` label index of `path`.
fn route_index(path: &str) -> usize {
    let path = if path.starts_with("/api/get_results/") {
        "/api/get_results"
    } else {
        path
    };
    ROUTES
        .iter()
        .position(|r| *r == path)
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
fn record_request(record: &RequestRecord<'_>) {
    let route = route_index(record.path);
    let class = usize::from(record.status / 100).clamp(1, 5) - 1;
    REGISTRY.requests[route][class].fetch_add(1, Ordering::Relaxed);
    REGISTRY.request_duration[route].observe(record.duration);
}

/// `on_request`, also counting every request it is told about (the server
/// wraps its request-log callback in this).
pub fn counting(on_request: crate::server::OnRequest) -> crate::server::OnRequest {
    std::sync::Arc::new(move |record: &RequestRecord<'_>| {
        record_request(record);
        on_request(record);
    })
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

/// Counts a refused submission; returns `refused` for the caller's `map_err`.
#[must_use]
pub fn job_refused(refused: Refused) -> Refused {
    match refused {
        Refused::QueueFull => &REGISTRY.refused_queue_full,
        Refused::ShuttingDown => &REGISTRY.refused_shutting_down,
        // No id can be handed out either way: one counter for both.
        Refused::IdsUnavailable | Refused::IdsExhausted => &REGISTRY.refused_ids_unavailable,
        Refused::Degraded(_) => &REGISTRY.refused_degraded,
    }
    .fetch_add(1, Ordering::Relaxed);
    refused
}

/// On a worker, as job `id` starts: the worker's slot says `running job_id_N`.
pub fn job_started(id: u64) {
    scoreboard::set_job(ThreadState::Running, id);
}

/// On a worker, inside the job's work: records the job's endpoint on the
/// worker's slot and how long the job waited in the queue since `submitted`.
pub fn job_endpoint(endpoint: Endpoint, submitted: Instant) {
    let code = endpoint_code(endpoint);
    scoreboard::set_endpoint(code);
    REGISTRY.job_queue_wait[usize::from(code - 1)].observe(submitted.elapsed());
}

/// On a worker, once the job's outcome is known (and before it is visible to
/// clients, so a client that sees `done` also sees it counted: test
/// `counters_count_exactly_the_requests_jobs_and_connections_made`): counts it
/// done or error under its endpoint, records its run time, and sets the
/// worker back to idle. A job whose work never named its endpoint (jobs
/// submitted without the API) only frees the slot.
pub fn job_finished(done: bool) {
    if let Some(me) = scoreboard::current() {
        if let Some(index) = usize::from(me.endpoint).checked_sub(1) {
            if index < ENDPOINTS {
                let outcome = if done {
                    &REGISTRY.jobs_done
                } else {
                    &REGISTRY.jobs_error
                };
                outcome[index].fetch_add(1, Ordering::Relaxed);
                REGISTRY.job_run[index].observe(me.for_);
            }
        }
    }
    scoreboard::set(ThreadState::Idle);
}

/// Values owned by other modules, read by the API when it renders.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Jobs queued or running ([`crate::jobs::Jobs::pending`]).
    pub pending_jobs: usize,
    /// False once shutdown has begun.
    pub accepting: bool,
    /// Lines waiting for the log writer.
    pub log_queue_depth: usize,
    /// Lines the logger dropped since start.
    pub log_lines_dropped: u64,
    /// Why results cannot be saved, while the server is degraded
    /// ([`crate::jobs::Jobs::degraded_cause`]).
    pub degraded: Option<std::sync::Arc<str>>,
}

impl Snapshot {
    /// `serving`, `draining` (no new jobs; some still pending) or `drained`.
    #[must_use]
    pub fn shutdown_phase(&self) -> &'static str {
        match (self.accepting, self.pending_jobs) {
            (true, _) => "serving",
            (false, 0) => "drained",
            (false, _) => "draining",
        }
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
        assert_eq!(ROUTES[route_index("/no/such/path")], "other");
        assert_eq!(ROUTES[route_index("-")], "other");
        for endpoint in Endpoint::ALL {
            let path = format!("/api/{}", endpoint.name());
            assert_eq!(ROUTES[route_index(&path)], path);
        }
    }

    #[test]
    fn shutdown_phases() {
        let mut s = Snapshot {
            accepting: true,
            pending_jobs: 3,
            ..Snapshot::default()
        };
        assert_eq!(s.shutdown_phase(), "serving");
        s.accepting = false;
        assert_eq!(s.shutdown_phase(), "draining");
        s.pending_jobs = 0;
        assert_eq!(s.shutdown_phase(), "drained");
    }
}
