//! `/api/jobs` on the wire (issue 9, item 5): streamed as chunks to HTTP/1.1
//! clients, delimited by the close for HTTP/1.0 ones, headers only for HEAD;
//! and the server's peak memory stays flat while many clients read a large
//! listing at once, instead of growing by a copy of the list per client.

use crate::common;

use common::{parse_response, read_response, ServerProcess, TempDir};
use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

const OBESITY: &str = "Percent of adults aged 18 years and older who have obesity";

fn start(tag: &str) -> (ServerProcess, TempDir) {
    let dir = TempDir::new(tag);
    let server = ServerProcess::start(
        &common::fixture("survey.csv"),
        dir.path(),
        &["--threads", "2"],
    );
    (server, dir)
}

/// Submits `n` jobs over 4 keep-alive connections, pipelining 200 requests
/// at a time (a `503` for a full queue is retried).
fn submit_many(addr: SocketAddr, n: usize) {
    const CONNECTIONS: usize = 4;
    const BATCH: usize = 200;
    let body = serde_json::json!({ "question": OBESITY }).to_string();
    let request = format!(
        "POST /api/global_mean HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    thread::scope(|scope| {
        for c in 0..CONNECTIONS {
            let share = n / CONNECTIONS + usize::from(c < n % CONNECTIONS);
            let request = request.as_bytes();
            scope.spawn(move || {
                let stream = TcpStream::connect(addr).expect("connect");
                stream
                    .set_read_timeout(Some(Duration::from_secs(60)))
                    .expect("timeout");
                let mut reader = BufReader::new(stream);
                let mut accepted = 0;
                while accepted < share {
                    let batch = BATCH.min(share - accepted);
                    reader
                        .get_mut()
                        .write_all(&request.repeat(batch))
                        .expect("write");
                    for _ in 0..batch {
                        let r = read_response(&mut reader).expect("a response");
                        match r.status {
                            200 => accepted += 1,
                            503 => {}
                            other => panic!("submit: {other} {}", r.text()),
                        }
                    }
                }
            });
        }
    });
}

/// Waits (with a deadline) until no job is queued or running.
fn drain(server: &ServerProcess) {
    common::poll(Duration::from_secs(120), || {
        (server.get("/api/num_jobs").json()["num_jobs"] == 0).then_some(())
    });
}

