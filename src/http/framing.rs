//! What the header fields decide about a request beyond its own bytes: how
//! its body is delimited (RFC 9112 §6.3), whether the connection persists
//! (§9.3) and whether the client waits for `100 Continue`. Every ambiguity
//! that could smuggle a second request is refused here, never guessed.

use crate::http::parse_error::ParseError;
use crate::http::syntax::{is_host_char, is_tchar, parse_decimal, trim_ows};
use crate::http::Version;

/// How the body of a request is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body.
    None,
    /// Exactly this many bytes follow the head.
    ContentLength(u64),
    /// `Transfer-Encoding: chunked`; decode with [`crate::http::chunked::ChunkedDecoder`].
    Chunked,
}

/// What the fields decided (copied into [`crate::http::parser::Head`]).
pub(crate) struct Decided {
    pub(crate) body: BodyFraming,
    pub(crate) keep_alive: bool,
    pub(crate) expect_continue: bool,
}

/// Everything pass 2 of the parser learns from the fields that decides framing and
/// persistence.
#[derive(Default)]
pub(crate) struct FramingScan {
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
    pub(crate) fn field(&mut self, name: &[u8], value: &[u8]) -> Result<(), ParseError> {
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

    /// Applies RFC 9112 §6.3 and §9.3 to the fields seen.
    pub(crate) fn finish(self, version: Version) -> Result<Decided, ParseError> {
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
        Ok(Decided {
            body: framing,
            keep_alive,
            expect_continue,
        })
    }
}
