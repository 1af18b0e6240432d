//! The request-head parser and the chunked-body decoder (RFC 9112).
//!
//! The contract is httparse's: [`parse_head`] looks at the bytes received so
//! far and answers [`Parsed::Partial`] (read more), [`Parsed::Complete`] (the
//! head and its length; the bytes after it belong to the body or the next
//! request) or a [`ParseError`]. It never panics, never allocates per byte and
//! never trusts a length: every limit is checked *while* the head is still
//! partial, so a client cannot make the server buffer more than
//! `max_request_line + max_header_bytes` bytes of head.
//!
//! Invariants the tests check:
//! - every strict prefix of a valid request is `Partial`;
//! - every error closes the connection (after a framing error the byte
//!   stream can no longer be trusted: we never try to resynchronise);
//! - all error → status mapping is in [`ParseError::status`].
//!
//! Choices where RFC 9112 allows several:
//! - lines must end with CRLF; a bare LF (or a bare CR) anywhere is `400`
//!   (§2.2 allows accepting a bare LF; refusing it is simpler and closes a
//!   request-smuggling door);
//! - empty lines (CRLF) before the request line are skipped (§2.2), but they
//!   count towards the request-line limit so they cannot fill memory;
//! - header values must be UTF-8 (anything else is `400`), because
//!   [`crate::http::Request`] stores them as `String`;
//! - the request target is origin-form (`/path?query`), absolute-form
//!   (`http://host/path`, reduced to its path), or `*` for `OPTIONS`.

use crate::http::Version;
use crate::limits::{Limits, MAX_CHUNK_LINE};
use std::fmt;

/// How the body of a request is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body.
    None,
    /// Exactly this many bytes follow the head.
    ContentLength(u64),
    /// `Transfer-Encoding: chunked`; decode with [`ChunkedDecoder`].
    Chunked,
}

/// A parsed and validated request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The method token, case preserved.
    pub method: String,
    /// The target in origin-form (`/path?query`) or `*`.
    pub target: String,
    pub version: Version,
    /// Field names lower-cased, values trimmed of SP/HTAB, in arrival order.
    pub headers: Vec<(String, String)>,
    pub framing: BodyFraming,
    /// True if and only if the connection may stay open after this request:
    /// HTTP/1.1 without `Connection: close`, or HTTP/1.0 with
    /// `Connection: keep-alive` (and without `close`).
    pub keep_alive: bool,
    /// True if and only if an HTTP/1.1 request carries
    /// `Expect: 100-continue` (the expectation is ignored in HTTP/1.0, as
    /// RFC 9110 §10.1.1 requires).
    pub expect_continue: bool,
}

/// The outcome of [`parse_head`] when the bytes are not (yet) wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// The head is not complete; read more bytes and call again.
    Partial,
    /// The head is complete and occupies `buf[..len]`.
    Complete { head: Head, len: usize },
}

/// Why a request cannot be served. Every variant closes the connection.
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

    /// Returns true: after any parse error the connection is closed, since the
    /// position of the next request in the byte stream is unknown.
    pub fn closes_connection(self) -> bool {
        true
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.reason(), self.status())
    }
}

impl std::error::Error for ParseError {}

