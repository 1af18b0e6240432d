//! The HTTP layer end to end over real sockets on 127.0.0.1, port 0, with a
//! small echo handler. Every test stops the server it starts.

use le_stats_sportif::http::{Handler, Request, Response};
use le_stats_sportif::limits::Limits;
use le_stats_sportif::server::{OnError, OnRequest, RequestRecord, Server, ServerHandle};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Answers `{"method": M, "path": P, "body": B}`; `/panic` panics.
struct Echo;

impl Handler for Echo {
    fn handle(&self, request: &Request) -> Response {
        if request.path() == "/panic" {
            panic!("the test handler panics on /panic");
        }
        let body = serde_json::json!({
            "method": request.method,
            "path": request.path(),
            "body": String::from_utf8_lossy(&request.body),
        });
        Response::json(200, body.to_string())
    }
}

type Log = Arc<Mutex<Vec<(String, String, u16)>>>;

fn start(limits: Limits) -> (ServerHandle, Log) {
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&log);
    let on_request: OnRequest = Arc::new(move |r: &RequestRecord<'_>| {
        sink.lock()
            .unwrap()
            .push((r.method.to_owned(), r.path.to_owned(), r.status));
    });
    let on_error: OnError = Arc::new(|message: &str| eprintln!("server: {message}"));
    let server = Server::bind("127.0.0.1", 0).unwrap();
    (
        server.start(Arc::new(Echo), limits, on_request, on_error),
        log,
    )
}

/// The log once it holds `n` entries (a deadline of 10 s): a request is
/// logged after its response is written, so a client can read the response
/// a moment before the connection thread logs it.
fn logged(log: &Log, n: usize) -> Vec<(String, String, u16)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let entries = log.lock().unwrap().clone();
        if entries.len() >= n || Instant::now() > deadline {
            return entries;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

fn test_limits() -> Limits {
    Limits {
        max_request_line: 256,
        max_header_bytes: 1024,
        max_header_fields: 10,
        max_body_bytes: 100,
        head_timeout: Duration::from_millis(500),
        body_timeout: Duration::from_millis(500),
        idle_timeout: Duration::from_millis(500),
        write_timeout: Duration::from_millis(500),
        max_connections: 64,
    }
}

fn connect(server: &ServerHandle) -> TcpStream {
    let stream = TcpStream::connect(server.local_addr()).unwrap();
    stream.set_nodelay(true).unwrap();
    // A safety net so that a broken server fails the test instead of hanging it.
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// Reads one response (status line, headers, `Content-Length` body);
/// `head_request` skips the body.
fn read_reply(reader: &mut BufReader<TcpStream>, head_request: bool) -> Reply {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 "), "status line {line:?}");
    let status = line[9..12].parse().unwrap();
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        let (name, value) = line.trim_end().split_once(": ").unwrap();
        headers.push((name.to_owned(), value.to_owned()));
    }
    let mut reply = Reply {
        status,
        headers,
        body: String::new(),
    };
    if !head_request {
        let length: usize = reply.header("Content-Length").unwrap().parse().unwrap();
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        reply.body = String::from_utf8(body).unwrap();
    }
    reply
}

/// True if and only if the server closed the connection (EOF, or a reset).
fn closed(reader: &mut BufReader<TcpStream>) -> bool {
    let mut byte = [0u8; 1];
    matches!(reader.read(&mut byte), Ok(0) | Err(_))
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n")
}

#[test]
fn request_written_one_byte_at_a_time() {
    let (server, log) = start(test_limits());
    let mut stream = connect(&server);
    let request = "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\r\nhello";
    for byte in request.as_bytes() {
        stream.write_all(std::slice::from_ref(byte)).unwrap();
    }
    let reply = read_reply(&mut BufReader::new(stream), false);
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json(),
        serde_json::json!({"method": "POST", "path": "/echo", "body": "hello"})
    );
    server.shutdown();
    assert_eq!(
        logged(&log, 1),
        vec![("POST".to_owned(), "/echo".to_owned(), 200)]
    );
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let (server, _) = start(test_limits());
    let mut stream = connect(&server);
    let three = format!(
        "{}POST /2 HTTP/1.1\r\nHost: test\r\nContent-Length: 3\r\n\r\nabc{}",
        get("/1"),
        get("/3")
    );
    stream.write_all(three.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    for (path, body) in [("/1", ""), ("/2", "abc"), ("/3", "")] {
        let reply = read_reply(&mut reader, false);
        assert_eq!(reply.status, 200);
        assert_eq!(reply.json()["path"], path);
        assert_eq!(reply.json()["body"], body);
        assert_eq!(reply.header("Connection"), None);
    }
    server.shutdown();
}

#[test]
fn keep_alive_reuses_the_connection() {
    let (server, _) = start(test_limits());
    let mut reader = BufReader::new(connect(&server));
    for i in 0..5 {
        reader
            .get_mut()
            .write_all(get(&format!("/{i}")).as_bytes())
            .unwrap();
        let reply = read_reply(&mut reader, false);
        assert_eq!(reply.json()["path"], format!("/{i}"));
    }
    server.shutdown();
}

#[test]
fn connection_close_is_honoured() {
    let (server, _) = start(test_limits());
    let mut reader = BufReader::new(connect(&server));
    reader
        .get_mut()
        .write_all(b"GET /bye HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .unwrap();
    let reply = read_reply(&mut reader, false);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("Connection"), Some("close"));
    assert!(closed(&mut reader));
    server.shutdown();
}

#[test]
fn http_1_0_closes_unless_keep_alive() {
    let (server, _) = start(test_limits());
    let mut reader = BufReader::new(connect(&server));
    reader
        .get_mut()
        .write_all(b"GET /old HTTP/1.0\r\n\r\n")
        .unwrap();
    let reply = read_reply(&mut reader, false);
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("Connection"), Some("close"));
    assert!(closed(&mut reader));

    let mut reader = BufReader::new(connect(&server));
    for _ in 0..2 {
        reader
            .get_mut()
            .write_all(b"GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .unwrap();
        let reply = read_reply(&mut reader, false);
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("Connection"), Some("keep-alive"));
    }
    server.shutdown();
}

