//! The real binary under a low open-file limit (`prlimit --nofile=64:64`):
//! the connection limit in force leaves descriptors for saves, and when
//! `accept` runs out of descriptors anyway (the test lowers the running
//! server's limit with `prlimit --pid`), waiting clients get a `503` and
//! the loop backs off instead of spinning, with one log line per episode.

use crate::common;

use common::{Client, Launch, ServerProcess, TempDir};
use le_stats_sportif::descriptors::{reserve, FIXED_RESERVE, PER_CONNECTION};
use le_stats_sportif::server::OUT_OF_DESCRIPTORS;
use serde_json::json;
use std::process::Command;
use std::time::Duration;

/// The open-file limit the server starts under.
const LIMIT: usize = 64;
const WORKERS: usize = 2;
/// The log's first line of an `accept` episode, and its last.
const EPISODE_START: &str = "accept failed: ";
const EPISODE_END: &str = "accept works again after ";

/// Whether `prlimit` (util-linux) can be run; a loud skip when not,
/// a failure under `CI=true` (`.ci/run` installs it).
fn prlimit_available() -> bool {
    if Command::new("prlimit").arg("--version").output().is_ok() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "prlimit is missing, and CI=true requires it"
    );
    eprintln!("\n*** SKIPPED: prlimit (util-linux) is not installed; this test needs it ***\n");
    false
}

/// Sets the soft open-file limit of the running process `pid`.
fn set_soft_limit(pid: u32, soft: usize) {
    let status = Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--nofile={soft}:{LIMIT}"))
        .status()
        .expect("run prlimit");
    assert!(
        status.success(),
        "prlimit --pid {pid} --nofile={soft}:{LIMIT}"
    );
}

/// Descriptors `pid` holds with a number below the limit (the ones that
/// count against it).
fn descriptors_held(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read the server's descriptors")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<usize>().ok())
        .filter(|&fd| fd < LIMIT)
        .count()
}

/// A keep-alive connection that has had one answer: the server counts it
/// (and holds its descriptor) until it closes. `None` if it was refused.
fn held_connection(server: &ServerProcess) -> Result<Client, common::HttpResponse> {
    let mut client = Client::connect(server.addr);
    let r = client.request("GET", "/api/num_jobs", b"");
    if r.status == 200 {
        Ok(client)
    } else {
        Err(r)
    }
}

/// Polls until no connection thread but the one asking is left: every
/// earlier connection has closed its descriptor.
fn wait_for_connections_closed(server: &ServerProcess) {
    common::poll(Duration::from_secs(30), || {
        let status = server.get("/api/status").json();
        let connections = status["threads"]
            .as_array()?
            .iter()
            .filter(|t| t["role"] == "connection")
            .count();
        (connections == 1).then_some(())
    });
}

/// The log's episode lines.
fn episode_lines(server: &ServerProcess) -> (Vec<String>, Vec<String>) {
    let log = std::fs::read_to_string(&server.log_file).unwrap_or_default();
    let pick = |marker: &str| -> Vec<String> {
        log.lines()
            .filter(|l| l.contains(marker))
            .map(str::to_owned)
            .collect()
    };
    (pick(EPISODE_START), pick(EPISODE_END))
}

/// Polls until the log holds `ends` episode ends; every episode line.
fn wait_for_episode_ends(server: &ServerProcess, ends: usize) -> (Vec<String>, Vec<String>) {
    common::poll(Duration::from_secs(30), || {
        let lines = episode_lines(server);
        (lines.1.len() >= ends).then_some(lines)
    })
}

