//! STUB: being written (issue 3).
