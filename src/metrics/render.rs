//! The `/metrics` text: every family in the Prometheus text exposition
//! format 0.0.4, written section by section into one `String`.

use super::histogram::Histogram;
use super::{PREFIX, REGISTRY, ROUTES};
use crate::scoreboard::{self, Role, Snapshot, ThreadState, ThreadView};
use crate::stats::Endpoint;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

/// The states a connection's `/metrics` label can take, with their label.
const CONNECTION_STATES: [(ThreadState, &str); 6] = [
    (ThreadState::ReadingHead, "reading_head"),
    (ThreadState::ReadingBody, "reading_body"),
    (ThreadState::Handling, "handling"),
    (ThreadState::WaitingForJob, "waiting_for_job"),
    (ThreadState::Writing, "writing"),
    (ThreadState::KeepAlive, "idle_keep_alive"),
];

/// Renders every metric in the text exposition format 0.0.4.
#[must_use]
pub fn render(snapshot: &Snapshot) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let threads = scoreboard::threads();
    write_requests(&mut out);
    write_job_counters(&mut out);
    write_job_histograms(&mut out);
    write_gauges(&mut out, snapshot, &threads);
    write_connections(&mut out, &threads);
    write_process(&mut out);
    out
}

/// Requests by route and status class, and their durations.
fn write_requests(out: &mut String) {
    let r = &REGISTRY;
    family(
        out,
        "http_requests_total",
        "counter",
        "Requests answered, by route and status class.",
    );
    for (route, classes) in ROUTES.iter().zip(&r.requests) {
        for (class, counter) in classes.iter().enumerate() {
            let labels = format!("route=\"{route}\",code=\"{}xx\"", class + 1);
            sample(
                out,
                "http_requests_total",
                &labels,
                counter.load(Ordering::Relaxed),
            );
        }
    }
    family(
        out,
        "http_request_duration_seconds",
        "histogram",
        "Time from a request's first byte to the end of its response, by route.",
    );
    for (route, histogram) in ROUTES.iter().zip(&r.request_duration) {
        render_histogram(
            out,
            "http_request_duration_seconds",
            &format!("route=\"{route}\""),
            histogram,
        );
    }
}

/// Jobs submitted, finished and refused.
fn write_job_counters(out: &mut String) {
    let r = &REGISTRY;
    let endpoint_counters = [(
        "jobs_submitted_total",
        "Jobs accepted, by endpoint.",
        &r.jobs_submitted,
    )];
    for (name, help, counters) in endpoint_counters {
        family(out, name, "counter", help);
        for (endpoint, counter) in Endpoint::ALL.iter().zip(counters) {
            let labels = format!("endpoint=\"{}\"", endpoint.name());
            sample(out, name, &labels, counter.load(Ordering::Relaxed));
        }
    }
    family(
        out,
        "jobs_finished_total",
        "counter",
        "Jobs whose work finished, by endpoint and the work's outcome (done or error); a result that could not be saved counts here as done, and in result_write_failures_total.",
    );
    for (outcome, counters) in [("done", &r.jobs_done), ("error", &r.jobs_error)] {
        for (endpoint, counter) in Endpoint::ALL.iter().zip(counters) {
            let labels = format!("endpoint=\"{}\",outcome=\"{outcome}\"", endpoint.name());
            sample(
                out,
                "jobs_finished_total",
                &labels,
                counter.load(Ordering::Relaxed),
            );
        }
    }
    family(
        out,
        "jobs_refused_total",
        "counter",
        "Submissions refused, by reason.",
    );
    sample(
        out,
        "jobs_refused_total",
        "reason=\"queue_full\"",
        r.refused_queue_full.load(Ordering::Relaxed),
    );
    sample(
        out,
        "jobs_refused_total",
        "reason=\"shutting_down\"",
        r.refused_shutting_down.load(Ordering::Relaxed),
    );
    sample(
        out,
        "jobs_refused_total",
        "reason=\"ids_unavailable\"",
        r.refused_ids_unavailable.load(Ordering::Relaxed),
    );
    sample(
        out,
        "jobs_refused_total",
        "reason=\"degraded\"",
        r.refused_degraded.load(Ordering::Relaxed),
    );
}

/// How long jobs waited in the queue and ran.
fn write_job_histograms(out: &mut String) {
    let r = &REGISTRY;
    for (name, help, histograms) in [
        (
            "job_queue_wait_seconds",
            "Time a job waited in the queue before a worker took it, by endpoint.",
            &r.job_queue_wait,
        ),
        (
            "job_run_seconds",
            "Time a worker spent on a job (computing and saving its result), by endpoint.",
            &r.job_run,
        ),
    ] {
        family(out, name, "histogram", help);
        for (endpoint, histogram) in Endpoint::ALL.iter().zip(histograms) {
            render_histogram(
                out,
                name,
                &format!("endpoint=\"{}\"", endpoint.name()),
                histogram,
            );
        }
    }
}

