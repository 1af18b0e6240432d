//! The scoreboard's side of the timeline ([`crate::trace`]): the job
//! queue's spans, and `/api/trace` with the spans still going on.

use super::{board, mine, span_of, threads, Role, Word};
use crate::trace::{self, Span, SpanRecord};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Notes that job `id` was queued now (its `job queued` span starts).
pub fn job_queued(id: u64) {
    let board = board();
    board.timeline.job_queued(id, board.now_nanos());
}

/// On the worker that took job `id`: records its `job queued` span, from
/// its queueing until now, on this worker's track.
pub fn job_taken(id: u64) {
    let Some((slot, track)) = mine() else { return };
    let board = board();
    let Some(queued) = board.timeline.queued_at(id) else {
        return;
    };
    let role = Word::unpack(slot.word.load(Ordering::Relaxed))
        .role
        .map_or(0, |r| r as u8);
    board
        .timeline
        .record(track, role, Span::JobQueued, queued, board.now_nanos(), id);
}

/// Records `span`, from `start` (see [`now_nanos`](super::now_nanos)) until
/// now, on the calling thread's track: for a span that is no state of the
/// scoreboard (the accept loop's `accept`).
pub fn record_span(span: Span, start: u64) {
    let Some((slot, track)) = mine() else { return };
    let board = board();
    let role = Word::unpack(slot.word.load(Ordering::Relaxed))
        .role
        .map_or(0, |r| r as u8);
    board
        .timeline
        .record(track, role, span, start, board.now_nanos(), 0);
}

/// A role's name and the rank of its rows on the timeline (workers first).
fn role_name(code: u8) -> (&'static str, u32) {
    Role::ALL
        .into_iter()
        .find(|r| *r as u8 == code)
        .map_or(("thread", 9), |role| {
            let rank = match role {
                Role::Worker => 1,
                Role::Persister => 2,
                Role::LogWriter => 3,
                Role::Accept => 4,
                Role::Connection => 5,
            };
            (role.name(), rank)
        })
}

/// The body of `GET /api/trace?seconds=N`: the spans of the last `window`
/// (those that ended within it, and those going on now, marked
/// `in_progress`), in the Trace Event Format.
#[must_use]
pub fn render_trace(window: Duration) -> String {
    let board = board();
    let now = board.now_nanos();
    let (mut spans, complete_since) = board.timeline.spans();
    for thread in threads() {
        let word = Word {
            state: thread.state,
            endpoint: thread.endpoint,
            role: Some(thread.role),
            job: thread.job,
        };
        if let Some(span) = span_of(word) {
            let start = now.saturating_sub(u64::try_from(thread.for_.as_nanos()).unwrap_or(0));
            spans.push(SpanRecord {
                track: thread.slot,
                role: thread.role as u8,
                span,
                start,
                end: now,
                job: thread.job,
                open: true,
            });
        }
    }
    let window = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX);
    trace::render(spans, complete_since, now, window, role_name)
}