#[test]
fn expect_100_continue() {
    let (server, _) = start(test_limits());
    let mut reader = BufReader::new(connect(&server));
    reader
        .get_mut()
        .write_all(
            b"POST /e HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
        )
        .unwrap();
    let mut interim = [0u8; 25];
    reader.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    reader.get_mut().write_all(b"body").unwrap();
    let reply = read_reply(&mut reader, false);
    assert_eq!(reply.json()["body"], "body");

    // Too large: 413 at once, no 100, closed.
    reader
        .get_mut()
        .write_all(b"POST /e HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\nContent-Length: 101\r\n\r\n")
        .unwrap();
    let reply = read_reply(&mut reader, false);
    assert_eq!(reply.status, 413);
    assert!(closed(&mut reader));
    server.shutdown();
}

#[test]
fn chunked_body_is_decoded() {
    let (server, _) = start(test_limits());
    let mut reader = BufReader::new(connect(&server));
    reader
        .get_mut()
        .write_all(b"POST /c HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n")
        .unwrap();
    let reply = read_reply(&mut reader, false);
    assert_eq!(reply.json()["body"], "hello world");
    // The connection stays usable after a chunked body.
    reader
        .get_mut()
        .write_all(get("/after").as_bytes())
        .unwrap();
    assert_eq!(read_reply(&mut reader, false).json()["path"], "/after");

    // A decoded body over the limit is 413, then close.
    reader
        .get_mut()
        .write_all(b"POST /c HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n")
        .unwrap();
    assert_eq!(read_reply(&mut reader, false).status, 413);
    assert!(closed(&mut reader));
    server.shutdown();
}

#[test]
fn body_too_large_is_refused_before_the_body_is_sent() {
    let (server, log) = start(test_limits());
    let mut reader = BufReader::new(connect(&server));
    // Only the head is sent: the 413 must come without waiting for the body.
    reader
        .get_mut()
        .write_all(b"POST /big HTTP/1.1\r\nHost: test\r\nContent-Length: 1000000\r\n\r\n")
        .unwrap();
    let reply = read_reply(&mut reader, false);
    assert_eq!(reply.status, 413);
    assert_eq!(reply.header("Connection"), Some("close"));
    assert_eq!(reply.json()["status"], "error");
    assert!(closed(&mut reader));
    server.shutdown();
    assert_eq!(
        *log.lock().unwrap(),
        vec![("POST".to_owned(), "/big".to_owned(), 413)]
    );
}

