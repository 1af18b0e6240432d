//! `GET /api`: the endpoint index — each endpoint's methods, body fields
//! and what it does.

use super::route::{route, Route};
use super::{done_list, json_string};
use crate::http::Response;
use crate::stats::Endpoint;

/// One non-computing path of the index.
struct OtherEndpoint {
    /// The path as the index shows it (`<job_id>` stands for an id).
    path: &'static str,
    /// What it does, in a phrase.
    about: &'static str,
}

/// What every non-computing path does, for the `GET /api` index, in the
/// order the index lists them (the computing endpoints come first).
const OTHER_ENDPOINTS: [OtherEndpoint; 12] = [
    OtherEndpoint {
        path: "/api/get_results/<job_id>",
        about: "the job's status and result; ?wait=SECONDS (0-30) waits for a running job",
    },
    OtherEndpoint {
        path: "/api/jobs",
        about: "every job and its status, in id order; ?after=job_id_N&limit=K for one page",
    },
    OtherEndpoint {
        path: "/api/num_jobs",
        about: "how many jobs are queued or running",
    },
    OtherEndpoint {
        path: "/api/graceful_shutdown",
        about: "stop accepting jobs, finish the queued ones",
    },
    OtherEndpoint {
        path: "/api/questions",
        about: "the questions, with their best/worst direction",
    },
    OtherEndpoint {
        path: "/api/states",
        about: "the states and territories",
    },
    OtherEndpoint {
        path: "/api",
        about: "this index",
    },
    OtherEndpoint {
        path: "/",
        about: "the chart page (?question=Q&view=ranking|diff|map|state&state=S)",
    },
    OtherEndpoint {
        path: "/metrics",
        about: "Prometheus metrics (text format 0.0.4)",
    },
    OtherEndpoint {
        path: "/api/status",
        about: "what every thread is doing now, the queue and the shutdown phase",
    },
    OtherEndpoint {
        path: "/api/trace",
        about: "what each thread did recently, as Chrome Trace Event Format JSON \
                (opens in Perfetto); ?seconds=N (1-30, default 5)",
    },
    OtherEndpoint {
        path: "/status",
        about: "the live scoreboard page",
    },
];

/// What a computing endpoint's job answers, for the `GET /api` index.
fn what_it_answers(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::StatesMean => "the mean of every state, ascending",
        Endpoint::StateMean => "the mean of one state",
        Endpoint::Best5 => "the 5 best states, best first",
        Endpoint::Worst5 => "the 5 worst states, worst first",
        Endpoint::GlobalMean => "the mean over all rows",
        Endpoint::DiffFromMean => "global mean minus each state's mean",
        Endpoint::StateDiffFromMean => "global mean minus one state's mean",
        Endpoint::MeanByCategory => "the mean of every (state, category, stratification)",
        Endpoint::StateMeanByCategory => {
            "the mean of every (category, stratification) of one state"
        }
    }
}

/// `GET /api`: the course's endpoints and the chart page — each with its
/// methods (as `Allow` lists them, read from the router so the two cannot
/// differ), its body fields and what it does. The observability paths
/// (`/metrics`, `/api/status`, `/status`) are not listed.
pub(super) fn api_index() -> Response {
    let mut items = Vec::with_capacity(Endpoint::ALL.len() + OTHER_ENDPOINTS.len());
    for endpoint in Endpoint::ALL {
        let body = if endpoint.needs_state() {
            r#"["question", "state"]"#
        } else {
            r#"["question"]"#
        };
        items.push(index_entry(
            &format!("/api/{}", endpoint.name()),
            Route::Compute(endpoint).allowed_methods(),
            body,
            what_it_answers(endpoint),
        ));
    }
    for OtherEndpoint { path, about } in OTHER_ENDPOINTS {
        let routed = route(path.replace("<job_id>", "1").as_str()).map(Route::allowed_methods);
        // Every path of the table is routed (test `every_index_path_is_routed`).
        let allow = routed.unwrap_or("GET, HEAD");
        items.push(index_entry(path, allow, "[]", about));
    }
    done_list(&items)
}

fn index_entry(path: &str, allow: &str, body: &str, about: &str) -> String {
    format!(
        r#"{{"path": {}, "method": {}, "body": {body}, "about": {}}}"#,
        json_string(path),
        json_string(allow),
        json_string(about)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn every_index_path_is_routed() {
        for OtherEndpoint { path, .. } in OTHER_ENDPOINTS {
            assert!(route(&path.replace("<job_id>", "1")).is_some(), "{path}");
        }
        let index: Value = serde_json::from_slice(&api_index().body).unwrap();
        let entries = index["data"].as_array().unwrap();
        assert_eq!(entries.len(), 21);
        assert_eq!(entries[1]["path"], "/api/state_mean");
        assert_eq!(entries[1]["method"], "POST");
        assert_eq!(entries[1]["body"], serde_json::json!(["question", "state"]));
        assert_eq!(entries[11]["path"], "/api/num_jobs");
        assert_eq!(entries[11]["method"], "GET, HEAD");
        assert_eq!(entries[12]["method"], "GET, POST");
        assert_eq!(entries[20]["path"], "/status");
        assert_eq!(entries[20]["method"], "GET, HEAD");
    }
}