fn expected_listing(n: u64) -> String {
    let items: Vec<String> = (1..=n)
        .map(|i| format!(r#"{{"job_id_{i}": "done"}}"#))
        .collect();
    format!(r#"{{"status": "done", "data": [{}]}}"#, items.join(", ")) + "\n"
}

/// Everything the server sends in answer to `request` until it closes.
fn exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    common::raw(addr, request)
}

#[test]
fn http11_gets_chunks_http10_gets_a_close_delimited_body_head_gets_headers() {
    let (server, _dir) = start("jobs-wire");
    const JOBS: u64 = 5000; // more than one page of the table walk
    submit_many(server.addr, JOBS as usize);
    drain(&server);
    let expected = expected_listing(JOBS);

    // HTTP/1.1, keep-alive: chunked, and the connection goes on afterwards.
    let stream = TcpStream::connect(server.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut reader = BufReader::new(stream);
    reader
        .get_mut()
        .write_all(
            b"GET /api/jobs HTTP/1.1\r\nHost: localhost\r\n\r\n\
              GET /api/jobs?after=job_id_4998 HTTP/1.1\r\nHost: localhost\r\n\r\n\
              GET /api/num_jobs HTTP/1.1\r\nHost: localhost\r\n\r\n",
        )
        .expect("write");
    let full = read_response(&mut reader).expect("the listing");
    assert_eq!(full.status, 200);
    assert!(full.is_chunked(), "{:?}", full.headers);
    assert_eq!(full.header("content-length"), None);
    assert_eq!(full.header("content-type"), Some("application/json"));
    assert_eq!(full.text(), expected);
    let page = read_response(&mut reader).expect("a page");
    assert_eq!(
        page.text(),
        "{\"status\": \"done\", \"data\": [{\"job_id_4999\": \"done\"}, \
         {\"job_id_5000\": \"done\"}], \"next\": null}\n"
    );
    let num = read_response(&mut reader).expect("num_jobs after the stream");
    assert_eq!(num.json(), serde_json::json!({"num_jobs": 0}));

    // HTTP/1.0 knows no chunks: no length, `Connection: close`, and the
    // body is everything until the close — even if keep-alive was asked.
    for request in [
        &b"GET /api/jobs HTTP/1.0\r\n\r\n"[..],
        b"GET /api/jobs HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    ] {
        let raw = exchange(server.addr, request);
        let r = parse_response(&raw).expect("a response");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("connection"), Some("close"));
        assert_eq!(r.header("content-length"), None);
        assert_eq!(r.header("transfer-encoding"), None);
        assert_eq!(r.text(), expected);
    }

    // HEAD: the GET's headers, no body; the next request is read right after.
    let raw = exchange(
        server.addr,
        b"HEAD /api/jobs HTTP/1.1\r\nHost: localhost\r\n\r\n\
          GET /api/num_jobs HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    let text = String::from_utf8(raw).expect("UTF-8");
    let (head, rest) = text.split_once("\r\n\r\n").expect("a head");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("\r\nTransfer-Encoding: chunked"), "{head}");
    assert!(
        rest.starts_with("HTTP/1.1 200 OK\r\n"),
        "a body after HEAD: {rest:.80}"
    );
    assert!(rest.ends_with("{\"num_jobs\": 0}\n"), "{rest}");
}

/// VmHWM (peak resident set) of a process, in kB.
fn peak_rss_kb(pid: u32) -> u64 {
    proc_status_kb(pid, "VmHWM:")
}

/// VmRSS (current resident set) of a process, in kB.
fn rss_kb(pid: u32) -> u64 {
    proc_status_kb(pid, "VmRSS:")
}

fn proc_status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .expect("the field");
    line.split_whitespace()
        .nth(1)
        .and_then(|kb| kb.parse().ok())
        .expect("a number")
}

/// Issue 9, item 5: 16 clients fetch a listing of 100,000 jobs (2.8 MB) at
/// once. Each stops reading after its first bytes and waits for the others,
/// so all 16 answers are in progress together. Built whole, that held 16
/// copies (two each: the text and the output buffer, about 90 MB); streamed,
/// each connection holds a page or two, and the peak barely moves.
#[test]
fn sixteen_concurrent_listings_keep_peak_memory_flat() {
    const JOBS: usize = 100_000;
    const READERS: usize = 16;
    /// Well above what 16 streams hold (16 × a few hundred KB), well below
    /// one copy of the list per reader (16 × 2 × 2.8 MB).
    const MAX_GROWTH_KB: u64 = 24 * 1024;
    let (server, _dir) = start("jobs-memory");
    submit_many(server.addr, JOBS);
    drain(&server);
    // Once, so that whatever one listing allocates the first time is counted
    // in the baseline.
    assert_eq!(
        server.get("/api/jobs").json()["data"]
            .as_array()
            .map(Vec::len),
        Some(JOBS)
    );
    let before = peak_rss_kb(server.pid());

    let all_started = Arc::new(Barrier::new(READERS));
    let lengths: Vec<usize> = thread::scope(|scope| {
        let readers: Vec<_> = (0..READERS)
            .map(|_| {
                let all_started = Arc::clone(&all_started);
                let addr = server.addr;
                scope.spawn(move || {
                    let mut stream = TcpStream::connect(addr).expect("connect");
                    stream
                        .set_read_timeout(Some(Duration::from_secs(60)))
                        .expect("timeout");
                    stream
                        .write_all(
                            b"GET /api/jobs HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
                        )
                        .expect("write");
                    let mut first = [0; 16];
                    stream.read_exact(&mut first).expect("the first bytes");
                    // Every answer is now under way; the server must hold
                    // all 16 at once.
                    all_started.wait();
                    let mut rest = Vec::new();
                    stream.read_to_end(&mut rest).expect("the rest");
                    let mut raw = first.to_vec();
                    raw.extend_from_slice(&rest);
                    let r = parse_response(&raw).expect("a complete response");
                    assert_eq!(r.status, 200);
                    r.body.len()
                })
            })
            .collect();
        readers
            .into_iter()
            .map(|r| r.join().expect("reader"))
            .collect()
    });
    let after = peak_rss_kb(server.pid());
    eprintln!("VmHWM {before} kB -> {after} kB with {READERS} readers of {JOBS} jobs");
    // VmHWM is brought up to date lazily by the kernel, so a later reading
    // may even be a little lower: compare without underflow.
    let growth = after.saturating_sub(before);
    assert!(
        growth < MAX_GROWTH_KB,
        "peak memory grew by {growth} kB (from {before} kB) with {READERS} concurrent listings"
    );
    let expected_len = expected_listing(JOBS as u64).len();
    assert!(lengths.iter().all(|&n| n == expected_len), "{lengths:?}");

    // Eight keep-alive connections fetch the whole list once each, then sit
    // idle: none may keep a buffer the size of the list (the old server kept
    // each connection's largest output buffer for the connection's life).
    let resident = rss_kb(server.pid());
    let idle: Vec<_> = (0..8)
        .map(|_| {
            let stream = TcpStream::connect(server.addr).expect("connect");
            stream
                .set_read_timeout(Some(Duration::from_secs(60)))
                .expect("timeout");
            let mut reader = BufReader::new(stream);
            reader
                .get_mut()
                .write_all(b"GET /api/jobs HTTP/1.1\r\nHost: localhost\r\n\r\n")
                .expect("write");
            let r = read_response(&mut reader).expect("the listing");
            assert_eq!(r.body.len(), expected_len);
            reader
        })
        .collect();
    let idle_resident = rss_kb(server.pid());
    eprintln!("VmRSS {resident} kB -> {idle_resident} kB with 8 idle connections");
    assert!(
        idle_resident.saturating_sub(resident) < 8 * 1024,
        "8 idle connections hold {} kB more",
        idle_resident.saturating_sub(resident)
    );
    drop(idle);
}
