//! Issue 9, item 6: a deeply nested JSON body must not overflow a connection
//! thread's stack. The stack frames that matter are the **debug** build's
//! (much larger than release's), so `make test` also runs this file with
//! `cargo test --test deep_json` — the server binary it starts is then the
//! debug one.

mod common;

use common::{ServerProcess, TempDir};

#[test]
fn deeply_nested_bodies_are_a_400_and_the_server_keeps_serving() {
    let dir = TempDir::new("deep-json");
    let data = common::fixture("survey.csv");
    let mut server = ServerProcess::start(&data, dir.path(), &["--threads", "1"]);
    let arrays = "[".repeat(100_000);
    let objects = r#"{"a": "#.repeat(100_000);
    let mixed = format!(r#"{{"question": {}1{}}}"#, "[".repeat(50), "]".repeat(50));
    // Objects first: on the old server, 100,000 `{"a": ` overflowed the
    // debug build's connection stack and aborted the process (arrays were
    // stopped by serde_json's own recursion limit in time).
    for (name, body) in [
        ("objects", &objects),
        ("arrays", &arrays),
        ("mixed", &mixed),
    ] {
        let r = server.post("/api/best5", body);
        assert_eq!(r.status, 400, "{name}: {}", r.text());
        let answer = r.json();
        assert_eq!(answer["status"], "error", "{name}");
        let reason = answer["reason"].as_str().expect("a reason");
        assert!(
            reason.starts_with(
                "JSON body nested deeper than 8 levels: /api/best5 takes a flat JSON object"
            ),
            "{name}: {reason}"
        );
    }
    // Brackets inside a string are not nesting: this one gets past the
    // depth check and fails on the question instead.
    let in_string = serde_json::json!({"question": "[".repeat(100_000)}).to_string();
    let r = server.post("/api/best5", &in_string);
    assert_eq!(r.status, 400);
    assert!(
        r.json()["reason"]
            .as_str()
            .is_some_and(|reason| reason.starts_with("unknown question")),
        "{}",
        r.text()
    );
    // Still alive and serving.
    let status = server.child.try_wait().expect("try_wait");
    assert!(status.is_none(), "the server died: {status:?}");
    let r = server.get("/api/num_jobs");
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), serde_json::json!({"num_jobs": 0}));
}
