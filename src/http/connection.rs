//! The per-connection loop: read, parse, read the body, call the handler,
//! write the response; again while the connection is kept alive.
//!
//! Every wait is bounded by a deadline, and every read and write is given
//! the time left to its deadline (`set_read_timeout` / `set_write_timeout`,
//! re-set before each call), so a slow client cannot stretch a deadline by
//! trickling bytes:
//!
//! | wait | deadline from | on expiry |
//! |---|---|---|
//! | first byte of a request | end of the previous response | close silently |
//! | rest of the head | its first byte (`head_timeout`) | `408`, close |
//! | the body | end of the head (`body_timeout`) | `408`, close |
//! | writing one response | its first write (`write_timeout`) | drop the connection |
//! | writing one piece of a streamed body | the piece's first write (`write_timeout`) | drop the connection |
//!
//! Responses are written one at a time, each after its request was read: a
//! pipelining client that never reads its responses blocks our write (and
//! is dropped at the write deadline) instead of making us buffer answers.
//!
//! A streamed body ([`StreamBody`]) is written in pieces of about
//! [`STREAM_FLUSH_BYTES`], each within `write_timeout` of the previous one,
//! so the output buffer holds one piece, never the whole body; and a buffer
//! that a large response grew past [`MAX_RETAINED_OUTPUT`] is given back
//! once that response is written, so an idle keep-alive connection does not
//! keep its high-water mark.

use crate::http::parser::{self, BodyFraming, ChunkedDecoder, Head, ParseError, Parsed};
use crate::http::response::{self, Response, StreamBody, WriteOptions};
use crate::http::{path_of, Handler, Request, Version};
use crate::limits::{Limits, LINGER_MAX_BYTES, LINGER_TIMEOUT};
use crate::scoreboard::{self, ThreadState};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

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
    /// The `Referer` header, if sent.
    pub referer: Option<&'a str>,
    /// The `User-Agent` header, if sent.
    pub user_agent: Option<&'a str>,
    /// From the first byte of the request to the end of the response.
    pub duration: Duration,
}

impl<'a> RequestRecord<'a> {
    /// A request whose request line is unknown: everything but the peer,
    /// status, bytes and duration is `"-"`.
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
    fn of_head(
        peer: Option<IpAddr>,
        method: &'a str,
        target: &'a str,
        version: Version,
        headers: &'a [(String, String)],
    ) -> RequestRecord<'a> {
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
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
}

/// The body bytes in a serialised response: what follows the blank line
/// that ends its head.
fn body_len(out: &[u8]) -> u64 {
    out.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(0, |i| (out.len() - i - 4) as u64)
}

/// The initial size of a connection's read buffer; it grows (by doubling)
/// only for heads that need it, up to the largest head the limits allow.
const INITIAL_READ_BUFFER: usize = 8 * 1024;

/// The initial capacity of a connection's output buffer: most answers fit.
const INITIAL_OUTPUT_BUFFER: usize = 1024;
/// After a response, an output buffer with more capacity than this is
/// replaced by a fresh one of [`INITIAL_OUTPUT_BUFFER`]: one large answer
/// must not pin its size for the rest of a keep-alive session.
pub const MAX_RETAINED_OUTPUT: usize = 64 * 1024;
/// A streamed body is sent whenever this much of it is buffered.
pub const STREAM_FLUSH_BYTES: usize = 32 * 1024;