#[test]
fn limits_answer_414_and_431_and_errors_are_logged() {
    let (server, log) = start(test_limits());
    let long = format!("GET /{} HTTP/1.1\r\nHost: test\r\n\r\n", "a".repeat(300));
    let big = format!(
        "GET /h HTTP/1.1\r\nHost: test\r\nX: {}\r\n\r\n",
        "b".repeat(1100)
    );
    let many: String = (0..11).map(|i| format!("X{i}: v\r\n")).collect();
    let many = format!("GET /m HTTP/1.1\r\nHost: test\r\n{many}\r\n");
    for (request, status) in [
        (long.as_str(), 414),
        (big.as_str(), 431),
        (many.as_str(), 431),
        ("GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400),
        ("GET / HTTP/3.0\r\nHost: x\r\n\r\n", 505),
        (
            "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
            501,
        ),
    ] {
        let mut reader = BufReader::new(connect(&server));
        reader.get_mut().write_all(request.as_bytes()).unwrap();
        let reply = read_reply(&mut reader, false);
        assert_eq!(reply.status, status, "{request:?}");
        assert_eq!(reply.header("Connection"), Some("close"));
        assert_eq!(reply.json()["status"], "error");
        assert!(closed(&mut reader));
    }
    server.shutdown();
    let log = log.lock().unwrap();
    let statuses: Vec<u16> = log.iter().map(|(_, _, s)| *s).collect();
    assert_eq!(statuses, [414, 431, 431, 400, 505, 501]);
    // A bad header after a good request line is logged with that line.
    assert_eq!(log[2], ("GET".to_owned(), "/m".to_owned(), 431));
    assert_eq!(log[0], ("-".to_owned(), "-".to_owned(), 414));
}

#[test]
fn head_request_gets_no_body() {
    let (server, _) = start(test_limits());
    let mut reader = BufReader::new(connect(&server));
    reader
        .get_mut()
        .write_all(b"HEAD /h HTTP/1.1\r\nHost: test\r\n\r\n")
        .unwrap();
    let reply = read_reply(&mut reader, true);
    assert_eq!(reply.status, 200);
    assert_ne!(reply.header("Content-Length"), Some("0"));
    // The next response starts right away: no body bytes were sent.
    reader.get_mut().write_all(get("/next").as_bytes()).unwrap();
    assert_eq!(read_reply(&mut reader, false).json()["path"], "/next");
    server.shutdown();
}

#[test]
fn a_panicking_handler_is_a_500_and_the_server_goes_on() {
    let (server, log) = start(test_limits());
    let mut reader = BufReader::new(connect(&server));
    reader
        .get_mut()
        .write_all(get("/panic").as_bytes())
        .unwrap();
    let reply = read_reply(&mut reader, false);
    assert_eq!(reply.status, 500);
    assert_eq!(
        reply.json(),
        serde_json::json!({"status": "error", "reason": "internal error"})
    );
    // Same connection, then a new one.
    reader.get_mut().write_all(get("/ok").as_bytes()).unwrap();
    assert_eq!(read_reply(&mut reader, false).status, 200);
    let mut reader = BufReader::new(connect(&server));
    reader.get_mut().write_all(get("/ok2").as_bytes()).unwrap();
    assert_eq!(read_reply(&mut reader, false).status, 200);
    server.shutdown();
    let statuses: Vec<u16> = logged(&log, 3).iter().map(|(_, _, s)| *s).collect();
    assert_eq!(statuses, [500, 200, 200]);
}

#[test]
fn connections_over_the_cap_get_503() {
    let limits = Limits {
        max_connections: 2,
        idle_timeout: Duration::from_secs(5),
        ..test_limits()
    };
    let (server, _) = start(limits);
    // Two served connections: a reply proves each holds a slot.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut reader = BufReader::new(connect(&server));
        reader.get_mut().write_all(get("/hold").as_bytes()).unwrap();
        assert_eq!(read_reply(&mut reader, false).status, 200);
        held.push(reader);
    }
    let mut third = BufReader::new(connect(&server));
    let reply = read_reply(&mut third, false);
    assert_eq!(reply.status, 503);
    assert_eq!(reply.header("Connection"), Some("close"));
    assert_eq!(
        reply.json(),
        serde_json::json!({"status": "error", "reason": "too many connections"})
    );
    assert!(closed(&mut third));

    // Closing one frees its slot; poll (with a deadline) until the server
    // thread has noticed.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut reader = BufReader::new(connect(&server));
        reader
            .get_mut()
            .write_all(get("/again").as_bytes())
            .unwrap();
        let reply = read_reply(&mut reader, false);
        if reply.status == 200 {
            break;
        }
        assert_eq!(reply.status, 503);
        assert!(Instant::now() < deadline, "the slot was never freed");
    }
    server.shutdown();
}

