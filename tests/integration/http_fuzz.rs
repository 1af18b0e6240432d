//! A std-only, deterministic fuzzer for the head parser, the chunked decoder
//! and a live server.
//!
//! Iterations come from `FUZZ_ITERATIONS` (default 50 000, about a few
//! seconds in a debug build). The long run (`make fuzz`) is:
//!
//! ```text
//! FUZZ_ITERATIONS=1000000 cargo test --release --test integration http_fuzz
//! ```
//!
//! Besides "never panics", each iteration checks properties that must hold
//! for *any* input: a complete head is a prefix of the input, its strict
//! prefixes are `Partial`, its fields are normalised; the chunked decoder
//! gives the same answer however the input is split, and never exceeds the
//! body limit.

use le_stats_sportif::http::chunked::ChunkedDecoder;
use le_stats_sportif::http::parser::{parse_head, BodyFraming, ParseError, Parsed};
use le_stats_sportif::http::{Handler, Request, Response, Version};
use le_stats_sportif::limits::Limits;
use le_stats_sportif::server::{OnError, OnRequest, RequestRecord, Server};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// `SplitMix64` (Steele, Lea, Flood 2014): tiny, fast and good enough to
/// drive mutations; the fixed seed makes every failure reproducible.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform-enough in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn iterations() -> usize {
    std::env::var("FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000)
}