/// Serves `stream` until the client closes, a timeout expires, or a request
/// asks (or an error forces) to close. Never panics on client input; a panic
/// in `handler` is answered `500` and the connection goes on.
pub fn serve(
    stream: TcpStream,
    handler: &dyn Handler,
    limits: &Limits,
    on_request: &dyn Fn(&RequestRecord<'_>),
) {
    let mut conn = Connection::new(stream, limits);
    while let Next::KeepAlive = conn.serve_one(handler, on_request) {
        scoreboard::set(ThreadState::KeepAlive);
    }
}

/// Whether the loop goes on after one request.
enum Next {
    KeepAlive,
    Close,
}

/// How a bounded read ended.
enum ReadOutcome {
    Data(usize),
    Eof,
    TimedOut,
    Failed,
}

/// The read buffer of one connection: `data[start..end]` holds bytes received
/// and not yet consumed (the rest of a head, or pipelined requests).
///
/// Invariant: `start <= end <= data.len() <= max`, where `max` is the longest
/// head the limits allow; since [`parser::parse_head`] fails before a head
/// grows past that, the buffer never needs to be larger.
struct ReadBuffer {
    data: Vec<u8>,
    start: usize,
    end: usize,
    max: usize,
}

impl ReadBuffer {
    fn new(max: usize) -> ReadBuffer {
        ReadBuffer {
            data: vec![0; INITIAL_READ_BUFFER.min(max)],
            start: 0,
            end: 0,
            max,
        }
    }

    fn filled(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    fn is_empty(&self) -> bool {
        self.start == self.end
    }

    fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Free space to read into, after moving unconsumed bytes to the front
    /// or growing if needed. Empty only when `max` bytes are unconsumed.
    fn spare(&mut self) -> &mut [u8] {
        if self.end == self.data.len() {
            if self.start > 0 {
                self.data.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else if self.data.len() < self.max {
                let len = (self.data.len() * 2).clamp(1, self.max);
                self.data.resize(len, 0);
            }
        }
        &mut self.data[self.end..]
    }

    fn commit(&mut self, n: usize) {
        self.end = (self.end + n).min(self.data.len());
    }
}

struct Connection<'l> {
    stream: TcpStream,
    limits: &'l Limits,
    /// The client's address, for the access log.
    peer: Option<IpAddr>,
    input: ReadBuffer,
    /// The serialised response, reused from one request to the next.
    output: Vec<u8>,
    /// The read timeout last set on the socket: setting the same value again
    /// is skipped, which saves a system call per keep-alive request.
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
}

impl<'l> Connection<'l> {
    fn new(stream: TcpStream, limits: &'l Limits) -> Connection<'l> {
        let peer = stream.peer_addr().ok().map(|a| a.ip());
        Connection {
            stream,
            limits,
            peer,
            input: ReadBuffer::new(limits.max_request_line + limits.max_header_bytes),
            output: Vec::with_capacity(INITIAL_OUTPUT_BUFFER),
            read_timeout: None,
            write_timeout: None,
        }
    }

    /// Reads, answers and writes one request.
    fn serve_one(
        &mut self,
        handler: &dyn Handler,
        on_request: &dyn Fn(&RequestRecord<'_>),
    ) -> Next {
        let idle_deadline = Instant::now() + self.limits.idle_timeout;
        // Pipelined bytes already here are the start of this request's head.
        let mut started = (!self.input.is_empty()).then(Instant::now);

        let head = loop {
            if !self.input.is_empty() {
                match parser::parse_head(self.input.filled(), self.limits) {
                    Ok(Parsed::Complete { head, len }) => {
                        self.input.consume(len);
                        break head;
                    }
                    Ok(Parsed::Partial) => {}
                    Err(error) => {
                        let buf = self.input.filled();
                        // An over-long line is not logged, even when complete:
                        // the log would grow by the line's length.
                        let parts = match error {
                            ParseError::RequestLineTooLong => None,
                            _ => parser::request_line_parts(buf),
                        };
                        let line = parts.map(|(m, t, v)| (m.to_owned(), t.to_owned(), v));
                        let start = started.unwrap_or_else(Instant::now);
                        self.answer_error(error, line, &[], start, on_request);
                        return Next::Close;
                    }
                }
            }
            let deadline = match started {
                None => idle_deadline,
                Some(t) => t + self.limits.head_timeout,
            };
            let spare = self.input.spare();
            if spare.is_empty() {
                // Unreachable by the ReadBuffer invariant; answered rather
                // than trusted.
                let start = started.unwrap_or_else(Instant::now);
                self.answer_error(
                    ParseError::HeaderBlockTooLarge,
                    None,
                    &[],
                    start,
                    on_request,
                );
                return Next::Close;
            }
            match read_until(&mut self.stream, &mut self.read_timeout, spare, deadline) {
                ReadOutcome::Data(n) => {
                    self.input.commit(n);
                    scoreboard::set(ThreadState::ReadingHead);
                    started.get_or_insert_with(Instant::now);
                }
                ReadOutcome::TimedOut => {
                    if let Some(start) = started {
                        let (status, bytes) =
                            self.answer(Response::error(408, "request timeout"), None);
                        on_request(&RequestRecord::unparsed(
                            self.peer,
                            status,
                            bytes,
                            start.elapsed(),
                        ));
                        self.linger_close();
                    }
                    // An idle keep-alive connection is closed without a word.
                    return Next::Close;
                }
                ReadOutcome::Eof | ReadOutcome::Failed => return Next::Close,
            }
        };
        // `started` is set: the head had at least one byte.
        let start = started.unwrap_or_else(Instant::now);

        if !matches!(head.framing, BodyFraming::None) {
            scoreboard::set(ThreadState::ReadingBody);
        }
        let body = match self.read_body(&head) {
            Ok(body) => body,
            Err(BodyError::Parse(error)) => {
                let line = Some((head.method.clone(), head.target.clone(), head.version));
                self.answer_error(error, line, &head.headers, start, on_request);
                return Next::Close;
            }
            Err(BodyError::TimedOut) => {
                let options = Some(head.method == "HEAD");
                let (status, body_bytes) =
                    self.answer(Response::error(408, "request timeout"), options);
                on_request(&RequestRecord {
                    status,
                    body_bytes,
                    duration: start.elapsed(),
                    ..RequestRecord::of_head(
                        self.peer,
                        &head.method,
                        &head.target,
                        head.version,
                        &head.headers,
                    )
                });
                self.linger_close();
                return Next::Close;
            }
            Err(BodyError::Gone) => return Next::Close,
        };

        let Head {
            method,
            target,
            version,
            headers,
            keep_alive,
            ..
        } = head;
        let request = Request {
            method,
            target,
            version,
            headers,
            body,
        };
        scoreboard::set(ThreadState::Handling);
        // `AssertUnwindSafe`: the handler only gets `&Request`, which is
        // dropped right after; a panic leaves no state of ours half-updated.
        let response = panic::catch_unwind(AssertUnwindSafe(|| handler.handle(&request)))
            .unwrap_or_else(|_| Response::error(500, "internal error"));
        // A body delimited by the close ends the connection.
        let keep_alive = keep_alive
            && !response::wants_close(&response)
            && !response.is_close_delimited(version);
        let options = WriteOptions {
            version,
            keep_alive,
            head_request: request.method == "HEAD",
        };
        self.output.clear();
        let status = response::serialize(&response, options, &mut self.output);
        scoreboard::set(ThreadState::Writing);
        let (written, body_bytes) = match &response.stream {
            Some(body) if response::streams_body(&response, options) => {
                self.write_stream(body, version == Version::Http11)
            }
            _ => (self.write_output(), body_len(&self.output)),
        };
        shrink_output(&mut self.output);
        on_request(&RequestRecord {
            status,
            body_bytes,
            duration: start.elapsed(),
            ..RequestRecord::of_head(
                self.peer,
                &request.method,
                &request.target,
                request.version,
                &request.headers,
            )
        });
        if written.is_err() {
            return Next::Close;
        }
        if keep_alive {
            Next::KeepAlive
        } else {
            self.linger_close();
            Next::Close
        }
    }

    /// Reads and decodes the body `head` announces, answering
    /// `100 Continue` first when the client waits for it.
    fn read_body(&mut self, head: &Head) -> Result<Vec<u8>, BodyError> {
        let deadline = Instant::now() + self.limits.body_timeout;
        match head.framing {
            BodyFraming::None => Ok(Vec::new()),
            BodyFraming::ContentLength(length) => {
                // Checked before reading a byte of the body (or sending 100).
                let length = usize::try_from(length)
                    .ok()
                    .filter(|&n| n <= self.limits.max_body_bytes)
                    .ok_or(BodyError::Parse(ParseError::BodyTooLarge))?;
                if head.expect_continue && self.input.filled().len() < length {
                    self.send_continue()?;
                }
                let mut body = vec![0; length];
                let buffered = self.input.filled().len().min(length);
                body[..buffered].copy_from_slice(&self.input.filled()[..buffered]);
                self.input.consume(buffered);
                let mut filled = buffered;
                while filled < length {
                    match read_until(
                        &mut self.stream,
                        &mut self.read_timeout,
                        &mut body[filled..],
                        deadline,
                    ) {
                        ReadOutcome::Data(n) => filled += n,
                        ReadOutcome::TimedOut => return Err(BodyError::TimedOut),
                        ReadOutcome::Eof | ReadOutcome::Failed => return Err(BodyError::Gone),
                    }
                }
                Ok(body)
            }
            BodyFraming::Chunked => {
                if head.expect_continue && self.input.is_empty() {
                    self.send_continue()?;
                }
                let mut decoder = ChunkedDecoder::new(self.limits);
                let mut body = Vec::new();
                loop {
                    let used = decoder
                        .decode(self.input.filled(), &mut body)
                        .map_err(BodyError::Parse)?;
                    self.input.consume(used);
                    if decoder.is_done() {
                        return Ok(body);
                    }
                    // The decoder consumed everything, so the buffer is empty
                    // and `spare` is not.
                    let spare = self.input.spare();
                    match read_until(&mut self.stream, &mut self.read_timeout, spare, deadline) {
                        ReadOutcome::Data(n) => self.input.commit(n),
                        ReadOutcome::TimedOut => return Err(BodyError::TimedOut),
                        ReadOutcome::Eof | ReadOutcome::Failed => return Err(BodyError::Gone),
                    }
                }
            }
        }
    }

    fn send_continue(&mut self) -> Result<(), BodyError> {
        self.output.clear();
        self.output.extend_from_slice(response::CONTINUE);
        self.write_output().map_err(|_| BodyError::Gone)
    }

    /// Answers a parse error (always closing) and reports it with what is
    /// known: the request line (method, target, version) if it was parsed,
    /// and the headers if they were.
    fn answer_error(
        &mut self,
        error: ParseError,
        line: Option<(String, String, Version)>,
        headers: &[(String, String)],
        start: Instant,
        on_request: &dyn Fn(&RequestRecord<'_>),
    ) {
        let head_request = line.as_ref().map(|(method, _, _)| method == "HEAD");
        let (status, body_bytes) = self.answer(
            Response::error(error.status(), &error.explain(self.limits)),
            head_request,
        );
        let duration = start.elapsed();
        let record = match &line {
            Some((method, target, version)) => RequestRecord {
                status,
                body_bytes,
                duration,
                ..RequestRecord::of_head(self.peer, method, target, *version, headers)
            },
            None => RequestRecord::unparsed(self.peer, status, body_bytes, duration),
        };
        on_request(&record);
        self.linger_close();
    }

    /// Writes `response` with `Connection: close` (best effort: the
    /// connection is closed next anyway) and returns its status and the
    /// body bytes it holds.
    fn answer(&mut self, response: Response, head_request: Option<bool>) -> (u16, u64) {
        let options = WriteOptions {
            version: Version::Http11,
            keep_alive: false,
            head_request: head_request.unwrap_or(false),
        };
        self.output.clear();
        let status = response::serialize(&response, options, &mut self.output);
        let _ = self.write_output();
        (status, body_len(&self.output))
    }

    /// Writes the head already in `self.output`, then `body` as it is
    /// produced: as chunks if `chunked`, else as raw bytes (the caller closes
    /// the connection after, which delimits the body). The output buffer is
    /// sent whenever it holds [`STREAM_FLUSH_BYTES`]. Returns the outcome
    /// and how many body bytes were produced (for the access log).
    ///
    /// An error is a failed or timed-out write, an error of the body's
    /// function, or a panic in it; the response is then cut short (a chunked
    /// one without its last chunk, so the client sees it is incomplete) and
    /// the caller closes the connection.
    fn write_stream(&mut self, body: &StreamBody, chunked: bool) -> (io::Result<()>, u64) {
        let mut sink = StreamSink {
            conn: self,
            chunked,
            body_bytes: 0,
        };
        // `AssertUnwindSafe`: after a panic the connection is closed, and
        // nothing but the output buffer (cleared before every use) survives.
        let produced = panic::catch_unwind(AssertUnwindSafe(|| body.write_to(&mut sink)))
            .unwrap_or_else(|_| Err(io::Error::other("the response body panicked")));
        let body_bytes = sink.body_bytes;
        if let Err(error) = produced {
            return (Err(error), body_bytes);
        }
        if chunked {
            self.output.extend_from_slice(b"0\r\n\r\n");
        }
        (self.write_output(), body_bytes)
    }

    /// Writes `self.output` entirely within `write_timeout`.
    fn write_output(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + self.limits.write_timeout;
        let mut written = 0;
        while written < self.output.len() {
            let remaining = socket_timeout(deadline);
            if remaining.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            if self.write_timeout != Some(remaining) {
                self.stream.set_write_timeout(Some(remaining))?;
                self.write_timeout = Some(remaining);
            }
            match self.stream.write(&self.output[written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Closes gracefully after a final response: half-close, then read and
    /// discard what the client still sends, for a bounded time and amount.
    /// Closing with unread input would make the kernel send a RST, which can
    /// destroy our response before the client reads it.
    fn linger_close(&mut self) {
        if self.stream.shutdown(Shutdown::Write).is_err() {
            return;
        }
        let deadline = Instant::now() + LINGER_TIMEOUT;
        let mut discarded = 0;
        let mut sink = [0u8; 4096];
        while discarded < LINGER_MAX_BYTES {
            match read_until(
                &mut self.stream,
                &mut self.read_timeout,
                &mut sink,
                deadline,
            ) {
                ReadOutcome::Data(n) => discarded += n,
                _ => break,
            }
        }
    }
}

/// Frames a streamed body into the connection's output buffer and sends the
/// buffer whenever it holds [`STREAM_FLUSH_BYTES`].
struct StreamSink<'c, 'l> {
    conn: &'c mut Connection<'l>,
    chunked: bool,
    /// Body bytes produced so far (chunk framing not counted).
    body_bytes: u64,
}

impl Write for StreamSink<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // An empty chunk would end a chunked body early.
        if buf.is_empty() {
            return Ok(0);
        }
        self.body_bytes += buf.len() as u64;
        let output = &mut self.conn.output;
        if self.chunked {
            write!(output, "{:x}\r\n", buf.len())?;
            output.extend_from_slice(buf);
            output.extend_from_slice(b"\r\n");
        } else {
            output.extend_from_slice(buf);
        }
        if output.len() >= STREAM_FLUSH_BYTES {
            self.conn.write_output()?;
            self.conn.output.clear();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Gives back the memory of an output buffer that a large response grew
/// past [`MAX_RETAINED_OUTPUT`]; a smaller buffer is kept for reuse.
fn shrink_output(output: &mut Vec<u8>) {
    if output.capacity() > MAX_RETAINED_OUTPUT {
        *output = Vec::with_capacity(INITIAL_OUTPUT_BUFFER);
    }
}

/// Why a body could not be read.
enum BodyError {
    /// Framing error or too large: answered with its status.
    Parse(ParseError),
    /// The body deadline passed: `408`.
    TimedOut,
    /// The client closed or the socket failed: nothing to answer.
    Gone,
}

/// One `read` into `dst`, bounded by `deadline`. `timeout_cache` remembers
/// the read timeout currently set on `stream`.
fn read_until(
    stream: &mut TcpStream,
    timeout_cache: &mut Option<Duration>,
    dst: &mut [u8],
    deadline: Instant,
) -> ReadOutcome {
    loop {
        let remaining = socket_timeout(deadline);
        // A zero timeout would mean "block forever" to the OS (and is an
        // error for `set_read_timeout`): the deadline has passed.
        if remaining.is_zero() {
            return ReadOutcome::TimedOut;
        }
        if *timeout_cache != Some(remaining) {
            if stream.set_read_timeout(Some(remaining)).is_err() {
                return ReadOutcome::Failed;
            }
            *timeout_cache = Some(remaining);
        }
        match stream.read(dst) {
            Ok(0) => return ReadOutcome::Eof,
            Ok(n) => return ReadOutcome::Data(n),
            // The OS timeout may fire a little early: the loop re-checks the
            // deadline rather than trusting it.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(_) => return ReadOutcome::Failed,
        }
    }
}

/// The time left to `deadline`, rounded down to whole milliseconds when it
/// is at least one: successive waits of the same length then ask for the
/// same timeout, and the cached value spares the `setsockopt` call. Rounding
/// down only ever wakes us early, and callers re-check the deadline.
fn socket_timeout(deadline: Instant) -> Duration {
    let remaining = deadline.saturating_duration_since(Instant::now());
    let millis = Duration::from_millis(u64::try_from(remaining.as_millis()).unwrap_or(u64::MAX));
    if millis.is_zero() {
        remaining
    } else {
        millis
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_output_buffer_is_given_back_a_small_one_kept() {
        let mut output = Vec::with_capacity(INITIAL_OUTPUT_BUFFER);
        output.extend_from_slice(&[b'x'; 40 * 1024]);
        let kept = output.capacity();
        shrink_output(&mut output);
        assert_eq!(output.capacity(), kept, "a 40 KiB buffer is reused");

        output.clear();
        output.extend_from_slice(&vec![b'x'; 27 * 1024 * 1024]);
        assert!(output.capacity() >= 27 * 1024 * 1024);
        shrink_output(&mut output);
        assert!(output.is_empty());
        assert!(
            output.capacity() <= MAX_RETAINED_OUTPUT,
            "capacity {} after a 27 MB response",
            output.capacity()
        );
    }
}
