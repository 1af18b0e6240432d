//! Responses and their serialisation into one buffer (one `write_all`).
//!
//! A response whose body grows with the data (`/api/jobs`) is instead a
//! [`StreamBody`]: [`serialize`] writes its head, and the connection loop
//! then lets the body write itself in pieces, framed as chunks (HTTP/1.1) or
//! delimited by closing the connection (HTTP/1.0, which has no chunks).

use crate::http::Version;
use std::fmt;
use std::io::{self, Write};
use std::sync::Arc;

/// A body produced piece by piece while it is written: the function writes
/// the body to the `Write` it is given, in as many calls as it likes, and is
/// never asked to build it whole. Each `write` may reach the socket, so the
/// function must not hold a lock across one.
#[derive(Clone)]
pub struct StreamBody(Arc<WriteBody>);

/// The function behind a [`StreamBody`].
type WriteBody = dyn Fn(&mut dyn Write) -> io::Result<()> + Send + Sync;

impl StreamBody {
    pub fn new(write: impl Fn(&mut dyn Write) -> io::Result<()> + Send + Sync + 'static) -> Self {
        StreamBody(Arc::new(write))
    }

    /// Writes the whole body to `out`.
    ///
    /// # Errors
    /// Whatever `out` or the body's function returns.
    pub fn write_to(&self, out: &mut dyn Write) -> io::Result<()> {
        (self.0)(out)
    }
}

impl fmt::Debug for StreamBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StreamBody(..)")
    }
}

/// Two stream bodies are equal only if they are the same function.
impl PartialEq for StreamBody {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for StreamBody {}

/// One response. `Content-Length`, `Content-Type`, `Date`-less framing,
/// `Connection` and `X-Content-Type-Options: nosniff` headers are added by
/// the writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    /// Extra headers (e.g. `Allow`).
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    /// When `Some`, the body is this stream and `body` is ignored.
    pub stream: Option<StreamBody>,
}

impl Response {
    /// A response with a JSON body, to which a final `\n` is added: every
    /// JSON body on the wire ends with a newline (as Flask's `jsonify` does),
    /// so a shell prompt after `curl` starts on its own line. `body` is one
    /// JSON value in the house style (Python's `json.dumps` defaults: `", "`
    /// and `": "` separators, members in the documented order).
    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Response {
        let mut body = body.into();
        body.push(b'\n');
        Response {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body,
            stream: None,
        }
    }

    /// A response with a JSON body written piece by piece by `stream`
    /// (which writes the final `\n` itself).
    #[must_use]
    pub fn json_stream(status: u16, stream: StreamBody) -> Response {
        Response {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body: Vec::new(),
            stream: Some(stream),
        }
    }

    /// The whole body: `body`, or the stream's bytes written into memory.
    /// For callers that test a handler without a socket
    /// (`tests/integration/api_handler.rs`), not for the connection loop (which streams).
    ///
    /// # Errors
    /// When the stream's function fails.
    pub fn body_bytes(&self) -> io::Result<Vec<u8>> {
        match &self.stream {
            Some(stream) => {
                let mut body = Vec::new();
                stream.write_to(&mut body)?;
                Ok(body)
            }
            None => Ok(self.body.clone()),
        }
    }

    /// True if and only if this response's body is delimited by closing the
    /// connection: a stream answered to an HTTP/1.0 client, which knows no
    /// chunked coding. The connection loop closes after such a response.
    #[must_use]
    pub fn is_close_delimited(&self, version: Version) -> bool {
        self.stream.is_some() && version == Version::Http10
    }

    /// The same response with one more header.
    #[must_use]
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    /// The JSON error response every layer uses:
    /// `{"status": "error", "reason": "<reason>"}` (the reason JSON-escaped).
    #[must_use]
    pub fn error(status: u16, reason: &str) -> Response {
        // Serialising a `&str` cannot fail; the fallback keeps the body valid JSON.
        let reason = serde_json::to_string(reason).unwrap_or_else(|_| "\"error\"".to_owned());
        Response::json(
            status,
            format!("{{\"status\": \"error\", \"reason\": {reason}}}"),
        )
    }
}

/// The interim response sent before reading a body the client holds back
/// with `Expect: 100-continue`.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// How the connection loop wants a response framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOptions {
    /// The version of the request (the status line always says `HTTP/1.1`,
    /// the highest version we speak, as RFC 9110 §6.2 recommends).
    pub version: Version,
    /// True if the connection stays open after this response; false adds
    /// `Connection: close`.
    pub keep_alive: bool,
    /// True for a `HEAD` request: headers as for `GET`, no body.
    pub head_request: bool,
}

