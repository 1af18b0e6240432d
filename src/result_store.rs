//! Result files: `DIR/job_id_N.json`, written atomically, surviving restarts.
//!
//! STUB: to be written (issue 3).
