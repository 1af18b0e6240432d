//! Issue 9, end to end with the real binary: both logs are FIFOs whose
//! reader never reads (a stalled sink: a hung network mount behaves the
//! same). The server must go on answering — on a keep-alive connection far
//! past what the log queue and the pipe can hold, and on new connections —
//! run jobs, and exit 0 within a few seconds of SIGTERM, saying on stderr
//! how many log lines it dropped.

use crate::common;

use common::{fixture, poll, Client, TempDir};
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// More requests than the log queue (32 Ki lines) and a pipe (64 KiB) can
/// absorb together: the old server stopped answering after about 34 000.
const REQUESTS: usize = 50_000;

const QUESTION: &str = "Percent of adults aged 18 years and older who have obesity";

/// The server process, killed and reaped on drop.
struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_stalled_log_sink_blocks_neither_serving_nor_shutdown() {
    let dir = TempDir::new("log-stall");
    let server_log = dir.path().join("webserver.log");
    let access_log = dir.path().join("access.log");
    let _server_log_reader = common::stalled_fifo(&server_log);
    let _access_log_reader = common::stalled_fifo(&access_log);

    let mut child = Command::new(env!("CARGO_BIN_EXE_le-stats-sportif"))
        .args(["--port", "0", "--threads", "2", "--data"])
        .arg(fixture("survey.csv"))
        .arg("--results-dir")
        .arg(dir.path().join("results"))
        .arg("--log-file")
        .arg(&server_log)
        .arg("--access-log")
        .arg(&access_log)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the server binary");
    let stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let mut server = Server { child };
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the listening line");
    let addr: std::net::SocketAddr = line
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("server did not start: {line:?}"))
        .parse()
        .expect("an address");

    // One keep-alive connection, many requests, on a thread so that a hang
    // fails the test at the deadline instead of hanging it.
    let (done, finished) = mpsc::channel();
    thread::spawn(move || {
        let mut client = Client::connect(addr);
        for i in 0..REQUESTS {
            let r = client.request("GET", "/api/num_jobs", b"");
            assert_eq!(r.status, 200, "request {i}");
        }
        let _ = done.send(client);
    });
    let mut client = finished
        .recv_timeout(Duration::from_secs(120))
        .unwrap_or_else(|_| panic!("the keep-alive connection stopped being answered"));

    // The same connection, a new one, and a job all still work.
    let body = format!(r#"{{"question": "{QUESTION}"}}"#);
    let r = client.run_job("states_mean", &body);
    assert_eq!(r.json()["status"], "done", "{}", r.text());
    let r = common::http(addr, "GET", "/api/num_jobs", None);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["num_jobs"], 0);

    // SIGTERM: drain (nothing left), flush the logs with a deadline, exit 0.
    let start = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let code = poll(Duration::from_secs(15), || {
        server.child.try_wait().expect("try_wait").map(|s| s.code())
    });
    assert_eq!(code, Some(0), "exit status after SIGTERM");
    let took = start.elapsed();
    // The flush deadline is 2 s; the rest is slack for a loaded machine.
    assert!(took < Duration::from_secs(10), "exit took {took:?}");

    let mut err = String::new();
    stderr.read_to_string(&mut err).expect("read stderr");
    assert!(
        err.contains("were not all written") && err.contains("log lines dropped"),
        "stderr: {err}"
    );
    // Every request was answered, so far more lines were dropped than the
    // queue holds: the access-log count is at least REQUESTS minus the
    // queue and what the pipe took.
    let access_dropped: u64 = err
        .split("server-log, ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no access-log drop count in: {err}"));
    assert!(access_dropped >= 10_000, "{access_dropped} dropped; {err}");
}
