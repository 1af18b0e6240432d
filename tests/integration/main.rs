//! Every integration test but `deep_json` (built in the debug profile on
//! its own) in one test binary: one link of the library instead of one per
//! file, which halves `make test`'s build. Each file is a module; the
//! shared helpers are `common`.

#[path = "../common/mod.rs"]
mod common;

mod api_e2e;
mod api_handler;
mod checker_cases_stats;
mod checker_http;
mod concurrency_map;
mod cookbook;
mod curl_e2e;
mod dataset;
mod descriptors_e2e;
mod fault_e2e;
mod fault_mount_e2e;
mod http_fuzz;
mod http_parser;
mod http_socket;
mod import_cycles;
mod jobs;
mod jobs_listing;
mod lifecycle_e2e;
mod lock_order_e2e;
mod log;
mod log_stall_e2e;
mod metrics_e2e;
mod model_check;
mod names;
mod pool;
mod pool_watch_e2e;
mod readme;
mod security_e2e;
mod stats;
mod storage_e2e;
mod stress_e2e;
