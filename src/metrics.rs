//! Counters, gauges and histograms, rendered in the Prometheus text
//! exposition format 0.0.4 at `GET /metrics`.
//!
//! Cheap enough to update on every request: every label set is fixed in
//! advance (routes and endpoints are fixed lists), so each series is a
//! static atomic and an update is one or two `fetch_add`s — no lock, no map
//! lookup, no allocation. The registry is process-wide (a `static`), like
//! the Prometheus clients' default registry: one process runs one server.
//!
//! Gauges about threads (workers busy or idle, connections by state) are
//! not kept here: they are counted from the [`scoreboard`] at scrape time.
//! Values owned by other modules (pending jobs, the log queue) come in a
//! [`Snapshot`] that the API fills when it renders.

use crate::http::RequestRecord;
use crate::jobs::Refused;
use crate::scoreboard::{self, Role, ThreadState};
use crate::stats::Endpoint;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Every metric name starts with this.
pub const PREFIX: &str = "lss";

/// The `Content-Type` of `/metrics`.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The `route` label of every request, in a fixed order; a path that is
/// none of these (a 404, or a request line that could not be parsed) is
/// `other`, so a client cannot create series.
pub const ROUTES: [&str; 24] = [
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
pub fn route_index(path: &str) -> usize {
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

/// Upper bounds of the duration buckets, in seconds (50 µs to 5 s), as
/// written in the `le` label; a last, implicit bucket is `+Inf`.
const BUCKETS: [(&str, u64); 16] = [
    ("0.00005", 50_000),
    ("0.0001", 100_000),
    ("0.00025", 250_000),
    ("0.0005", 500_000),
    ("0.001", 1_000_000),
    ("0.0025", 2_500_000),
    ("0.005", 5_000_000),
    ("0.01", 10_000_000),
    ("0.025", 25_000_000),
    ("0.05", 50_000_000),
    ("0.1", 100_000_000),
    ("0.25", 250_000_000),
    ("0.5", 500_000_000),
    ("1", 1_000_000_000),
    ("2.5", 2_500_000_000),
    ("5", 5_000_000_000),
];

/// A histogram of durations with the fixed [`BUCKETS`].
///
/// `counts[i]` counts observations in bucket `i` alone (not cumulative;
/// `counts[BUCKETS.len()]` is above the last bound), so an observation is
/// one `fetch_add` there and one on `sum_nanos`. Rendering accumulates them,
/// so the `+Inf` bucket always equals `_count`.
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Histogram {
    pub const fn new() -> Histogram {
        Histogram {
            counts: [const { AtomicU64::new(0) }; BUCKETS.len() + 1],
            sum_nanos: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, duration: Duration) {
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        let bucket = BUCKETS
            .iter()
            .position(|&(_, bound)| nanos <= bound)
            .unwrap_or(BUCKETS.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The number of observations.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

const ENDPOINTS: usize = Endpoint::ALL.len();

/// Every counter and histogram of the process.
pub struct Registry {
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
    /// Fed by the result store's owner: one per result file not written.
    pub result_write_failures: AtomicU64,
    /// Connections served (under the connection cap).
    pub connections_accepted: AtomicU64,
    /// Connections answered `503` because the cap was reached.
    pub connections_refused: AtomicU64,
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
            result_write_failures: AtomicU64::new(0),
            connections_accepted: AtomicU64::new(0),
            connections_refused: AtomicU64::new(0),
        }
    }
}

static REGISTRY: Registry = Registry::new();

/// The process-wide registry.
pub fn registry() -> &'static Registry {
    &REGISTRY
}

/// Counts one answered request (the server calls this for every request it
/// reports to its request log).
pub fn record_request(record: &RequestRecord<'_>) {
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

/// Counts a result file that could not be written (its job fails).
pub fn result_write_failed() {
    REGISTRY
        .result_write_failures
        .fetch_add(1, Ordering::Relaxed);
}

/// The slot code of `endpoint`: its index in [`Endpoint::ALL`] plus one
/// (0 means "no endpoint" on the scoreboard).
pub fn endpoint_code(endpoint: Endpoint) -> u8 {
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
pub fn job_refused(refused: Refused) -> Refused {
    match refused {
        Refused::QueueFull => &REGISTRY.refused_queue_full,
        Refused::ShuttingDown => &REGISTRY.refused_shutting_down,
        Refused::IdsUnavailable => &REGISTRY.refused_ids_unavailable,
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
/// clients, so a client that sees `done` also sees it counted): counts it
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Jobs queued or running ([`crate::jobs::Jobs::pending`]).
    pub pending_jobs: usize,
    /// False once shutdown has begun.
    pub accepting: bool,
    /// Lines waiting for the log writer.
    pub log_queue_depth: usize,
    /// Lines the logger dropped since start.
    pub log_lines_dropped: u64,
}

impl Snapshot {
    /// `serving`, `draining` (no new jobs; some still pending) or `drained`.
    pub fn shutdown_phase(&self) -> &'static str {
        match (self.accepting, self.pending_jobs) {
            (true, _) => "serving",
            (false, 0) => "drained",
            (false, _) => "draining",
        }
    }
}

/// The states a connection's `/metrics` label can take, with their label.
const CONNECTION_STATES: [(ThreadState, &str); 6] = [
    (ThreadState::ReadingHead, "reading_head"),
    (ThreadState::ReadingBody, "reading_body"),
    (ThreadState::Handling, "handling"),
    (ThreadState::WaitingForJob, "waiting_for_job"),
    (ThreadState::Writing, "writing"),
    (ThreadState::KeepAlive, "idle_keep_alive"),
];

/// Renders every metric in the text exposition format 0.0.4.
pub fn render(snapshot: &Snapshot) -> String {
    let r = &REGISTRY;
    let mut out = String::with_capacity(64 * 1024);
    let threads = scoreboard::threads();

    family(
        &mut out,
        "http_requests_total",
        "counter",
        "Requests answered, by route and status class.",
    );
    for (route, classes) in ROUTES.iter().zip(&r.requests) {
        for (class, counter) in classes.iter().enumerate() {
            let labels = format!("route=\"{route}\",code=\"{}xx\"", class + 1);
            sample(
                &mut out,
                "http_requests_total",
                &labels,
                counter.load(Ordering::Relaxed),
            );
        }
    }
    family(
        &mut out,
        "http_request_duration_seconds",
        "histogram",
        "Time from a request's first byte to the end of its response, by route.",
    );
    for (route, histogram) in ROUTES.iter().zip(&r.request_duration) {
        render_histogram(
            &mut out,
            "http_request_duration_seconds",
            &format!("route=\"{route}\""),
            histogram,
        );
    }

    let endpoint_counters = [(
        "jobs_submitted_total",
        "Jobs accepted, by endpoint.",
        &r.jobs_submitted,
    )];
    for (name, help, counters) in endpoint_counters {
        family(&mut out, name, "counter", help);
        for (endpoint, counter) in Endpoint::ALL.iter().zip(counters) {
            let labels = format!("endpoint=\"{}\"", endpoint.name());
            sample(&mut out, name, &labels, counter.load(Ordering::Relaxed));
        }
    }
    family(
        &mut out,
        "jobs_finished_total",
        "counter",
        "Jobs finished, by endpoint and outcome (done or error).",
    );
    for (outcome, counters) in [("done", &r.jobs_done), ("error", &r.jobs_error)] {
        for (endpoint, counter) in Endpoint::ALL.iter().zip(counters) {
            let labels = format!("endpoint=\"{}\",outcome=\"{outcome}\"", endpoint.name());
            sample(
                &mut out,
                "jobs_finished_total",
                &labels,
                counter.load(Ordering::Relaxed),
            );
        }
    }
    family(
        &mut out,
        "jobs_refused_total",
        "counter",
        "Submissions refused, by reason.",
    );
    sample(
        &mut out,
        "jobs_refused_total",
        "reason=\"queue_full\"",
        r.refused_queue_full.load(Ordering::Relaxed),
    );
    sample(
        &mut out,
        "jobs_refused_total",
        "reason=\"shutting_down\"",
        r.refused_shutting_down.load(Ordering::Relaxed),
    );
    sample(
        &mut out,
        "jobs_refused_total",
        "reason=\"ids_unavailable\"",
        r.refused_ids_unavailable.load(Ordering::Relaxed),
    );
    for (name, help, histograms) in [
        (
            "job_queue_wait_seconds",
            "Time a job waited in the queue before a worker took it, by endpoint.",
            &r.job_queue_wait,
        ),
        (
            "job_run_seconds",
            "Time a worker spent on a job (computing and saving its result), by endpoint.",
            &r.job_run,
        ),
    ] {
        family(&mut out, name, "histogram", help);
        for (endpoint, histogram) in Endpoint::ALL.iter().zip(histograms) {
            render_histogram(
                &mut out,
                name,
                &format!("endpoint=\"{}\"", endpoint.name()),
                histogram,
            );
        }
    }

    let running = scoreboard::count(&threads, Role::Worker, ThreadState::Running);
    let idle = scoreboard::count(&threads, Role::Worker, ThreadState::Idle);
    let gauges: [(&str, &str, u64); 5] = [
        (
            "jobs_queued",
            "Jobs accepted and not yet taken by a worker.",
            snapshot.pending_jobs.saturating_sub(running) as u64,
        ),
        (
            "jobs_running",
            "Jobs a worker is running now.",
            running as u64,
        ),
        (
            "log_queue_depth",
            "Log lines waiting for the log writer.",
            snapshot.log_queue_depth as u64,
        ),
        (
            "log_lines_dropped_total",
            "Log lines dropped because the log could not keep up.",
            snapshot.log_lines_dropped,
        ),
        (
            "result_write_failures_total",
            "Result files that could not be written.",
            r.result_write_failures.load(Ordering::Relaxed),
        ),
    ];
    for (name, help, value) in gauges {
        let kind = if name.ends_with("_total") {
            "counter"
        } else {
            "gauge"
        };
        family(&mut out, name, kind, help);
        sample(&mut out, name, "", value);
    }
    family(
        &mut out,
        "workers",
        "gauge",
        "Worker threads, by state (busy or idle).",
    );
    sample(&mut out, "workers", "state=\"busy\"", running as u64);
    sample(&mut out, "workers", "state=\"idle\"", idle as u64);

    family(
        &mut out,
        "connections_open",
        "gauge",
        "Open connections, by state.",
    );
    for (state, label) in CONNECTION_STATES {
        let n = scoreboard::count(&threads, Role::Connection, state);
        sample(
            &mut out,
            "connections_open",
            &format!("state=\"{label}\""),
            n as u64,
        );
    }
    for (name, help, counter) in [
        (
            "connections_accepted_total",
            "Connections accepted and served.",
            &r.connections_accepted,
        ),
        (
            "connections_refused_total",
            "Connections refused (503) because the connection cap was reached.",
            &r.connections_refused,
        ),
    ] {
        family(&mut out, name, "counter", help);
        sample(&mut out, name, "", counter.load(Ordering::Relaxed));
    }

    family(
        &mut out,
        "uptime_seconds",
        "gauge",
        "Seconds since the server started.",
    );
    let _ = writeln!(
        out,
        "{PREFIX}_uptime_seconds {}",
        scoreboard::uptime().as_secs_f64()
    );
    family(
        &mut out,
        "build_info",
        "gauge",
        "Always 1; the version is a label.",
    );
    sample(
        &mut out,
        "build_info",
        concat!("version=\"", env!("CARGO_PKG_VERSION"), "\""),
        1,
    );
    out
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "# HELP {PREFIX}_{name} {help}\n# TYPE {PREFIX}_{name} {kind}"
    );
}

fn sample(out: &mut String, name: &str, labels: &str, value: u64) {
    if labels.is_empty() {
        let _ = writeln!(out, "{PREFIX}_{name} {value}");
    } else {
        let _ = writeln!(out, "{PREFIX}_{name}{{{labels}}} {value}");
    }
}

fn render_histogram(out: &mut String, name: &str, labels: &str, histogram: &Histogram) {
    let base = name;
    let mut cumulative = 0;
    for (i, count) in histogram.counts.iter().enumerate() {
        cumulative += count.load(Ordering::Relaxed);
        let le = BUCKETS.get(i).map_or("+Inf", |&(le, _)| le);
        let _ = writeln!(
            out,
            "{PREFIX}_{base}_bucket{{{labels},le=\"{le}\"}} {cumulative}"
        );
    }
    let sum = histogram.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
    let _ = writeln!(out, "{PREFIX}_{base}_sum{{{labels}}} {sum}");
    let _ = writeln!(out, "{PREFIX}_{base}_count{{{labels}}} {cumulative}");
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
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let h = Histogram::new();
        h.observe(Duration::from_micros(50)); // on the bound: le="0.00005"
        h.observe(Duration::from_micros(51));
        h.observe(Duration::from_secs(10)); // above every bound: +Inf only
        let mut out = String::new();
        render_histogram(&mut out, "x_seconds", "a=\"b\"", &h);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "lss_x_seconds_bucket{a=\"b\",le=\"0.00005\"} 1");
        assert_eq!(lines[1], "lss_x_seconds_bucket{a=\"b\",le=\"0.0001\"} 2");
        assert_eq!(lines[15], "lss_x_seconds_bucket{a=\"b\",le=\"5\"} 2");
        assert_eq!(lines[16], "lss_x_seconds_bucket{a=\"b\",le=\"+Inf\"} 3");
        assert_eq!(lines[17], "lss_x_seconds_sum{a=\"b\"} 10.000101");
        assert_eq!(lines[18], "lss_x_seconds_count{a=\"b\"} 3");
        assert_eq!(h.count(), 3);
    }

    #[test]
    fn every_family_has_help_and_type_before_its_samples() {
        let text = render(&Snapshot::default());
        let mut declared = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                declared.push(rest.split(' ').next().unwrap().to_string());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .filter(|base| declared.iter().any(|d| d == base))
                    .unwrap_or(name);
                assert!(declared.iter().any(|d| d == family), "undeclared: {line}");
            }
        }
        assert!(text.ends_with('\n'));
        assert!(text.contains("lss_build_info{version=\""));
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
