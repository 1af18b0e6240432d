//! Routing: which [`Route`] a path names, and which methods each route
//! takes.

use crate::stats::Endpoint;

/// What a route does; the router picks one from the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Route<'a> {
    /// `/` and `/index.html`: the chart page.
    Index,
    /// `/api`: the endpoint index.
    ApiIndex,
    /// `/api/<endpoint>`: queue a job computing one statistic.
    Compute(Endpoint),
    /// `/api/get_results/<id>`, with the id as requested (not yet checked).
    GetResults(&'a str),
    /// `/api/jobs`: the job list.
    Jobs,
    /// `/api/num_jobs`: how many jobs are pending.
    NumJobs,
    /// `/api/graceful_shutdown`.
    GracefulShutdown,
    /// `/api/questions`.
    Questions,
    /// `/api/states`.
    States,
    /// `/metrics`: the Prometheus text.
    Metrics,
    /// `/api/status`: the scoreboard as JSON.
    Status,
    /// `/api/trace`: the timeline in the Trace Event Format.
    Trace,
    /// `/status`: the scoreboard page.
    StatusPage,
    /// `/api/selftest/lock_order`: takes two locks out of order, so that a
    /// test sees the lock-order checker catch it in a running server. Only
    /// in builds with the `lock-order-selftest` feature (`make test`).
    #[cfg(feature = "lock-order-selftest")]
    LockOrderSelftest,
}

impl Route<'_> {
    /// The methods the route takes, as the `Allow` header lists them.
    pub(super) fn allowed_methods(self) -> &'static str {
        match self {
            Route::Compute(_) => "POST",
            // The course's clients shut down with GET; POST is accepted too
            // because the request changes server state. Not HEAD: a HEAD
            // must be safe (RFC 9110 §9.3.2), and a link checker or a
            // monitoring probe must not stop the server.
            Route::GracefulShutdown => "GET, POST",
            _ => "GET, HEAD",
        }
    }

    /// Whether `method` is one of [`Route::allowed_methods`], compared
    /// case-sensitively as methods are (split at commas: a `", "` pattern
    /// built a substring searcher on every request).
    pub(super) fn allows(self, method: &str) -> bool {
        self.allowed_methods()
            .split(',')
            .any(|allowed| allowed.trim_start() == method)
    }

    /// What the route changes, for the routes that change state (and so
    /// must not be driven by another site's page), else `None`.
    pub(super) fn changes_state(self) -> Option<&'static str> {
        match self {
            Route::Compute(_) => Some("submit jobs"),
            Route::GracefulShutdown => Some("shut the server down"),
            _ => None,
        }
    }
}

/// The route for `path`, or `None` for a path that no route takes (a 404).
/// One trailing slash is ignored: `/api/best5/` is `/api/best5`, and
/// `/api/get_results/1/` asks for job 1 (test `routes`).
pub(super) fn route(path: &str) -> Option<Route<'_>> {
    let path = match path.strip_suffix('/') {
        Some(without) if !without.is_empty() => without,
        _ => path,
    };
    if path == "/" || path == "/index.html" {
        return Some(Route::Index);
    }
    match path {
        "/api" => return Some(Route::ApiIndex),
        "/metrics" => return Some(Route::Metrics),
        "/status" => return Some(Route::StatusPage),
        _ => {}
    }
    let rest = path.strip_prefix("/api/")?;
    #[cfg(feature = "lock-order-selftest")]
    if rest == "selftest/lock_order" {
        return Some(Route::LockOrderSelftest);
    }
    if let Some(id) = rest.strip_prefix("get_results/") {
        return Some(Route::GetResults(id));
    }
    Some(match rest {
        "jobs" => Route::Jobs,
        "num_jobs" => Route::NumJobs,
        "graceful_shutdown" => Route::GracefulShutdown,
        "questions" => Route::Questions,
        "states" => Route::States,
        "status" => Route::Status,
        "trace" => Route::Trace,
        name => Route::Compute(Endpoint::from_name(name)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(route("/"), Some(Route::Index));
        assert_eq!(route("/api/jobs"), Some(Route::Jobs));
        assert_eq!(
            route("/api/get_results/job_id_3"),
            Some(Route::GetResults("job_id_3"))
        );
        assert_eq!(route("/api/best5"), Some(Route::Compute(Endpoint::Best5)));
        assert_eq!(route("/api/best6"), None);
        assert_eq!(route("/jobs"), None);
        // One trailing slash is ignored; two are not.
        assert_eq!(route("/api/"), Some(Route::ApiIndex));
        assert_eq!(route("/api/jobs/"), Some(Route::Jobs));
        assert_eq!(route("/api/best5/"), Some(Route::Compute(Endpoint::Best5)));
        assert_eq!(route("/status/"), Some(Route::StatusPage));
        assert_eq!(route("/api/get_results/1/"), Some(Route::GetResults("1")));
        assert_eq!(route("/api/get_results/"), None);
        assert_eq!(route("/api/jobs//"), None);
        assert_eq!(route("/metrics"), Some(Route::Metrics));
        assert_eq!(route("/api/status"), Some(Route::Status));
        assert_eq!(route("/status"), Some(Route::StatusPage));
        assert_eq!(Route::Metrics.allowed_methods(), "GET, HEAD");
    }

    #[test]
    fn a_route_allows_exactly_the_methods_its_allow_header_lists() {
        let compute = Route::Compute(Endpoint::Best5);
        assert!(compute.allows("POST"));
        assert!(!compute.allows("GET") && !compute.allows("post") && !compute.allows(""));
        assert!(Route::GracefulShutdown.allows("GET") && Route::GracefulShutdown.allows("POST"));
        assert!(!Route::GracefulShutdown.allows("HEAD"));
        assert!(Route::Jobs.allows("GET") && Route::Jobs.allows("HEAD"));
        assert!(!Route::Jobs.allows("POST") && !Route::Jobs.allows(" HEAD"));
    }
}
