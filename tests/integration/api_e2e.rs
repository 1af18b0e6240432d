//! Every endpoint of the SPEC over real sockets against the real binary:
//! the happy path and each error.

use crate::common;

use common::{http, ServerProcess, TempDir};

const OBESITY: &str = "Percent of adults aged 18 years and older who have obesity";
const MUSCLE: &str =
    "Percent of adults who engage in muscle-strengthening activities on 2 or more days a week";

fn server(tag: &str) -> Option<(ServerProcess, TempDir)> {
    let data = common::subset_csv()?;
    let dir = TempDir::new(tag);
    let server = ServerProcess::start(&data, dir.path(), &["--threads", "2"]);
    Some((server, dir))
}

fn body(question: &str, state: Option<&str>) -> String {
    match state {
        Some(s) => serde_json::json!({"question": question, "state": s}).to_string(),
        None => serde_json::json!({"question": question}).to_string(),
    }
}

#[test]
fn every_computing_endpoint_answers_its_checker_shape() {
    let Some((server, _dir)) = server("shapes") else {
        return;
    };
    let Some(cases) = common::shared("checker-cases") else {
        return;
    };
    // The first case of each endpoint, end to end through HTTP.
    let mut seen = std::collections::BTreeSet::new();
    for case in common::checker_cases(&cases) {
        let (endpoint, request, expected) = (&case.endpoint, &case.request, &case.expected);
        if !seen.insert(endpoint.clone()) {
            continue;
        }
        let id = server.submit(endpoint, request);
        assert!(id.starts_with("job_id_"), "{id}");
        let done = server.wait_result(&id);
        let common::Ordered::Object(members) = done.ordered() else {
            panic!("not an object")
        };
        assert_eq!(
            members[0],
            ("status".into(), common::Ordered::String("done".into()))
        );
        assert_eq!(members[1].0, "data");
        common::assert_same(expected, &members[1].1, &format!("{endpoint} {request}"));
    }
    assert_eq!(seen.len(), 9);
}

#[test]
fn job_ids_count_up_and_jobs_lists_them() {
    let Some((server, _dir)) = server("ids") else {
        return;
    };
    let a = server.submit("global_mean", &body(OBESITY, None));
    let b = server.submit("state_mean", &body(OBESITY, Some("Ohio")));
    assert_eq!((a.as_str(), b.as_str()), ("job_id_1", "job_id_2"));
    server.wait_result(&a);
    server.wait_result(&b);
    let jobs = server.get("/api/jobs");
    assert_eq!(jobs.status, 200);
    assert_eq!(
        jobs.json(),
        serde_json::json!({"status": "done", "data": [{"job_id_1": "done"}, {"job_id_2": "done"}]})
    );
    assert_eq!(
        server.get("/api/num_jobs").json(),
        serde_json::json!({"num_jobs": 0})
    );
    // `N` is accepted as well as `job_id_N`.
    let by_number = server.get("/api/get_results/2");
    assert_eq!(by_number.status, 200);
    assert_eq!(by_number.json()["status"], "done");
    // The result file holds exactly the `data` member.
    let on_disk = std::fs::read(server.results_dir.join("job_id_2.json")).expect("result file");
    let served = server.get("/api/get_results/job_id_2").json();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&on_disk).unwrap(),
        served["data"]
    );
    // A global mean, checked against the state mean of the same data shape.
    let global = server.wait_result(&a).json();
    assert!(global["data"]["global_mean"].as_f64().unwrap() > 20.0);
}

#[test]
fn invalid_job_ids_are_404_and_never_reach_the_filesystem() {
    let Some((server, _dir)) = server("badids") else {
        return;
    };
    for id in [
        "job_id_0",
        "job_id_999999",
        "abc",
        "..%2f..",
        "..%2F..%2Fetc%2Fpasswd",
        "job_id_",
        "job_id_-1",
        "job_id_1.json",
        "%6a%6f%62_id_1",
        "99999999999999999999999999",
        "0",
    ] {
        let r = server.get(&format!("/api/get_results/{id}"));
        assert_eq!(r.status, 404, "{id}: {}", r.text());
        assert_eq!(
            r.json(),
            serde_json::json!({"status": "error", "reason": "Invalid job_id"}),
            "{id}"
        );
    }
}

