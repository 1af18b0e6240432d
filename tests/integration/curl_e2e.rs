//! Issue 11, the curl user's papercuts, checked on the bytes a client gets:
//! one JSON style on every endpoint and error, each body ending in `\n`;
//! errors that say what to send; `GET /api`; `get_results?wait=`; start-up
//! errors that name the fix. The real binary on the hand-written fixture, so
//! every byte is known and nothing is skipped without `../shared`.

use crate::common;

use common::{raw, ServerProcess, TempDir};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const OBESITY: &str = "Percent of adults aged 18 years and older who have obesity";

fn start(tag: &str, extra: &[&str]) -> (ServerProcess, TempDir) {
    let dir = TempDir::new(tag);
    let server = ServerProcess::start(&common::fixture("survey.csv"), dir.path(), extra);
    (server, dir)
}

/// One request on its own connection, as curl sends it (`Host`, a form
/// Content-Type for bodies); the raw response split into status line,
/// headers and the exact body bytes.
fn exchange(addr: SocketAddr, method: &str, target: &str, body: &str) -> (String, String, String) {
    let mut request = format!("{method} {target} HTTP/1.1\r\nHost: localhost:5000\r\n");
    if !body.is_empty() {
        request.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
    }
    request.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    split(&raw(addr, request.as_bytes()))
}

fn split(response: &[u8]) -> (String, String, String) {
    let text = String::from_utf8(response.to_vec()).expect("UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete head");
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    if headers.lines().any(|l| l == "Transfer-Encoding: chunked") {
        // `/api/jobs` is streamed: decode the chunks.
        let decoded = common::read_chunked(&mut body.as_bytes()).expect("complete chunks");
        let body = String::from_utf8(decoded).expect("UTF-8 body");
        return (status.to_owned(), headers.to_owned(), body);
    }
    let length = headers
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .expect("Content-Length");
    assert_eq!(length, body.len().to_string(), "framing of {text:?}");
    (status.to_owned(), headers.to_owned(), body.to_owned())
}

