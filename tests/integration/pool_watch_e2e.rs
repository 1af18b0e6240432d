//! Watching the pool work, end to end against the real binary: with
//! `--job-delay`, the scoreboard shows jobs queued and running as they
//! are, `/api/trace` holds their spans in the Trace Event Format, and a
//! Ctrl-C still drains the delayed queue.

use crate::common;

use common::{HttpResponse, ServerProcess, TempDir};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

const OBESITY: &str =
    r#"{"question": "Percent of adults aged 18 years and older who have obesity"}"#;

fn start(tag: &str, extra: &[&str]) -> (TempDir, ServerProcess) {
    let dir = TempDir::new(tag);
    let server = ServerProcess::start(&common::fixture("survey.csv"), dir.path(), extra);
    (dir, server)
}

/// `/api/status`'s `queue` as (queued, running, saving, pending).
fn queue(server: &ServerProcess) -> (u64, u64, u64, u64) {
    let status = server.get("/api/status").json();
    let q = &status["queue"];
    let n = |k: &str| q[k].as_u64().unwrap_or_else(|| panic!("queue.{k}: {q}"));
    (n("queued"), n("running"), n("saving"), n("pending"))
}

/// The value of an unlabelled `/metrics` sample.
fn metric(r: &HttpResponse, name: &str) -> u64 {
    let text = r.text();
    let line = text
        .lines()
        .find(|l| l.split_once(' ').is_some_and(|(n, _)| n == name))
        .unwrap_or_else(|| panic!("no {name} in /metrics"));
    line.rsplit_once(' ').unwrap().1.parse().unwrap()
}

/// Checks one Trace Event Format event field by field; returns it.
fn check_event(e: &Value) -> &Value {
    let ph = e["ph"].as_str().unwrap_or_else(|| panic!("ph: {e}"));
    assert!(e["name"].is_string(), "name: {e}");
    assert!(e["pid"].is_u64(), "pid: {e}");
    assert!(e["tid"].is_u64(), "tid: {e}");
    assert!(e["args"].is_object(), "args: {e}");
    match ph {
        "X" => {
            assert!(e["cat"].is_string(), "cat: {e}");
            assert!(e["ts"].as_f64().is_some_and(|t| t >= 0.0), "ts: {e}");
            assert!(e["dur"].as_f64().is_some_and(|d| d >= 0.0), "dur: {e}");
        }
        "M" => {
            let name = e["name"].as_str().unwrap();
            assert!(
                ["thread_name", "thread_sort_index", "process_name"].contains(&name),
                "{e}"
            );
        }
        other => panic!("unexpected ph {other}: {e}"),
    }
    e
}

