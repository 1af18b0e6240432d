//! The body of `GET /api/trace`: spans as Chrome's Trace Event Format
//! (the JSON object form), which Perfetto and `chrome://tracing` open.
//!
//! Every span is a complete event (`"ph": "X"`) with `ts` and `dur` in
//! microseconds since the server's start, `pid` 1 and `tid` its track (the
//! scoreboard slot of its thread); `thread_name` and `thread_sort_index`
//! metadata events (`"ph": "M"`) name the tracks, each after the role of
//! its latest span: a slot released and claimed again (a connection's,
//! then a worker's that started late) is named for the thread that holds
//! it now (`tests::a_reused_track_is_named_after_its_latest_owner`). A job's `job queued`
//! spans overlap each other, and the format wants the events of one thread
//! nested, so they go on rows of their own (`queue 0`, `queue 1`, …): each
//! span on the first row free at its start.

use super::{RoleName, Span, SpanRecord};
use serde_json::json;

/// The `tid` of the first queue row (above every track).
const QUEUE_TID: u64 = 1 << 20;
/// At most this many events are answered (the newest); `otherData` says
/// when some were left out.
pub const MAX_EVENTS: usize = 50_000;

/// Nanoseconds as the format's microseconds (three decimals kept).
fn micros(nanos: u64) -> f64 {
    // Exact for spans shorter than 104 days (2^53 ns).
    #[allow(clippy::cast_precision_loss)]
    let micros = nanos as f64 / 1000.0;
    micros
}

