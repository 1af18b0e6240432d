//! Shared helpers for the end-to-end tests: the real binary on port 0, a
//! minimal HTTP client over `TcpStream`, polling with deadlines, and paths to
//! the shared course data.
#![allow(dead_code)] // each test file uses its own subset of these helpers

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared");
pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// `../shared/<rel>` if it exists. Otherwise prints a loud skip and returns
/// `None` — except under `CI=true`, where a missing `../shared` fails.
pub fn shared(rel: &str) -> Option<PathBuf> {
    let path = Path::new(SHARED).join(rel);
    if path.exists() {
        return Some(path);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{} is missing, and CI=true requires it", path.display());
    }
    eprintln!(
        "\n*** SKIPPED: {} does not exist (../shared is not beside the project); \
         this test needs the course data ***\n",
        path.display()
    );
    None
}

/// `tests/fixtures/<name>`: the small CSVs written for these tests.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(FIXTURES).join(name)
}

/// Loads `tests/fixtures/<name>`; panics with the loader's message if it fails.
pub fn load_fixture(name: &str) -> le_stats_sportif::dataset::Dataset {
    le_stats_sportif::dataset::Dataset::load(&fixture(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

pub fn subset_csv() -> Option<PathBuf> {
    shared("data/nutrition_activity_obesity_usa_subset.csv")
}

/// A fresh, empty directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "lss-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The real binary, serving on 127.0.0.1 on a free port. Killed and reaped
/// on drop, so that no test leaves a server running.
pub struct ServerProcess {
    pub child: Child,
    pub addr: SocketAddr,
    pub results_dir: PathBuf,
    pub log_file: PathBuf,
    pub access_log: PathBuf,
    stdout: BufReader<ChildStdout>,
}

/// The server binary the end-to-end tests run: `$TEST_SERVER_BIN` when set
/// (to run a test against another build, such as the one before a fix),
/// else this crate's.
pub fn server_bin() -> PathBuf {
    std::env::var_os("TEST_SERVER_BIN").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_le-stats-sportif")),
        PathBuf::from,
    )
}

/// How [`ServerProcess::start_with`] runs the server.
pub struct Launch {
    /// A command that runs the server as its last arguments (`prlimit
    /// --nofile=64:64 --`); empty to run it directly.
    pub wrapper: Vec<String>,
    /// Where the server's stderr goes.
    pub stderr: Stdio,
}

impl Default for Launch {
    fn default() -> Launch {
        Launch {
            wrapper: Vec::new(),
            stderr: Stdio::null(),
        }
    }
}

impl ServerProcess {
    /// Starts the server on `data` with its results and log in `dir`; `extra`
    /// flags are appended. Waits (with a deadline) for its `listening` line.
    pub fn start(data: &Path, dir: &Path, extra: &[&str]) -> ServerProcess {
        ServerProcess::start_with(data, dir, extra, Launch::default())
    }

    /// [`start`](ServerProcess::start), with the server's stderr sent to
    /// `stderr` (a file, to read what a contained panic printed).
    pub fn start_with_stderr(
        data: &Path,
        dir: &Path,
        extra: &[&str],
        stderr: Stdio,
    ) -> ServerProcess {
        ServerProcess::start_with(
            data,
            dir,
            extra,
            Launch {
                stderr,
                ..Launch::default()
            },
        )
    }

    /// [`ServerProcess::start`], run as `launch` says. A wrapper must
    /// `exec` the server, so that the child's pid is the server's.
    pub fn start_with(data: &Path, dir: &Path, extra: &[&str], launch: Launch) -> ServerProcess {
        let results_dir = dir.join("results");
        let log_file = dir.join("webserver.log");
        let access_log = dir.join("access.log");
        let mut command = match launch.wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(server_bin());
                command
            }
            None => Command::new(server_bin()),
        };
        let mut child = command
            .arg("--port")
            .arg("0")
            .arg("--data")
            .arg(data)
            .arg("--results-dir")
            .arg(&results_dir)
            .arg("--log-file")
            .arg(&log_file)
            .arg("--access-log")
            .arg(&access_log)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(launch.stderr)
            .spawn()
            .expect("spawn the server binary");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut stdout = BufReader::new(stdout);
        // `read_line` blocks until the line or EOF (the server exiting) —
        // the server prints the line once its socket is bound.
        let mut line = String::new();
        let read = stdout.read_line(&mut line);
        let addr = match (read, line.trim().strip_prefix("listening on http://")) {
            (Ok(_), Some(addr)) => addr.parse().expect("a socket address"),
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("server did not start: {other:?}");
            }
        };
        ServerProcess {
            child,
            addr,
            results_dir,
            log_file,
            access_log,
            stdout,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (`INT`, `TERM`, `KILL`) with kill(1).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit, at most `limit`; its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "server did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn get(&self, path: &str) -> HttpResponse {
        http(self.addr, "GET", path, None)
    }

    pub fn post(&self, path: &str, body: &str) -> HttpResponse {
        http(self.addr, "POST", path, Some(body.as_bytes()))
    }

    /// Submits a computing request and returns its job id.
    pub fn submit(&self, endpoint: &str, body: &str) -> String {
        let r = self.post(&format!("/api/{endpoint}"), body);
        assert_eq!(r.status, 200, "submit {endpoint} {body}: {}", r.text());
        r.json()["job_id"].as_str().expect("job_id").to_string()
    }

    /// Polls `get_results` until the job is no longer running (deadline 30 s);
    /// the final answer.
    pub fn wait_result(&self, job_id: &str) -> HttpResponse {
        poll(Duration::from_secs(30), || {
            let r = self.get(&format!("/api/get_results/{job_id}"));
            assert_eq!(r.status, 200, "get_results {job_id}: {}", r.text());
            (r.json()["status"] != "running").then_some(r)
        })
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Drain nothing: stdout is dropped with the child.
        let _ = &self.stdout;
    }
}

