//! Process lifecycle against the real binary: restart on the same results
//! directory, Ctrl-C / SIGTERM drains and exits 0, SIGKILL leaves no torn
//! result file.

mod common;

use common::{Client, ServerProcess, TempDir};
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
        let server = ServerProcess::start(&data, dir.path(), &[]);
        for _ in 0..3 {
            let id = server.submit("states_mean", &body(None));
            server.wait_result(&id);
        }
        first_answer = server.get("/api/get_results/job_id_2").text();
    } // killed here
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
            let endpoint = if i % 2 == 0 {
                "mean_by_category"
            } else {
                "state_mean"
            };
            let r = client.request(
                "POST",
                &format!("/api/{endpoint}"),
                body((i % 2 == 1).then_some("Ohio")).as_bytes(),
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
        log.contains("POST /api/state_mean 200"),
        "request lines are logged"
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

#[test]
fn sigkill_mid_load_leaves_no_torn_file_and_ids_continue() {
    let Some(data) = common::subset_csv() else {
        return;
    };
    let dir = TempDir::new("sigkill");
    let results;
    {
        let mut server = ServerProcess::start(&data, dir.path(), &["--threads", "2"]);
        burst(&server, 400);
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
    assert_eq!(next, format!("job_id_{}", highest + 1));
    // No temp files are left behind after the restart.
    for entry in std::fs::read_dir(&results).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.contains("tmp"), "leftover temp file {name}");
    }
}
