//! Responses and their serialisation into one buffer (one `write_all`).

use crate::http::Version;

/// One response. `Content-Length`, `Content-Type`, `Date`-less framing and
/// `Connection` headers are added by the writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    /// Extra headers (e.g. `Allow`).
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
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
        }
    }

    /// The same response with one more header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }

    /// The JSON error response every layer uses:
    /// `{"status": "error", "reason": "<reason>"}` (the reason JSON-escaped).
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
const WRITER_OWNED: [&str; 4] = [
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
];

/// Appends the serialised `response` to `out` and returns the status
/// actually written.
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
        out.extend_from_slice(b"\r\nContent-Length: ");
        push_decimal(out, response.body.len() as u64);
        out.extend_from_slice(b"\r\n");
    }
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
    if !options.keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if options.version == Version::Http10 {
        // A 1.0 client only keeps the connection if we say so.
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if body_allowed && !options.head_request {
        out.extend_from_slice(&response.body);
    }
    status
}

/// Appends `n` in decimal without going through `fmt` (this runs once or
/// twice per response).
fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// True if and only if the handler asked to close the connection after this
/// response (`Connection: close` among its extra headers).
pub fn wants_close(response: &Response) -> bool {
    response.headers.iter().any(|(name, value)| {
        name.eq_ignore_ascii_case("connection")
            && value
                .split(',')
                .any(|o| o.trim().eq_ignore_ascii_case("close"))
    })
}