/// Calls `attempt` until it returns `Some`, at most `limit`; a short pause
/// between attempts. Panics at the deadline.
pub fn poll<T>(limit: Duration, mut attempt: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    let mut pause = Duration::from_micros(200);
    loop {
        if let Some(value) = attempt() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "condition not reached within {limit:?}"
        );
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// True if the body was sent with `Transfer-Encoding: chunked`.
    pub fn is_chunked(&self) -> bool {
        self.header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body with object members in text order.
    pub fn ordered(&self) -> Ordered {
        ordered(&self.text())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// One request on a fresh connection (`Connection: close`), as a client
/// such as curl sends it: `Host: localhost`, no `Origin`, no `Sec-Fetch-*`.
pub fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&[u8]>) -> HttpResponse {
    let headers = [("Host", "localhost"), ("Content-Type", "application/json")];
    http_with(addr, method, path, &headers, body.unwrap_or(b""))
}

/// One HTTP/1.1 request on a fresh connection with exactly `headers` (no
/// `Host` unless given) plus `Connection: close` and `Content-Length`.
pub fn http_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let mut request = format!("{method} {path} HTTP/1.1\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!(
        "Connection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    ));
    let mut request = request.into_bytes();
    request.extend_from_slice(body);
    parse_response(&raw(addr, &request)).expect("a complete response")
}

/// A keep-alive connection that sends requests one after another.
pub struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        Client {
            reader: BufReader::new(stream),
        }
    }

    pub fn request(&mut self, method: &str, path: &str, body: &[u8]) -> HttpResponse {
        let mut message = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        message.extend_from_slice(body);
        self.reader
            .get_mut()
            .write_all(&message)
            .expect("write request");
        read_response(&mut self.reader).expect("a response on the keep-alive connection")
    }

    /// Submits and polls (with a deadline) until done: the final answer.
    pub fn run_job(&mut self, endpoint: &str, body: &str) -> HttpResponse {
        let r = self.request("POST", &format!("/api/{endpoint}"), body.as_bytes());
        assert_eq!(r.status, 200, "submit {endpoint} {body}: {}", r.text());
        let id = r.json()["job_id"].as_str().expect("job_id").to_string();
        poll(Duration::from_secs(30), || {
            let r = self.request("GET", &format!("/api/get_results/{id}"), b"");
            assert_eq!(r.status, 200, "get_results {id}: {}", r.text());
            (r.json()["status"] != "running").then_some(r)
        })
    }
}

