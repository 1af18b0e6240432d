//! The API as a `Handler`, without a socket: a `Request` in, a `Response`
//! out. Covers what the socket tests cannot reach cheaply: a job that fails,
//! a full job queue, HEAD and method checks.

use crate::common;

use common::TempDir;
use le_stats_sportif::api::{write_job_list, Api, JobsPaging, JOBS_PAGE};
use le_stats_sportif::http::{Handler, Request, Response, Version};
use le_stats_sportif::jobs::{JobId, Jobs};
use le_stats_sportif::lifecycle::Lifecycle;
use le_stats_sportif::log::Logger;
use std::io::{self, Write};
use std::sync::{mpsc, Arc};
use std::time::Duration;

const OBESITY: &str = "Percent of adults aged 18 years and older who have obesity";

fn request(method: &str, target: &str, body: &str) -> Request {
    Request {
        method: method.to_owned(),
        target: target.to_owned(),
        version: Version::Http11,
        headers: vec![("host".to_owned(), b"localhost".to_vec())],
        body: body.as_bytes().to_vec(),
        peer: Some(std::net::Ipv4Addr::LOCALHOST.into()),
    }
}

fn json(response: &Response) -> serde_json::Value {
    let body = response.body_bytes().expect("the body");
    serde_json::from_slice(&body).expect("a JSON body")
}

/// An API over the hand-written survey fixture and a job table of at most
/// `max_pending` jobs.
fn api(dir: &TempDir, max_pending: usize) -> (Api, Arc<Jobs>) {
    let (api, jobs, _) = api_and_lifecycle(dir, max_pending);
    (api, jobs)
}

/// [`api`], and the lifecycle it reports shutdown requests to.
fn api_and_lifecycle(dir: &TempDir, max_pending: usize) -> (Api, Arc<Jobs>, Arc<Lifecycle>) {
    let dataset = Arc::new(common::load_fixture("survey.csv"));
    let jobs = Arc::new(
        Jobs::open_with_max_pending(
            &dir.path().join("results"),
            1,
            max_pending,
            Logger::disabled(),
        )
        .expect("open the job table"),
    );
    let lifecycle = Arc::new(Lifecycle::new());
    let api = Api::new(dataset, Arc::clone(&jobs), Arc::clone(&lifecycle));
    (api, jobs, lifecycle)
}

#[test]
fn a_failed_job_is_a_200_with_an_error_status() {
    let dir = TempDir::new("api-failed-job");
    let (api, jobs) = api(&dir, 10);
    let id = jobs
        .submit(Box::new(|| Err("the work failed".to_owned())))
        .expect("accepted");
    assert_eq!(id, JobId(1));
    jobs.shut_down(); // every accepted job has finished
    let r = api.handle(&request("GET", "/api/get_results/job_id_1", ""));
    assert_eq!(r.status, 200);
    assert_eq!(
        json(&r),
        serde_json::json!({"status": "error", "reason": "the work failed"})
    );
    let list = api.handle(&request("GET", "/api/jobs", ""));
    assert_eq!(
        json(&list)["data"],
        serde_json::json!([{"job_id_1": "error"}])
    );
}

