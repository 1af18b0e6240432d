//! group_commit — the disk's ceiling for "done means durable": how many
//! jobs per second N clients can get durably recorded in one directory when
//! one committer thread flushes the directory for all of them (group commit).
//!
//!     group_commit link|newfile DIR CLIENTS SECONDS
//!
//! Each of CLIENTS threads loops, as a closed-loop client of a server would:
//!
//! - `link`: hard-link its own durable source file into DIR under a new name
//!   (what le-stats-sportif does for a result it has already written once);
//! - `newfile`: write a small new file, `fdatasync` it and rename it into
//!   place (the cost of a result never seen before);
//!
//! then waits for the next flush of DIR that starts after its change. The
//! committer flushes back to back while anyone waits, so every flush covers
//! every change made while the previous one ran. Prints one line
//!
//!     BENCH ops=N duration_s=S ops_s=R flushes=F p50_us=P p99_us=Q
//!
//! (latency: change started to flush ended). DIR must exist and should be
//! empty, on the file system under test; the caller removes it afterwards.
//! Built by scripts/bench.sh with `rustc -O`; std only.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use std::{env, process, thread};

/// ext4 allows 65,000 links to one inode; a source is replaced before that.
const LINKS_PER_SOURCE: u64 = 60_000;
/// About the size of a `state_mean` result.
const RESULT: &[u8] = b"{\"status\": \"done\", \"data\": {\"Ohio\": 33.7}}";

/// The flush schedule, shared by the committer and the clients.
///
/// Invariant: `done <= started`, and `started <= done + 1` (one flush at a
/// time); `wanted` is the highest flush number a client waits for. A flush
/// begun after a client's change covers it, so a client that changed the
/// directory waits for flush `started + 1`.
struct Schedule {
    state: Mutex<Flushes>,
    /// Condition: "`wanted > started`" (work for the committer) or `stop`.
    work: Condvar,
    /// Condition: "`done` grew".
    flushed: Condvar,
}

struct Flushes {
    wanted: u64,
    started: u64,
    done: u64,
    stop: bool,
}

fn main() {
    let args: Vec<String> = env::args().collect();
    if args.len() != 5 || !matches!(args[1].as_str(), "link" | "newfile") {
        eprintln!("usage: group_commit link|newfile DIR CLIENTS SECONDS");
        process::exit(2);
    }
    let mode = args[1].clone();
    let dir = PathBuf::from(&args[2]);
    let clients: usize = args[3].parse().expect("CLIENTS is a number");
    let seconds: f64 = args[4].parse().expect("SECONDS is a number");
    let dir_file = File::open(&dir).expect("open DIR");

    let schedule = Arc::new(Schedule {
        state: Mutex::new(Flushes {
            wanted: 0,
            started: 0,
            done: 0,
            stop: false,
        }),
        work: Condvar::new(),
        flushed: Condvar::new(),
    });
    let committer = {
        let schedule = Arc::clone(&schedule);
        thread::spawn(move || commit(&schedule, &dir_file))
    };

    let begin = Instant::now();
    let deadline = begin + Duration::from_secs_f64(seconds);
    let handles: Vec<_> = (0..clients)
        .map(|client| {
            let (schedule, dir, mode) = (Arc::clone(&schedule), dir.clone(), mode.clone());
            thread::spawn(move || client_loop(client, &mode, &dir, &schedule, deadline))
        })
        .collect();
    let mut latencies: Vec<u32> = Vec::new();
    for handle in handles {
        latencies.extend(handle.join().expect("a client thread panicked"));
    }
    let elapsed = seconds.min(begin.elapsed().as_secs_f64());
    let flushes = {
        let mut state = schedule.state.lock().unwrap();
        state.stop = true;
        state.done
    };
    schedule.work.notify_all();
    committer.join().expect("the committer panicked");
    latencies.sort_unstable();
    let percentile = |p: usize| latencies.get(latencies.len() * p / 100).copied().unwrap_or(0);
    println!(
        "BENCH ops={} duration_s={elapsed:.3} ops_s={:.1} flushes={flushes} p50_us={} p99_us={}",
        latencies.len(),
        latencies.len() as f64 / elapsed,
        percentile(50),
        percentile(99)
    );
}

/// The committer: flushes DIR back to back while a client waits.
fn commit(schedule: &Schedule, dir: &File) {
    let mut state = schedule.state.lock().unwrap();
    loop {
        while state.wanted <= state.started && !state.stop {
            state = schedule.work.wait(state).unwrap();
        }
        if state.stop {
            return;
        }
        state.started += 1;
        let number = state.started;
        drop(state);
        dir.sync_all().expect("fsync DIR");
        state = schedule.state.lock().unwrap();
        state.done = number;
        schedule.flushed.notify_all();
    }
}

/// Waits until a flush begun after this call has ended.
fn wait_for_flush(schedule: &Schedule) {
    let mut state = schedule.state.lock().unwrap();
    let mine = state.started + 1;
    if state.wanted < mine {
        state.wanted = mine;
        schedule.work.notify_one();
    }
    while state.done < mine {
        state = schedule.flushed.wait(state).unwrap();
    }
}

/// One client until `deadline`: the latency (µs) of each op that ended
/// before it.
fn client_loop(
    client: usize,
    mode: &str,
    dir: &Path,
    schedule: &Schedule,
    deadline: Instant,
) -> Vec<u32> {
    let mut latencies = Vec::new();
    let mut source = None;
    for op in 0u64.. {
        let start = Instant::now();
        if start >= deadline {
            break;
        }
        let name = dir.join(format!("c{client}_{op}.json"));
        if mode == "link" {
            if op % LINKS_PER_SOURCE == 0 {
                let path = dir.join(format!("source_c{client}_{}", op / LINKS_PER_SOURCE));
                write_durable(&path, RESULT);
                // The source's own entry is durable before anything links it.
                wait_for_flush(schedule);
                source = Some(path);
            }
            fs::hard_link(source.as_ref().unwrap(), &name).expect("link");
        } else {
            let temp = dir.join(format!("tmp_c{client}"));
            write_durable(&temp, RESULT);
            fs::rename(&temp, &name).expect("rename");
        }
        wait_for_flush(schedule);
        let end = Instant::now();
        if end <= deadline {
            latencies.push(u32::try_from((end - start).as_micros()).unwrap_or(u32::MAX));
        }
    }
    latencies
}

/// Creates `path` with `bytes`, its data flushed (`fdatasync`).
fn write_durable(path: &Path, bytes: &[u8]) {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .expect("create");
    file.write_all(bytes).expect("write");
    file.sync_data().expect("fdatasync");
}
