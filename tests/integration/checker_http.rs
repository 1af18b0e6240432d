//! The course checker's 114 cases through HTTP with the course's flow (POST,
//! poll `get_results` with a deadline) from 8 concurrent clients, 20 rounds
//! each — no answer may ever be "Invalid job_id" or wrong.

use crate::common;

use common::{Client, ServerProcess, TempDir};
use std::thread;

const CLIENTS: usize = 8;
const ROUNDS: usize = 20;

#[test]
fn checker_cases_from_8_concurrent_clients_20_rounds() {
    let Some(data) = common::subset_csv() else {
        return;
    };
    let Some(root) = common::shared("checker-cases") else {
        return;
    };
    let cases = common::checker_cases(&root);
    assert_eq!(cases.len(), 114, "the course has 114 checker cases");
    let dir = TempDir::new("checker-http");
    let server = ServerProcess::start(&data, dir.path(), &[]);

    thread::scope(|s| {
        for client in 0..CLIENTS {
            let (cases, addr) = (&cases, server.addr);
            s.spawn(move || {
                let mut connection = Client::connect(addr);
                for round in 0..ROUNDS {
                    // Each client walks the cases from its own offset, so
                    // that different endpoints run at the same time.
                    for i in 0..cases.len() {
                        let case = &cases[(i + client * 13 + round) % cases.len()];
                        let (endpoint, request) = (&case.endpoint, &case.request);
                        let done = connection.run_job(endpoint, request);
                        let common::Ordered::Object(members) = done.ordered() else {
                            panic!("not an object: {}", done.text())
                        };
                        assert_eq!(
                            members[0].1,
                            common::Ordered::String("done".into()),
                            "{endpoint} {request}: {}",
                            done.text()
                        );
                        common::assert_same(
                            &case.expected,
                            &members[1].1,
                            &format!("client {client} round {round} {endpoint} {request}"),
                        );
                    }
                }
            });
        }
    });

    // Every job got its own id, 1..=N, and all are listed done.
    let total = CLIENTS * ROUNDS * cases.len();
    let jobs = server.get("/api/jobs").json();
    let list = jobs["data"].as_array().expect("a list");
    assert_eq!(list.len(), total);
    for (i, entry) in list.iter().enumerate() {
        assert_eq!(entry[format!("job_id_{}", i + 1)], "done", "{entry}");
    }
    assert_eq!(server.get("/api/num_jobs").json()["num_jobs"], 0);
    println!("checker over HTTP: {total} jobs from {CLIENTS} clients, all correct");
}
