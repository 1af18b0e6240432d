//! The parser without a socket: a table of named odd and malformed requests,
//! every strict prefix of valid requests, a few valid requests field by
//! field, and the chunked decoder.

use le_stats_sportif::http::chunked::ChunkedDecoder;
use le_stats_sportif::http::parser::{parse_head, BodyFraming, Head, ParseError, Parsed};
use le_stats_sportif::http::Version;
use le_stats_sportif::limits::Limits;

/// Small limits so that the limit cases stay readable.
fn limits() -> Limits {
    Limits {
        max_request_line: 64,
        max_header_bytes: 256,
        max_header_fields: 5,
        max_body_bytes: 100,
        ..Limits::default()
    }
}

#[derive(Debug)]
enum Expect {
    /// Rejected with this status (and therefore closed).
    Status(u16),
    /// Accepted with this framing and keep-alive decision.
    Accept(BodyFraming, bool),
    /// Not complete yet and not wrong yet.
    Partial,
}

fn outcome(bytes: &[u8]) -> Result<Parsed, ParseError> {
    parse_head(bytes, &limits())
}

#[test]
fn table_of_odd_and_malformed_requests() {
    use BodyFraming::{Chunked, ContentLength};
    use Expect::{Accept, Partial, Status};
    let none = BodyFraming::None;
    let long_target = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(64));
    let long_partial = format!("GET /{}", "a".repeat(70));
    let big_header = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
        "v".repeat(260)
    );
    let big_partial = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}", "v".repeat(260));
    let many = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n";
    let cases: Vec<(&str, &[u8], Expect)> = vec![
        ("plain GET", b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", Accept(none, true)),
        ("lower-case version", b"GET / http/1.1\r\nHost: a\r\n\r\n", Status(400)),
        ("HTTP/2.0", b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", Status(505)),
        // RFC 9110 §2.5: a later minor version of HTTP/1 is handled as 1.1.
        ("HTTP/1.2", b"GET / HTTP/1.2\r\nHost: a\r\n\r\n", Accept(none, true)),
        ("HTTP/1.9 needs Host", b"GET / HTTP/1.9\r\n\r\n", Status(400)),
        ("HTTP/0.9 version", b"GET / HTTP/0.9\r\nHost: a\r\n\r\n", Status(505)),
        ("HTTP/1 without minor", b"GET / HTTP/1\r\nHost: a\r\n\r\n", Status(400)),
        ("HTTP/1.10", b"GET / HTTP/1.10\r\nHost: a\r\n\r\n", Status(400)),
        ("h2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", Status(505)),
        ("trailing space after version", b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", Status(400)),
        ("two spaces after method", b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", Status(400)),
        ("tab as separator", b"GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", Status(400)),
        ("HTTP/0.9 request line", b"GET /\r\n\r\n", Status(400)),
        ("space inside target", b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", Status(400)),
        ("invalid method char", b"GE(T / HTTP/1.1\r\nHost: a\r\n\r\n", Status(400)),
        ("target not origin-form", b"GET foo HTTP/1.1\r\nHost: a\r\n\r\n", Status(400)),
        ("asterisk for GET", b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", Status(400)),
        ("asterisk for OPTIONS", b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", Accept(none, true)),
        ("authority-form", b"CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", Status(400)),
        ("non-ASCII target", b"GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", Status(400)),
        ("NUL in target", b"GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n", Status(400)),
        ("missing Host in 1.1", b"GET / HTTP/1.1\r\n\r\n", Status(400)),
        ("two Hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", Status(400)),
        ("two Hosts in 1.0", b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", Status(400)),
        ("1.0 without Host", b"GET / HTTP/1.0\r\n\r\n", Accept(none, false)),
        ("Host with a space", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", Status(400)),
        ("Host with a slash", b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", Status(400)),
        ("space before colon", b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", Status(400)),
        ("tab before colon", b"GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", Status(400)),
        ("obs-fold", b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n", Status(400)),
        ("obs-fold by tab", b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\t2\r\n\r\n", Status(400)),
        ("NUL in value", b"GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", Status(400)),
        ("bare CR in value", b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", Status(400)),
        ("bare LF line end", b"GET / HTTP/1.1\nHost: a\n\n", Status(400)),
        ("bare LF in a field", b"GET / HTTP/1.1\r\nHost: a\r\nX: a\nY: b\r\n\r\n", Status(400)),
        ("DEL in value", b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n", Status(400)),
        // RFC 9110 §5.5: obs-text in a value is opaque, not an error.
        ("non-UTF-8 value", b"GET / HTTP/1.1\r\nHost: a\r\nX: \xff\xfe\r\n\r\n", Accept(none, true)),
        ("non-UTF-8 length", b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: \xe9\r\n\r\n", Status(400)),
        ("field without colon", b"GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", Status(400)),
        ("empty field name", b"GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n", Status(400)),
        ("whitespace-only line", b"GET / HTTP/1.1\r\nHost: a\r\n   \r\n\r\n", Status(400)),
        ("leading CRLFs ignored", b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", Accept(none, true)),
        ("leading bare LF", b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", Status(400)),
        (
            "CL and TE together",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            Status(400),
        ),
        ("CL +5", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", Status(400)),
        ("CL -1", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", Status(400)),
        ("CL 0x5", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", Status(400)),
        ("CL '5 5'", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 5\r\n\r\n", Status(400)),
        ("CL 5.0", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5.0\r\n\r\n", Status(400)),
        ("CL empty", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", Status(400)),
        (
            "CL overflow",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n",
            Status(400),
        ),
        (
            "CL u64::MAX is a number (413 comes later)",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\n\r\n",
            Accept(ContentLength(u64::MAX), true),
        ),
        (
            "CL duplicates differ",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            Status(400),
        ),
        (
            "CL duplicates equal",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
            Accept(ContentLength(5), true),
        ),
        ("CL list '5, 5'", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", Accept(ContentLength(5), true)),
        ("CL list '5, 6'", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n", Status(400)),
        ("CL list '5,'", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,\r\n\r\n", Status(400)),
        ("CL leading zeros", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 005\r\n\r\n", Accept(ContentLength(5), true)),
        ("TE gzip", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", Status(501)),
        ("TE chunked, gzip", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", Status(501)),
        ("TE gzip, chunked", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", Status(501)),
        ("TE identity", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", Status(501)),
        ("TE chunk (typo)", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunk\r\n\r\n", Status(501)),
        ("TE chunked twice", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", Status(400)),
        (
            "TE chunked in two fields",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            Status(400),
        ),
        ("TE empty", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n", Status(400)),
        ("TE with VT", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \x0bchunked\r\n\r\n", Status(400)),
        ("TE quoted", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", Status(400)),
        ("TE in HTTP/1.0", b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", Status(400)),
        ("TE upper-case", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n", Accept(Chunked, true)),
        ("TE with OWS", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \t chunked \t\r\n\r\n", Accept(Chunked, true)),
        ("TE space before colon", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", Status(400)),
        ("request line too long", long_target.as_bytes(), Status(414)),
        ("request line too long, partial", long_partial.as_bytes(), Status(414)),
        ("request line just partial", b"GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", Partial),
        ("header block too large", big_header.as_bytes(), Status(431)),
        ("header block too large, partial", big_partial.as_bytes(), Status(431)),
        ("too many fields", many.as_bytes(), Status(431)),
        ("Connection: close", b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", Accept(none, false)),
        ("Connection: Close, upper", b"GET / HTTP/1.1\r\nHost: a\r\nConnection: CLOSE\r\n\r\n", Accept(none, false)),
        ("1.0 keep-alive", b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", Accept(none, true)),
        ("1.0 keep-alive, close", b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", Accept(none, false)),
        ("absolute-form", b"GET http://a/p?q=1 HTTP/1.1\r\nHost: a\r\n\r\n", Accept(none, true)),
        ("absolute-form with userinfo", b"GET http://u@a/p HTTP/1.1\r\nHost: a\r\n\r\n", Status(400)),
        ("absolute-form without authority", b"GET http:///p HTTP/1.1\r\nHost: a\r\n\r\n", Status(400)),
        ("ftp scheme", b"GET ftp://a/p HTTP/1.1\r\nHost: a\r\n\r\n", Status(400)),
        ("incomplete head", b"GET / HTTP/1.1\r\nHost: a\r\n", Partial),
        ("lone CR after head line", b"GET / HTTP/1.1\r\nHost: a\r\n\r", Partial),
    ];
    assert!(cases.len() >= 40, "the table has {} cases", cases.len());
    let mut failures = Vec::new();
    for (name, bytes, expect) in &cases {
        let got = outcome(bytes);
        let ok = match (expect, &got) {
            (Expect::Status(s), Err(e)) => e.status() == *s,
            (Expect::Accept(framing, keep_alive), Ok(Parsed::Complete { head, len })) => {
                head.framing == *framing && head.keep_alive == *keep_alive && *len == bytes.len()
            }
            (Expect::Partial, Ok(Parsed::Partial)) => true,
            _ => false,
        };
        if !ok {
            failures.push(format!("{name}: expected {expect:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn complete(bytes: &[u8]) -> (Head, usize) {
    match parse_head(bytes, &Limits::default()) {
        Ok(Parsed::Complete { head, len }) => (head, len),
        other => panic!("expected a complete head, got {other:?}"),
    }
}

#[test]
fn every_strict_prefix_of_a_valid_request_is_partial() {
    let valid: [&[u8]; 5] = [
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"\r\nPOST /api/states_mean?x=1 HTTP/1.1\r\nHost: localhost:5000\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n",
        b"GET /api/jobs HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost: [::1]:80\r\nX-Empty:\r\nX-Tab:\tv\t\r\n\r\n",
    ];
    for request in valid {
        let (_, len) = complete(request);
        assert_eq!(len, request.len());
        for k in 0..request.len() {
            assert_eq!(
                parse_head(&request[..k], &Limits::default()),
                Ok(Parsed::Partial),
                "prefix of length {k} of {:?}",
                String::from_utf8_lossy(request)
            );
        }
    }
}

#[test]
fn valid_requests_field_by_field() {
    let (head, len) = complete(
        b"POST /api/state_mean?a=b HTTP/1.1\r\nHost: localhost\r\nCONTENT-Length:  \t12 \r\nX-Odd: a  b\r\n\r\n{\"question\"}",
    );
    assert_eq!(len, 90); // everything before the body
    assert_eq!(head.method, "POST");
    assert_eq!(head.target, "/api/state_mean?a=b");
    assert_eq!(head.version, Version::Http11);
    assert_eq!(
        head.headers,
        vec![
            ("host".to_owned(), b"localhost".to_vec()),
            ("content-length".to_owned(), b"12".to_vec()),
            ("x-odd".to_owned(), b"a  b".to_vec()),
        ]
    );
    assert_eq!(head.framing, BodyFraming::ContentLength(12));
    assert!(head.keep_alive);
    assert!(!head.expect_continue);

    let (head, _) = complete(b"GET http://example.com?x HTTP/1.1\r\nHost: example.com\r\n\r\n");
    assert_eq!(head.target, "/?x");

    // HTTP/1.2 is handled as HTTP/1.1; a Latin-1 value is kept as its bytes.
    let (head, _) = complete(b"GET / HTTP/1.2\r\nHost: a\r\nUser-Agent: caf\xe9\r\n\r\n");
    assert_eq!(head.version, Version::Http11);
    assert_eq!(
        head.headers[1],
        ("user-agent".to_owned(), b"caf\xe9".to_vec())
    );

    let (head, _) = complete(
        b"PUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    assert_eq!(head.method, "PUT");
    assert!(head.expect_continue);
    assert_eq!(head.framing, BodyFraming::Chunked);

    // HTTP/1.0 ignores the expectation (RFC 9110 §10.1.1).
    let (head, _) =
        complete(b"POST /x HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n");
    assert_eq!(head.version, Version::Http10);
    assert!(!head.expect_continue);
    assert!(!head.keep_alive);

    // Pipelined bytes after the head are not part of it.
    let two = b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n";
    let (head, len) = complete(two);
    assert_eq!(head.target, "/1");
    assert_eq!(len, two.len() / 2);
    let (head, _) = complete(&two[len..]);
    assert_eq!(head.target, "/2");
}

/// An absolute-form target's authority is the request's host: the `Host`
/// field sent with it is replaced (RFC 9112 §3.2.2), so that the access
/// checks (`api::access`) judge the name the request was sent to.
#[test]
fn an_absolute_form_target_s_authority_is_the_host() {
    let (head, _) = complete(
        b"GET http://evil.example:5000/api/jobs HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n",
    );
    assert_eq!(head.target, "/api/jobs");
    assert_eq!(
        head.headers,
        vec![
            ("accept".to_owned(), b"*/*".to_vec()),
            ("host".to_owned(), b"evil.example:5000".to_vec()),
        ]
    );
}

/// Decodes `body` in one call, then again one byte at a time; both must agree.
fn decode(body: &[u8], limits: &Limits) -> Result<(Vec<u8>, usize), ParseError> {
    let mut decoder = ChunkedDecoder::new(limits);
    let mut out = Vec::new();
    let used = decoder.decode(body, &mut out)?;
    assert!(decoder.is_done() || used == body.len());

    let mut slow = ChunkedDecoder::new(limits);
    let mut slow_out = Vec::new();
    let mut slow_used = 0;
    for byte in body {
        if slow.is_done() {
            break;
        }
        slow_used += slow.decode(std::slice::from_ref(byte), &mut slow_out)?;
    }
    assert_eq!((&slow_out, slow_used), (&out, used));
    if !decoder.is_done() {
        return Ok((out, usize::MAX)); // not finished
    }
    Ok((out, used))
}

#[test]
fn chunked_bodies_decode() {
    let l = limits();
    // (name, body, decoded, bytes left after the body)
    let cases: [(&str, &[u8], &[u8], usize); 7] = [
        ("one chunk", b"5\r\nhello\r\n0\r\n\r\n", b"hello", 0),
        (
            "two chunks, upper hex",
            b"3\r\nabc\r\nA\r\n0123456789\r\n0\r\n\r\n",
            b"abc0123456789",
            0,
        ),
        (
            "extensions tolerated",
            b"3;name=val;x\r\nabc\r\n0;last\r\n\r\n",
            b"abc",
            0,
        ),
        (
            "BWS before extension",
            b"3 ;x\r\nabc\r\n0\r\n\r\n",
            b"abc",
            0,
        ),
        (
            "trailers discarded",
            b"1\r\nz\r\n0\r\nX-T: 1\r\nY: \r\n\r\n",
            b"z",
            0,
        ),
        ("leading zeros", b"0003\r\nabc\r\n000\r\n\r\n", b"abc", 0),
        (
            "pipelined bytes left alone",
            b"1\r\nz\r\n0\r\n\r\nGET / HTTP/1.1",
            b"z",
            14,
        ),
    ];
    for (name, body, expected, left) in cases {
        let used = body.len() - left;
        assert_eq!(decode(body, &l), Ok((expected.to_vec(), used)), "{name}");
    }
    // Not finished: everything consumed, still waiting.
    assert_eq!(decode(b"5\r\nhel", &l), Ok((b"hel".to_vec(), usize::MAX)));
}

#[test]
fn chunked_errors() {
    let l = limits();
    let big_trailer = format!("0\r\nX: {}\r\n\r\n", "v".repeat(300));
    let many_trailers = "0\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\nF: 1\r\n\r\n";
    let long_ext = format!("1;{}\r\nz\r\n0\r\n\r\n", "e".repeat(5000));
    let cases: Vec<(&str, &[u8], u16)> = vec![
        ("0x prefix", b"0x5\r\nhello\r\n0\r\n\r\n", 400),
        ("sign", b"+5\r\nhello\r\n0\r\n\r\n", 400),
        ("minus", b"-5\r\nhello\r\n0\r\n\r\n", 400),
        ("leading space", b" 5\r\nhello\r\n0\r\n\r\n", 400),
        ("empty size", b"\r\nhello\r\n0\r\n\r\n", 400),
        ("size then junk", b"5 5\r\nhello\r\n0\r\n\r\n", 400),
        ("overflow", b"10000000000000000\r\n", 400),
        ("too large for the limit", b"65\r\n", 413),
        (
            "sum too large",
            b"40\r\n0123456789012345678901234567890123456789012345678901234567890123\r\n40\r\n",
            413,
        ),
        ("data longer than size", b"3\r\nabcd\r\n0\r\n\r\n", 400),
        ("bare LF after size", b"3\nabc\r\n0\r\n\r\n", 400),
        ("bare LF after data", b"3\r\nabc\n0\r\n\r\n", 400),
        ("obs-fold in trailer", b"0\r\nX: 1\r\n 2\r\n\r\n", 400),
        ("trailer without colon", b"0\r\nXY\r\n\r\n", 400),
        ("NUL in trailer", b"0\r\nX: \0\r\n\r\n", 400),
        ("NUL in extension", b"1;\0\r\nz\r\n0\r\n\r\n", 400),
        ("trailer too large", big_trailer.as_bytes(), 431),
        ("too many trailers", many_trailers.as_bytes(), 431),
        ("size line too long", long_ext.as_bytes(), 400),
    ];
    for (name, body, status) in cases {
        let got = decode(body, &l);
        assert_eq!(got.map_err(ParseError::status), Err(status), "{name}");
    }
}
