//! group_commit — the disk's ceiling for "done means durable": how many
//! jobs per second N clients can get durably recorded in one directory when
//! one committer thread flushes the directory for all of them (group commit).
//!
//!     group_commit link|newfile DIR CLIENTS SECONDS [eager|full]
//!
//! Each of CLIENTS threads loops, as a closed-loop client of a server would:
//!
//! - `link`: hard-link its own durable source file into DIR under a new name
//!   (what le-stats-sportif does for a result it has already written once);
//! - `newfile`: write a small new file, `fdatasync` it and rename it into
//!   place (the cost of a result never seen before);
//!
//! then waits for the next flush of DIR that starts after its change. When
//! the committer starts a flush:
//!
//! - `eager` (the default): as soon as anyone waits — back to back while
//!   anyone waits, so every flush covers every change made while the
//!   previous one ran;
//! - `full`: once every client waits — every flush covers one change of
//!   each client. In a closed loop this is the most a flush can cover, and
//!   the bound for any committer: with eager flushing, clients woken
//!   together change the directory one after another, the first starts the
//!   next flush at once, and the others wait for the one after it.
//!
//! Prints one line
//!
//!     BENCH ops=N duration_s=S ops_s=R flushes=F p50_us=P p99_us=Q
//!
//! (latency: change started to flush ended). DIR must exist and should be
//! empty, on the file system under test; the caller removes it afterwards.
//! Built by scripts/bench.sh with `rustc -O`; std only.

#[path = "latency.rs"]
mod latency;

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
struct Schedule {
    state: Mutex<Flushes>,
    /// Condition: "enough clients wait for the next flush" (see
    /// [`Schedule::ready`]) or `stop`.
    work: Condvar,
    /// Condition: "`done` grew".
    flushed: Condvar,
    /// Flush only when every active client waits.
    full: bool,
}

/// Invariant: `done <= started <= done + 1` (one flush at a time);
/// `waiting` clients wait for flush `started + 1`, not begun yet (a flush
/// begun after a client's change covers it); `active` clients have not
/// finished their run.
struct Flushes {
    started: u64,
    done: u64,
    waiting: usize,
    active: usize,
    stop: bool,
}

impl Schedule {
    /// Whether the committer should start the next flush.
    fn ready(&self, state: &Flushes) -> bool {
        if self.full {
            state.waiting > 0 && state.waiting >= state.active
        } else {
            state.waiting > 0
        }
    }
}

fn main() {
    let args: Vec<String> = env::args().collect();
    if !(5..=6).contains(&args.len())
        || !matches!(args[1].as_str(), "link" | "newfile")
        || !matches!(
            args.get(5).map_or("eager", String::as_str),
            "eager" | "full"
        )
    {
        eprintln!("usage: group_commit link|newfile DIR CLIENTS SECONDS [eager|full]");
        process::exit(2);
    }
    let mode = args[1].clone();
    let dir = PathBuf::from(&args[2]);
    let clients: usize = args[3].parse().expect("CLIENTS is a number");
    let seconds: f64 = args[4].parse().expect("SECONDS is a number");
    let dir_file = File::open(&dir).expect("open DIR");

    let schedule = Arc::new(Schedule {
        state: Mutex::new(Flushes {
            started: 0,
            done: 0,
            waiting: 0,
            active: clients,
            stop: false,
        }),
        work: Condvar::new(),
        flushed: Condvar::new(),
        full: args.get(5).is_some_and(|policy| policy == "full"),
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
            thread::spawn(move || {
                let latencies = client_loop(client, &mode, &dir, &schedule, deadline);
                schedule.state.lock().unwrap().active -= 1;
                schedule.work.notify_one();
                latencies
            })
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
    println!(
        "BENCH {} flushes={flushes}",
        latency::summary("ops", &mut latencies, elapsed)
    );
}

/// The committer: flushes DIR whenever the schedule is ready.
fn commit(schedule: &Schedule, dir: &File) {
    let mut state = schedule.state.lock().unwrap();
    loop {
        while !schedule.ready(&state) && !state.stop {
            state = schedule.work.wait(state).unwrap();
        }
        if state.stop {
            return;
        }
        state.started += 1;
        state.waiting = 0;
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
    state.waiting += 1;
    if schedule.ready(&state) {
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
