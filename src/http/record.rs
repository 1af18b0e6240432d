//! What the connection loop tells the access log about each request.

use crate::http::parser::RequestLine;
use crate::http::{header_value, path_of, Version};
use std::net::IpAddr;
use std::time::Duration;

/// What the log callback learns about each answered request: the fields of
/// an access-log line. Requests that fail to parse are reported too, with
/// what is known (`"-"` for the rest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestRecord<'a> {
    /// The client's address (the socket's peer), if the system could tell.
    pub peer: Option<IpAddr>,
    /// The method, or `"-"` when the request line could not be parsed.
    pub method: &'a str,
    /// The target's path, or `"-"` when the request line could not be parsed.
    pub path: &'a str,
    /// The target exactly as received, query string included, or `"-"`.
    pub target: &'a str,
    /// `"HTTP/1.1"` or `"HTTP/1.0"`, or `""` when the request line could
    /// not be parsed.
    pub version: &'static str,
    /// The status actually written (or attempted, for a `408`).
    pub status: u16,
    /// Bytes of response body written (0 for `HEAD`, `204`, `304`).
    pub body_bytes: u64,
    /// The `Referer` header as sent (any bytes), if sent.
    pub referer: Option<&'a [u8]>,
    /// The `User-Agent` header as sent (any bytes), if sent.
    pub user_agent: Option<&'a [u8]>,
    /// From the first byte of the request to the end of the response.
    pub duration: Duration,
}

impl<'a> RequestRecord<'a> {
    /// A request whose request line is unknown: everything but the peer,
    /// status, bytes and duration is `"-"`.
    #[must_use]
    pub fn unparsed(
        peer: Option<IpAddr>,
        status: u16,
        body_bytes: u64,
        duration: Duration,
    ) -> RequestRecord<'static> {
        RequestRecord {
            peer,
            method: "-",
            path: "-",
            target: "-",
            version: "",
            status,
            body_bytes,
            referer: None,
            user_agent: None,
            duration,
        }
    }

    /// A request whose head was parsed.
    pub(crate) fn of_head(
        peer: Option<IpAddr>,
        method: &'a str,
        target: &'a str,
        version: Version,
        headers: &'a [(String, Vec<u8>)],
    ) -> RequestRecord<'a> {
        let header = |name: &str| header_value(headers, name);
        RequestRecord {
            peer,
            method,
            path: path_of(target),
            target,
            version: version.as_str(),
            status: 0,
            body_bytes: 0,
            referer: header("referer"),
            user_agent: header("user-agent"),
            duration: Duration::ZERO,
        }
    }

    /// A request of which only the request line was parsed (a later line
    /// of its head was refused).
    pub(crate) fn of_line(peer: Option<IpAddr>, line: RequestLine<'a>) -> RequestRecord<'a> {
        RequestRecord::of_head(peer, line.method, line.target, line.version, &[])
    }
}