#[test]
fn idle_connection_is_closed_after_the_idle_timeout() {
    let (server, log) = start(test_limits());
    let mut reader = BufReader::new(connect(&server));
    reader.get_mut().write_all(get("/x").as_bytes()).unwrap();
    read_reply(&mut reader, false);
    let idle_start = Instant::now();
    assert!(closed(&mut reader));
    let waited = idle_start.elapsed();
    // Upper bound: loose for a loaded machine (the slowloris test runs
    // beside this one), but below the client's 5 s read timeout, which is
    // what a server that never timed out would run into.
    assert!(
        waited >= Duration::from_millis(450) && waited < Duration::from_secs(3),
        "closed after {waited:?}"
    );
    server.shutdown();
    assert_eq!(
        log.lock().unwrap().len(),
        1,
        "an idle close is not a request"
    );
}

#[test]
fn slow_head_and_slow_body_get_408() {
    let (server, log) = start(test_limits());
    // Head never completes.
    let mut reader = BufReader::new(connect(&server));
    let sent = Instant::now();
    reader
        .get_mut()
        .write_all(b"GET /slow HTTP/1.1\r\n")
        .unwrap();
    let reply = read_reply(&mut reader, false);
    assert_eq!(reply.status, 408);
    assert!(closed(&mut reader));
    let waited = sent.elapsed();
    assert!(waited >= Duration::from_millis(450) && waited < Duration::from_secs(3));

    // Body never completes.
    let mut reader = BufReader::new(connect(&server));
    reader
        .get_mut()
        .write_all(b"POST /slowbody HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
        .unwrap();
    assert_eq!(read_reply(&mut reader, false).status, 408);
    assert!(closed(&mut reader));
    server.shutdown();
    assert_eq!(
        *log.lock().unwrap(),
        vec![
            ("-".to_owned(), "-".to_owned(), 408),
            ("POST".to_owned(), "/slowbody".to_owned(), 408)
        ]
    );
}

/// A body trickled one byte per 100 ms keeps every read short of its
/// socket timeout: only the body deadline, checked again at each read,
/// ends it — with a 408 at `body_timeout`, where a server without the
/// check would answer 200 once the body is complete (18 more bytes: 1.8 s).
#[test]
fn a_trickled_body_gets_408_at_its_deadline() {
    let (server, log) = start(test_limits());
    let mut stream = connect(&server);
    let sent = Instant::now();
    stream
        .write_all(b"POST /trickle HTTP/1.1\r\nHost: t\r\nContent-Length: 20\r\n\r\nab")
        .unwrap();
    let writer = stream.try_clone().unwrap();
    let driver = thread::spawn(move || {
        let mut writer = writer;
        // Pacing is the point of this client; a write fails once closed.
        for _ in 0..18 {
            thread::sleep(Duration::from_millis(100));
            if writer.write_all(b"x").is_err() {
                break;
            }
        }
    });
    let mut reader = BufReader::new(stream);
    assert_eq!(read_reply(&mut reader, false).status, 408);
    let waited = sent.elapsed();
    assert!(closed(&mut reader));
    driver.join().unwrap();
    assert!(
        waited >= Duration::from_millis(500) && waited < Duration::from_secs(3),
        "answered {waited:?} after the head"
    );
    server.shutdown();
    assert_eq!(
        *log.lock().unwrap(),
        vec![("POST".to_owned(), "/trickle".to_owned(), 408)]
    );
}

/// 300 idle keep-alive connections and 300 slowloris connections (one byte
/// every 100 ms) must not stop a fresh request from being answered within a
/// second, and every slowloris connection is closed at its head deadline.
#[test]
fn slowloris_does_not_starve_the_server() {
    // 600 client sockets + 600 server sockets + a few: within the fd limit
    // of this machine (ulimit -n was 20000 when this was written). With a
    // lower limit, run fewer and say why.
    let per_kind = match fd_limit() {
        Some(n) if n < 1300 => {
            eprintln!("NOTE: open-file limit {n} < 1300: using 250 + 250 connections");
            250
        }
        _ => 300,
    };
    let head_timeout = Duration::from_millis(500);
    let limits = Limits {
        head_timeout,
        idle_timeout: Duration::from_secs(10),
        max_connections: 2 * per_kind + 16,
        ..test_limits()
    };
    let (server, _) = start(limits);

    let mut idle = Vec::new();
    for _ in 0..per_kind {
        let mut reader = BufReader::new(connect(&server));
        reader.get_mut().write_all(get("/idle").as_bytes()).unwrap();
        assert_eq!(read_reply(&mut reader, false).status, 200);
        idle.push(reader);
    }

    // The trickling clients: all send their first byte now, then one byte
    // per 100 ms from a driver thread (pacing is the point of this client).
    let request = get("/slow").into_bytes();
    let mut trickle = Vec::new();
    for _ in 0..per_kind {
        let mut stream = connect(&server);
        stream.write_all(&request[..1]).unwrap();
        trickle.push((stream, Instant::now()));
    }
    let writers: Vec<TcpStream> = trickle
        .iter()
        .map(|(s, _)| s.try_clone().unwrap())
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let driver = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let mut writers = writers;
            let mut next = 1;
            while !stop.load(Ordering::Relaxed) && next < request.len() {
                thread::sleep(Duration::from_millis(100));
                for w in &mut writers {
                    let _ = w.write_all(&request[next..=next]); // fails once closed
                }
                next += 1;
            }
        })
    };

    let asked = Instant::now();
    let mut fresh = BufReader::new(connect(&server));
    fresh.get_mut().write_all(get("/fresh").as_bytes()).unwrap();
    let reply = read_reply(&mut fresh, false);
    let latency = asked.elapsed();
    assert_eq!(reply.status, 200);
    assert!(
        latency < Duration::from_secs(1),
        "fresh request took {latency:?}"
    );

    // Generous for a loaded 2-core machine (600 connection threads, other
    // tests running beside this one; 1.5 s late was seen once), yet well
    // before the trickling request would be complete (34 bytes at one per
    // 100 ms: 3.4 s), after which the answer would be a 200, not a 408.
    let slack = Duration::from_secs(2);
    for (stream, first_byte) in trickle {
        let mut reader = BufReader::new(stream);
        let reply = read_reply(&mut reader, false);
        assert_eq!(reply.status, 408);
        assert!(closed(&mut reader));
        let closed_after = first_byte.elapsed();
        assert!(
            closed_after < head_timeout + slack,
            "a slowloris connection was closed {closed_after:?} after its first byte"
        );
    }
    stop.store(true, Ordering::Relaxed);
    driver.join().unwrap();
    // The idle ones are still open and working.
    let reader = &mut idle[0];
    reader
        .get_mut()
        .write_all(get("/still").as_bytes())
        .unwrap();
    assert_eq!(read_reply(reader, false).status, 200);
    drop(idle);
    server.shutdown();
}

/// The soft open-file limit, from /proc (std has no getrlimit).
fn fd_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[test]
fn shutdown_stops_accepting_and_returns() {
    let (server, _) = start(test_limits());
    let addr = server.local_addr();
    // Would hang forever if the wake-up connection did not work.
    server.shutdown();
    assert!(TcpStream::connect(addr).is_err(), "still listening");
}
