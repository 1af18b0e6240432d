//! Le Stats Sportif: an HTTP/1.1 job-queue server answering statistical
//! questions about the CDC BRFSS "Nutrition, Physical Activity, and Obesity"
//! survey.
//!
//! Layers, bottom to top (data flows one way):
//!
//! - [`dataset`] loads the CSV once into an immutable, indexed [`dataset::Dataset`];
//! - [`stats`] is pure functions `(&Dataset, &Query) -> Answer`;
//! - [`pool`] is the worker threads; [`jobs`] numbers jobs, tracks their status
//!   and persists their results through [`results`];
//! - [`http`] parses and writes HTTP/1.1 bytes and runs connections;
//!   [`server`] accepts them;
//! - [`api`] routes requests, validates bodies and maps every error to a status;
//! - [`lifecycle`] coordinates shutdown; [`log`] writes the server and access logs;
//!   [`limits`] names every limit and timeout in one place; [`cli`] reads flags;
//! - [`metrics`] (`/metrics`) and [`scoreboard`] (`/api/status`, `/status`)
//!   show what the server is doing, without a lock on any hot path.
#![forbid(unsafe_code)]

pub mod api;
pub mod cli;
pub mod dataset;
pub mod http;
pub mod jobs;
pub mod lifecycle;
pub mod limits;
pub mod log;
pub mod metrics;
pub mod pool;
pub mod results;
pub mod scoreboard;
pub mod server;
pub mod stats;