const HEADS: &[&[u8]] = &[
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /api/get_results/job_id_1?x=y HTTP/1.1\r\nHost: localhost:5000\r\nUser-Agent: fuzz\r\nAccept: */*\r\n\r\n",
    b"POST /api/states_mean HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"question\":1}",
    b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"PUT /e HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi",
    b"OPTIONS * HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
    b"GET http://a.example/p HTTP/1.1\r\nHost: a.example\r\n\r\n",
    b"\r\nHEAD /h HTTP/1.1\r\nHost: a\r\nContent-Length: 0, 0\r\n\r\n",
];

const CHUNKED: &[&[u8]] = &[
    b"5\r\nhello\r\n0\r\n\r\n",
    b"3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nTrailer: v\r\n\r\n",
    b"0001\r\nz\r\n0;x\r\n\r\nGET / HTTP/1.1\r\n",
    b"1 ;a=\"b\"\r\nz\r\nff\r\n",
];

/// Bytes that matter to the grammar, inserted more often than chance would.
const SPECIAL: &[u8] = b"\r\n\0 \t:;,/?=-0xAFf9\x7f\x80\xff";

/// One mutation of `input`, drawing material from `corpus`.
fn mutate(rng: &mut SplitMix64, input: &[u8], corpus: &[&[u8]]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        let len = out.len();
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len);
                out[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => out.truncate(rng.below(len)),
            2 => {
                // splice: a prefix of this with a suffix of another
                let other = *rng.pick(corpus);
                let cut = rng.below(len + 1);
                let from = rng.below(other.len() + 1);
                out.truncate(cut);
                out.extend_from_slice(&other[from..]);
            }
            3 => {
                // repeat a slice (requests, lines, digits)
                let a = rng.below(len + 1);
                let b = a + rng.below(len - a + 1);
                let piece = out[a..b].to_vec();
                for _ in 0..rng.below(4) {
                    out.splice(b..b, piece.iter().copied());
                }
            }
            4 | 5 => {
                let i = rng.below(len + 1);
                out.insert(i, *rng.pick(SPECIAL));
            }
            6 if len > 0 => {
                let a = rng.below(len);
                let b = (a + rng.below(8)).min(len);
                out.drain(a..b);
            }
            7 if len > 0 => {
                let i = rng.below(len);
                out[i] = rng.next() as u8;
            }
            _ => {
                // append a whole other request (pipelining)
                let other = *rng.pick(corpus);
                out.extend_from_slice(other);
            }
        }
    }
    out
}

fn small_limits() -> Limits {
    Limits {
        max_request_line: 48,
        max_header_bytes: 96,
        max_header_fields: 3,
        max_body_bytes: 40,
        ..Limits::default()
    }
}

/// The properties every `parse_head` answer must have. Returns the status
/// (200 for complete, 0 for partial) so the test can show what it covered.
fn check_head(input: &[u8], limits: &Limits, check_prefixes: bool) -> u16 {
    let result = parse_head(input, limits);
    let status = match &result {
        Ok(Parsed::Complete { .. }) => 200,
        Ok(Parsed::Partial) => 0,
        Err(e) => e.status(),
    };
    assert_eq!(result, parse_head(input, limits), "not deterministic");
    match result {
        Ok(Parsed::Complete { head, len }) => {
            assert!(len <= input.len());
            assert!(len <= limits.max_request_line + limits.max_header_bytes);
            assert!(head.target.starts_with('/') || head.target == "*");
            assert!(head
                .headers
                .iter()
                .all(|(n, v)| !n.bytes().any(|b| b.is_ascii_uppercase())
                    && !matches!(v.first(), Some(b' ' | b'\t'))
                    && !matches!(v.last(), Some(b' ' | b'\t'))));
            if head.framing == BodyFraming::Chunked {
                assert_eq!(head.version, Version::Http11);
                assert!(head.headers.iter().all(|(n, _)| n != "content-length"));
            }
            if check_prefixes {
                for k in 0..len {
                    assert_eq!(
                        parse_head(&input[..k], limits),
                        Ok(Parsed::Partial),
                        "prefix {k} of {input:?}"
                    );
                }
            }
        }
        Ok(Parsed::Partial) => {
            assert!(input.len() < limits.max_request_line + limits.max_header_bytes);
        }
        Err(e) => assert!([400, 413, 414, 431, 501, 505].contains(&e.status())),
    }
    status
}

/// Decodes `input` whole and in random pieces: both must agree.
fn check_chunked(rng: &mut SplitMix64, input: &[u8], limits: &Limits) {
    let whole = decode_in_pieces(input, limits, &mut |_| usize::MAX);
    let pieces = decode_in_pieces(input, limits, &mut |left| 1 + rng.below(left.min(7)));
    assert_eq!(whole, pieces, "split-dependent result for {input:?}");
    if let Ok((body, used, _)) = &whole {
        assert!(body.len() <= limits.max_body_bytes);
        assert!(*used <= input.len());
    }
}

type Decoded = Result<(Vec<u8>, usize, bool), ParseError>;

fn decode_in_pieces(
    input: &[u8],
    limits: &Limits,
    piece: &mut dyn FnMut(usize) -> usize,
) -> Decoded {
    let mut decoder = ChunkedDecoder::new(limits);
    let mut out = Vec::new();
    let mut used = 0;
    while used < input.len() && !decoder.is_done() {
        let end = used + piece(input.len() - used).min(input.len() - used);
        let given = end - used;
        let n = decoder.decode(&input[used..end], &mut out)?;
        // All of it, unless the body ended inside it.
        assert!(n == given || (n < given && decoder.is_done()));
        used += n;
    }
    Ok((out, used, decoder.is_done()))
}

#[test]
fn fuzz_parser_and_chunked_decoder() {
    let n = iterations();
    let mut rng = SplitMix64(0x5eed_1e57_a75c_0de5);
    let default = Limits::default();
    let small = small_limits();
    let mut seen = std::collections::BTreeMap::<u16, usize>::new();
    for i in 0..n {
        let seed = *rng.pick(HEADS);
        let input = mutate(&mut rng, seed, HEADS);
        // Prefix checks are quadratic: only on a sample.
        *seen
            .entry(check_head(&input, &default, i % 64 == 0))
            .or_default() += 1;
        *seen.entry(check_head(&input, &small, false)).or_default() += 1;

        let seed = *rng.pick(CHUNKED);
        let input = mutate(&mut rng, seed, CHUNKED);
        check_chunked(&mut rng, &input, &small);
        check_chunked(&mut rng, &input, &default);
    }
    eprintln!("fuzzed the parser and the chunked decoder with {n} inputs each");
    eprintln!("parser outcomes (0 = partial, 200 = complete): {seen:?}");
    // The mutations must reach every kind of outcome, or the fuzzer is blind.
    for status in [0, 200, 400, 414, 431, 501, 505] {
        assert!(seen.contains_key(&status), "no input gave {status}");
    }
}

struct Echo;

impl Handler for Echo {
    fn handle(&self, request: &Request) -> Response {
        Response::json(200, format!("{{\"len\": {}}}", request.body.len()))
    }
}

/// Panics of the server's code on connection threads (named `http-conn`),
/// counted by a panic hook. The hook is process-wide and the other
/// integration tests run in this process too — one of them panics in its own
/// handler on purpose (`http_socket::a_panicking_handler_is_a_500_…`) — so
/// a panic raised in the tests' code (`tests/…`) is not counted.
static CONNECTION_PANICS: AtomicUsize = AtomicUsize::new(0);

#[test]
fn fuzz_a_live_server() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let in_tests = info
            .location()
            .is_some_and(|at| at.file().starts_with("tests/"));
        if std::thread::current().name() == Some("http-conn") && !in_tests {
            CONNECTION_PANICS.fetch_add(1, Ordering::SeqCst);
        }
        default_hook(info);
    }));

    let limits = Limits {
        head_timeout: Duration::from_millis(500),
        body_timeout: Duration::from_millis(500),
        idle_timeout: Duration::from_millis(500),
        write_timeout: Duration::from_millis(500),
        max_body_bytes: 1000,
        ..Limits::default()
    };
    let on_request: OnRequest = Arc::new(|_: &RequestRecord<'_>| {});
    let on_error: OnError = Arc::new(|message: &str| eprintln!("server: {message}"));
    let server =
        Server::bind("127.0.0.1", 0)
            .unwrap()
            .start(Arc::new(Echo), limits, on_request, on_error);
    let addr = server.local_addr();

    let connections = (iterations() / 20).clamp(100, 3000);
    let mut rng = SplitMix64(0xfeed_face_cafe_beef);
    let mut answered = 0;
    for _ in 0..connections {
        let mut bytes = Vec::new();
        for _ in 0..=rng.below(3) {
            let seed = *rng.pick(HEADS);
            bytes.extend(mutate(&mut rng, seed, HEADS));
        }
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        // The server may close before reading everything: errors are fine.
        let _ = stream.write_all(&bytes);
        // End of input: the server must answer what it can and close,
        // rather than wait for a timeout.
        let _ = stream.shutdown(Shutdown::Write);
        let mut reply = Vec::new();
        let _ = stream.read_to_end(&mut reply);
        if !reply.is_empty() {
            assert!(
                reply.starts_with(b"HTTP/1.1 "),
                "reply {:?}",
                String::from_utf8_lossy(&reply)
            );
            answered += 1;
        }
    }

    // Still answering a valid request.
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(b"GET /ok HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply:?}");
    server.shutdown();
    assert_eq!(CONNECTION_PANICS.load(Ordering::SeqCst), 0);
    eprintln!("{connections} fuzzed connections, {answered} answered");
}
