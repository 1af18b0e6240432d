//! The request-head parser (RFC 9112): bytes in, a validated [`Head`] out.
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
//! - every strict prefix of a valid request is `Partial`
//!   (`tests/integration/http_parser.rs`: `every_strict_prefix_of_a_valid_request_is_partial`);
//! - every error is answered and closes the connection (see [`ParseError`]);
//! - all error → status mapping is in [`ParseError::status`].
//!
//! Framing and persistence (which fields decide them) are in
//! [`crate::http::framing`], the chunked body in [`crate::http::chunked`].
//!
//! Choices where RFC 9112 allows several:
//! - lines must end with CRLF; a bare LF (or a bare CR) anywhere is `400`
//!   (§2.2 allows accepting a bare LF; refusing it is simpler and closes a
//!   request-smuggling door);
//! - empty lines (CRLF) before the request line are skipped (§2.2), but they
//!   count towards the request-line limit so they cannot fill memory;
//! - header values are opaque bytes (RFC 9110 §5.5: obs-text is allowed,
//!   and a Latin-1 `User-Agent` is not refused); only the fields the server
//!   reads as text (`Host`, the framing fields) need to be ASCII or UTF-8;
//! - a version `HTTP/1.x` with x above 1 is handled as `HTTP/1.1`
//!   (RFC 9110 §2.5); another major version is `505`;
//! - the request target is origin-form (`/path?query`), absolute-form
//!   (`http://host/path`, reduced to its path), or `*` for `OPTIONS`; an
//!   absolute-form target's authority replaces the `Host` field, which an
//!   origin server must then ignore (RFC 9112 §3.2.2), so the access
//!   checks judge the name the request was really sent to
//!   (`http_parser::an_absolute_form_target_s_authority_is_the_host`,
//!   `security_e2e::a_host_that_is_not_an_ip_localhost_or_allowed_is_misdirected`).

pub use crate::http::framing::BodyFraming;
pub use crate::http::parse_error::ParseError;

use crate::http::framing::FramingScan;
use crate::http::syntax::{is_field_value_char, is_host_char, is_tchar, trim_ows};
use crate::http::Version;
use crate::limits::Limits;
use std::borrow::Cow;

/// A parsed and validated request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The method token, case preserved.
    pub method: String,
    /// The target in origin-form (`/path?query`) or `*`.
    pub target: String,
    pub version: Version,
    /// Field names lower-cased, values trimmed of SP/HTAB and kept as the
    /// bytes sent (they need not be UTF-8), in arrival order.
    pub headers: Vec<(String, Vec<u8>)>,
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
    let Some(line) = scan_request_line(buf, limits)? else {
        return Ok(Parsed::Partial);
    };
    let Some(block) = scan_field_block(buf, line.end, limits)? else {
        return Ok(Parsed::Partial);
    };
    build_head(buf, line, block)
}

/// The request line, validated by pass 1.
struct ScannedLine<'a> {
    method: &'a [u8],
    target: Cow<'a, str>,
    /// The authority of an absolute-form target (`host:port`).
    authority: Option<&'a str>,
    version: Version,
    /// Index just past its LF: where the field block starts.
    end: usize,
}

/// The field block (the field lines and the empty line), validated by pass 1.
#[derive(Clone, Copy)]
struct ScannedBlock {
    start: usize,
    /// Index just past the empty line's LF: the length of the head.
    end: usize,
    fields: usize,
}

/// Pass 1 over the request line: `None` while it is incomplete (and still
/// within its limit). Its budget counts from byte 0, leading CRLFs included.
fn scan_request_line<'a>(
    buf: &'a [u8],
    limits: &Limits,
) -> Result<Option<ScannedLine<'a>>, ParseError> {
    let mut pos = 0;
    while buf.get(pos..pos + 2) == Some(b"\r\n") {
        pos += 2;
    }
    let Some(lf) = find_lf(&buf[pos..]) else {
        // The line will end at index >= buf.len(), so its length with the LF
        // will be > buf.len(): too long already when buf.len() reaches the limit.
        return if buf.len() >= limits.max_request_line {
            Err(ParseError::RequestLineTooLong)
        } else {
            Ok(None)
        };
    };
    let end = pos + lf + 1;
    if end > limits.max_request_line {
        return Err(ParseError::RequestLineTooLong);
    }
    let (method, (target, authority), version) = split_request_line(strip_crlf(&buf[pos..end])?)?;
    Ok(Some(ScannedLine {
        method,
        target,
        authority,
        version,
        end,
    }))
}

/// Pass 1 over the field lines from `start`, up to and including the empty
/// line: `None` while the block is incomplete (and still within its limits).
fn scan_field_block(
    buf: &[u8],
    start: usize,
    limits: &Limits,
) -> Result<Option<ScannedBlock>, ParseError> {
    let mut p = start;
    let mut fields = 0usize;
    loop {
        let Some(lf) = find_lf(&buf[p..]) else {
            // Same reasoning as for the request line: the block will be longer
            // than what has arrived.
            return if buf.len() - start >= limits.max_header_bytes {
                Err(ParseError::HeaderBlockTooLarge)
            } else {
                Ok(None)
            };
        };
        let end = p + lf + 1;
        if end - start > limits.max_header_bytes {
            return Err(ParseError::HeaderBlockTooLarge);
        }
        let line = strip_crlf(&buf[p..end])?;
        if line.is_empty() {
            return Ok(Some(ScannedBlock { start, end, fields }));
        }
        fields += 1;
        if fields > limits.max_header_fields {
            return Err(ParseError::TooManyHeaderFields);
        }
        split_field_line(line)?;
        p = end;
    }
}