/// Parses the request head at the start of `buf`.
///
/// # Errors
/// A [`ParseError`] as soon as the bytes received so far cannot begin a
/// valid request within `limits`: a limit crossed (even while the head is
/// still partial), a syntax error in a complete line, or a framing conflict
/// found once the head is complete.
pub fn parse_head(buf: &[u8], limits: &Limits) -> Result<Parsed, ParseError> {
    // Pass 1 validates without allocating (it runs again on every read of a
    // slowly arriving head); pass 2 builds the `Head` only once it is complete.
    let mut pos = 0;
    while buf.get(pos..pos + 2) == Some(b"\r\n") {
        pos += 2;
    }

    // The request line. Its budget counts from byte 0, leading CRLFs included.
    let Some(lf) = find_lf(&buf[pos..]) else {
        // The line will end at index >= buf.len(), so its length with the LF
        // will be > buf.len(): too long already when buf.len() reaches the limit.
        return if buf.len() >= limits.max_request_line {
            Err(ParseError::RequestLineTooLong)
        } else {
            Ok(Parsed::Partial)
        };
    };
    let line_end = pos + lf + 1;
    if line_end > limits.max_request_line {
        return Err(ParseError::RequestLineTooLong);
    }
    let (method, target, version) = split_request_line(strip_crlf(&buf[pos..line_end])?)?;

    // The field lines, up to and including the empty line.
    let block_start = line_end;
    let mut p = block_start;
    let mut fields = 0usize;
    let head_end = loop {
        let Some(lf) = find_lf(&buf[p..]) else {
            // Same reasoning as for the request line: the block will be longer
            // than what has arrived.
            return if buf.len() - block_start >= limits.max_header_bytes {
                Err(ParseError::HeaderBlockTooLarge)
            } else {
                Ok(Parsed::Partial)
            };
        };
        let end = p + lf + 1;
        if end - block_start > limits.max_header_bytes {
            return Err(ParseError::HeaderBlockTooLarge);
        }
        let line = strip_crlf(&buf[p..end])?;
        if line.is_empty() {
            break end;
        }
        fields += 1;
        if fields > limits.max_header_fields {
            return Err(ParseError::TooManyHeaderFields);
        }
        split_field_line(line)?;
        p = end;
    };

    // Pass 2: the head is complete and every line is valid.
    let mut headers = Vec::with_capacity(fields);
    let mut framing = FramingScan::default();
    let mut p = block_start;
    while p < head_end {
        let Some(lf) = find_lf(&buf[p..head_end]) else {
            break; // unreachable: pass 1 found the LF of every line
        };
        let end = p + lf + 1;
        let line = strip_crlf(&buf[p..end])?;
        p = end;
        if line.is_empty() {
            break;
        }
        let (name, value) = split_field_line(line)?;
        framing.field(name, value)?;
        let value = std::str::from_utf8(value)
            .map_err(|_| ParseError::Malformed("header value is not UTF-8"))?;
        headers.push((ascii_lowercase(name), value.to_owned()));
    }
    let (body, keep_alive, expect_continue) = framing.finish(version)?;

    Ok(Parsed::Complete {
        head: Head {
            method: ascii_string(method),
            target: target.into_owned(),
            version,
            headers,
            framing: body,
            keep_alive,
            expect_continue,
        },
        len: head_end,
    })
}

/// The method, target and version of the first line of `buf`, if that
/// line is complete and well formed: lets the connection loop log *which*
/// request a later error (say, a bad header) answered.
pub fn request_line_parts(buf: &[u8]) -> Option<(&str, &str, Version)> {
    let mut pos = 0;
    while buf.get(pos..pos + 2) == Some(b"\r\n") {
        pos += 2;
    }
    let lf = find_lf(buf.get(pos..)?)?;
    let line = strip_crlf(&buf[pos..pos + lf + 1]).ok()?;
    let (method, _, version) = split_request_line(line).ok()?;
    // Re-split to borrow the target exactly as sent (it is visible ASCII).
    let rest = &line[method.len() + 1..];
    let target = &rest[..rest.iter().position(|&b| b == b' ')?];
    Some((
        std::str::from_utf8(method).ok()?,
        std::str::from_utf8(target).ok()?,
        version,
    ))
}

/// Everything pass 2 learns from the fields that decides framing and
/// persistence.
#[derive(Default)]
struct FramingScan {
    hosts: usize,
    content_length: Option<u64>,
    /// True if any `Transfer-Encoding` field was present, even empty.
    te_present: bool,
    /// Non-empty transfer codings, in order, counted by kind.
    te_codings: usize,
    te_chunked: usize,
    te_other: bool,
    /// True if and only if the last non-empty coding seen is `chunked`.
    te_last_chunked: bool,
    conn_close: bool,
    conn_keep_alive: bool,
    expect_continue: bool,
}