/// Jobs queued and running, the log queue, failed result writes, and
/// workers by state.
fn write_gauges(out: &mut String, snapshot: &Snapshot, threads: &[ThreadView]) {
    let r = &REGISTRY;
    // One load: the same counts as `/api/status`'s `queue`.
    let jobs = scoreboard::job_counts();
    let gauges: [(&str, &str, u64); 7] = [
        (
            "jobs_queued",
            "Jobs accepted and not yet taken by a worker.",
            jobs.queued,
        ),
        (
            "jobs_running",
            "Jobs a worker is computing or writing now.",
            jobs.running,
        ),
        (
            "jobs_saving",
            "Jobs written and waiting for the directory flush that makes them durable.",
            jobs.saving,
        ),
        (
            "log_queue_depth",
            "Log lines waiting for the log writer.",
            snapshot.log_queue_depth as u64,
        ),
        (
            "log_lines_dropped_total",
            "Log lines dropped because the log could not keep up.",
            snapshot.log_lines_dropped,
        ),
        (
            "result_write_failures_total",
            "Jobs whose result could not be saved (they ended error).",
            r.result_write_failures.load(Ordering::Relaxed),
        ),
        (
            "degraded",
            "1 while results cannot be saved and new jobs are refused (the cause is in /api/status and the log).",
            u64::from(snapshot.degraded.is_some()),
        ),
    ];
    for (name, help, value) in gauges {
        let kind = if name.ends_with("_total") {
            "counter"
        } else {
            "gauge"
        };
        family(out, name, kind, help);
        sample(out, name, "", value);
    }
    family(
        out,
        "workers",
        "gauge",
        "Worker threads, by state (busy or idle).",
    );
    let idle = scoreboard::count(threads, Role::Worker, ThreadState::Idle);
    let all = threads.iter().filter(|t| t.role == Role::Worker).count();
    sample(out, "workers", "state=\"busy\"", (all - idle) as u64);
    sample(out, "workers", "state=\"idle\"", idle as u64);
}

/// Open connections by state, and connections accepted and refused.
fn write_connections(out: &mut String, threads: &[ThreadView]) {
    let r = &REGISTRY;
    family(
        out,
        "connections_open",
        "gauge",
        "Open connections, by state.",
    );
    for (state, label) in CONNECTION_STATES {
        let n = scoreboard::count(threads, Role::Connection, state);
        sample(
            out,
            "connections_open",
            &format!("state=\"{label}\""),
            n as u64,
        );
    }
    for (name, help, counter) in [
        (
            "connections_accepted_total",
            "Connections accepted and served.",
            &r.connections_accepted,
        ),
        (
            "connections_refused_total",
            "Connections refused (503): the connection limit was reached, or accept ran out of file descriptors.",
            &r.connections_refused,
        ),
    ] {
        family(out, name, "counter", help);
        sample(out, name, "", counter.load(Ordering::Relaxed));
    }
}

/// Uptime and the build's version.
fn write_process(out: &mut String) {
    family(
        out,
        "uptime_seconds",
        "gauge",
        "Seconds since the server started.",
    );
    let _ = writeln!(
        out,
        "{PREFIX}_uptime_seconds {}",
        scoreboard::uptime().as_secs_f64()
    );
    family(
        out,
        "build_info",
        "gauge",
        "Always 1; the version is a label.",
    );
    sample(
        out,
        "build_info",
        concat!("version=\"", env!("CARGO_PKG_VERSION"), "\""),
        1,
    );
}

/// Writes the `# HELP` and `# TYPE` lines of a family.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "# HELP {PREFIX}_{name} {help}\n# TYPE {PREFIX}_{name} {kind}"
    );
}

/// Writes one sample line; `labels` is empty or `k="v",...`.
fn sample(out: &mut String, name: &str, labels: &str, value: u64) {
    if labels.is_empty() {
        let _ = writeln!(out, "{PREFIX}_{name} {value}");
    } else {
        let _ = writeln!(out, "{PREFIX}_{name}{{{labels}}} {value}");
    }
}

/// Writes a histogram's cumulative `_bucket` lines, then `_sum` and
/// `_count`.
fn render_histogram(out: &mut String, name: &str, labels: &str, histogram: &Histogram) {
    let mut cumulative = 0;
    for (le, count) in histogram.buckets() {
        cumulative += count;
        let _ = writeln!(
            out,
            "{PREFIX}_{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}"
        );
    }
    let sum = histogram.sum_seconds();
    let _ = writeln!(out, "{PREFIX}_{name}_sum{{{labels}}} {sum}");
    let _ = writeln!(out, "{PREFIX}_{name}_count{{{labels}}} {cumulative}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let h = Histogram::new();
        h.observe(Duration::from_micros(50)); // on the bound: le="0.00005"
        h.observe(Duration::from_micros(51));
        h.observe(Duration::from_secs(10)); // above every bound: +Inf only
        let mut out = String::new();
        render_histogram(&mut out, "x_seconds", "a=\"b\"", &h);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "lss_x_seconds_bucket{a=\"b\",le=\"0.00005\"} 1");
        assert_eq!(lines[1], "lss_x_seconds_bucket{a=\"b\",le=\"0.0001\"} 2");
        assert_eq!(lines[15], "lss_x_seconds_bucket{a=\"b\",le=\"5\"} 2");
        assert_eq!(lines[16], "lss_x_seconds_bucket{a=\"b\",le=\"+Inf\"} 3");
        assert_eq!(lines[17], "lss_x_seconds_sum{a=\"b\"} 10.000101");
        assert_eq!(lines[18], "lss_x_seconds_count{a=\"b\"} 3");
        assert_eq!(h.count(), 3);
    }

    #[test]
    fn every_family_has_help_and_type_before_its_samples() {
        let text = render(&Snapshot::default());
        let mut declared = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                declared.push(rest.split(' ').next().unwrap().to_string());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .filter(|base| declared.iter().any(|d| d == base))
                    .unwrap_or(name);
                assert!(declared.iter().any(|d| d == family), "undeclared: {line}");
            }
        }
        assert!(text.ends_with('\n'));
        assert!(text.contains("lss_build_info{version=\""));
    }
}
