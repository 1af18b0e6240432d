//! The errors of the request parser and the chunked decoder, and the one
//! place where they become status codes ([`ParseError::status`]).

use crate::limits::Limits;
use std::fmt;

/// Why a request cannot be served. The connection loop answers every
/// variant and then closes: after a framing error the position of the next
/// request in the byte stream is unknown, so it never tries to resynchronise
/// (`tests/integration/http_socket.rs`: `limits_answer_414_and_431_and_errors_are_logged`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    /// The request line (with any leading empty lines) is longer than
    /// `Limits::max_request_line`.
    RequestLineTooLong,
    /// The field lines and the empty line ending them are longer than
    /// `Limits::max_header_bytes` (also used for chunked trailers).
    HeaderBlockTooLarge,
    /// More than `Limits::max_header_fields` field lines.
    TooManyHeaderFields,
    /// A syntax or framing error; the text says which.
    Malformed(&'static str),
    /// A well-formed `HTTP/x.y` other than 1.0 and 1.1.
    VersionNotSupported,
    /// A transfer coding other than `chunked`, or not ending in `chunked`.
    UnsupportedTransferCoding,
    /// The body (declared or decoded) is larger than `Limits::max_body_bytes`.
    BodyTooLarge,
}

impl ParseError {
    /// The status that answers this error: the one place where parser errors
    /// become status codes.
    #[must_use]
    pub fn status(self) -> u16 {
        match self {
            ParseError::RequestLineTooLong => 414,
            ParseError::HeaderBlockTooLarge | ParseError::TooManyHeaderFields => 431,
            ParseError::Malformed(_) => 400,
            ParseError::VersionNotSupported => 505,
            ParseError::UnsupportedTransferCoding => 501,
            ParseError::BodyTooLarge => 413,
        }
    }

    /// The `reason` of the JSON error body.
    #[must_use]
    pub fn reason(self) -> &'static str {
        match self {
            ParseError::RequestLineTooLong => "request line too long",
            ParseError::HeaderBlockTooLarge => "request header fields too large",
            ParseError::TooManyHeaderFields => "too many request header fields",
            ParseError::Malformed(why) => why,
            ParseError::VersionNotSupported => "HTTP version not supported",
            ParseError::UnsupportedTransferCoding => "transfer coding not implemented",
            ParseError::BodyTooLarge => "request body too large",
        }
    }

    /// The `reason` of the JSON error body, stating the limit that was
    /// crossed (as configured in `limits`) for the errors that are limits.
    #[must_use]
    pub fn explain(self, limits: &Limits) -> String {
        match self {
            ParseError::RequestLineTooLong => format!(
                "request line too long: the limit is {} bytes (method, target and version)",
                limits.max_request_line
            ),
            ParseError::HeaderBlockTooLarge => format!(
                "request header fields too large: the limit is {} bytes of header fields",
                limits.max_header_bytes
            ),
            ParseError::TooManyHeaderFields => format!(
                "too many request header fields: the limit is {} fields",
                limits.max_header_fields
            ),
            ParseError::BodyTooLarge => format!(
                "request body too large: the limit is {} bytes",
                limits.max_body_bytes
            ),
            other => other.reason().to_owned(),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.reason(), self.status())
    }
}

impl std::error::Error for ParseError {}
