//! The results directory against the real binary (issue 9): one server per
//! directory, torn files, a directory that vanishes or is emptied by a
//! client.

use crate::common;

use common::{ServerProcess, TempDir};
use std::collections::BTreeMap;
use std::fs;
use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const OBESITY: &str = "Percent of adults aged 18 years and older who have obesity";

fn body(state: Option<&str>) -> String {
    match state {
        Some(s) => serde_json::json!({"question": OBESITY, "state": s}).to_string(),
        None => serde_json::json!({"question": OBESITY}).to_string(),
    }
}

/// Every entry of `dir` with its contents (a sub-folder's: none).
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let bytes = if e.file_type().unwrap().is_dir() {
                Vec::new()
            } else {
                fs::read(e.path()).unwrap()
            };
            (e.file_name().into_string().unwrap(), bytes)
        })
        .collect()
}

/// Runs a second server on `dir`'s results directory and log; its exit
/// code and stderr. Panics if it is still running after the deadline.
fn second_server(data: &Path, dir: &Path) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_le-stats-sportif"))
        .arg("--port")
        .arg("0")
        .arg("--data")
        .arg(data)
        .arg("--results-dir")
        .arg(dir.join("results"))
        .arg("--log-file")
        .arg(dir.join("webserver.log"))
        .arg("--access-log")
        .arg(dir.join("access.log"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the second server");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the second server did not exit: it is serving");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("piped")
        .read_to_string(&mut stderr)
        .unwrap();
    (status.code(), stderr)
}

/// Failure 1 of issue 9: a double start. The second server exits non-zero
/// at once, names the directory, writes nothing into it nor into the first
/// one's log; the first goes on numbering its own jobs.
#[test]
fn a_second_server_on_the_same_results_directory_refuses_to_start() {
    let Some(data) = common::subset_csv() else {
        return;
    };
    let dir = TempDir::new("double-start");
    let server = ServerProcess::start(&data, dir.path(), &[]);
    let id = server.submit("state_mean", &body(Some("Ohio")));
    let answer = server.wait_result(&id).text();
    // Let the first server's logs settle: wait until the job's `done` line
    // and the last request's access line are in (each is written just
    // after the event).
    common::poll(Duration::from_secs(30), || {
        let log = fs::read_to_string(&server.log_file).ok()?;
        let access = fs::read_to_string(&server.access_log).ok()?;
        (log.contains(&format!("{id} done"))
            && access.contains(&format!("GET /api/get_results/{id}")))
        .then_some(())
    });
    let files_before = snapshot(&server.results_dir);
    let log_before = fs::read(&server.log_file).unwrap();
    let access_before = fs::read(&server.access_log).unwrap();

    let (code, stderr) = second_server(&data, dir.path());
    assert!(matches!(code, Some(c) if c != 0), "exit {code:?}: {stderr}");
    assert!(stderr.contains("another server"), "{stderr}");
    assert!(
        stderr.contains(&server.results_dir.display().to_string()),
        "{stderr}"
    );
    assert_eq!(snapshot(&server.results_dir), files_before);
    assert_eq!(fs::read(&server.log_file).unwrap(), log_before);
    assert_eq!(fs::read(&server.access_log).unwrap(), access_before);

    // The first server is unaffected.
    assert_eq!(server.get(&format!("/api/get_results/{id}")).text(), answer);
    assert_eq!(server.submit("global_mean", &body(None)), "job_id_2");
}