#[test]
fn validation_errors_are_400_and_create_no_job() {
    let Some((server, _dir)) = server("validation") else {
        return;
    };
    let cases: Vec<(&str, String)> = vec![
        ("states_mean", "not json".into()),
        ("states_mean", String::new()),
        ("states_mean", "[1, 2]".into()),
        ("states_mean", r#"{"question": 7}"#.into()),
        ("states_mean", r#"{"state": "Ohio"}"#.into()),
        ("states_mean", body("Percent of nothing", None)),
        ("state_mean", body(OBESITY, None)),
        ("state_mean", body(OBESITY, Some("Atlantis"))),
        (
            "state_diff_from_mean",
            r#"{"question": "x", "state": 5}"#.into(),
        ),
    ];
    for (endpoint, request) in &cases {
        let r = server.post(&format!("/api/{endpoint}"), request);
        assert_eq!(r.status, 400, "{endpoint} {request}: {}", r.text());
        let v = r.json();
        assert_eq!(v["status"], "error");
        assert!(v["reason"].as_str().is_some_and(|s| !s.is_empty()));
    }
    let r = server.post("/api/state_mean", &body(OBESITY, Some("Ohoi")));
    assert_eq!(r.json()["did_you_mean"][0], "Ohio");
    // No job was created by any of them.
    assert_eq!(
        server.get("/api/jobs").json()["data"],
        serde_json::json!([])
    );
    assert_eq!(server.submit("best5", &body(MUSCLE, None)), "job_id_1");
}

#[test]
fn routing_errors_are_json_with_the_right_status() {
    let Some((server, _dir)) = server("routing") else {
        return;
    };
    let r = server.get("/api/nope");
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["status"], "error");
    let r = server.get("/api/states_mean");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST"));
    assert_eq!(r.json()["status"], "error");
    let r = server.post("/api/jobs", "{}");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    let r = http(server.addr, "DELETE", "/api/get_results/job_id_1", None);
    assert_eq!(r.status, 405);
    // curl -d sends a form Content-Type; the body is JSON all the same.
    let json = body(OBESITY, None);
    let request = format!(
        "POST /api/global_mean HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{json}",
        json.len()
    );
    let r = common::parse_response(&common::raw(server.addr, request.as_bytes())).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["job_id"], "job_id_1");
    let page = server.get("/");
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
}

#[test]
fn discovery_endpoints_list_questions_and_states() {
    let Some((server, _dir)) = server("discovery") else {
        return;
    };
    let q = server.get("/api/questions").json();
    let list = q["data"].as_array().expect("a list");
    assert_eq!(list.len(), 9);
    let obesity = list
        .iter()
        .find(|e| e["question"] == OBESITY)
        .expect("obesity");
    assert_eq!(obesity["direction"], "min");
    let muscle = list
        .iter()
        .find(|e| e["question"] == MUSCLE)
        .expect("muscle");
    assert_eq!(muscle["direction"], "max");
    let states = server.get("/api/states").json();
    let states = states["data"].as_array().expect("a list");
    assert_eq!(states.len(), 55);
    assert!(states.iter().any(|s| s == "Guam"));
}

#[test]
fn graceful_shutdown_drains_then_refuses_and_keeps_serving_reads() {
    let Some((server, _dir)) = server("drain") else {
        return;
    };
    let ids: Vec<String> = (0..50)
        .map(|_| server.submit("mean_by_category", &body(OBESITY, None)))
        .collect();
    let first = server.get("/api/graceful_shutdown");
    assert_eq!(first.status, 200);
    let status = first.json()["status"].as_str().unwrap().to_string();
    assert!(status == "running" || status == "done", "{status}");
    let r = server.post("/api/global_mean", &body(OBESITY, None));
    assert_eq!(r.status, 503);
    // Even an invalid computing request is refused as shutting down.
    assert_eq!(server.post("/api/state_mean", "{").status, 503);
    assert_eq!(
        r.json(),
        serde_json::json!({"status": "error", "reason": "shutting down: graceful_shutdown was requested; restart the server to submit jobs"})
    );
    common::poll(std::time::Duration::from_secs(30), || {
        (server.get("/api/num_jobs").json()["num_jobs"] == 0).then_some(())
    });
    assert_eq!(
        server.get("/api/graceful_shutdown").json()["status"],
        "done"
    );
    for id in &ids {
        assert_eq!(
            server.get(&format!("/api/get_results/{id}")).json()["status"],
            "done"
        );
        assert!(server.results_dir.join(format!("{id}.json")).exists());
    }
    let jobs = server.get("/api/jobs").json();
    assert_eq!(jobs["data"].as_array().unwrap().len(), 50);
}