fn json_body(body: &str) -> String {
    format!(r#"{{"question": "{OBESITY}"}}"#) + body
}

#[test]
fn every_endpoint_answers_in_one_style_ending_in_a_newline() {
    let (server, _dir) = start("curl-style", &["--threads", "1"]);
    let addr = server.addr;
    let body = format!(r#"{{"question": "{OBESITY}", "state": "Alabama"}}"#);
    let cases: Vec<(&str, String, String, &str, String)> = vec![
        (
            "POST",
            "/api/state_mean".into(),
            body,
            "HTTP/1.1 200 OK",
            "{\"job_id\": \"job_id_1\"}\n".into(),
        ),
        (
            "GET",
            "/api/get_results/job_id_1?wait=10".into(),
            String::new(),
            "HTTP/1.1 200 OK",
            "{\"status\": \"done\", \"data\": {\"Alabama\": 25.0}}\n".into(),
        ),
        (
            "GET",
            "/api/num_jobs".into(),
            String::new(),
            "HTTP/1.1 200 OK",
            "{\"num_jobs\": 0}\n".into(),
        ),
        (
            "GET",
            "/api/jobs".into(),
            String::new(),
            "HTTP/1.1 200 OK",
            "{\"status\": \"done\", \"data\": [{\"job_id_1\": \"done\"}]}\n".into(),
        ),
        (
            "GET",
            "/api/states".into(),
            String::new(),
            "HTTP/1.1 200 OK",
            "{\"status\": \"done\", \"data\": [\"Alabama\", \"Alaska\", \"Hawai'i\", \"Ohio\", \
             \"Texas\", \"Utah\", \"Zeta\", \"apple\"]}\n"
                .into(),
        ),
        (
            "GET",
            "/api/questions".into(),
            String::new(),
            "HTTP/1.1 200 OK",
            format!(
                "{{\"status\": \"done\", \"data\": [{{\"question\": \"{OBESITY}\", \"direction\": \"min\"}}, \
                 {{\"question\": \"Percent of adults who engage in muscle-strengthening activities on 2 or more \
                 days a week\", \"direction\": \"max\"}}, {{\"question\": \"Some other question\", \
                 \"direction\": null}}]}}\n"
            ),
        ),
        (
            "GET",
            "/api/get_results/job_id_7".into(),
            String::new(),
            "HTTP/1.1 404 Not Found",
            "{\"status\": \"error\", \"reason\": \"Invalid job_id\"}\n".into(),
        ),
        (
            "GET",
            "/api/nowhere".into(),
            String::new(),
            "HTTP/1.1 404 Not Found",
            "{\"status\": \"error\", \"reason\": \"not found: no endpoint at /api/nowhere; \
             GET /api lists every endpoint\"}\n"
                .into(),
        ),
        (
            "GET",
            "/api/best5".into(),
            String::new(),
            "HTTP/1.1 405 Method Not Allowed",
            "{\"status\": \"error\", \"reason\": \"method not allowed: /api/best5 takes POST, not GET\"}\n"
                .into(),
        ),
        (
            "POST",
            "/api/num_jobs".into(),
            String::new(),
            "HTTP/1.1 405 Method Not Allowed",
            "{\"status\": \"error\", \"reason\": \"method not allowed: /api/num_jobs takes GET, HEAD, not POST\"}\n"
                .into(),
        ),
        (
            "POST",
            "/api/best5".into(),
            format!("question={OBESITY}"),
            "HTTP/1.1 400 Bad Request",
            format!(
                "{{\"status\": \"error\", \"reason\": \"the body is not JSON (expected value at line 1 column 1): \
                 /api/best5 takes a JSON object with \\\"question\\\" (a string); e.g. curl -s -X POST \
                 localhost:5000/api/best5 -d '{{\\\"question\\\": \\\"{OBESITY}\\\"}}'\"}}\n"
            ),
        ),
        (
            "POST",
            "/api/state_mean".into(),
            String::new(),
            "HTTP/1.1 400 Bad Request",
            format!(
                "{{\"status\": \"error\", \"reason\": \"missing body: /api/state_mean takes a JSON object with \
                 \\\"question\\\" and \\\"state\\\" (strings); e.g. curl -s -X POST localhost:5000/api/state_mean \
                 -d '{{\\\"question\\\": \\\"{OBESITY}\\\", \\\"state\\\": \\\"Alabama\\\"}}'\"}}\n"
            ),
        ),
        (
            "POST",
            "/api/state_mean".into(),
            format!(r#"{{"question": "{OBESITY}", "state": "ohio"}}"#),
            "HTTP/1.1 400 Bad Request",
            "{\"status\": \"error\", \"reason\": \"unknown state \\\"ohio\\\" for this question \
             (names are case-sensitive)\", \"did_you_mean\": [\"Ohio\"]}\n"
                .into(),
        ),
        (
            "POST",
            "/api/best5".into(),
            r#"{"question": "obesity"}"#.into(),
            "HTTP/1.1 400 Bad Request",
            format!(
                "{{\"status\": \"error\", \"reason\": \"unknown question: \\\"obesity\\\"; GET /api/questions \
                 lists them\", \"did_you_mean\": [\"{OBESITY}\"]}}\n"
            ),
        ),
        (
            "GET",
            "/api/get_results/1?wait=31".into(),
            String::new(),
            "HTTP/1.1 400 Bad Request",
            "{\"status\": \"error\", \"reason\": \"wait must be a number of seconds from 0 to 30 \
             (e.g. ?wait=5 or ?wait=0.5), not \\\"31\\\"\"}\n"
                .into(),
        ),
        (
            "GET",
            "/api/get_results/1?wiat=5".into(),
            String::new(),
            "HTTP/1.1 400 Bad Request",
            "{\"status\": \"error\", \"reason\": \"unknown query parameter \\\"wiat\\\": \
             get_results takes only ?wait=SECONDS (0 to 30)\"}\n"
                .into(),
        ),
        (
            "GET",
            "/api/graceful_shutdown".into(),
            String::new(),
            "HTTP/1.1 200 OK",
            "{\"status\": \"done\"}\n".into(),
        ),
        (
            "POST",
            "/api/global_mean".into(),
            json_body(""),
            "HTTP/1.1 503 Service Unavailable",
            "{\"status\": \"error\", \"reason\": \"shutting down: graceful_shutdown was requested; restart the server to submit jobs\"}\n".into(),
        ),
    ];
    for (method, target, body, status, expected) in cases {
        let (got_status, _, got) = exchange(addr, method, &target, &body);
        assert_eq!(
            (got_status.as_str(), got.as_str()),
            (status, expected.as_str()),
            "{method} {target}"
        );
        // And it is one JSON value followed by the newline.
        serde_json::from_str::<serde_json::Value>(&got).expect("JSON");
    }
}

#[test]
fn the_api_index_lists_every_endpoint_with_its_method_and_body() {
    let (server, _dir) = start("curl-index", &[]);
    let (status, _, body) = exchange(server.addr, "GET", "/api", "");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(body.starts_with(
        "{\"status\": \"done\", \"data\": [{\"path\": \"/api/states_mean\", \"method\": \"POST\", \
         \"body\": [\"question\"], \"about\": \"the mean of every state, ascending\"}, "
    ));
    assert!(body.ends_with("}]}\n"), "{body}");
    let index: serde_json::Value = serde_json::from_str(&body).unwrap();
    let entries = index["data"].as_array().unwrap();
    // Every entry is really served with the method it lists (HEAD aside,
    // and graceful_shutdown, which the test must not call).
    for entry in entries {
        let path = entry["path"].as_str().unwrap().replace("<job_id>", "1");
        let method = entry["method"].as_str().unwrap();
        let first = method.split(", ").next().unwrap();
        if path == "/api/graceful_shutdown" {
            assert_eq!(method, "GET, POST");
            continue;
        }
        let body = if first == "POST" {
            let state = entry["body"].as_array().unwrap().len() == 2;
            if state {
                format!(r#"{{"question": "{OBESITY}", "state": "Ohio"}}"#)
            } else {
                json_body("")
            }
        } else {
            String::new()
        };
        let (status, _, _) = exchange(server.addr, first, &path, &body);
        // get_results/1 is a 404 until a job exists; the route is still there.
        assert!(
            status == "HTTP/1.1 200 OK" || path == "/api/get_results/1",
            "{path}: {status}"
        );
    }
    let paths: Vec<&str> = entries
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths.len(), 21);
    assert!(paths.contains(&"/api/trace"));
    assert!(paths.contains(&"/api/state_mean_by_category"));
    assert!(paths.contains(&"/api"));
}

#[test]
fn limit_errors_state_the_limit_in_the_same_style() {
    let (server, _dir) = start("curl-limits", &["--head-timeout-ms", "300"]);
    let addr = server.addr;
    let cases: Vec<(Vec<u8>, &str, &str)> = vec![
        (
            b"POST /api/best5 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1048577\r\n\r\n".to_vec(),
            "HTTP/1.1 413 Content Too Large",
            "{\"status\": \"error\", \"reason\": \"request body too large: the limit is 1048576 bytes\"}\n",
        ),
        (
            format!("GET /{} HTTP/1.1\r\nHost: localhost\r\n\r\n", "a".repeat(9000)).into_bytes(),
            "HTTP/1.1 414 URI Too Long",
            "{\"status\": \"error\", \"reason\": \"request line too long: the limit is 8192 bytes \
             (method, target and version)\"}\n",
        ),
        (
            format!("GET / HTTP/1.1\r\nHost: localhost\r\nX: {}\r\n\r\n", "b".repeat(40_000)).into_bytes(),
            "HTTP/1.1 431 Request Header Fields Too Large",
            "{\"status\": \"error\", \"reason\": \"request header fields too large: the limit is \
             32768 bytes of header fields\"}\n",
        ),
        (
            format!("GET / HTTP/1.1\r\nHost: localhost\r\n{}\r\n", "X: y\r\n".repeat(101)).into_bytes(),
            "HTTP/1.1 431 Request Header Fields Too Large",
            "{\"status\": \"error\", \"reason\": \"too many request header fields: the limit is 100 fields\"}\n",
        ),
        (
            b"GET / HTTP/2.0\r\nHost: localhost\r\n\r\n".to_vec(),
            "HTTP/1.1 505 HTTP Version Not Supported",
            "{\"status\": \"error\", \"reason\": \"HTTP version not supported\"}\n",
        ),
        (
            b"POST /api/best5 HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec(),
            "HTTP/1.1 501 Not Implemented",
            "{\"status\": \"error\", \"reason\": \"transfer coding not implemented\"}\n",
        ),
        (
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            "HTTP/1.1 400 Bad Request",
            "",
        ),
    ];
    for (request, status, expected) in cases {
        let (got_status, _, body) = split(&raw(addr, &request));
        assert_eq!(got_status, status);
        if expected.is_empty() {
            assert!(
                body.starts_with("{\"status\": \"error\", \"reason\": \""),
                "{body}"
            );
            assert!(body.ends_with("\"}\n"), "{body}");
        } else {
            assert_eq!(body, expected);
        }
    }
    // A head that never ends: 408 at the head deadline.
    let mut slow = TcpStream::connect(addr).expect("connect");
    slow.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = slow.read_to_end(&mut answer);
    let (status, _, body) = split(&answer);
    assert_eq!(status, "HTTP/1.1 408 Request Timeout");
    assert_eq!(
        body,
        "{\"status\": \"error\", \"reason\": \"request timeout\"}\n"
    );

    // The connection cap's 503, written by the accept loop: on a server
    // that takes one connection, one is held open and the next is refused.
    let (capped, _capped_dir) = start("curl-cap", &["--max-connections", "1"]);
    let addr = capped.addr;
    let held = TcpStream::connect(addr).expect("connect");
    let refused = common::poll(Duration::from_secs(10), || {
        let (status, _, body) = split(&raw(
            addr,
            b"GET /api/num_jobs HTTP/1.1\r\nHost: localhost\r\n\r\n",
        ));
        (status == "HTTP/1.1 503 Service Unavailable").then_some(body)
    });
    assert_eq!(
        refused,
        "{\"status\": \"error\", \"reason\": \"too many connections\"}\n"
    );
    drop(held);
}

/// `?wait=` end to end: every job collected in one request each, bad
/// values refused. (That a wait really holds until the job finishes, without
/// a worker, is shown with a gated job in `tests/integration/api_handler.rs`.)
#[test]
fn wait_answers_done_in_one_request_and_bad_waits_are_400() {
    let (server, _dir) = start("curl-wait", &["--threads", "1"]);
    let addr = server.addr;
    let ids: Vec<String> = (0..20)
        .map(|_| server.submit("mean_by_category", &json_body("")))
        .collect();
    for id in &ids {
        let (status, _, body) =
            exchange(addr, "GET", &format!("/api/get_results/{id}?wait=30"), "");
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(
            body.starts_with("{\"status\": \"done\", \"data\": {"),
            "{body}"
        );
    }
    // wait=0 answers at once, as does a finished job with any wait.
    let started = Instant::now();
    let (_, _, body) = exchange(
        addr,
        "GET",
        &format!("/api/get_results/{}?wait=30", ids[0]),
        "",
    );
    assert!(body.starts_with("{\"status\": \"done\""));
    assert!(started.elapsed() < Duration::from_secs(10));
    for bad in [
        "?wait=-1",
        "?wait=abc",
        "?wait=1e1",
        "?wait=30.5",
        "?wait=1&wait=1",
        "?x=1",
    ] {
        let (status, _, body) = exchange(
            addr,
            "GET",
            &format!("/api/get_results/{}{bad}", ids[0]),
            "",
        );
        assert_eq!(status, "HTTP/1.1 400 Bad Request", "{bad}");
        assert!(
            body.contains("0 to 30") || body.contains("twice"),
            "{bad}: {body}"
        );
    }
    // Other paths ignore their query string (the page takes ?question=).
    let (status, _, _) = exchange(addr, "GET", "/api/num_jobs?x=1", "");
    assert_eq!(status, "HTTP/1.1 200 OK");
    let (status, _, _) = exchange(addr, "GET", "/?question=x", "");
    assert_eq!(status, "HTTP/1.1 200 OK");
}

fn start_error(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_le-stats-sportif"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the binary");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn start_up_errors_name_the_fix() {
    let dir = TempDir::new("curl-start");
    let results = dir.path().join("results");
    let log = dir.path().join("log");
    let common_args = [
        "--results-dir",
        results.to_str().unwrap(),
        "--log-file",
        log.to_str().unwrap(),
    ];
    // A port already taken.
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().unwrap().port().to_string();
    let fixture = common::fixture("survey.csv");
    let mut args = vec!["--port", &port, "--data", fixture.to_str().unwrap()];
    args.extend(common_args);
    let (code, stderr) = start_error(&args);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(stderr.contains("--port N"), "{stderr}");
    assert!(stderr.contains("make run_server PORT=N"), "{stderr}");
    drop(taken);
    // No data.
    let missing = dir.path().join("nothing.csv");
    let mut args = vec!["--port", "0", "--data", missing.to_str().unwrap()];
    args.extend(common_args);
    let (code, stderr) = start_error(&args);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("cannot read"), "{stderr}");
    assert!(stderr.contains("run `make data`"), "{stderr}");
    assert!(
        stderr.contains("data/nutrition_activity_obesity_usa_cdc_full.csv"),
        "{stderr}"
    );
    assert!(stderr.contains("--data PATH"), "{stderr}");
}

/// The binary loads the data while it lists the results directory (two
/// threads, `main.rs`'s `load_data_and_list_results`): a start refused for
/// its data has listed the directory and deleted a crashed run's
/// temporary file (the one thing the sequential start did not do), and
/// opened no log and reserved no id (only the lock file is new).
#[test]
fn a_start_refused_for_its_data_deletes_leftovers_and_writes_nothing_else() {
    let dir = TempDir::new("curl-no-data");
    let results = dir.path().join("results");
    std::fs::create_dir_all(&results).unwrap();
    std::fs::write(results.join("job_id_2.json"), "{\"Ohio\": 33.7}").unwrap();
    std::fs::write(results.join(".tmp-job_id_3.json"), "{\"Oh").unwrap();
    let log = dir.path().join("log");
    let access = dir.path().join("access");
    let missing = dir.path().join("nothing.csv");
    let (code, stderr) = start_error(&[
        "--port",
        "0",
        "--data",
        missing.to_str().unwrap(),
        "--results-dir",
        results.to_str().unwrap(),
        "--log-file",
        log.to_str().unwrap(),
        "--access-log",
        access.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("cannot read"), "{stderr}");
    assert!(!log.exists() && !access.exists(), "no log is opened");
    // No id reserved (`.reserved_ids`), the leftover gone, the lock file new.
    let mut names: Vec<String> = std::fs::read_dir(&results)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, [".lock", "job_id_2.json"]);
}