impl FramingScan {
    fn field(&mut self, name: &[u8], value: &[u8]) -> Result<(), ParseError> {
        if name.eq_ignore_ascii_case(b"host") {
            self.hosts += 1;
            if !value.iter().all(|&b| is_host_char(b)) {
                return Err(ParseError::Malformed("invalid Host"));
            }
        } else if name.eq_ignore_ascii_case(b"content-length") {
            // A list of identical values ("5, 5") is accepted (RFC 9112 §6.3
            // item 5); anything else that is not one decimal number is not.
            for element in value.split(|&b| b == b',') {
                let n = parse_decimal(trim_ows(element))
                    .ok_or(ParseError::Malformed("invalid Content-Length"))?;
                match self.content_length {
                    Some(m) if m != n => {
                        return Err(ParseError::Malformed("conflicting Content-Length"))
                    }
                    _ => self.content_length = Some(n),
                }
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            self.te_present = true;
            for element in value.split(|&b| b == b',').map(trim_ows) {
                if element.is_empty() {
                    continue; // empty list elements are ignored (RFC 9110 §5.6.1)
                }
                if !element.iter().all(|&b| is_tchar(b)) {
                    return Err(ParseError::Malformed("invalid Transfer-Encoding"));
                }
                self.te_codings += 1;
                self.te_last_chunked = element.eq_ignore_ascii_case(b"chunked");
                if self.te_last_chunked {
                    self.te_chunked += 1;
                } else {
                    self.te_other = true;
                }
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            for option in value.split(|&b| b == b',').map(trim_ows) {
                if option.eq_ignore_ascii_case(b"close") {
                    self.conn_close = true;
                } else if option.eq_ignore_ascii_case(b"keep-alive") {
                    self.conn_keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case(b"expect")
            && value.eq_ignore_ascii_case(b"100-continue")
        {
            self.expect_continue = true;
        }
        Ok(())
    }

    /// Applies RFC 9112 §6.3 and §9.3: returns the framing, the keep-alive
    /// decision and whether a `100 Continue` is expected.
    fn finish(self, version: Version) -> Result<(BodyFraming, bool, bool), ParseError> {
        match (version, self.hosts) {
            (Version::Http11, 1) | (Version::Http10, 0 | 1) => {}
            (Version::Http11, 0) => return Err(ParseError::Malformed("missing Host")),
            _ => return Err(ParseError::Malformed("more than one Host")),
        }
        let framing = if self.te_present {
            // Each of these is a request-smuggling vector: refuse, never guess.
            if version == Version::Http10 {
                return Err(ParseError::Malformed("Transfer-Encoding in HTTP/1.0"));
            }
            if self.content_length.is_some() {
                return Err(ParseError::Malformed(
                    "both Content-Length and Transfer-Encoding",
                ));
            }
            if self.te_codings == 0 {
                return Err(ParseError::Malformed("empty Transfer-Encoding"));
            }
            if self.te_other || !self.te_last_chunked {
                return Err(ParseError::UnsupportedTransferCoding);
            }
            if self.te_chunked > 1 {
                return Err(ParseError::Malformed("chunked applied more than once"));
            }
            BodyFraming::Chunked
        } else {
            match self.content_length {
                Some(n) => BodyFraming::ContentLength(n),
                None => BodyFraming::None,
            }
        };
        let keep_alive = !self.conn_close
            && match version {
                Version::Http11 => true,
                Version::Http10 => self.conn_keep_alive,
            };
        let expect_continue = self.expect_continue && version == Version::Http11;
        Ok((framing, keep_alive, expect_continue))
    }
}

/// Splits `method SP target SP version` (exactly one SP each, RFC 9112 §3)
/// and validates each part. The target is returned in origin-form.
fn split_request_line(
    line: &[u8],
) -> Result<(&[u8], std::borrow::Cow<'_, str>, Version), ParseError> {
    let bad = ParseError::Malformed("malformed request line");
    let sp1 = line.iter().position(|&b| b == b' ').ok_or(bad)?;
    let method = &line[..sp1];
    let rest = &line[sp1 + 1..];
    let sp2 = rest.iter().position(|&b| b == b' ').ok_or(bad)?;
    let target = &rest[..sp2];
    let version = parse_version(&rest[sp2 + 1..])?;
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(ParseError::Malformed("invalid method"));
    }
    let target = origin_form(method, target)?;
    Ok((method, target, version))
}

/// `HTTP/1.0` and `HTTP/1.1`; any other `HTTP/DIGIT.DIGIT` is `505`;
/// anything else is malformed.
fn parse_version(v: &[u8]) -> Result<Version, ParseError> {
    match v {
        b"HTTP/1.1" => Ok(Version::Http11),
        b"HTTP/1.0" => Ok(Version::Http10),
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            Err(ParseError::VersionNotSupported)
        }
        _ => Err(ParseError::Malformed("malformed HTTP version")),
    }
}

/// Validates the request target and reduces it to origin-form.
fn origin_form<'a>(
    method: &[u8],
    target: &'a [u8],
) -> Result<std::borrow::Cow<'a, str>, ParseError> {
    use std::borrow::Cow;
    let bad = ParseError::Malformed("invalid request target");
    if target.is_empty() || !target.iter().all(|&b| (0x21..=0x7e).contains(&b)) {
        return Err(bad);
    }
    // Visible ASCII is valid UTF-8, so this cannot fail; map it anyway.
    let text = std::str::from_utf8(target).map_err(|_| bad)?;
    if text.starts_with('/') {
        return Ok(Cow::Borrowed(text));
    }
    if text == "*" {
        return if method == b"OPTIONS" {
            Ok(Cow::Borrowed(text))
        } else {
            Err(bad)
        };
    }
    // absolute-form: scheme "://" authority path-abempty [ "?" query ]
    let after_scheme = ["http://", "https://"].iter().find_map(|scheme| {
        let head = text.get(..scheme.len())?;
        head.eq_ignore_ascii_case(scheme)
            .then(|| &text[scheme.len()..])
    });
    let rest = after_scheme.ok_or(bad)?;
    let path_start = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..path_start];
    if authority.is_empty() || !authority.bytes().all(is_host_char) {
        return Err(bad);
    }
    let path = &rest[path_start..];
    Ok(match path.as_bytes().first() {
        Some(b'/') => Cow::Borrowed(path),
        _ => Cow::Owned(format!("/{path}")),
    })
}