#[test]
fn a_delayed_burst_shows_the_queue_and_leaves_ten_job_spans_on_two_workers() {
    let (_dir, server) = start("pool-watch", &["--threads", "2", "--job-delay", "300"]);
    let status = server.get("/api/status").json();
    assert_eq!(status["limits"]["job_delay_ms"], 300);
    let first_submitted = Instant::now();
    let ids: Vec<String> = (0..10)
        .map(|_| server.submit("states_mean", OBESITY))
        .collect();
    // Jobs 3 to 10 cannot be taken before the first two have slept 300 ms,
    // which starts after the first submission: until then the board must
    // show 2 running and 8 queued. A machine so loaded that ten local
    // submissions take that long cannot show it; that is said, loudly.
    let window = Duration::from_millis(300);
    let mut seen = None;
    while first_submitted.elapsed() < window {
        let q = queue(&server);
        assert_eq!(q.0 + q.1 + q.2, q.3, "pending is the sum: {q:?}");
        if (q.0, q.1, q.2) == (8, 2, 0) {
            seen = Some(q);
            break;
        }
    }
    match seen {
        Some(q) => assert_eq!(q.3, 10),
        None => eprintln!(
            "SKIPPED the running 2 / queued 8 check: the machine took over {window:?} to \
             submit ten jobs and read the status"
        ),
    }
    for id in &ids {
        assert_eq!(server.wait_result(id).json()["status"], "done", "{id}");
    }
    common::poll(Duration::from_secs(30), || {
        (queue(&server) == (0, 0, 0, 0)).then_some(())
    });

    // Quiescent: /metrics and /api/status give the same counts.
    let metrics = server.get("/metrics");
    let q = queue(&server);
    assert_eq!(
        (
            metric(&metrics, "lss_jobs_queued"),
            metric(&metrics, "lss_jobs_running"),
            metric(&metrics, "lss_jobs_saving")
        ),
        (q.0, q.1, q.2)
    );

    let trace = server.get("/api/trace?seconds=30");
    assert_eq!(trace.status, 200);
    assert_eq!(trace.header("content-type"), Some("application/json"));
    let trace = trace.json();
    let events = trace["traceEvents"].as_array().expect("traceEvents");
    let names: HashMap<u64, String> = events
        .iter()
        .map(check_event)
        .filter(|e| e["ph"] == "M" && e["name"] == "thread_name")
        .map(|e| {
            let name = e["args"]["name"].as_str().unwrap().to_owned();
            (e["tid"].as_u64().unwrap(), name)
        })
        .collect();
    let runs: Vec<&Value> = events
        .iter()
        .filter(|e| e["ph"] == "X" && e["name"] == "job run")
        .filter(|e| ids.iter().any(|id| e["args"]["job_id"] == id.as_str()))
        .collect();
    assert_eq!(runs.len(), 10, "{runs:?}");
    let mut workers = BTreeSet::new();
    for run in &runs {
        assert_eq!(run["cat"], "job");
        assert!(run["dur"].as_f64().unwrap() >= 300_000.0, "{run}");
        assert!(run["args"].get("in_progress").is_none(), "{run}");
        let tid = run["tid"].as_u64().unwrap();
        assert!(names[&tid].starts_with("worker "), "{}", names[&tid]);
        workers.insert(tid);
    }
    assert_eq!(workers.len(), 2, "{workers:?}");
    // Every job also has its wait in the queue; all but the first two were
    // taken only once a worker had finished a job (same clock: a worker
    // takes its next job after its last run ended).
    let end = |e: &Value| e["ts"].as_f64().unwrap() + e["dur"].as_f64().unwrap();
    let first_run_end = runs.iter().map(|e| end(e)).fold(f64::INFINITY, f64::min);
    let mut queued: Vec<(u64, f64)> = events
        .iter()
        .filter(|e| e["name"] == "job queued")
        .filter(|e| ids.iter().any(|id| e["args"]["job_id"] == id.as_str()))
        .map(|e| {
            let id = e["args"]["job_id"].as_str().unwrap();
            (id["job_id_".len()..].parse().unwrap(), end(e))
        })
        .collect();
    queued.sort_by_key(|&(id, _)| id);
    assert_eq!(queued.len(), 10, "{queued:?}");
    for &(id, taken) in &queued[2..] {
        assert!(
            taken >= first_run_end,
            "job_id_{id} taken at {taken} µs, before {first_run_end}"
        );
    }
    assert_eq!(trace["otherData"]["window_seconds"], 30.0);

    for bad in ["seconds=0", "seconds=31", "seconds=x", "other=1"] {
        let r = server.get(&format!("/api/trace?{bad}"));
        assert_eq!(r.status, 400, "{bad}");
        assert_eq!(r.json()["status"], "error", "{bad}");
    }
}

#[test]
fn ctrl_c_drains_a_delayed_queue_and_a_second_one_exits_at_once() {
    let (_dir, mut server) = start("pool-drain", &["--threads", "1", "--job-delay", "200"]);
    let ids: Vec<String> = (0..3)
        .map(|_| server.submit("states_mean", OBESITY))
        .collect();
    server.signal("INT");
    assert_eq!(server.wait_exit(Duration::from_secs(60)), Some(0));
    for id in &ids {
        assert!(
            server.results_dir.join(format!("{id}.json")).exists(),
            "{id}"
        );
    }

    let (_dir, mut server) = start("pool-force", &["--threads", "1", "--job-delay", "60000"]);
    let id = server.submit("states_mean", OBESITY);
    server.signal("INT");
    common::poll(Duration::from_secs(30), || {
        (server.get("/api/status").json()["shutdown_phase"] == "draining").then_some(())
    });
    server.signal("INT");
    assert_eq!(server.wait_exit(Duration::from_secs(30)), Some(130));
    assert!(!server.results_dir.join(format!("{id}.json")).exists());
}