/// Reads one response from a buffered connection: a `Content-Length` body,
/// or a chunked one (decoded; `chunked` records that it was).
pub fn read_response(reader: &mut impl BufRead) -> Option<HttpResponse> {
    let mut raw = Vec::new();
    loop {
        let before = raw.len();
        if reader.read_until(b'\n', &mut raw).ok()? == 0 {
            return None;
        }
        if &raw[before..] == b"\r\n" {
            break;
        }
    }
    let mut response = parse_response(&raw)?;
    if response.is_chunked() {
        response.body = read_chunked(reader)?;
        return Some(response);
    }
    let length: usize = response.header("content-length")?.parse().ok()?;
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    response.body = body;
    Some(response)
}

/// Reads and decodes a chunked body (no trailers) up to its last chunk;
/// `None` if it is malformed or cut short.
pub fn read_chunked(reader: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let size = usize::from_str_radix(line.strip_suffix("\r\n")?, 16).ok()?;
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..]).ok()?;
        let mut crlf = [0; 2];
        reader.read_exact(&mut crlf).ok()?;
        if &crlf != b"\r\n" {
            return None;
        }
        if size == 0 {
            return Some(body);
        }
    }
}

/// Parses a whole response (head and body) from bytes; a chunked body is
/// decoded (`None` if it is malformed or incomplete), any other body is the
/// bytes after the head.
pub fn parse_response(raw: &[u8]) -> Option<HttpResponse> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let status = status_line.split(' ').nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut response = HttpResponse {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    };
    if response.is_chunked() && !response.body.is_empty() {
        response.body = read_chunked(&mut &raw[end + 4..])?;
    }
    Some(response)
}

/// One of the course checker's cases.
pub struct Case {
    /// The endpoint, e.g. `states_mean`.
    pub endpoint: String,
    /// The request body (`in-N.json`).
    pub request: String,
    /// The expected `data` as the course server wrote it (`out-N.json`).
    pub expected_text: String,
    /// `expected_text`, parsed with its members in order.
    pub expected: Ordered,
}

/// The names in directory `dir`, sorted naturally (`in-2` before `in-10`).
fn sorted_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let number = |name: &str| -> u64 {
        let digits: String = name.chars().filter(char::is_ascii_digit).collect();
        digits.parse().unwrap_or(0)
    };
    names.sort_by(|a, b| (number(a), a).cmp(&(number(b), b)));
    names
}

/// Every checker case under `root` (`<endpoint>/{input,output}/`), by
/// endpoint and case number.
pub fn checker_cases(root: &Path) -> Vec<Case> {
    let mut cases = Vec::new();
    for endpoint in sorted_names(root) {
        let inputs = root.join(&endpoint).join("input");
        for name in sorted_names(&inputs) {
            let request = std::fs::read_to_string(inputs.join(&name)).expect("read input");
            let out = root
                .join(&endpoint)
                .join("output")
                .join(name.replace("in-", "out-"));
            let expected_text = std::fs::read_to_string(out).expect("read output");
            let expected = ordered(&expected_text);
            cases.push(Case {
                endpoint: endpoint.clone(),
                request,
                expected_text,
                expected,
            });
        }
    }
    cases
}

/// A JSON value whose objects keep their members in text order (the
/// crate's `serde_json::Value` sorts them, which would hide order bugs).
#[derive(Debug, Clone, PartialEq)]
pub enum Ordered {
    Number(f64),
    String(String),
    Object(Vec<(String, Ordered)>),
    Array(Vec<Ordered>),
    Literal(String),
}