/// Pass 2: the head is complete and every line is valid; builds the
/// [`Head`] and applies the framing rules.
fn build_head(
    buf: &[u8],
    line: ScannedLine<'_>,
    block: ScannedBlock,
) -> Result<Parsed, ParseError> {
    let mut headers = Vec::with_capacity(block.fields);
    let mut framing = FramingScan::default();
    let mut p = block.start;
    while p < block.end {
        let Some(lf) = find_lf(&buf[p..block.end]) else {
            break; // unreachable: pass 1 found the LF of every line
        };
        let end = p + lf + 1;
        let field_line = strip_crlf(&buf[p..end])?;
        p = end;
        if field_line.is_empty() {
            break;
        }
        let (name, value) = split_field_line(field_line)?;
        framing.field(name, value)?;
        headers.push((ascii_lowercase(name), value.to_vec()));
    }
    let decided = framing.finish(line.version)?;
    if let Some(authority) = line.authority {
        headers.retain(|(name, _)| name != "host");
        headers.push(("host".to_owned(), authority.as_bytes().to_vec()));
    }
    Ok(Parsed::Complete {
        head: Head {
            method: ascii_string(line.method),
            target: line.target.into_owned(),
            version: line.version,
            headers,
            framing: decided.body,
            keep_alive: decided.keep_alive,
            expect_continue: decided.expect_continue,
        },
        len: block.end,
    })
}

/// The three parts of a request line, borrowed exactly as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLine<'a> {
    pub method: &'a str,
    pub target: &'a str,
    pub version: Version,
}

/// The method, target and version of the first line of `buf`, if that
/// line is complete and well formed: lets the connection loop log *which*
/// request a later error (say, a bad header) answered.
#[must_use]
pub fn request_line_parts(buf: &[u8]) -> Option<RequestLine<'_>> {
    let mut pos = 0;
    while buf.get(pos..pos + 2) == Some(b"\r\n") {
        pos += 2;
    }
    let lf = find_lf(buf.get(pos..)?)?;
    let line = strip_crlf(&buf[pos..=pos + lf]).ok()?;
    let (method, _, version) = split_request_line(line).ok()?;
    // Re-split to borrow the target exactly as sent (it is visible ASCII).
    let rest = &line[method.len() + 1..];
    let target = &rest[..rest.iter().position(|&b| b == b' ')?];
    Some(RequestLine {
        method: std::str::from_utf8(method).ok()?,
        target: std::str::from_utf8(target).ok()?,
        version,
    })
}

/// Splits `method SP target SP version` (exactly one SP each, RFC 9112 §3)
/// and validates each part. The target is returned in origin-form, with
/// its authority if it came in absolute-form.
fn split_request_line(line: &[u8]) -> Result<(&[u8], OriginForm<'_>, Version), ParseError> {
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

/// `HTTP/1.0`, and `HTTP/1.1` or any later 1.x handled as 1.1 (RFC 9110
/// §2.5: a higher minor version of a major version we implement is
/// processed as the highest minor we conform to); any other
/// `HTTP/DIGIT.DIGIT` is `505`; anything else is malformed.
fn parse_version(v: &[u8]) -> Result<Version, ParseError> {
    match v {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            match (major, minor) {
                (b'1', b'0') => Ok(Version::Http10),
                (b'1', _) => Ok(Version::Http11),
                _ => Err(ParseError::VersionNotSupported),
            }
        }
        _ => Err(ParseError::Malformed("malformed HTTP version")),
    }
}

/// A request target in origin-form, and the authority it named if it came
/// in absolute-form.
type OriginForm<'a> = (Cow<'a, str>, Option<&'a str>);

/// Validates the request target and reduces it to origin-form.
fn origin_form<'a>(method: &[u8], target: &'a [u8]) -> Result<OriginForm<'a>, ParseError> {
    let bad = ParseError::Malformed("invalid request target");
    if target.is_empty() || !target.iter().all(|&b| (0x21..=0x7e).contains(&b)) {
        return Err(bad);
    }
    // Visible ASCII is valid UTF-8, so this cannot fail; map it anyway.
    let text = std::str::from_utf8(target).map_err(|_| bad)?;
    if text.starts_with('/') {
        return Ok((Cow::Borrowed(text), None));
    }
    if text == "*" {
        return if method == b"OPTIONS" {
            Ok((Cow::Borrowed(text), None))
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
    let path = match path.as_bytes().first() {
        Some(b'/') => Cow::Borrowed(path),
        _ => Cow::Owned(format!("/{path}")),
    };
    Ok((path, Some(authority)))
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
