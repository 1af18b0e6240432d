//! Load against the real binary: many clients submitting at once, and a
//! graceful shutdown in the middle of a burst.

use crate::common;

use common::{Client, ServerProcess, TempDir};
use std::collections::HashSet;
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

/// 16 clients × 500 jobs, all submitted before any is collected: ids are
/// unique, every result is the checker's, `num_jobs` reaches 0 and `/api/jobs`
/// lists every job done.
#[test]
fn sixteen_clients_times_500_jobs() {
    const CLIENTS: usize = 16;
    const JOBS: usize = 500;
    let Some(data) = common::subset_csv() else {
        return;
    };
    let Some(root) = common::shared("checker-cases") else {
        return;
    };
    let cases = common::checker_cases(&root);
    let dir = TempDir::new("stress");
    let server = ServerProcess::start(&data, dir.path(), &[]);
    let ids = Mutex::new(HashSet::new());

    thread::scope(|s| {
        for client in 0..CLIENTS {
            let (cases, ids, addr) = (&cases, &ids, server.addr);
            s.spawn(move || {
                let mut connection = Client::connect(addr);
                let submitted: Vec<(String, usize)> = (0..JOBS)
                    .map(|i| {
                        let case = (client * JOBS + i) % cases.len();
                        let r = connection.request(
                            "POST",
                            &format!("/api/{}", cases[case].endpoint),
                            cases[case].request.as_bytes(),
                        );
                        assert_eq!(r.status, 200, "{}", r.text());
                        (r.json()["job_id"].as_str().unwrap().to_string(), case)
                    })
                    .collect();
                for (id, case) in &submitted {
                    let answer = common::poll(Duration::from_secs(60), || {
                        let r = connection.request("GET", &format!("/api/get_results/{id}"), b"");
                        assert_eq!(r.status, 200, "{id} must never be invalid: {}", r.text());
                        (r.json()["status"] != "running").then_some(r)
                    });
                    let common::Ordered::Object(members) = answer.ordered() else {
                        panic!("{}", answer.text())
                    };
                    common::assert_same(&cases[*case].expected, &members[1].1, id);
                }
                let mut ids = ids.lock().unwrap();
                for (id, _) in submitted {
                    assert!(ids.insert(id.clone()), "{id} was given twice");
                }
            });
        }
    });

    let total = CLIENTS * JOBS;
    assert_eq!(ids.lock().unwrap().len(), total);
    assert_eq!(server.get("/api/num_jobs").json()["num_jobs"], 0);
    let jobs = server.get("/api/jobs").json();
    let list = jobs["data"].as_array().unwrap();
    assert_eq!(list.len(), total);
    assert!(list
        .iter()
        .enumerate()
        .all(|(i, e)| e[format!("job_id_{}", i + 1)] == "done"));
}

/// `graceful_shutdown` while 4 clients are submitting: every accepted job
/// finishes with its file on disk, and every submission after the shutdown
/// answer is refused with 503.
#[test]
fn graceful_shutdown_in_the_middle_of_a_burst() {
    let Some(data) = common::subset_csv() else {
        return;
    };
    let dir = TempDir::new("burst-drain");
    let server = ServerProcess::start(&data, dir.path(), &["--threads", "2"]);
    let accepted = Mutex::new(Vec::new());
    let body = r#"{"question": "Percent of adults aged 18 years and older who have obesity"}"#;

    thread::scope(|s| {
        for _ in 0..4 {
            let (accepted, addr) = (&accepted, server.addr);
            s.spawn(move || {
                let mut connection = Client::connect(addr);
                // Submit until refused; bounded so a broken shutdown fails
                // instead of looping forever.
                for _ in 0..100_000 {
                    let r = connection.request("POST", "/api/mean_by_category", body.as_bytes());
                    match r.status {
                        200 => accepted
                            .lock()
                            .unwrap()
                            .push(r.json()["job_id"].as_str().unwrap().to_string()),
                        503 => return,
                        other => panic!("unexpected {other}: {}", r.text()),
                    }
                }
                panic!("submissions were never refused");
            });
        }
        // Shut down once the burst is under way.
        common::poll(Duration::from_secs(30), || {
            (accepted.lock().unwrap().len() >= 200).then_some(())
        });
        let r = server.get("/api/graceful_shutdown");
        assert_eq!(r.status, 200);
        let refused = server.post("/api/global_mean", body);
        assert_eq!(refused.status, 503);
    });

    common::poll(Duration::from_secs(60), || {
        (server.get("/api/graceful_shutdown").json()["status"] == "done").then_some(())
    });
    let accepted = accepted.into_inner().unwrap();
    assert!(accepted.len() >= 200);
    for id in &accepted {
        let path = server.results_dir.join(format!("{id}.json"));
        assert!(path.exists(), "{id} accepted but its result is not on disk");
        assert_eq!(
            server.get(&format!("/api/get_results/{id}")).json()["status"],
            "done"
        );
    }
    assert_eq!(server.get("/api/num_jobs").json()["num_jobs"], 0);
}