/// Parses JSON text into [`Ordered`]; panics on text that is not JSON.
pub fn ordered(text: &str) -> Ordered {
    // Validate first, so that the scanner below may assume well-formed input.
    serde_json::from_str::<serde_json::Value>(text)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    let mut rest = text.trim_start();
    let value = ordered_value(&mut rest);
    assert!(rest.trim().is_empty(), "trailing text: {rest}");
    value
}

fn ordered_value(rest: &mut &str) -> Ordered {
    *rest = rest.trim_start();
    let first = rest.as_bytes()[0];
    match first {
        b'{' | b'[' => {
            let close = if first == b'{' { '}' } else { ']' };
            *rest = rest[1..].trim_start();
            let mut members = Vec::new();
            let mut items = Vec::new();
            while !rest.starts_with(close) {
                if first == b'{' {
                    let Ordered::String(key) = ordered_value(rest) else {
                        panic!("object key is not a string")
                    };
                    *rest = rest
                        .trim_start()
                        .strip_prefix(':')
                        .expect("colon")
                        .trim_start();
                    members.push((key, ordered_value(rest)));
                } else {
                    items.push(ordered_value(rest));
                }
                *rest = rest.trim_start();
                if let Some(after) = rest.strip_prefix(',') {
                    *rest = after.trim_start();
                }
            }
            *rest = &rest[1..];
            if first == b'{' {
                Ordered::Object(members)
            } else {
                Ordered::Array(items)
            }
        }
        b'"' => {
            let bytes = rest.as_bytes();
            let mut i = 1;
            while bytes[i] != b'"' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            let literal = &rest[..=i];
            *rest = &rest[i + 1..];
            Ordered::String(serde_json::from_str(literal).expect("a JSON string"))
        }
        _ => {
            let end = rest
                .find(|c: char| c == ',' || c == '}' || c == ']' || c.is_whitespace())
                .unwrap_or(rest.len());
            let token = &rest[..end];
            *rest = &rest[end..];
            match token.parse::<f64>() {
                Ok(n) => Ordered::Number(n),
                Err(_) => Ordered::Literal(token.to_string()),
            }
        }
    }
}

/// Panics unless `got` has the same members as `expected`, every number
/// within 1e-9, in the same order — except that members whose values are
/// equal may come in any order among themselves: the course's answers were
/// sorted by numpy's unstable quicksort, so equal means appear there in no
/// particular order, while this server orders them by name (the SPEC).
pub fn assert_same(expected: &Ordered, got: &Ordered, context: &str) {
    match (expected, got) {
        (Ordered::Object(e), Ordered::Object(g)) => {
            assert_eq!(e.len(), g.len(), "{context}: member counts differ");
            for (key, value) in e {
                let found = g.iter().find(|(k, _)| k == key);
                let (_, got_value) =
                    found.unwrap_or_else(|| panic!("{context}: member {key:?} missing"));
                assert_same(value, got_value, &format!("{context} [{key}]"));
            }
            for ((ek, ev), (gk, gv)) in e.iter().zip(g) {
                if ek != gk {
                    let tied = matches!((ev, gv), (Ordered::Number(a), Ordered::Number(b))
                        if (a - b).abs() <= 1e-9);
                    assert!(tied, "{context}: {gk:?} stands where {ek:?} should");
                }
            }
        }
        (Ordered::Number(e), Ordered::Number(g)) => {
            assert!((e - g).abs() <= 1e-9, "{context}: expected {e}, got {g}");
        }
        _ => assert_eq!(expected, got, "{context}"),
    }
}

/// Writes `bytes` on a fresh connection, half-closes, and returns everything
/// the server sent until it closed.
pub fn raw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    stream.write_all(bytes).expect("write");
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    out
}

/// Makes a FIFO at `path` and opens it for reading *and* writing: on Linux
/// that does not wait for a writer, and it keeps a reader present (so a
/// logger's open of the FIFO does not block) that reads only when the
/// caller reads from the returned file — a log sink that stalls on demand.
pub fn stalled_fifo(path: &Path) -> std::fs::File {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open the FIFO")
}