/// The answer for the spans that ended within `window` nanoseconds before
/// `now` (every time in nanoseconds since the scoreboard's epoch).
/// `complete_since` is when the oldest wrapped ring starts (0: none wrapped).
#[must_use]
pub fn render(
    mut spans: Vec<SpanRecord>,
    complete_since: u64,
    now: u64,
    window: u64,
    role_name: RoleName,
) -> String {
    let from = now.saturating_sub(window);
    spans.retain(|s| s.end >= from);
    spans.sort_by_key(|s| (s.start, s.end));
    let dropped = spans.len().saturating_sub(MAX_EVENTS);
    spans.drain(..dropped);
    let mut events = Vec::with_capacity(spans.len() + 64);
    let mut tracks: Vec<(u64, u8)> = Vec::new();
    // The end of the last span on each queue row.
    let mut queue_rows: Vec<u64> = Vec::new();
    for s in &spans {
        let tid = if s.span == Span::JobQueued {
            let row = if let Some(row) = queue_rows.iter().position(|&end| end <= s.start) {
                row
            } else {
                queue_rows.push(0);
                queue_rows.len() - 1
            };
            queue_rows[row] = s.end;
            QUEUE_TID + row as u64
        } else {
            let tid = s.track as u64;
            // Sorted by start: the last role seen is the latest owner's.
            match tracks.iter_mut().find(|(t, _)| *t == tid) {
                Some(track) => track.1 = s.role,
                None => tracks.push((tid, s.role)),
            }
            tid
        };
        let mut args = serde_json::Map::new();
        if s.job > 0 {
            args.insert("job_id".into(), json!(format!("job_id_{}", s.job)));
        }
        if s.open {
            args.insert("in_progress".into(), json!(true));
        }
        events.push(json!({
            "name": s.span.name(),
            "cat": s.span.category(),
            "ph": "X",
            "ts": micros(s.start),
            "dur": micros(s.end - s.start),
            "pid": 1,
            "tid": tid,
            "args": args,
        }));
    }
    let metadata = |tid: u64, name: String, rank: u64| {
        [
            json!({"name": "thread_name", "ph": "M", "pid": 1, "tid": tid, "args": {"name": name}}),
            json!({"name": "thread_sort_index", "ph": "M", "pid": 1, "tid": tid, "args": {"sort_index": rank}}),
        ]
    };
    events.push(json!({"name": "process_name", "ph": "M", "pid": 1, "tid": 0, "args": {"name": "le-stats-sportif"}}));
    for (row, _) in queue_rows.iter().enumerate() {
        let tid = QUEUE_TID + row as u64;
        events.extend(metadata(tid, format!("queue {row}"), row as u64));
    }
    for (tid, role) in tracks {
        let (name, rank) = role_name(role);
        events.extend(metadata(
            tid,
            format!("{name} {tid}"),
            u64::from(rank) * 100_000 + tid,
        ));
    }
    let body = json!({
        "traceEvents": events,
        "displayTimeUnit": "ms",
        "otherData": {
            "now_us": micros(now),
            "window_seconds": micros(window) / 1e6,
            "complete_for_seconds": micros(now - complete_since.min(now)) / 1e6,
            "complete_since_start": complete_since == 0,
            "events_left_out": dropped,
            "spans_per_connection_track": super::CONNECTION_SPANS,
            "spans_per_other_track": super::THREAD_SPANS,
        },
    });
    body.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn span(track: usize, span: Span, start: u64, end: u64, job: u64) -> SpanRecord {
        SpanRecord {
            track,
            role: 3,
            span,
            start,
            end,
            job,
            open: false,
        }
    }

    fn names(code: u8) -> (&'static str, u32) {
        (if code == 3 { "worker" } else { "other" }, 1)
    }

    #[test]
    fn overlapping_queue_spans_get_rows_of_their_own_and_old_spans_are_left_out() {
        let spans = vec![
            span(4, Span::JobQueued, 1_000, 9_000, 1),
            span(4, Span::JobQueued, 2_000, 5_000, 2),
            span(5, Span::JobQueued, 6_000, 7_000, 3),
            span(4, Span::JobRun, 9_000, 309_000, 1),
            span(4, Span::JobRun, 0, 500, 0),
        ];
        let body = render(spans, 0, 400_000, 399_000, names);
        let v: Value = serde_json::from_str(&body).unwrap();
        let events = v["traceEvents"].as_array().unwrap();
        let x: Vec<&Value> = events.iter().filter(|e| e["ph"] == "X").collect();
        assert_eq!(x.len(), 4, "the span that ended before the window is out");
        let tids: Vec<u64> = x.iter().map(|e| e["tid"].as_u64().unwrap()).collect();
        assert_eq!(tids, [QUEUE_TID, QUEUE_TID + 1, QUEUE_TID + 1, 4]);
        let run = x[3];
        assert_eq!(run["name"], "job run");
        assert_eq!(run["cat"], "job");
        assert_eq!(run["ts"], 9.0);
        assert_eq!(run["dur"], 300.0);
        assert_eq!(run["pid"], 1);
        assert_eq!(run["args"]["job_id"], "job_id_1");
        let named: Vec<&str> = events
            .iter()
            .filter(|e| e["ph"] == "M" && e["name"] == "thread_name")
            .map(|e| e["args"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(named, ["queue 0", "queue 1", "worker 4"]);
        assert_eq!(v["otherData"]["complete_since_start"], true);
    }

    /// Track 4 first carried another thread's span (a connection's, whose
    /// slot a late-starting worker then claimed), then the worker's job
    /// run: it is named `worker 4`. Named after its first span, it was
    /// `other 4` (seen as a flaky end-to-end test under load).
    #[test]
    fn a_reused_track_is_named_after_its_latest_owner() {
        let earlier = SpanRecord {
            role: 2,
            ..span(4, Span::ReadHead, 1_000, 2_000, 0)
        };
        let spans = vec![span(4, Span::JobRun, 3_000, 9_000, 1), earlier];
        let body = render(spans, 0, 10_000, 10_000, names);
        let v: Value = serde_json::from_str(&body).unwrap();
        let named: Vec<&str> = v["traceEvents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["ph"] == "M" && e["name"] == "thread_name")
            .map(|e| e["args"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(named, ["worker 4"]);
    }
}
