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
//!   [`server`] accepts them, within the connection limit [`descriptors`]
//!   derives from the open-file limit;
//! - [`api`] routes requests, validates bodies and maps every error to a status;
//! - [`lifecycle`] coordinates shutdown; [`log`] writes the server and access logs;
//!   [`limits`] names every limit and timeout in one place; [`cli`] reads flags;
//! - [`metrics`] (`/metrics`) and [`scoreboard`] (`/api/status`, `/status`)
//!   show what the server is doing, without a lock on any hot path.
#![forbid(unsafe_code)]
// `clippy::pedantic` is on: what it found that made the code clearer was
// fixed. These lints are allowed, each for its reason:
#![warn(clippy::pedantic)]
#![allow(
    // Every narrowing cast names the invariant that bounds it (row and name
    // counts below 2^32, nine endpoints); `try_from` would add panics that
    // cannot fire.
    clippy::cast_possible_truncation,
    // Counts and nanoseconds as `f64` are exact below 2^53, and pandas
    // divides by a float count the same way.
    clippy::cast_precision_loss,
    // `FramingScan`'s flags are independent facts about the header fields.
    clippy::struct_excessive_bools,
    // An explicit `'a` shows that the result borrows the dataset.
    clippy::elidable_lifetime_names,
    // The chunked decoder's transition table reads best with bare states.
    clippy::enum_glob_use,
    // The escape scan folds without an early exit on purpose (a fast loop).
    clippy::needless_bitwise_bool,
    // Code points and IEEE constants are written as their standards print them.
    clippy::unreadable_literal
)]

pub mod api;
pub mod cli;
pub mod dataset;
pub mod descriptors;
pub mod http;
pub mod job_events;
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
pub mod sync;
pub mod trace;
