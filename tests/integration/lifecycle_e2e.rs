//! Process lifecycle against the real binary: restart on the same results
//! directory, Ctrl-C / SIGTERM drains and exits 0, SIGKILL leaves no torn
//! result file.

use crate::common;

use common::{Client, Launch, ServerProcess, TempDir};
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

const OBESITY: &str = "Percent of adults aged 18 years and older who have obesity";

fn body(state: Option<&str>) -> String {
    match state {
        Some(s) => serde_json::json!({"question": OBESITY, "state": s}).to_string(),
        None => serde_json::json!({"question": OBESITY}).to_string(),
    }
}

#[test]
fn a_restarted_server_answers_old_ids_and_numbers_after_the_highest() {
    let Some(data) = common::subset_csv() else {
        return;
    };
    let dir = TempDir::new("restart");
    let first_answer;
    {
        let mut server = ServerProcess::start(&data, dir.path(), &[]);
        for _ in 0..3 {
            let id = server.submit("states_mean", &body(None));
            server.wait_result(&id);
        }
        first_answer = server.get("/api/get_results/job_id_2").text();
        // A clean stop (a SIGKILL is the other test).
        server.signal("INT");
        assert_eq!(server.wait_exit(Duration::from_secs(30)), Some(0));
    }
    let server = ServerProcess::start(&data, dir.path(), &[]);
    assert_eq!(server.get("/api/get_results/job_id_2").text(), first_answer);
    assert_eq!(server.submit("global_mean", &body(None)), "job_id_4");
    let jobs = server.get("/api/jobs").json();
    assert_eq!(jobs["data"].as_array().unwrap().len(), 4);
    assert_eq!(jobs["data"][0]["job_id_1"], "done");
}

/// Submits `n` jobs as fast as one connection allows; their ids.
fn burst(server: &ServerProcess, n: usize) -> Vec<String> {
    let mut client = Client::connect(server.addr);
    (0..n)
        .map(|i| {
            // Mostly the heaviest job (a large answer and file), so that
            // the queue is still long when the burst ends.
            let state_level = i % 6 == 5;
            let endpoint = if state_level {
                "state_mean"
            } else {
                "mean_by_category"
            };
            let r = client.request(
                "POST",
                &format!("/api/{endpoint}"),
                body(state_level.then_some("Ohio")).as_bytes(),
            );
            assert_eq!(r.status, 200, "{}", r.text());
            r.json()["job_id"].as_str().unwrap().to_string()
        })
        .collect()
}

fn signal_drains_and_exits_zero(signal: &str) {
    let Some(data) = common::subset_csv() else {
        return;
    };
    let dir = TempDir::new(&format!("signal-{signal}"));
    let mut server = ServerProcess::start(&data, dir.path(), &["--threads", "1"]);
    let ids = burst(&server, 300);
    // The signal must arrive while jobs are still queued, or this would not
    // test the drain: 300 jobs on one worker take far longer than this check.
    let pending = server.get("/api/num_jobs").json()["num_jobs"]
        .as_u64()
        .unwrap();
    assert!(
        pending > 0,
        "every job finished before the signal; nothing to drain"
    );
    server.signal(signal);
    assert_eq!(server.wait_exit(Duration::from_secs(60)), Some(0));
    for id in &ids {
        let path = server.results_dir.join(format!("{id}.json"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{} after {signal}: {e}", path.display()));
        serde_json::from_str::<serde_json::Value>(&text).expect("a whole JSON file");
    }
    let log = std::fs::read_to_string(&server.log_file).expect("log file");
    assert!(
        log.contains(" submitted: state_mean"),
        "job events are logged"
    );
    assert!(!log.contains("POST "), "requests are not in the server log");
    let access = std::fs::read_to_string(&server.access_log).expect("access log");
    assert!(
        access.contains(r#""POST /api/state_mean HTTP/1.1" 200 "#),
        "requests are in the access log, flushed before the exit"
    );
}

#[test]
fn ctrl_c_drains_the_queue_and_exits_0() {
    signal_drains_and_exits_zero("INT");
}

#[test]
fn sigterm_drains_the_queue_and_exits_0() {
    signal_drains_and_exits_zero("TERM");
}

/// A second Ctrl-C during the drain exits at once with 130, even while
/// the server's stderr blocks: the signal handler does no I/O and takes no
/// lock that I/O can hold, so the second signal is heard while the first
/// one's drain is still running and nobody reads stderr. (Before, the
/// handler itself printed to stderr: blocked there, it never ran for the
/// second signal, and the server drained every queued job, then exited 0.)
#[test]
fn a_second_ctrl_c_exits_at_once_with_130_even_while_stderr_blocks() {
    let Some(data) = common::subset_csv() else {
        return;
    };
    let dir = TempDir::new("signal-twice");
    let (mut server, _stderr) = start_with_blocked_stderr(&data, dir.path());
    // Eight clients outpace the one worker: thousands of jobs queue up, a
    // drain of well over a hundred milliseconds.
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| burst(&server, 1500));
        }
    });
    let pending = server.get("/api/num_jobs").json()["num_jobs"]
        .as_u64()
        .unwrap();
    assert!(
        pending >= 1000,
        "only {pending} jobs queued: no drain to interrupt"
    );
    server.signal("INT");
    // The first signal is being carried out once the drain is logged.
    common::poll(Duration::from_secs(30), || {
        let log = std::fs::read_to_string(&server.log_file).ok()?;
        log.contains("shutdown requested: draining").then_some(())
    });
    server.signal("INT");
    assert_eq!(server.wait_exit(Duration::from_secs(20)), Some(130));
}

