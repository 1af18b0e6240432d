//! Reading a computing request's JSON body into a [`Query`], with the depth
//! scan that refuses deeply nested bodies before `serde_json` sees them.

use super::errors::BodyProblem;
use crate::limits::MAX_JSON_DEPTH;
use crate::stats::{Endpoint, Query};
use serde_json::Value;

/// Reads `{"question": Q}` (and `"state": S` where the endpoint needs it)
/// from a body, whatever its Content-Type says. Other members are ignored.
///
/// # Errors
/// A body that is empty, nested too deep, or not a JSON object, or a
/// missing or non-string field (see [`BodyProblem`]).
pub(super) fn parse_query(endpoint: Endpoint, body: &[u8]) -> Result<Query, BodyProblem> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(BodyProblem::Missing);
    }
    if json_depth_exceeds(body, MAX_JSON_DEPTH) {
        return Err(BodyProblem::TooDeep);
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| BodyProblem::NotJson(e.to_string()))?;
    let object = value.as_object().ok_or(BodyProblem::NotObject)?;
    let field = |name: &'static str| -> Result<String, BodyProblem> {
        match object.get(name) {
            Some(Value::String(text)) => Ok(text.clone()),
            Some(_) => Err(BodyProblem::NotString(name)),
            None => Err(BodyProblem::MissingField(name)),
        }
    };
    let question = field("question")?;
    let state = if endpoint.needs_state() {
        Some(field("state")?)
    } else {
        None
    };
    Ok(Query {
        endpoint,
        question,
        state,
    })
}

/// True if and only if `body` opens more than `max` arrays or objects
/// inside one another, counting only brackets and braces outside JSON
/// strings (a `\"` inside a string does not end it). A byte scan with no
/// recursion and no allocation, so it is safe on any input; it does not
/// check that the body is valid JSON (`serde_json` does that next).
fn json_depth_exceeds(body: &[u8], max: usize) -> bool {
    let mut depth = 0_usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in body {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            // Unbalanced closers are serde_json's to report.
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_read_from_json_whatever_the_content_type() {
        let q = parse_query(
            Endpoint::StateMean,
            br#"{"question": "Q", "state": "Ohio", "x": 1}"#,
        );
        assert_eq!(
            q,
            Ok(Query {
                endpoint: Endpoint::StateMean,
                question: "Q".into(),
                state: Some("Ohio".into())
            })
        );
        for (endpoint, body) in [
            (Endpoint::Best5, &b""[..]),
            (Endpoint::Best5, b"{"),
            (Endpoint::Best5, b"[1]"),
            (Endpoint::Best5, br#"{"question": 5}"#),
            (Endpoint::Best5, br#"{"q": "x"}"#),
            (Endpoint::StateMean, br#"{"question": "Q"}"#),
            (Endpoint::StateMean, br#"{"question": "Q", "state": null}"#),
        ] {
            assert!(
                parse_query(endpoint, body).is_err(),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn deeply_nested_bodies_are_rejected_not_overflowed() {
        let body = "[".repeat(100_000);
        assert_eq!(
            parse_query(Endpoint::Best5, body.as_bytes()),
            Err(BodyProblem::TooDeep)
        );
    }

    #[test]
    fn json_depth_counts_brackets_outside_strings_only() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(!json_depth_exceeds(nested(8).as_bytes(), 8));
        assert!(json_depth_exceeds(nested(9).as_bytes(), 8));
        assert!(json_depth_exceeds(br#"{"a": {"b": [[[[[[[1]]]]]]]}}"#, 8));
        assert!(!json_depth_exceeds(
            br#"{"a": [1], "b": [2], "c": {"d": 3}}"#,
            2
        ));
        // Brackets inside strings do not count, escaped quotes do not end a
        // string, and an escaped backslash does not escape the closing quote.
        let in_string = format!(r#"{{"question": "{}"}}"#, "[{".repeat(50));
        assert!(!json_depth_exceeds(in_string.as_bytes(), 1));
        assert!(!json_depth_exceeds(br#"{"q": "\"[[[[\""}"#, 1));
        assert!(json_depth_exceeds(br#"{"q": "\\", "r": [[1]]}"#, 2));
        assert!(!json_depth_exceeds(br#"{"q": "\\", "r": [1]}"#, 2));
        // Unbalanced closers and unterminated strings are not a depth error.
        assert!(!json_depth_exceeds(b"]]]]]]]]]][", 1));
        assert!(!json_depth_exceeds(br#"{"q": "[[[[[[[[[["#, 1));
        // A flat body at the limit parses as before.
        let flat = br#"{"question": "Q [x] {y}", "state": "Ohio"}"#;
        assert!(parse_query(Endpoint::StateMean, flat).is_ok());
    }
}