/// Splits `name ":" OWS value OWS` and validates both parts.
fn split_field_line(line: &[u8]) -> Result<(&[u8], &[u8]), ParseError> {
    if matches!(line.first(), Some(b' ' | b'\t')) {
        return Err(ParseError::Malformed("obsolete line folding"));
    }
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(ParseError::Malformed("header line without colon"))?;
    let name = &line[..colon];
    // Whitespace before the colon is not a tchar, so it is refused here
    // (RFC 9112 §5.1 requires exactly that).
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        return Err(ParseError::Malformed("invalid header name"));
    }
    let value = trim_ows(&line[colon + 1..]);
    if !value.iter().all(|&b| is_field_value_char(b)) {
        return Err(ParseError::Malformed("invalid character in header value"));
    }
    std::str::from_utf8(value).map_err(|_| ParseError::Malformed("header value is not UTF-8"))?;
    Ok((name, value))
}

/// The line without its CRLF.
///
/// # Errors
/// When the LF that ends `line` is not preceded by a CR.
fn strip_crlf(line: &[u8]) -> Result<&[u8], ParseError> {
    match line {
        [content @ .., b'\r', b'\n'] => Ok(content),
        _ => Err(ParseError::Malformed("line not ended by CRLF")),
    }
}

fn find_lf(buf: &[u8]) -> Option<usize> {
    buf.iter().position(|&b| b == b'\n')
}

/// Strips SP and HTAB (and only those) from both ends.
fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// `1*DIGIT` without sign, prefix or whitespace, overflow-checked.
fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |n, &b| {
        let digit = (b as char).to_digit(10)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// RFC 9110 §5.5 field-vchar, SP or HTAB (obs-text included). Excludes NUL,
/// CR, LF and every other control character.
fn is_field_value_char(b: u8) -> bool {
    b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80
}

/// Characters of `uri-host [":" port]` (reg-name, IPv4 or IP-literal).
fn is_host_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~%!$&'()*+,;=:[]".contains(&b)
}

/// The caller guarantees `bytes` is ASCII (a token), so no byte is lost.
fn ascii_string(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

fn ascii_lowercase(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| b.to_ascii_lowercase() as char)
        .collect()
}

/// The incremental decoder of a chunked body (RFC 9112 §7.1).
///
/// Feed it the bytes after the head as they arrive; it appends the decoded
/// data to `out` and stops right after the final CRLF, so pipelined bytes
/// that follow stay with the caller. Chunk extensions are tolerated,
/// trailers are checked with the header limits and discarded.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: ChunkState,
    /// The chunk size read so far; only meaningful in the size-line states.
    size: u64,
    /// Bytes of the current size line so far (≤ `MAX_CHUNK_LINE`).
    line_len: usize,
    /// Decoded bytes so far; never exceeds `max_body`.
    decoded: u64,
    max_body: u64,
    trailer_bytes: usize,
    trailer_fields: usize,
    max_trailer_bytes: usize,
    max_trailer_fields: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Hex digits of the size; `line_len == 0` means none yet.
    Size,
    /// Whitespace after the size: only more whitespace or `;` may follow.
    SizeSpace,
    /// Inside chunk extensions, until CR.
    Extension,
    /// CR of the size line seen; LF must follow.
    SizeLf,
    /// This many data bytes remain in the chunk.
    Data(u64),
    DataCr,
    DataLf,
    /// At the start of a trailer line or of the final empty line.
    TrailerStart,
    TrailerName,
    TrailerValue,
    TrailerLf,
    EndLf,
    Done,
}

impl ChunkedDecoder {
    /// A decoder bounded by `limits.max_body_bytes` (decoded size) and the
    /// header limits (trailers).
    pub fn new(limits: &Limits) -> ChunkedDecoder {
        ChunkedDecoder {
            state: ChunkState::Size,
            size: 0,
            line_len: 0,
            decoded: 0,
            max_body: u64::try_from(limits.max_body_bytes).unwrap_or(u64::MAX),
            trailer_bytes: 0,
            trailer_fields: 0,
            max_trailer_bytes: limits.max_header_bytes,
            max_trailer_fields: limits.max_header_fields,
        }
    }

