//! `/metrics` and `/api/status` end to end, over real sockets against the
//! real binary: after a known number of requests, jobs and connections, the
//! counters say exactly that number. Each test runs its own server process,
//! so the process-wide registry starts at zero.

use crate::common;

use common::{Client, HttpResponse, ServerProcess, TempDir};
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;

const OBESITY: &str =
    r#"{"question": "Percent of adults aged 18 years and older who have obesity"}"#;

/// Every sample of a `/metrics` body: `name{labels}` → value.
fn samples(r: &HttpResponse) -> HashMap<String, f64> {
    r.text()
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("`series value`");
            (series.to_owned(), value.parse().expect("a number"))
        })
        .collect()
}

fn value(samples: &HashMap<String, f64>, series: &str) -> f64 {
    *samples
        .get(series)
        .unwrap_or_else(|| panic!("no series {series}"))
}

fn start(extra: &[&str]) -> (TempDir, ServerProcess) {
    let dir = TempDir::new("metrics");
    let server = ServerProcess::start(&common::fixture("survey.csv"), dir.path(), extra);
    (dir, server)
}

/// Polls `get_results` on fresh connections until the job is done; how many
/// requests that took.
fn wait_done(server: &ServerProcess, id: &str) -> usize {
    let mut requests = 0;
    common::poll(Duration::from_secs(30), || {
        requests += 1;
        let r = server.get(&format!("/api/get_results/{id}"));
        assert_eq!(r.status, 200);
        match r.json()["status"].as_str() {
            Some("running") => None,
            Some("done") => Some(()),
            other => panic!("{id}: {other:?}"),
        }
    });
    requests
}

