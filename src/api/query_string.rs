//! The query string of a request target, and `get_results`' only parameter,
//! `?wait=SECONDS`.

use super::errors::{quoted, ApiError};
use crate::limits::MAX_RESULT_WAIT;
use std::time::Duration;

/// The query string of a request target: after the first `?`, before any `#`.
pub(super) fn query_string(target: &str) -> Option<&str> {
    let rest = &target[target.find('?')? + 1..];
    Some(&rest[..rest.find('#').unwrap_or(rest.len())])
}

/// Reads `get_results`' query: only `wait=SECONDS`, a decimal number from 0
/// to 30 (`MAX_RESULT_WAIT`), fractions allowed. An unknown or repeated
/// parameter is a 400 rather than ignored, so that a typo (`?wiat=5`) does
/// not silently turn a long wait into a short one.
///
/// # Errors
/// A 400 naming the accepted parameter and range.
pub(super) fn parse_wait(query: Option<&str>) -> Result<Option<Duration>, ApiError> {
    let max = MAX_RESULT_WAIT.as_secs();
    let takes = format!("get_results takes only ?wait=SECONDS (0 to {max})");
    let Some(value) = only_parameter(query, "wait", &takes)? else {
        return Ok(None);
    };
    let digits = value.bytes().filter(u8::is_ascii_digit).count();
    let dots = value.bytes().filter(|&b| b == b'.').count();
    let seconds = (digits > 0 && digits + dots == value.len() && dots <= 1)
        .then(|| value.parse::<f64>().ok())
        .flatten()
        .filter(|s| *s <= MAX_RESULT_WAIT.as_secs_f64());
    let Some(seconds) = seconds else {
        return Err(ApiError::bad_request(format!(
            "wait must be a number of seconds from 0 to {max} (e.g. ?wait=5 or ?wait=0.5), not {}",
            quoted(value)
        )));
    };
    Ok(Some(Duration::from_secs_f64(seconds)))
}

/// The value of `name`, the one parameter a route takes, if given. An
/// unknown or repeated parameter is a 400 (`takes` says what is taken)
/// rather than ignored, so that a typo does not silently change the answer.
fn only_parameter<'a>(
    query: Option<&'a str>,
    name: &str,
    takes: &str,
) -> Result<Option<&'a str>, ApiError> {
    let mut found = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (given, value) = pair.split_once('=').unwrap_or((pair, ""));
        if given != name {
            return Err(ApiError::bad_request(format!(
                "unknown query parameter {}: {takes}",
                quoted(given)
            )));
        }
        if found.is_some() {
            return Err(ApiError::bad_request(format!("{name} is given twice")));
        }
        found = Some(value);
    }
    Ok(found)
}

/// The longest window `/api/trace?seconds=N` answers.
pub(super) const MAX_TRACE_SECONDS: u64 = 30;
/// The window `/api/trace` answers without `?seconds=`.
const DEFAULT_TRACE_SECONDS: u64 = 5;

/// Reads `/api/trace`'s query: only `seconds=N`, a whole number from 1 to
/// [`MAX_TRACE_SECONDS`]; 5 when absent.
///
/// # Errors
/// A 400 naming the accepted parameter and range.
pub(super) fn parse_trace_seconds(query: Option<&str>) -> Result<Duration, ApiError> {
    let takes = format!("trace takes only ?seconds=N (1 to {MAX_TRACE_SECONDS})");
    let Some(value) = only_parameter(query, "seconds", &takes)? else {
        return Ok(Duration::from_secs(DEFAULT_TRACE_SECONDS));
    };
    value
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| value.parse::<u64>().ok())
        .flatten()
        .filter(|n| (1..=MAX_TRACE_SECONDS).contains(n))
        .map(Duration::from_secs)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "seconds must be a whole number from 1 to {MAX_TRACE_SECONDS}, not {}",
                quoted(value)
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_takes_whole_seconds_from_1_to_30() {
        let secs = |n| Ok(Duration::from_secs(n));
        assert_eq!(parse_trace_seconds(None), secs(5));
        assert_eq!(parse_trace_seconds(Some("seconds=1")), secs(1));
        assert_eq!(parse_trace_seconds(Some("seconds=30")), secs(30));
        for bad in [
            "seconds=0",
            "seconds=31",
            "seconds=",
            "seconds=1.5",
            "seconds=-1",
            "seconds=+2",
            "seconds=99999999999999999999999",
            "seconds=1&seconds=2",
            "secs=2",
        ] {
            assert!(parse_trace_seconds(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn wait_is_the_only_query_of_get_results() {
        let ms = |n| Ok(Some(Duration::from_millis(n)));
        assert_eq!(query_string("/a?wait=1#x"), Some("wait=1"));
        assert_eq!(query_string("/a#x?y"), Some("y"));
        assert_eq!(query_string("/a"), None);
        assert_eq!(parse_wait(None), Ok(None));
        assert_eq!(parse_wait(Some("")), Ok(None));
        assert_eq!(parse_wait(Some("wait=0")), ms(0));
        assert_eq!(parse_wait(Some("wait=0.25")), ms(250));
        assert_eq!(parse_wait(Some("wait=.5")), ms(500));
        assert_eq!(parse_wait(Some("wait=30")), ms(30_000));
        assert_eq!(parse_wait(Some("wait=30.0")), ms(30_000));
        for bad in [
            "wait=30.01",
            "wait=31",
            "wait=-1",
            "wait=1e1",
            "wait=inf",
            "wait=NaN",
            "wait=",
            "wait",
            "wait=.",
            "wait=1.2.3",
            "wait=+1",
            "wait=1&wait=2",
            "wiat=1",
            "wait=1&x=2",
        ] {
            let Err(ApiError::BadRequest { reason, .. }) = parse_wait(Some(bad)) else {
                panic!("{bad} accepted");
            };
            assert!(
                reason.contains("0 to 30") || reason.contains("twice"),
                "{reason}"
            );
        }
    }
}
