//! The body of `GET /api/status`: the scoreboard's threads and counts, the
//! queue, the shutdown phase and the limits in force, as JSON.

use std::fmt::Write as _;

use super::{
    configured, count, job_counts, threads, uptime, Role, Snapshot, ThreadState, ThreadView,
};

/// `text` as a JSON string literal.
fn json_string(text: &str) -> String {
    // Serialising a `&str` cannot fail (no maps, no I/O).
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

/// The body of `GET /api/status`: every thread by role with its state, plus
/// the queue, the log queue, the shutdown phase and the limits in force, in
/// Python's `json.dumps` style (`", "`, `": "`; test
/// `status_json_is_valid_python_style_json`). The response adds the final
/// newline.
#[must_use]
pub fn render_json(snapshot: &Snapshot) -> String {
    let threads = threads();
    // One load: the four numbers always agree (`pending` is their sum).
    let jobs = job_counts();
    let mut out = String::with_capacity(256 + threads.len() * 160);
    out.push_str("{\"shutdown_phase\": ");
    out.push_str(&json_string(snapshot.shutdown_phase(jobs.pending())));
    // Writing into a String cannot fail (here and below).
    let _ = write!(
        out,
        ", \"uptime_seconds\": {:.3}, \"queue\": {{\"pending\": {}, \"queued\": {}, \"running\": {}, \"saving\": {}}}, \"log_queue_depth\": {}",
        uptime().as_secs_f64(),
        jobs.pending(),
        jobs.queued,
        jobs.running,
        jobs.saving,
        snapshot.log_queue_depth,
    );
    out.push_str(", \"saving\": ");
    match &snapshot.degraded {
        None => out.push_str("{\"state\": \"ok\", \"cause\": null}"),
        Some(cause) => {
            let _ = write!(
                out,
                "{{\"state\": \"degraded\", \"cause\": {}}}",
                json_string(cause)
            );
        }
    }
    out.push_str(", \"limits\": ");
    write_limits(&mut out);
    out.push_str(", \"counts\": {");
    write_counts(&mut out, &threads);
    out.push_str("}, \"threads\": [");
    write_threads(&mut out, &threads);
    out.push_str("]}");
    out
}

/// The limits in force as a JSON object, or `null` before
/// [`configure`](super::configure).
fn write_limits(out: &mut String) {
    match configured() {
        Some(c) => {
            let open_files = c
                .descriptors
                .open_files
                .map_or_else(|| "null".to_owned(), |n| n.to_string());
            let _ = write!(
                out,
                "{{\"workers\": {}, \"max_connections\": {}, \"open_files_limit\": {open_files}, \"reserved_descriptors\": {}, \"max_pending_jobs\": {}, \"max_body_bytes\": {}, \"head_timeout_ms\": {}, \"body_timeout_ms\": {}, \"idle_timeout_ms\": {}, \"write_timeout_ms\": {}, \"job_delay_ms\": {}}}",
                c.workers,
                c.limits.max_connections,
                c.descriptors.reserved,
                c.max_pending_jobs,
                c.limits.max_body_bytes,
                c.limits.head_timeout.as_millis(),
                c.limits.body_timeout.as_millis(),
                c.limits.idle_timeout.as_millis(),
                c.limits.write_timeout.as_millis(),
                c.job_delay.as_millis(),
            );
        }
        None => out.push_str("null"),
    }
}

/// For each role, how many of `threads` are in each state (states with
/// none left out), as the members of a JSON object.
fn write_counts(out: &mut String, threads: &[ThreadView]) {
    for (i, role) in Role::ALL.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "\"{}\": {{", role.name());
        let mut first = true;
        for state in ThreadState::ALL {
            let n = count(threads, role, state);
            if n > 0 {
                if !first {
                    out.push_str(", ");
                }
                first = false;
                let _ = write!(out, "{}: {n}", json_string(state.name()));
            }
        }
        out.push('}');
    }
}

/// Each of `threads` as a JSON object, comma-separated.
fn write_threads(out: &mut String, threads: &[ThreadView]) {
    for (i, t) in threads.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let job = if t.job > 0 {
            format!("\"job_id_{}\"", t.job)
        } else {
            "null".to_owned()
        };
        let endpoint = t.endpoint_name().map_or("null".to_owned(), json_string);
        let _ = write!(
        out,
            "{{\"slot\": {}, \"role\": \"{}\", \"state\": {}, \"job_id\": {job}, \"endpoint\": {endpoint}, \"for_ms\": {:.3}, \"text\": {}}}",
            t.slot,
            t.role.name(),
            json_string(t.state.name()),
            t.for_.as_secs_f64() * 1000.0,
            json_string(&t.describe()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::{claim, current, set_endpoint, set_job};
    use super::*;

    #[test]
    fn status_json_is_valid_python_style_json() {
        let _guard = claim(Role::Worker, ThreadState::Idle).unwrap();
        set_job(ThreadState::Running, 7);
        set_endpoint(3);
        let snapshot = Snapshot {
            accepting: true,
            ..Default::default()
        };
        let body = render_json(&snapshot);
        assert!(
            body.ends_with("]}"),
            "the response adds the newline: {body}"
        );
        assert!(!body.contains("\",\"") && !body.contains("\":\""), "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["shutdown_phase"], "serving");
        let me = current().unwrap().slot;
        let mine = v["threads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["slot"] == me)
            .unwrap();
        assert_eq!(mine["role"], "worker");
        assert_eq!(mine["state"], "running");
        assert_eq!(mine["job_id"], "job_id_7");
        assert_eq!(mine["endpoint"], "best5");
        assert!(mine["text"]
            .as_str()
            .unwrap()
            .starts_with("running job_id_7 (best5) for "));
    }
}