#[test]
fn counters_count_exactly_the_requests_jobs_and_connections_made() {
    let (_dir, server) = start(&["--threads", "2"]);
    let mut connections = 0;
    for _ in 0..5 {
        assert_eq!(server.get("/api/num_jobs").status, 200);
        connections += 1;
    }
    let ids: Vec<String> = (0..3).map(|_| server.submit("best5", OBESITY)).collect();
    connections += 3;
    for body in ["{", r#"{"question": 5}"#] {
        assert_eq!(server.post("/api/best5", body).status, 400);
        connections += 1;
    }
    assert_eq!(server.get("/no/such/path").status, 404);
    assert_eq!(server.post("/api/num_jobs", "").status, 405);
    connections += 2;
    let mut polls = 0;
    for id in &ids {
        polls += wait_done(&server, id);
    }
    connections += polls;

    let scrape = server.get("/metrics");
    connections += 1;
    assert_eq!(scrape.status, 200);
    assert_eq!(
        scrape.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let m = samples(&scrape);
    let requests = |route: &str, code: &str| {
        value(
            &m,
            &format!("lss_http_requests_total{{route=\"{route}\",code=\"{code}\"}}"),
        )
    };
    assert_eq!(requests("/api/num_jobs", "2xx"), 5.0);
    assert_eq!(requests("/api/num_jobs", "4xx"), 1.0);
    assert_eq!(requests("/api/best5", "2xx"), 3.0);
    assert_eq!(requests("/api/best5", "4xx"), 2.0);
    assert_eq!(requests("other", "4xx"), 1.0);
    assert_eq!(requests("/api/get_results", "2xx"), polls as f64);
    // A request is counted once answered: the scrape does not count itself.
    assert_eq!(requests("/metrics", "2xx"), 0.0);
    assert_eq!(
        value(
            &m,
            r#"lss_http_request_duration_seconds_count{route="/api/num_jobs"}"#
        ),
        6.0
    );
    assert_eq!(
        value(
            &m,
            r#"lss_http_request_duration_seconds_bucket{route="/api/num_jobs",le="+Inf"}"#
        ),
        6.0
    );
    assert_eq!(
        value(&m, r#"lss_jobs_submitted_total{endpoint="best5"}"#),
        3.0
    );
    assert_eq!(
        value(&m, r#"lss_jobs_submitted_total{endpoint="worst5"}"#),
        0.0
    );
    assert_eq!(
        value(
            &m,
            r#"lss_jobs_finished_total{endpoint="best5",outcome="done"}"#
        ),
        3.0
    );
    assert_eq!(
        value(
            &m,
            r#"lss_jobs_finished_total{endpoint="best5",outcome="error"}"#
        ),
        0.0
    );
    assert_eq!(
        value(&m, r#"lss_job_queue_wait_seconds_count{endpoint="best5"}"#),
        3.0
    );
    assert_eq!(
        value(&m, r#"lss_job_run_seconds_count{endpoint="best5"}"#),
        3.0
    );
    assert_eq!(
        value(&m, r#"lss_jobs_refused_total{reason="queue_full"}"#),
        0.0
    );
    assert_eq!(value(&m, "lss_jobs_queued"), 0.0);
    assert_eq!(value(&m, "lss_jobs_running"), 0.0);
    assert_eq!(value(&m, r#"lss_workers{state="idle"}"#), 2.0);
    assert_eq!(value(&m, r#"lss_workers{state="busy"}"#), 0.0);
    assert_eq!(
        value(&m, "lss_connections_accepted_total"),
        connections as f64
    );
    assert_eq!(value(&m, "lss_connections_refused_total"), 0.0);
    assert_eq!(value(&m, "lss_result_write_failures_total"), 0.0);
    // The scrape's own connection is open (answering) while it renders.
    assert_eq!(value(&m, r#"lss_connections_open{state="handling"}"#), 1.0);
    assert_eq!(value(&m, r#"lss_build_info{version="0.1.0"}"#), 1.0);
    assert!(value(&m, "lss_uptime_seconds") > 0.0);

    // The first scrape is counted once answered.
    let m = samples(&server.get("/metrics"));
    assert_eq!(requests_in(&m, "/metrics", "2xx"), 1.0);

    // After shutdown began, submissions are refused and counted.
    assert_eq!(server.get("/api/graceful_shutdown").status, 200);
    assert_eq!(server.post("/api/best5", OBESITY).status, 503);
    let m = samples(&server.get("/metrics"));
    assert_eq!(
        value(&m, r#"lss_jobs_refused_total{reason="shutting_down"}"#),
        1.0
    );
}

fn requests_in(m: &HashMap<String, f64>, route: &str, code: &str) -> f64 {
    value(
        m,
        &format!("lss_http_requests_total{{route=\"{route}\",code=\"{code}\"}}"),
    )
}

#[test]
fn connections_refused_at_the_cap_are_counted() {
    let (_dir, server) = start(&["--max-connections", "1"]);
    let mut holder = Client::connect(server.addr);
    // Answered: the one slot is held by this keep-alive connection.
    assert_eq!(holder.request("GET", "/api/num_jobs", b"").status, 200);
    assert_eq!(server.get("/api/num_jobs").status, 503);
    drop(holder);
    // The slot frees once the server sees the close; each 503 meanwhile is
    // one more refusal.
    let mut refused = 1;
    let scrape = common::poll(Duration::from_secs(10), || {
        let r = server.get("/metrics");
        if r.status == 503 {
            refused += 1;
            return None;
        }
        Some(r)
    });
    let m = samples(&scrape);
    assert_eq!(value(&m, "lss_connections_refused_total"), refused as f64);
    assert_eq!(value(&m, "lss_connections_accepted_total"), 2.0);
    assert_eq!(requests_in(&m, "other", "5xx"), refused as f64);
}

fn status(server: &ServerProcess) -> Value {
    let r = server.get("/api/status");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let text = r.text();
    assert!(text.ends_with("}\n"), "{text}");
    assert!(!text.contains("\":\""), "json.dumps style: {text}");
    r.json()
}

fn threads_with(status: &Value, role: &str) -> Vec<Value> {
    status["threads"]
        .as_array()
        .expect("threads")
        .iter()
        .filter(|t| t["role"] == role)
        .cloned()
        .collect()
}

#[test]
fn status_shows_every_thread_by_role_and_the_shutdown_phase() {
    let (_dir, server) = start(&["--threads", "3"]);
    // A thread shows once it has started and claimed its slot, which may be
    // just after `listening`: wait (with a deadline) for the three workers
    // and the two log writers.
    let s = common::poll(Duration::from_secs(10), || {
        let s = status(&server);
        (threads_with(&s, "worker").len() == 3 && threads_with(&s, "log_writer").len() == 2)
            .then_some(s)
    });
    assert_eq!(s["shutdown_phase"], "serving");
    assert_eq!(s["limits"]["workers"], 3);
    assert_eq!(s["queue"]["pending"], 0);
    let workers = threads_with(&s, "worker");
    assert_eq!(workers.len(), 3);
    assert!(workers.iter().all(|w| w["state"] == "idle"), "{workers:?}");
    assert!(workers
        .iter()
        .all(|w| w["text"].as_str().unwrap().starts_with("idle for ")));
    assert_eq!(s["counts"]["worker"]["idle"], 3);
    assert_eq!(threads_with(&s, "accept").len(), 1);
    assert_eq!(threads_with(&s, "accept")[0]["state"], "accepting");
    // One writer for the server log, one for the access log.
    assert_eq!(threads_with(&s, "log_writer").len(), 2);
    // This request's own connection, answering.
    let connections = threads_with(&s, "connection");
    assert_eq!(connections.len(), 1, "{connections:?}");
    assert_eq!(connections[0]["state"], "handling");

    // A kept-alive connection shows as `idle keep-alive` once answered.
    let mut kept = Client::connect(server.addr);
    assert_eq!(kept.request("GET", "/api/num_jobs", b"").status, 200);
    common::poll(Duration::from_secs(10), || {
        let s = status(&server);
        (s["counts"]["connection"]["idle keep-alive"] == 1).then_some(())
    });

    // After a graceful shutdown has drained the queue, the workers are gone.
    assert_eq!(server.get("/api/graceful_shutdown").status, 200);
    let s = common::poll(Duration::from_secs(10), || {
        let s = status(&server);
        threads_with(&s, "worker").is_empty().then_some(s)
    });
    assert_eq!(s["shutdown_phase"], "drained");
    drop(kept);
}

#[test]
fn observability_routes_take_get_and_head_only() {
    let (_dir, server) = start(&[]);
    for path in ["/metrics", "/api/status", "/status"] {
        let r = server.post(path, "");
        assert_eq!(r.status, 405, "{path}");
        assert_eq!(r.header("allow"), Some("GET, HEAD"), "{path}");
        assert_eq!(r.json()["status"], "error");
        let r = common::http(server.addr, "HEAD", path, None);
        assert_eq!(r.status, 200, "{path}");
        assert!(r.body.is_empty(), "{path}");
    }
    let page = server.get("/status");
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let csp = page.header("content-security-policy").expect("a CSP");
    assert!(csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"));
    assert!(page.text().contains("/api/status"));
}
