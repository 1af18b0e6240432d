//! e2e_client — closed-loop clients of le-stats-sportif: the whole life of
//! a job, as a user sees it.
//!
//!     e2e_client HOST:PORT BODIES_FILE CLIENTS SECONDS
//!
//! BODIES_FILE holds one `state_mean` request body per line (every real
//! (question, state) pair; scripts/bench.sh writes it from the data). Each
//! of CLIENTS threads has one keep-alive connection and loops until
//! SECONDS have passed: POST /api/state_mean with the next body of the file
//! (client i starts at line i × lines / CLIENTS, so the clients meet both
//! results never computed before and repeats), then
//! GET /api/get_results/<id>?wait=30 (the server holds the answer until the
//! job is done), again if the wait ran out, until the answer is "done".
//! Prints one line
//!
//!     BENCH jobs=N duration_s=S jobs_s=R p50_us=P p99_us=Q requests=M
//!           failures=F client_cpu_s=C
//!
//! where latency is submit sent to "done" received, and `client_cpu_s` is
//! this process's own CPU time (user + system), so the caller can show that
//! the client is not what limits the rate. Built by scripts/bench.sh with
//! `rustc -O`; std only.

#[path = "latency.rs"]
mod latency;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};
use std::{env, fs, process, thread};

/// What one client thread counted.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    requests: u64,
    failures: u64,
}

impl Tally {
    /// Counts an answer that is neither a job id nor a job status; the
    /// first one is printed to stderr, so that a run of failures says why.
    fn fail(&mut self, answer: &str) {
        if self.failures == 0 {
            eprintln!("e2e_client: unexpected answer: {answer}");
        }
        self.failures += 1;
    }
}

fn main() {
    let args: Vec<String> = env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: e2e_client HOST:PORT BODIES_FILE CLIENTS SECONDS");
        process::exit(2);
    }
    let address = args[1].clone();
    let bodies: Arc<Vec<String>> = Arc::new(
        fs::read_to_string(&args[2])
            .expect("read BODIES_FILE")
            .lines()
            .filter(|line| !line.is_empty())
            .map(str::to_owned)
            .collect(),
    );
    assert!(!bodies.is_empty(), "BODIES_FILE has no body");
    let clients: usize = args[3].parse().expect("CLIENTS is a number");
    let seconds: f64 = args[4].parse().expect("SECONDS is a number");
    let begin = Instant::now();
    let deadline = begin + Duration::from_secs_f64(seconds);
    let handles: Vec<_> = (0..clients)
        .map(|client| {
            let (address, bodies) = (address.clone(), Arc::clone(&bodies));
            let first = client * bodies.len() / clients;
            thread::spawn(move || run_client(&address, &bodies, first, deadline))
        })
        .collect();
    let mut total = Tally::default();
    for handle in handles {
        let tally = handle.join().expect("a client thread panicked");
        total.latencies_us.extend(tally.latencies_us);
        total.requests += tally.requests;
        total.failures += tally.failures;
    }
    let elapsed = seconds.min(begin.elapsed().as_secs_f64());
    println!(
        "BENCH {} requests={} failures={} client_cpu_s={:.2}",
        latency::summary("jobs", &mut total.latencies_us, elapsed),
        total.requests,
        total.failures,
        own_cpu_seconds()
    );
}

/// One closed-loop client until `deadline`.
fn run_client(address: &str, bodies: &[String], first: usize, deadline: Instant) -> Tally {
    let mut tally = Tally::default();
    let stream = TcpStream::connect(address).expect("connect");
    stream.set_nodelay(true).expect("TCP_NODELAY");
    let mut writer = stream.try_clone().expect("clone the stream");
    let mut reader = BufReader::new(stream);
    for body in bodies.iter().cycle().skip(first) {
        let start = Instant::now();
        if start >= deadline {
            break;
        }
        let request = format!(
            "POST /api/state_mean HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let answer = exchange(&mut writer, &mut reader, &request, &mut tally);
        let Some(id) = job_id(&answer) else {
            tally.fail(&answer);
            continue;
        };
        let poll = format!("GET /api/get_results/{id}?wait=30 HTTP/1.1\r\nHost: {address}\r\n\r\n");
        loop {
            let answer = exchange(&mut writer, &mut reader, &poll, &mut tally);
            if answer.contains("\"status\": \"done\"") {
                let end = Instant::now();
                if end <= deadline {
                    let us = (end - start).as_micros();
                    tally
                        .latencies_us
                        .push(u32::try_from(us).unwrap_or(u32::MAX));
                }
                break;
            }
            if !answer.contains("\"status\": \"running\"") {
                tally.fail(&answer);
                break;
            }
        }
    }
    tally
}

/// Sends `request` and reads its answer's body (Content-Length framing,
/// which is how le-stats-sportif frames these small answers). A broken
/// connection ends the whole run loudly: it is not a figure to average.
fn exchange(
    writer: &mut TcpStream,
    reader: &mut BufReader<TcpStream>,
    request: &str,
    tally: &mut Tally,
) -> String {
    tally.requests += 1;
    writer
        .write_all(request.as_bytes())
        .expect("send a request");
    let mut length = None;
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).expect("read an answer head");
        assert!(n > 0, "the server closed the connection");
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.trim().parse::<usize>().expect("a Content-Length"));
            }
        }
    }
    let mut body = vec![0; length.expect("an answer without Content-Length")];
    reader.read_exact(&mut body).expect("read an answer body");
    String::from_utf8_lossy(&body).into_owned()
}

/// The id in `{"job_id": "job_id_N"}`.
fn job_id(answer: &str) -> Option<&str> {
    let start = answer.find("job_id_")?;
    let rest = &answer[start..];
    let end = rest.find('"')?;
    Some(&rest[..end])
}

/// This process's CPU time so far (user + system), from /proc/self/stat in
/// clock ticks of 1/100 s (USER_HZ on Linux).
fn own_cpu_seconds() -> f64 {
    let stat = fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold
    // spaces: state is field 3, utime 14 and stime 15.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}