    /// True if and only if the whole body, trailers included, was decoded.
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Decodes from `input`, appending data to `out`, and returns how many
    /// bytes of `input` were consumed: all of them, unless the body ends
    /// inside `input`.
    ///
    /// # Errors
    /// [`ParseError::Malformed`] on any syntax error (a size that is not
    /// strictly hex, overflows, or lacks its CRLF), [`ParseError::BodyTooLarge`]
    /// as soon as a chunk size would take the decoded body past the limit,
    /// [`ParseError::HeaderBlockTooLarge`] / [`ParseError::TooManyHeaderFields`]
    /// for oversized trailers. After an error the decoder must not be used again.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, ParseError> {
        let mut i = 0;
        while i < input.len() {
            if let ChunkState::Data(remaining) = self.state {
                // Bulk copy: the only state that is not byte-at-a-time.
                let available = input.len() - i;
                let n = usize::try_from(remaining).map_or(available, |r| r.min(available));
                out.extend_from_slice(&input[i..i + n]);
                i += n;
                let left = remaining - n as u64;
                self.state = if left == 0 {
                    ChunkState::DataCr
                } else {
                    ChunkState::Data(left)
                };
                continue;
            }
            if self.state == ChunkState::Done {
                break;
            }
            self.step(input[i])?;
            i += 1;
        }
        Ok(i)
    }

    /// Advances the byte-at-a-time states by one byte.
    fn step(&mut self, b: u8) -> Result<(), ParseError> {
        use ChunkState::*;
        let bad = |why| Err(ParseError::Malformed(why));
        if matches!(self.state, Size | SizeSpace | Extension | SizeLf) {
            self.line_len += 1;
            if self.line_len > MAX_CHUNK_LINE {
                return bad("chunk size line too long");
            }
        }
        if matches!(
            self.state,
            TrailerStart | TrailerName | TrailerValue | TrailerLf | EndLf
        ) {
            self.trailer_bytes += 1;
            if self.trailer_bytes > self.max_trailer_bytes {
                return Err(ParseError::HeaderBlockTooLarge);
            }
        }
        self.state = match (self.state, b) {
            (Size, _) if b.is_ascii_hexdigit() => {
                // `to_digit(16)` cannot fail on a hex digit; 0 keeps the
                // arithmetic total anyway.
                let digit = u64::from((b as char).to_digit(16).unwrap_or(0));
                if self.size > (u64::MAX >> 4) {
                    return bad("chunk size overflow");
                }
                self.size = (self.size << 4) | digit;
                Size
            }
            // At least one digit must precede anything else (line_len counts
            // the current byte, so a first byte gives 1).
            (Size, _) if self.line_len == 1 => return bad("invalid chunk size"),
            (Size | SizeSpace, b' ' | b'\t') => SizeSpace,
            (Size | SizeSpace, b';') => Extension,
            (Size | Extension, b'\r') => SizeLf,
            (Extension, _) if is_field_value_char(b) => Extension,
            (SizeLf, b'\n') => {
                if self.decoded.saturating_add(self.size) > self.max_body {
                    return Err(ParseError::BodyTooLarge);
                }
                self.decoded += self.size;
                let size = std::mem::take(&mut self.size);
                self.line_len = 0;
                if size == 0 {
                    TrailerStart
                } else {
                    Data(size)
                }
            }
            (DataCr, b'\r') => DataLf,
            (DataLf, b'\n') => Size,
            (TrailerStart, b'\r') => EndLf,
            (TrailerStart, _) if is_tchar(b) => {
                self.trailer_fields += 1;
                if self.trailer_fields > self.max_trailer_fields {
                    return Err(ParseError::TooManyHeaderFields);
                }
                TrailerName
            }
            (TrailerName, _) if is_tchar(b) => TrailerName,
            (TrailerName, b':') => TrailerValue,
            (TrailerValue, b'\r') => TrailerLf,
            (TrailerValue, _) if is_field_value_char(b) => TrailerValue,
            (TrailerLf, b'\n') => TrailerStart,
            (EndLf, b'\n') => Done,
            (Size | SizeSpace | Extension | SizeLf, _) => return bad("invalid chunk size line"),
            (DataCr | DataLf, _) => return bad("chunk data not followed by CRLF"),
            _ => return bad("invalid chunked trailer"),
        };
        Ok(())
    }
}
