//! HTTP/1.1 (RFC 9112) over `std::net`: a hand-written request parser
//! ([`parser`]), a response writer ([`response`]) and the per-connection
//! loop ([`connection`]).
//!
//! Bytes flow one way: [`parser::parse_head`] turns bytes into a
//! [`parser::Head`], the connection loop reads the body and builds a
//! [`Request`], a [`Handler`] answers it with a [`Response`], and
//! [`response::serialize`] turns that into the bytes written.

pub mod chunked;
pub mod connection;
pub mod framing;
mod output;
pub mod parse_error;
pub mod parser;
mod read_buffer;
pub mod record;
pub mod response;
mod syntax;
pub(crate) mod timed_stream;

pub use record::RequestRecord;

pub use response::Response;
use std::net::IpAddr;

/// The HTTP version of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

impl Version {
    /// `"HTTP/1.0"` or `"HTTP/1.1"`, as on the request line.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// A complete request: head parsed and validated, body read and decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method token exactly as sent (case-sensitive, e.g. `GET`).
    pub method: String,
    /// The request target exactly as sent (origin-form, e.g. `/api/jobs?x=1`).
    pub target: String,
    pub version: Version,
    /// Field names lower-cased; values with surrounding SP/HTAB trimmed,
    /// as the bytes sent (RFC 9110 §5.5: they need not be UTF-8).
    pub headers: Vec<(String, Vec<u8>)>,
    /// The decoded body (empty when there is none).
    pub body: Vec<u8>,
    /// The client's address (the socket's peer), if the system could tell.
    pub peer: Option<IpAddr>,
}

impl Request {
    /// The target's path: everything before the first `?` or `#`.
    #[must_use]
    pub fn path(&self) -> &str {
        path_of(&self.target)
    }

    /// The value of the first field named `name` (compared
    /// case-insensitively) as text; `None` when it is absent or not UTF-8
    /// (such a value is opaque: the server reads no text out of it).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        header_value(&self.headers, name).and_then(|v| std::str::from_utf8(v).ok())
    }
}

/// The bytes of the first field named `name` (compared case-insensitively).
#[must_use]
pub fn header_value<'a>(headers: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

/// The path of a request target: everything before the first `?` or `#`.
#[must_use]
pub fn path_of(target: &str) -> &str {
    // A byte search: both are ASCII, so `end` is a char boundary.
    let end = target
        .bytes()
        .position(|b| b == b'?' || b == b'#')
        .unwrap_or(target.len());
    &target[..end]
}

/// What answers requests: the API implements it, the connection loop calls it.
/// Implementations must not block for long: a request is answered on the
/// connection's own thread.
pub trait Handler: Send + Sync {
    /// Answers one request. A panic here is caught by the connection loop
    /// and answered `500`.
    fn handle(&self, request: &Request) -> Response;
}