/// A server whose stderr blocks: a socket the test never reads from,
/// filled once the server has started. The other end is returned, to keep.
fn start_with_blocked_stderr(data: &Path, dir: &Path) -> (ServerProcess, UnixStream) {
    let (stderr, never_read) = UnixStream::pair().expect("socket pair");
    let filler = stderr.try_clone().expect("clone the socket");
    let launch = Launch {
        wrapper: Vec::new(),
        stderr: Stdio::from(OwnedFd::from(stderr)),
    };
    let server = ServerProcess::start_with(data, dir, &["--threads", "1"], launch);
    fill_until_it_would_block(&filler);
    (server, never_read)
}

/// One signal while stderr blocks: the "signal received" line cannot be
/// written, and the drain and the exit go on all the same (the main thread
/// has that line printed by a thread of its own); the server log has it.
#[test]
fn one_signal_while_stderr_blocks_still_drains_and_exits_0() {
    let Some(data) = common::subset_csv() else {
        return;
    };
    let dir = TempDir::new("signal-stderr");
    let (mut server, _stderr) = start_with_blocked_stderr(&data, dir.path());
    let id = server.submit("states_mean", &body(None));
    server.signal("TERM");
    assert_eq!(server.wait_exit(Duration::from_secs(30)), Some(0));
    assert!(server.results_dir.join(format!("{id}.json")).exists());
    // What stderr could not take, the server log has.
    let log = std::fs::read_to_string(&server.log_file).expect("server log");
    assert!(
        log.contains(" INFO signal received: draining the queued jobs, then exiting"),
        "{log}"
    );
}

/// Writes into `socket` until its buffer is full, so that the next write
/// by anyone sharing it blocks. (Non-blocking is a property of the open
/// socket, shared with the server's stderr: set only while the server
/// writes nothing there, and cleared before it returns.)
fn fill_until_it_would_block(socket: &UnixStream) {
    socket.set_nonblocking(true).expect("non-blocking");
    let chunk = [b'x'; 4096];
    let mut socket_ref = socket;
    loop {
        match socket_ref.write(&chunk) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("filling the stderr socket: {e}"),
        }
    }
    socket.set_nonblocking(false).expect("blocking again");
}

#[test]
fn sigkill_mid_load_leaves_no_torn_file_and_no_id_is_reused() {
    let Some(data) = common::subset_csv() else {
        return;
    };
    let dir = TempDir::new("sigkill");
    let results;
    let handed_out;
    {
        let mut server = ServerProcess::start(&data, dir.path(), &["--threads", "2"]);
        handed_out = burst(&server, 400).len() as u64; // ids 1..=400
        server.signal("KILL");
        server.wait_exit(Duration::from_secs(10));
        results = server.results_dir.clone();
    }
    let mut highest = 0;
    for entry in std::fs::read_dir(&results).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(n) = name
            .strip_prefix("job_id_")
            .and_then(|r| r.strip_suffix(".json"))
        {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            serde_json::from_str::<serde_json::Value>(&text)
                .unwrap_or_else(|e| panic!("torn result file {name}: {e}"));
            highest = highest.max(n.parse::<u64>().unwrap());
        }
    }
    assert!(highest > 0, "some results were written before the kill");
    let server = ServerProcess::start(&data, dir.path(), &[]);
    let next = server.submit("global_mean", &body(None));
    // Finished, so that its own temporary file is gone too: what is left
    // below can only be a leftover of the killed server.
    server.wait_result(&next);
    let next: u64 = next.strip_prefix("job_id_").unwrap().parse().unwrap();
    // After the highest result found, and after every id handed out before
    // the kill — even those of jobs killed in the queue, which have no file.
    assert!(
        next > highest,
        "job_id_{next} is not after job_id_{highest}"
    );
    assert!(
        next > handed_out,
        "job_id_{next} was handed out before the kill"
    );
    // No temp files are left behind after the restart.
    for entry in std::fs::read_dir(&results).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.contains("tmp"), "leftover temp file {name}");
    }
}