/// Failure 3 of issue 9: torn result files left by a crash are answered
/// with a valid JSON error, and listed as `error`.
#[test]
fn torn_result_files_answer_valid_json_errors() {
    let Some(data) = common::subset_csv() else {
        return;
    };
    let dir = TempDir::new("torn");
    let results = dir.path().join("results");
    fs::create_dir_all(&results).unwrap();
    fs::write(results.join("job_id_1.json"), "").unwrap();
    fs::write(results.join("job_id_2.json"), "{\"Ohio\": 36.8, \"Ind").unwrap();
    fs::write(results.join("job_id_3.json"), "{\"Ohio\": 36.8}").unwrap();
    let server = ServerProcess::start(&data, dir.path(), &[]);
    for id in ["job_id_1", "2"] {
        let r = server.get(&format!("/api/get_results/{id}"));
        assert_eq!(r.status, 200);
        assert_eq!(
            r.json(),
            serde_json::json!({"status": "error", "reason": "result file is damaged"}),
            "{id}"
        );
    }
    let r = server.get("/api/get_results/job_id_3");
    assert_eq!(
        r.json(),
        serde_json::json!({"status": "done", "data": {"Ohio": 36.8}})
    );
    assert_eq!(
        server.get("/api/jobs").json()["data"],
        serde_json::json!([
            {"job_id_1": "error"},
            {"job_id_2": "error"},
            {"job_id_3": "done"}
        ])
    );
}

/// Failures 4 and 8 of issue 9: a client empties the results folder entry
/// by entry (dotfiles included), then removes the folder itself; the server
/// keeps answering, new jobs complete and are written, and the re-created
/// folder is locked again.
#[test]
fn the_server_survives_a_client_emptying_or_removing_its_results_folder() {
    let Some(data) = common::subset_csv() else {
        return;
    };
    let dir = TempDir::new("emptied");
    let server = ServerProcess::start(&data, dir.path(), &[]);
    let mut ids = Vec::new();
    for round in 0..3 {
        for i in 0..10 {
            let state = ["Ohio", "Texas", "Iowa"][i % 3];
            ids.push(server.submit("state_mean", &body(Some(state))));
        }
        // As a students' test suite does: a plain file remove per entry,
        // which fails on a sub-folder.
        for entry in fs::read_dir(&server.results_dir).unwrap() {
            let entry = entry.unwrap();
            match fs::remove_file(entry.path()) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => panic!("round {round}: remove {:?}: {e}", entry.file_name()),
            }
        }
    }
    for id in &ids {
        assert_eq!(server.wait_result(id).json()["status"], "done", "{id}");
    }
    let id = server.submit("state_mean", &body(Some("Ohio")));
    assert_eq!(server.wait_result(&id).json()["status"], "done");
    assert!(server.results_dir.join(format!("{id}.json")).is_file());

    fs::remove_dir_all(&server.results_dir).unwrap();
    assert_eq!(server.get("/api/num_jobs").status, 200);
    let id = server.submit("state_mean", &body(Some("Texas")));
    let answer = server.wait_result(&id);
    assert_eq!(answer.json()["status"], "done", "{}", answer.text());
    let file = fs::read(server.results_dir.join(format!("{id}.json"))).unwrap();
    let data_on_disk: serde_json::Value = serde_json::from_slice(&file).unwrap();
    assert_eq!(data_on_disk, answer.json()["data"]);
    let (code, stderr) = second_server(&data, dir.path());
    assert!(matches!(code, Some(c) if c != 0), "exit {code:?}: {stderr}");
    assert!(stderr.contains("another server"), "{stderr}");
}

/// A client that deletes `.lock` (as it may delete any entry of the folder)
/// does not let a second server start on the folder: the lock is on the
/// directory itself. The first server goes on numbering its jobs.
#[test]
fn deleting_the_lock_file_does_not_let_a_second_server_start() {
    let Some(data) = common::subset_csv() else {
        return;
    };
    let dir = TempDir::new("lock-deleted");
    let server = ServerProcess::start(&data, dir.path(), &[]);
    let id = server.submit("state_mean", &body(Some("Ohio")));
    assert_eq!(server.wait_result(&id).json()["status"], "done");
    fs::remove_file(server.results_dir.join(".lock")).unwrap();
    let (code, stderr) = second_server(&data, dir.path());
    assert!(matches!(code, Some(c) if c != 0), "exit {code:?}: {stderr}");
    assert!(stderr.contains("another server"), "{stderr}");
    assert_eq!(server.submit("global_mean", &body(None)), "job_id_2");
}