/// The standard reason phrase of `status` (RFC 9110 §15), or `""`.
#[must_use]
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// Headers the writer owns: a handler's copy would contradict the framing.
const WRITER_OWNED: [&str; 5] = [
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "x-content-type-options",
];

/// Appends the serialised `response` to `out` and returns the status
/// actually written. For a response with a [`StreamBody`] only the head is
/// appended (see [`streams_body`]), framed `Transfer-Encoding: chunked` for
/// HTTP/1.1 and with `Connection: close` for HTTP/1.0.
///
/// A status outside 200..=599 (a handler bug: interim responses are not for
/// handlers) is replaced by `500`. Extra headers whose name is not a token
/// or whose value holds a control character are dropped, so a handler cannot
/// split the response; so are the framing headers the writer owns.
pub fn serialize(response: &Response, options: WriteOptions, out: &mut Vec<u8>) -> u16 {
    if !(200..=599).contains(&response.status) {
        let fallback = Response::error(500, "internal error");
        return serialize(&fallback, options, out);
    }
    let status = response.status;
    // 204 and 304 never carry a body (RFC 9110 §15.3.5, §15.4.5).
    let body_allowed = status != 204 && status != 304;
    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(reason_phrase(status).as_bytes());
    out.extend_from_slice(b"\r\n");
    if body_allowed {
        out.extend_from_slice(b"Content-Type: ");
        out.extend_from_slice(response.content_type.as_bytes());
        out.extend_from_slice(b"\r\n");
        if response.stream.is_none() {
            out.extend_from_slice(b"Content-Length: ");
            push_decimal(out, response.body.len() as u64);
            out.extend_from_slice(b"\r\n");
        } else if options.version == Version::Http11 {
            // Also for HEAD: the headers a GET would get (RFC 9110 §9.3.2).
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
        }
        // A stream to an HTTP/1.0 client: no length, the close delimits it.
    }
    // Every response: a browser must not read a JSON answer as a script or
    // a page (test `every_response_says_nosniff_and_pages_cannot_be_framed`).
    out.extend_from_slice(b"X-Content-Type-Options: nosniff\r\n");
    for (name, value) in &response.headers {
        let owned = WRITER_OWNED.iter().any(|o| name.eq_ignore_ascii_case(o));
        let valid_name = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        let valid_value = value.bytes().all(|b| b == b'\t' || !b.is_ascii_control());
        if owned || !valid_name || !valid_value {
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !options.keep_alive || response.is_close_delimited(options.version) {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if options.version == Version::Http10 {
        // A 1.0 client only keeps the connection if we say so.
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if body_allowed && !options.head_request && response.stream.is_none() {
        out.extend_from_slice(&response.body);
    }
    status
}

/// True if and only if [`serialize`] left the body of `response` for the
/// caller to stream: it has a [`StreamBody`], may carry a body, and is not
/// an answer to `HEAD`.
#[must_use]
pub fn streams_body(response: &Response, options: WriteOptions) -> bool {
    response.stream.is_some()
        && !options.head_request
        && (200..=599).contains(&response.status)
        && response.status != 204
        && response.status != 304
}

/// Appends `n` in decimal (this runs once or twice per response).
fn push_decimal(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(decimal(n, &mut [0; 20]));
}

/// Appends `n` in decimal to a text, a `char` per digit (they are ASCII):
/// for the access log's numbers and the job listing's ids.
pub(crate) fn push_decimal_text(text: &mut String, n: u64) {
    text.extend(decimal(n, &mut [0; 20]).iter().map(|&d| char::from(d)));
}

/// The ASCII digits of `n` in decimal, written into `digits` without going
/// through `fmt` (it runs for every response and every access-log line).
/// Bytes, not `&str`: a `str` would cost a UTF-8 check per number, which
/// was 4% of a request's instructions (docs/bench.md, later 2026-12-06).
pub(crate) fn decimal(mut n: u64, digits: &mut [u8; 20]) -> &[u8] {
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &digits[i..]
}

/// True if and only if the handler asked to close the connection after this
/// response (`Connection: close` among its extra headers).
#[must_use]
pub fn wants_close(response: &Response) -> bool {
    response.headers.iter().any(|(name, value)| {
        name.eq_ignore_ascii_case("connection")
            && value
                .split(',')
                .any(|o| o.trim().eq_ignore_ascii_case("close"))
    })
}

#[cfg(test)]
mod tests {
    use super::{decimal, push_decimal_text};

    #[test]
    fn decimal_prints_as_display_does() {
        for n in [0, 7, 10, 99, 404, 4096, 1_000_000, u64::MAX] {
            assert_eq!(decimal(n, &mut [0; 20]), n.to_string().as_bytes());
            let mut text = String::from("x");
            push_decimal_text(&mut text, n);
            assert_eq!(text, format!("x{n}"));
        }
    }
}