/// `(seconds, failed accepts, connections answered 503)` of an end line:
/// `… accept works again after 1.2 s: 7 failed accepts, 0 connections answered 503 (…)`.
fn episode_counts(line: &str) -> (f64, u64, u64) {
    let rest = &line[line.find(EPISODE_END).expect("an end line") + EPISODE_END.len()..];
    let number = |text: &str| text.split_whitespace().next().unwrap().parse::<f64>();
    let seconds = number(rest).expect("seconds");
    let (_, counts) = rest.split_once(": ").expect("counts");
    let failed = number(counts).expect("failed accepts");
    let (_, refused) = counts.split_once(", ").expect("refused");
    let refused = number(refused).expect("refused connections");
    (seconds, failed as u64, refused as u64)
}

#[test]
fn a_connection_flood_under_a_low_descriptor_limit_is_refused_and_saves_go_on() {
    let Some(data) = common::subset_csv() else {
        return;
    };
    if !prlimit_available() {
        return;
    }
    let dir = TempDir::new("descriptors");
    let launch = Launch {
        wrapper: vec![
            "prlimit".to_owned(),
            format!("--nofile={LIMIT}:{LIMIT}"),
            "--".to_owned(),
        ],
        ..Launch::default()
    };
    let flags = [
        "--threads",
        "2",
        "--idle-timeout-ms",
        "120000",
        "--head-timeout-ms",
        "120000",
    ];
    let server = ServerProcess::start_with(&data, dir.path(), &flags, launch);
    let pid = server.pid();

    // 1. The limit in force: what the descriptors leave, shown at start.
    let max = (LIMIT - reserve(WORKERS)) / PER_CONNECTION;
    let limits = &server.get("/api/status").json()["limits"];
    assert_eq!(limits["open_files_limit"], LIMIT);
    assert_eq!(limits["reserved_descriptors"], reserve(WORKERS));
    assert_eq!(limits["max_connections"], max);
    let start_up = format!(
        "at most {max} connections at once, fewer than --max-connections 2048: \
         the open-file limit is {LIMIT}"
    );
    // The log writer writes the start-up line a moment later.
    common::poll(Duration::from_secs(30), || {
        let log = std::fs::read_to_string(&server.log_file).ok()?;
        log.contains(&start_up).then_some(())
    });

    // 2. A flood: every connection the limit allows, held idle; the next
    // one is answered 503 at once. (A slot an earlier connection has not
    // given back yet refuses one of them: try again.)
    let mut held: Vec<Client> = (0..max)
        .map(|_| common::poll(Duration::from_secs(30), || held_connection(&server).ok()))
        .collect();
    let beyond = server.get("/api/num_jobs");
    assert_eq!(beyond.status, 503, "{}", beyond.text());
    assert_eq!(
        beyond.json(),
        json!({"status": "error", "reason": "too many connections"})
    );
    // What the server holds besides the connections fits the fixed
    // reserve: the rest of the reserve stays free for saves.
    let open = descriptors_held(pid);
    assert!(
        open - max <= FIXED_RESERVE,
        "{open} descriptors open with {max} connections: more than {FIXED_RESERVE} besides them"
    );
    // A job submitted meanwhile is saved.
    let question = "Percent of adults aged 18 years and older who have obesity";
    let done = held[0].run_job("states_mean", &json!({"question": question}).to_string());
    assert_eq!(done.json()["status"], "done", "{}", done.text());
    let file = server.results_dir.join("job_id_1.json");
    let saved = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&saved).unwrap(),
        done.json()["data"]
    );
    // Once the idle connections close, the server answers again.
    held.clear();
    common::poll(Duration::from_secs(30), || {
        (server.get("/api/num_jobs").status == 200).then_some(())
    });
    assert_eq!(episode_lines(&server), (vec![], vec![]), "no accept failed");

    // 3. Out of descriptors at `accept` (the running server's limit is
    // lowered to what it holds): a waiting client is answered 503 with
    // the spare descriptor, and served again once the limit is back.
    wait_for_connections_closed(&server);
    set_soft_limit(pid, descriptors_held(pid));
    // Connections accepted into free numbers below the limit are served
    // and held, until none is left.
    let mut filling = Vec::new();
    let refused = common::poll(Duration::from_secs(30), || match held_connection(&server) {
        Ok(client) => {
            filling.push(client);
            None
        }
        Err(response) => Some(response),
    });
    assert!(
        filling.len() < 10,
        "{} connections before a 503",
        filling.len()
    );
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(
        refused.json(),
        json!({"status": "error", "reason": OUT_OF_DESCRIPTORS})
    );
    assert_eq!(refused.header("retry-after"), Some("1"));
    let second = server.get("/api/num_jobs");
    assert_eq!(second.status, 503, "{}", second.text());
    set_soft_limit(pid, LIMIT);
    assert_eq!(server.get("/api/num_jobs").status, 200);
    let (starts, ends) = wait_for_episode_ends(&server, 1);
    assert_eq!(starts.len(), 1, "one line when it starts: {starts:?}");
    assert!(starts[0].contains("Too many open files"), "{starts:?}");
    let (_, failed, refused) = episode_counts(&ends[0]);
    assert_eq!((failed, refused), (3, 2), "{}", ends[0]);
    drop(filling);

    // 4. No descriptor at all (not even the spare helps): the loop backs
    // off instead of spinning, and the waiting client is served once the
    // limit is back. The accept waiting now already has its descriptor:
    // one client is served, then `accept` fails.
    wait_for_connections_closed(&server);
    set_soft_limit(pid, 3);
    assert_eq!(server.get("/api/num_jobs").status, 200);
    common::poll(Duration::from_secs(30), || {
        (episode_lines(&server).0.len() == 2).then_some(())
    });
    let waiting = std::thread::spawn({
        let addr = server.addr;
        move || common::http(addr, "GET", "/api/num_jobs", None)
    });
    // How long the fault lasts; the check below holds for any length.
    std::thread::sleep(Duration::from_secs(1));
    set_soft_limit(pid, LIMIT);
    assert_eq!(waiting.join().expect("the waiting client").status, 200);
    let (starts, ends) = wait_for_episode_ends(&server, 2);
    assert_eq!((starts.len(), ends.len()), (2, 2), "{starts:?} {ends:?}");
    let (seconds, failed, refused) = episode_counts(&ends[1]);
    // A spinning loop fails thousands of times a second; backing off from
    // 50 ms, at most one failure per 50 ms.
    assert!(
        failed >= 2 && failed as f64 <= 2.0 + seconds / 0.05,
        "{failed} failed accepts in {seconds} s: {}",
        ends[1]
    );
    assert_eq!(refused, 0, "{}", ends[1]);
    // Saving still works.
    let mut client = Client::connect(server.addr);
    let done = client.run_job("global_mean", &json!({"question": question}).to_string());
    assert_eq!(done.json()["status"], "done", "{}", done.text());
    assert!(server.results_dir.join("job_id_2.json").exists());
}

#[test]
fn a_limit_too_low_for_one_connection_stops_the_start_and_names_the_fix() {
    if !prlimit_available() {
        return;
    }
    let dir = TempDir::new("descriptors-low");
    let low = reserve(WORKERS) + PER_CONNECTION - 1;
    let output = Command::new("prlimit")
        .arg(format!("--nofile={low}:{low}"))
        .arg("--")
        .arg(common::server_bin())
        .args(["--port", "0", "--threads", "2", "--data"])
        .arg(common::fixture("survey.csv"))
        .arg("--results-dir")
        .arg(dir.path().join("results"))
        .arg("--log-file")
        .arg(dir.path().join("webserver.log"))
        .arg("--access-log")
        .arg(dir.path().join("access.log"))
        .output()
        .expect("run the server under prlimit");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "the open-file limit is {low}: too low to serve, since {} descriptors are kept",
            reserve(WORKERS)
        )),
        "{stderr}"
    );
    assert!(stderr.contains("`ulimit -n N`"), "{stderr}");
    assert!(stderr.contains("LimitNOFILE=N"), "{stderr}");
}