#[test]
fn a_full_queue_is_a_503_with_retry_after() {
    let dir = TempDir::new("api-queue-full");
    let (api, jobs) = api(&dir, 1);
    // One job held behind a gate fills the queue of one.
    let (open_gate, gate) = mpsc::channel::<()>();
    jobs.submit(Box::new(move || {
        let _ = gate.recv();
        Ok("[]".to_owned())
    }))
    .expect("accepted");
    let body = format!(r#"{{"question": "{OBESITY}"}}"#);
    let r = api.handle(&request("POST", "/api/global_mean", &body));
    assert_eq!(r.status, 503);
    assert!(r.headers.contains(&("Retry-After", "1".to_owned())));
    assert_eq!(json(&r)["reason"], "too many jobs queued; retry later");
    open_gate.send(()).expect("the job waits at the gate");
    jobs.shut_down();
}

#[test]
fn a_submitted_job_answers_through_get_results() {
    let dir = TempDir::new("api-submit");
    let (api, _jobs) = api(&dir, 10);
    let body = format!(r#"{{"question": "{OBESITY}", "state": "Alabama"}}"#);
    // A trailing slash on either path gets the same answers as without.
    for (n, slash) in [(1, ""), (2, "/")] {
        let r = api.handle(&request("POST", &format!("/api/state_mean{slash}"), &body));
        assert_eq!(
            (r.status, json(&r)),
            (200, serde_json::json!({"job_id": format!("job_id_{n}")}))
        );
        // get_results waits (up to its bound) for the job; poll with a
        // deadline in case the worker has not been scheduled yet.
        let done = common::poll(std::time::Duration::from_secs(10), || {
            let r = api.handle(&request("GET", &format!("/api/get_results/{n}{slash}"), ""));
            (json(&r)["status"] == "done").then_some(r)
        });
        // Alabama has two obesity rows in survey.csv, 30 and 20 (its first lines).
        assert_eq!(
            String::from_utf8(done.body).unwrap(),
            "{\"status\": \"done\", \"data\": {\"Alabama\": 25.0}}\n"
        );
    }
}

/// An unknown name of a megabyte is answered at once: no suggestions are
/// computed against names it cannot be close to, and the reason repeats
/// only its beginning.
#[test]
fn a_huge_unknown_name_is_cheap_and_not_echoed() {
    let dir = TempDir::new("api-huge-name");
    let (api, _jobs) = api(&dir, 10);
    let huge = "x".repeat(1024 * 1024);
    let body = format!(r#"{{"question": "{huge}"}}"#);
    let r = api.handle(&request("POST", "/api/global_mean", &body));
    assert_eq!(r.status, 400);
    assert!(
        r.body.len() < 300,
        "the reason is cut: {} bytes",
        r.body.len()
    );
    let body = format!(r#"{{"question": "{OBESITY}", "state": "{huge}"}}"#);
    let r = api.handle(&request("POST", "/api/state_mean", &body));
    assert_eq!(r.status, 400);
    assert!(
        r.body.len() < 300,
        "the reason is cut: {} bytes",
        r.body.len()
    );
    // A near miss still gets its suggestion.
    let body = format!(r#"{{"question": "{OBESITY}", "state": "Alabma"}}"#);
    let r = api.handle(&request("POST", "/api/state_mean", &body));
    assert_eq!(json(&r)["did_you_mean"][0], "Alabama");
}

#[test]
fn head_is_get_without_a_body_and_methods_are_checked() {
    let dir = TempDir::new("api-methods");
    let (api, _jobs) = api(&dir, 10);
    let get = api.handle(&request("GET", "/api/num_jobs", ""));
    let head = api.handle(&request("HEAD", "/api/num_jobs", ""));
    // The handler answers HEAD like GET; the response writer drops the body.
    assert_eq!((get.status, &get.body), (head.status, &head.body));
    let r = api.handle(&request("PUT", "/api/num_jobs", ""));
    assert_eq!(r.status, 405);
    assert!(r.headers.contains(&("Allow", "GET, HEAD".to_owned())));
    let r = api.handle(&request("GET", "/api/num_jobs?verbose=1", ""));
    assert_eq!(
        json(&r),
        serde_json::json!({"num_jobs": 0}),
        "the query string is ignored"
    );
    // HEAD must be safe: it must not start a shutdown.
    let r = api.handle(&request("HEAD", "/api/graceful_shutdown", ""));
    assert_eq!(r.status, 405);
    assert!(r.headers.contains(&("Allow", "GET, POST".to_owned())));
    let body = format!(r#"{{"question": "{OBESITY}"}}"#);
    assert_eq!(
        api.handle(&request("POST", "/api/global_mean", &body))
            .status,
        200
    );
    let r = api.handle(&request("POST", "/api/graceful_shutdown", ""));
    assert_eq!(r.status, 200, "graceful_shutdown takes POST too");
    assert_eq!(
        api.handle(&request("POST", "/api/global_mean", &body))
            .status,
        503
    );
}

/// `get_results?wait=` holds each request until its job is done, on the
/// caller's thread: with one worker busy on a gated job, eight requests wait
/// for a job queued behind it, and all are answered `done` once the gate
/// opens — which could not happen if a wait occupied the only worker.
#[test]
fn waits_hold_until_done_without_taking_a_worker() {
    let dir = TempDir::new("api-wait");
    let (api, jobs) = api(&dir, 100);
    let (open_gate, gate) = mpsc::channel::<()>();
    jobs.submit(Box::new(move || {
        let _ = gate.recv();
        Ok("1".to_owned())
    }))
    .expect("accepted");
    let body = format!(r#"{{"question": "{OBESITY}", "state": "Alabama"}}"#);
    let r = api.handle(&request("POST", "/api/state_mean", &body));
    assert_eq!(json(&r)["job_id"], "job_id_2");
    // A short wait on a job that cannot finish answers `running` after it.
    let started = std::time::Instant::now();
    let r = api.handle(&request("GET", "/api/get_results/2?wait=0.2", ""));
    assert!(started.elapsed() >= std::time::Duration::from_millis(200));
    assert_eq!(r.body, b"{\"status\": \"running\"}\n");
    // wait=0 does not wait: still running.
    let r = api.handle(&request("GET", "/api/get_results/2?wait=0", ""));
    assert_eq!(r.body, b"{\"status\": \"running\"}\n");
    let (answered, answers) = mpsc::channel();
    std::thread::scope(|scope| {
        for _ in 0..8 {
            let (api, answered) = (&api, answered.clone());
            scope.spawn(move || {
                let r = api.handle(&request("GET", "/api/get_results/job_id_2?wait=30", ""));
                answered
                    .send(r.body)
                    .expect("the test waits for every answer");
            });
        }
        // No answer while the job is queued: a waiter that answered early
        // would say `running`, and is caught below either way.
        open_gate.send(()).expect("the gated job waits");
        for _ in 0..8 {
            let body = answers
                .recv_timeout(Duration::from_secs(20))
                .expect("every waiter is answered once the job is done");
            assert_eq!(
                String::from_utf8(body).unwrap(),
                "{\"status\": \"done\", \"data\": {\"Alabama\": 25.0}}\n"
            );
        }
    });
    jobs.shut_down();
}

#[test]
fn the_pages_are_html_with_a_content_security_policy() {
    let dir = TempDir::new("api-page");
    let (api, _jobs) = api(&dir, 10);
    for target in [
        "/",
        "/?question=x&view=map&state=Ohio",
        "/index.html",
        "/status",
    ] {
        let r = api.handle(&request("GET", target, ""));
        assert_eq!(r.status, 200, "{target}");
        assert!(r.content_type.starts_with("text/html"), "{target}");
        let csp = r
            .headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("content-security-policy"))
            .map(|(_, value)| value.as_str())
            .expect("a Content-Security-Policy header");
        // Nothing from anywhere else: everything is denied by default, the
        // page may fetch only from its own server.
        assert!(csp.starts_with("default-src 'none'; "), "{csp}");
        assert!(csp.contains("connect-src 'self'"), "{csp}");
        assert!(csp.contains("script-src 'sha256-"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
    }
    // The JSON API does not carry it (it is the page's policy).
    let r = api.handle(&request("GET", "/api/num_jobs", ""));
    assert!(!r
        .headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-security-policy")));
}

/// A job table of `n` finished jobs (trivial work, one shared result).
fn finished_jobs(dir: &TempDir, n: usize) -> (Api, Arc<Jobs>) {
    let (api, jobs) = api(dir, n);
    for _ in 0..n {
        jobs.submit(Box::new(|| Ok("1".to_owned())))
            .expect("accepted");
    }
    jobs.shut_down(); // every job has finished; the table is still readable
    (api, jobs)
}

/// The listing as today's course-compatible bytes, built the simple way.
fn expected_listing(ids: std::ops::RangeInclusive<u64>, next: Option<&str>) -> String {
    let items: Vec<String> = ids
        .map(|i| format!(r#"{{"job_id_{i}": "done"}}"#))
        .collect();
    let next = next.map_or(String::new(), |n| format!(r#", "next": {n}"#));
    format!(
        r#"{{"status": "done", "data": [{}]{next}}}"#,
        items.join(", ")
    ) + "\n"
}

fn body_text(api: &Api, target: &str) -> (u16, String) {
    let r = api.handle(&request("GET", target, ""));
    let body = r.body_bytes().expect("the body");
    (r.status, String::from_utf8(body).expect("UTF-8"))
}

/// Records each write's size; on each, checks that another thread can
/// take the table lock (`pending`) before the write returns.
struct Probe<'a> {
    jobs: &'a Arc<Jobs>,
    writes: Vec<usize>,
    bytes: Vec<u8>,
}
impl Write for Probe<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let (tx, rx) = mpsc::channel();
        let jobs = Arc::clone(self.jobs);
        std::thread::spawn(move || {
            let _ = tx.send(jobs.pending());
        });
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(20)),
            Ok(0),
            "the table lock is held while the listing writes"
        );
        self.writes.push(buf.len());
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Issue 9, item 5: the listing is written page by page — each write holds
/// at most one page of `JOBS_PAGE` jobs, and the table lock is free while a
/// page is being written (another thread reads the table meanwhile) — and
/// its bytes are exactly the course's format plus a newline.
#[test]
fn jobs_listing_is_streamed_a_page_at_a_time_without_the_lock() {
    const JOBS: usize = 3 * JOBS_PAGE + 5;
    let dir = TempDir::new("api-jobs-stream");
    let (api, jobs) = finished_jobs(&dir, JOBS);
    let expected = expected_listing(1..=JOBS as u64, None);
    let r = api.handle(&request("GET", "/api/jobs", ""));
    assert_eq!(r.status, 200);
    assert!(r.stream.is_some(), "the listing is a stream");
    assert!(r.body.is_empty(), "and is not built in memory");
    assert_eq!(
        String::from_utf8(r.body_bytes().unwrap()).unwrap(),
        expected
    );

    let mut probe = Probe {
        jobs: &jobs,
        writes: Vec::new(),
        bytes: Vec::new(),
    };
    let paging = JobsPaging {
        after: None,
        limit: None,
    };
    write_job_list(&jobs, paging, &mut probe).expect("written");
    assert_eq!(String::from_utf8(probe.bytes).unwrap(), expected);
    // Four pages (the last one of 5 jobs) and the closing bytes.
    assert_eq!(probe.writes.len(), 5, "{:?}", probe.writes);
    let longest_item = r#"{"job_id_12293": "done"}, "#.len();
    let page_bound = JOBS_PAGE * longest_item + 64;
    assert!(
        probe.writes.iter().all(|&n| n <= page_bound),
        "a write of more than one page: {:?}",
        probe.writes
    );
}

#[test]
fn jobs_listing_pages_with_after_and_limit() {
    const JOBS: usize = 9000; // more than two pages of 4096
    let dir = TempDir::new("api-jobs-paging");
    let (api, _jobs) = finished_jobs(&dir, JOBS);
    let next = |id: u64| format!("\"job_id_{id}\"");
    let cases: [(&str, std::ops::RangeInclusive<u64>, Option<String>); 9] = [
        ("/api/jobs?limit=5", 1..=5, Some(next(5))),
        ("/api/jobs?after=job_id_5&limit=2", 6..=7, Some(next(7))),
        ("/api/jobs?after=5&limit=2", 6..=7, Some(next(7))),
        (
            "/api/jobs?after=job_id_8990",
            8991..=9000,
            Some("null".into()),
        ),
        (
            "/api/jobs?after=job_id_8990&limit=10",
            8991..=9000,
            Some("null".into()),
        ),
        (
            "/api/jobs?after=job_id_8990&limit=9",
            8991..=8999,
            Some(next(8999)),
        ),
        // Across page boundaries of the table walk.
        (
            "/api/jobs?after=job_id_100&limit=8500",
            101..=8600,
            Some(next(8600)),
        ),
        (
            "/api/jobs?after=job_id_9000",
            std::ops::RangeInclusive::new(1, 0),
            Some("null".into()),
        ),
        // No paging means no `next`.
        ("/api/jobs", 1..=JOBS as u64, None),
    ];
    for (target, ids, next) in cases {
        assert_eq!(
            body_text(&api, target),
            (200, expected_listing(ids, next.as_deref())),
            "{target}"
        );
    }
    // Walking the pages with `next` lists every job once, in order.
    let mut listed = Vec::new();
    let mut target = "/api/jobs?limit=4000".to_owned();
    loop {
        let (status, text) = body_text(&api, &target);
        assert_eq!(status, 200);
        let page: serde_json::Value = serde_json::from_str(&text).unwrap();
        for item in page["data"].as_array().unwrap() {
            listed.push(item.as_object().unwrap().keys().next().unwrap().clone());
        }
        match page["next"].as_str() {
            Some(next) => target = format!("/api/jobs?after={next}&limit=4000"),
            None => break,
        }
    }
    let all: Vec<String> = (1..=JOBS).map(|i| format!("job_id_{i}")).collect();
    assert_eq!(listed, all);
}

#[test]
fn jobs_listing_rejects_bad_paging_with_a_reason() {
    let dir = TempDir::new("api-jobs-bad-paging");
    let (api, _jobs) = finished_jobs(&dir, 3);
    for (target, reason) in [
        (
            "/api/jobs?lmit=3",
            r#"unknown query parameter "lmit": /api/jobs takes ?after=job_id_N and ?limit=K"#,
        ),
        (
            "/api/jobs?limit=0",
            r#"limit must be a positive integer, not "0""#,
        ),
        (
            "/api/jobs?limit=-1",
            r#"limit must be a positive integer, not "-1""#,
        ),
        (
            "/api/jobs?limit=+1",
            r#"limit must be a positive integer, not "+1""#,
        ),
        (
            "/api/jobs?limit=ten",
            r#"limit must be a positive integer, not "ten""#,
        ),
        (
            "/api/jobs?limit=",
            r#"limit must be a positive integer, not """#,
        ),
        (
            "/api/jobs?limit=99999999999999999999999",
            r#"limit must be a positive integer, not "99999999999999999999999""#,
        ),
        (
            "/api/jobs?after=job_7",
            r#"after must be a job id such as job_id_7, not "job_7""#,
        ),
        (
            "/api/jobs?after",
            r#"after must be a job id such as job_id_7, not """#,
        ),
        ("/api/jobs?after=1&after=2", "after given twice"),
        ("/api/jobs?limit=1&limit=1", "limit given twice"),
    ] {
        let r = api.handle(&request("GET", target, ""));
        assert_eq!(r.status, 400, "{target}");
        assert_eq!(
            json(&r),
            serde_json::json!({"status": "error", "reason": reason}),
            "{target}"
        );
    }
}

/// How many jobs [`Submitter`] submits on each write.
const SUBMITTED_PER_WRITE: usize = 100;

/// Submits more jobs on every write, then keeps the bytes.
struct Submitter<'a> {
    jobs: &'a Jobs,
    bytes: Vec<u8>,
}
impl Write for Submitter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for _ in 0..SUBMITTED_PER_WRITE {
            self.jobs
                .submit(Box::new(|| Ok("1".to_owned())))
                .expect("accepted");
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The listing ends at the last job that existed when it began: jobs
/// submitted while it is written (a hundred on every write, as busy clients
/// would) are not listed, and the listing still ends.
#[test]
fn jobs_listing_ends_at_the_last_job_when_it_began() {
    const JOBS: usize = 2 * JOBS_PAGE + 5;
    let dir = TempDir::new("api-jobs-moving-end");
    let (_api, jobs) = api(&dir, JOBS + 10 * SUBMITTED_PER_WRITE);
    for _ in 0..JOBS {
        jobs.submit(Box::new(|| Ok("1".to_owned())))
            .expect("accepted");
    }
    common::poll(Duration::from_secs(30), || {
        (jobs.pending() == 0).then_some(())
    });

    let mut submitter = Submitter {
        jobs: &jobs,
        bytes: Vec::new(),
    };
    let paging = JobsPaging {
        after: None,
        limit: None,
    };
    write_job_list(&jobs, paging, &mut submitter).expect("written");
    assert!(jobs.last_id() > Some(JobId(JOBS as u64)), "jobs were added");
    let listed = String::from_utf8(submitter.bytes).unwrap();
    let expected = expected_listing(1..=JOBS as u64, None);
    // Compared whole, reported short: a failure would print megabytes.
    assert!(
        listed == expected,
        "listed {} bytes ending {:?}, expected {} ending {:?}",
        listed.len(),
        &listed[listed.len().saturating_sub(60)..],
        expected.len(),
        &expected[expected.len() - 60..]
    );
    jobs.shut_down();
}

/// After `graceful_shutdown` a computing request is a 503 whose reason
/// starts with "shutting down" (clients match it) and says what happened
/// and what to do; after a signal it says the server is stopping.
#[test]
fn the_503_after_shutdown_says_why_and_what_to_do() {
    // Both a valid and an invalid computing request get the same 503.
    let refused_with = |api: &Api, reason: &str| {
        for body in [format!(r#"{{"question": "{OBESITY}"}}"#), "{".to_owned()] {
            let r = api.handle(&request("POST", "/api/global_mean", &body));
            assert_eq!(
                (r.status, json(&r)),
                (
                    503,
                    serde_json::json!({"status": "error", "reason": reason})
                ),
                "{body}"
            );
        }
    };
    let dir = TempDir::new("api-503-drain");
    let (api, _jobs) = api(&dir, 10);
    let shutdown = api.handle(&request("GET", "/api/graceful_shutdown", ""));
    assert_eq!(shutdown.status, 200);
    refused_with(
        &api,
        "shutting down: graceful_shutdown was requested; restart the server to submit jobs",
    );

    // A signal: the lifecycle records the exit request, then the main
    // thread stops accepting jobs (`shut_down`).
    let dir = TempDir::new("api-503-signal");
    let (api, jobs, lifecycle) = api_and_lifecycle(&dir, 10);
    lifecycle.request_exit();
    jobs.shut_down();
    refused_with(
        &api,
        "shutting down: the server is stopping (Ctrl-C or SIGTERM); restart it to submit jobs",
    );
}

/// A trailing slash gets the same answer as the path without it: the
/// same status and the same body.
#[test]
fn a_trailing_slash_gets_the_same_answer_as_without() {
    let dir = TempDir::new("api-slash");
    let (api, _jobs) = api(&dir, 10);
    // (POST /api/state_mean/ and GET /api/get_results/N/:
    // `a_submitted_job_answers_through_get_results`.)
    for path in [
        "/api/num_jobs",
        "/api/jobs",
        "/api/questions",
        "/api/states",
        "/api",
        "/status",
        "/api/status",
        "/metrics",
    ] {
        let without = api.handle(&request("GET", path, ""));
        let with = api.handle(&request("GET", &format!("{path}/"), ""));
        assert_eq!((with.status, without.status), (200, 200), "{path}/");
        if path != "/metrics" && path != "/api/status" {
            // (these two report uptime and counters, which move between calls)
            assert_eq!(
                with.body_bytes().unwrap(),
                without.body_bytes().unwrap(),
                "{path}/"
            );
        }
    }
    let r = api.handle(&request(
        "POST",
        "/api/best5/",
        &format!(r#"{{"question": "{OBESITY}"}}"#),
    ));
    assert_eq!(
        (r.status, json(&r)),
        (200, serde_json::json!({"job_id": "job_id_1"}))
    );
    // The wrong method on a slashed path names the path as requested.
    let r = api.handle(&request("GET", "/api/best5/", ""));
    assert_eq!(
        (r.status, json(&r)),
        (
            405,
            serde_json::json!({"status": "error", "reason": "method not allowed: /api/best5/ takes POST, not GET"})
        )
    );
    // No id at all is still not an endpoint, and says so.
    let r = api.handle(&request("GET", "/api/get_results/", ""));
    assert_eq!(
        (r.status, json(&r)),
        (
            404,
            serde_json::json!({"status": "error", "reason": "not found: no endpoint at /api/get_results/; GET /api lists every endpoint"})
        )
    );
}
