//! The per-connection loop, in three named steps: [`Connection::read_head`],
//! [`Connection::read_body`], [`Connection::respond`]; again while the
//! connection is kept alive. A request that cannot be read is answered by
//! [`Connection::answer_failure`], through the one error path the accept
//! loop's `503` shares ([`answer_and_close`]).
//!
//! Every wait is bounded by a deadline, and every read and write is given
//! the time left to its deadline ([`TimedStream`]), so a slow client cannot
//! stretch a deadline by trickling bytes:
//!
//! | wait | deadline from | on expiry |
//! |---|---|---|
//! | first byte of a request | the previous request's end, once it is logged | close silently |
//! | rest of the head | its first byte (`head_timeout`) | `408`, close |
//! | the body | end of the head (`body_timeout`) | `408`, close |
//! | writing one response | its first write (`write_timeout`) | drop the connection |
//! | writing one piece of a streamed body | the piece's first write (`write_timeout`) | drop the connection |
//!
//! Responses are written one at a time, each after its request was read: a
//! pipelining client that never reads its responses blocks our write (and
//! is dropped at the write deadline) instead of making us buffer answers.
//! Streamed bodies and the output buffer's size are in [`crate::http::output`].

use crate::http::chunked::ChunkedDecoder;
use crate::http::output::{self, Streamed, INITIAL_OUTPUT_BUFFER};
use crate::http::parser::{self, BodyFraming, Head, ParseError, Parsed};
use crate::http::read_buffer::ReadBuffer;
use crate::http::record::RequestRecord;
use crate::http::response::{self, Response, WriteOptions};
use crate::http::timed_stream::{answer_and_close, body_len, Linger, ReadOutcome, TimedStream};
use crate::http::{Handler, Request, Version};
use crate::limits::Limits;
use crate::scoreboard::{self, ThreadState};
use std::net::IpAddr;
use std::panic::{self, AssertUnwindSafe};
use std::time::Instant;

/// Serves `stream` until the client closes, a timeout expires, or a request
/// asks (or an error forces) to close. Never panics on client input; a panic
/// in `handler` is answered `500` and the connection goes on.
pub fn serve(
    stream: std::net::TcpStream,
    handler: &dyn Handler,
    limits: &Limits,
    on_request: &dyn Fn(&RequestRecord<'_>),
) {
    let mut conn = Connection::new(stream, limits);
    // Each step of a request reads the clock once, and the reading serves
    // everything that step needs (its scoreboard state, its deadline, the
    // logged duration); a retried read or write, and each read of a body,
    // takes its own. Here, where the wait for the next request starts: its
    // state and its idle deadline.
    let mut now = Instant::now();
    while let Next::KeepAlive = conn.serve_one(handler, on_request, now) {
        now = Instant::now();
        scoreboard::set_at(ThreadState::KeepAlive, now);
    }
}

/// Whether the loop goes on after one request.
enum Next {
    KeepAlive,
    Close,
}

/// Why a request could not be read.
enum ReadFailure {
    /// The client closed, the socket failed, or a keep-alive connection
    /// stayed idle: close without a word.
    Gone,
    /// The head or body deadline passed while the request was arriving: `408`.
    TimedOut,
    /// The bytes are not a request we serve (syntax, framing, a limit):
    /// the error's status.
    Invalid(ParseError),
}

struct Connection<'l> {
    stream: TimedStream,
    limits: &'l Limits,
    /// The client's address, for the access log.
    peer: Option<IpAddr>,
    input: ReadBuffer,
    /// The serialised response, reused from one request to the next.
    output: Vec<u8>,
}

impl<'l> Connection<'l> {
    fn new(stream: std::net::TcpStream, limits: &'l Limits) -> Connection<'l> {
        let peer = stream.peer_addr().ok().map(|a| a.ip());
        Connection {
            stream: TimedStream::new(stream),
            limits,
            peer,
            input: ReadBuffer::new(limits.max_request_line + limits.max_header_bytes),
            output: Vec::with_capacity(INITIAL_OUTPUT_BUFFER),
        }
    }

    /// Reads, answers and writes one request, waiting for it from `now`.
    fn serve_one(
        &mut self,
        handler: &dyn Handler,
        on_request: &dyn Fn(&RequestRecord<'_>),
        now: Instant,
    ) -> Next {
        // Pipelined bytes already here are the start of this request's head.
        let mut started = (!self.input.is_empty()).then_some(now);
        let head = match self.read_head(&mut started, now) {
            Ok(head) => head,
            Err(failure) => {
                let started = started.unwrap_or_else(Instant::now);
                self.answer_failure(failure, None, started, on_request);
                return Next::Close;
            }
        };
        // `started` is set: the head had at least one byte.
        let started = started.unwrap_or_else(Instant::now);
        let body = match self.read_body(&head) {
            Ok(body) => body,
            Err(failure) => {
                self.answer_failure(failure, Some(&head), started, on_request);
                return Next::Close;
            }
        };
        let keep_alive = head.keep_alive;
        let request = Request {
            method: head.method,
            target: head.target,
            version: head.version,
            headers: head.headers,
            body,
            peer: self.peer,
        };
        self.respond(&request, keep_alive, handler, started, on_request)
    }

    /// Step 1: reads until `self.input` starts with a complete head, which
    /// it parses and consumes. Sets `started` at the head's first byte. The
    /// wait for it starts at `now`; each later read takes its timeout from
    /// the clock read when the read before returned (only the parse of the
    /// bytes so far and a scoreboard publish lie in between).
    fn read_head(
        &mut self,
        started: &mut Option<Instant>,
        mut now: Instant,
    ) -> Result<Head, ReadFailure> {
        let idle_deadline = now + self.limits.idle_timeout;
        loop {
            if !self.input.is_empty() {
                match parser::parse_head(self.input.filled(), self.limits) {
                    Ok(Parsed::Complete { head, len }) => {
                        self.input.consume(len);
                        return Ok(head);
                    }
                    Ok(Parsed::Partial) => {}
                    Err(error) => return Err(ReadFailure::Invalid(error)),
                }
            }
            let deadline = match *started {
                None => idle_deadline,
                Some(t) => t + self.limits.head_timeout,
            };
            let spare = self.input.spare();
            if spare.is_empty() {
                // Unreachable by the ReadBuffer invariant; answered rather
                // than trusted.
                return Err(ReadFailure::Invalid(ParseError::HeaderBlockTooLarge));
            }
            match self.stream.read_until(spare, deadline, now) {
                ReadOutcome::Data(n) => {
                    self.input.commit(n);
                    now = Instant::now();
                    scoreboard::set_at(ThreadState::ReadingHead, now);
                    started.get_or_insert(now);
                }
                // An idle keep-alive connection is closed without a word.
                ReadOutcome::TimedOut if started.is_none() => return Err(ReadFailure::Gone),
                ReadOutcome::TimedOut => return Err(ReadFailure::TimedOut),
                ReadOutcome::Eof | ReadOutcome::Failed => return Err(ReadFailure::Gone),
            }
        }
    }

    /// Step 2: reads and decodes the body `head` announces, answering
    /// `100 Continue` first when the client waits for it.
    fn read_body(&mut self, head: &Head) -> Result<Vec<u8>, ReadFailure> {
        match head.framing {
            BodyFraming::None => Ok(Vec::new()),
            BodyFraming::ContentLength(length) => {
                let deadline = self.body_deadline();
                self.read_sized_body(length, head.expect_continue, deadline)
            }
            BodyFraming::Chunked => {
                let deadline = self.body_deadline();
                self.read_chunked_body(head.expect_continue, deadline)
            }
        }
    }

    /// Publishes `ReadingBody` and gives the body's deadline, from one
    /// clock reading (taken only for a body: most requests have none).
    fn body_deadline(&self) -> Instant {
        let now = Instant::now();
        scoreboard::set_at(ThreadState::ReadingBody, now);
        now + self.limits.body_timeout
    }

    fn read_sized_body(
        &mut self,
        length: u64,
        expect_continue: bool,
        deadline: Instant,
    ) -> Result<Vec<u8>, ReadFailure> {
        // Checked before reading a byte of the body (or sending 100).
        let length = usize::try_from(length)
            .ok()
            .filter(|&n| n <= self.limits.max_body_bytes)
            .ok_or(ReadFailure::Invalid(ParseError::BodyTooLarge))?;
        if expect_continue && self.input.filled().len() < length {
            self.send_continue()?;
        }
        let mut body = vec![0; length];
        let buffered = self.input.filled().len().min(length);
        body[..buffered].copy_from_slice(&self.input.filled()[..buffered]);
        self.input.consume(buffered);
        let mut filled = buffered;
        while filled < length {
            match self
                .stream
                .read_until(&mut body[filled..], deadline, Instant::now())
            {
                ReadOutcome::Data(n) => filled += n,
                ReadOutcome::TimedOut => return Err(ReadFailure::TimedOut),
                ReadOutcome::Eof | ReadOutcome::Failed => return Err(ReadFailure::Gone),
            }
        }
        Ok(body)
    }

    fn read_chunked_body(
        &mut self,
        expect_continue: bool,
        deadline: Instant,
    ) -> Result<Vec<u8>, ReadFailure> {
        if expect_continue && self.input.is_empty() {
            self.send_continue()?;
        }
        let mut decoder = ChunkedDecoder::new(self.limits);
        let mut body = Vec::new();
        loop {
            let used = decoder
                .decode(self.input.filled(), &mut body)
                .map_err(ReadFailure::Invalid)?;
            self.input.consume(used);
            if decoder.is_done() {
                return Ok(body);
            }
            // The decoder consumed everything, so the buffer is empty and
            // `spare` is not.
            let spare = self.input.spare();
            match self.stream.read_until(spare, deadline, Instant::now()) {
                ReadOutcome::Data(n) => self.input.commit(n),
                ReadOutcome::TimedOut => return Err(ReadFailure::TimedOut),
                ReadOutcome::Eof | ReadOutcome::Failed => return Err(ReadFailure::Gone),
            }
        }
    }

    fn send_continue(&mut self) -> Result<(), ReadFailure> {
        let now = Instant::now();
        self.stream
            .write_all_until(response::CONTINUE, now + self.limits.write_timeout, now)
            .map_err(|_| ReadFailure::Gone)
    }

    /// Step 3: calls the handler (a panic is answered `500`), writes its
    /// response, logs the request, and says whether the connection goes on.
    fn respond(
        &mut self,
        request: &Request,
        keep_alive: bool,
        handler: &dyn Handler,
        started: Instant,
        on_request: &dyn Fn(&RequestRecord<'_>),
    ) -> Next {
        scoreboard::set(ThreadState::Handling);
        // `AssertUnwindSafe`: the handler only gets `&Request`; a panic
        // leaves no state of ours half-updated.
        let response = panic::catch_unwind(AssertUnwindSafe(|| handler.handle(request)))
            .unwrap_or_else(|_| Response::error(500, "internal error"));
        // A body delimited by the close ends the connection.
        let keep_alive = keep_alive
            && !response::wants_close(&response)
            && !response.is_close_delimited(request.version);
        let options = WriteOptions {
            version: request.version,
            keep_alive,
            head_request: request.method == "HEAD",
        };
        self.output.clear();
        let status = response::serialize(&response, options, &mut self.output);
        let sent = self.send_output(&response, options);
        let written_at = Instant::now();
        on_request(&RequestRecord {
            status,
            body_bytes: sent.body_bytes,
            duration: written_at.saturating_duration_since(started),
            ..RequestRecord::of_head(
                self.peer,
                &request.method,
                &request.target,
                request.version,
                &request.headers,
            )
        });
        if sent.result.is_err() {
            return Next::Close;
        }
        if keep_alive {
            Next::KeepAlive
        } else {
            self.stream.linger_close(Linger::Bounded);
            Next::Close
        }
    }

    /// Writes `response`, already serialised into `self.output` (then
    /// streams its body if it has a [`crate::http::response::StreamBody`]),
    /// and gives back an output buffer it grew.
    fn send_output(&mut self, response: &Response, options: WriteOptions) -> Streamed {
        let now = Instant::now();
        scoreboard::set_at(ThreadState::Writing, now);
        let sent = match &response.stream {
            Some(body) if response::streams_body(response, options) => output::write_stream(
                &mut self.stream,
                &mut self.output,
                self.limits.write_timeout,
                body,
                options.version == Version::Http11,
            ),
            _ => Streamed {
                result: self.stream.write_all_until(
                    &self.output,
                    now + self.limits.write_timeout,
                    now,
                ),
                body_bytes: body_len(&self.output),
            },
        };
        output::shrink_output(&mut self.output);
        sent
    }

    /// Answers a request that could not be read (always closing, through
    /// [`answer_and_close`]) and logs it with what is known: the head if it
    /// was parsed, else the request line if the bytes hold a well-formed
    /// one. A client that is gone gets no answer and no log line.
    fn answer_failure(
        &mut self,
        failure: ReadFailure,
        head: Option<&Head>,
        started: Instant,
        on_request: &dyn Fn(&RequestRecord<'_>),
    ) {
        let response = match failure {
            ReadFailure::Gone => return,
            ReadFailure::TimedOut => Response::error(408, "request timeout"),
            ReadFailure::Invalid(error) => {
                Response::error(error.status(), &error.explain(self.limits))
            }
        };
        let known = match (head, failure) {
            (Some(head), _) => RequestRecord::of_head(
                self.peer,
                &head.method,
                &head.target,
                head.version,
                &head.headers,
            ),
            // An over-long line is not logged, even when complete: the log
            // would grow by the line's length.
            (None, ReadFailure::Invalid(error)) if error != ParseError::RequestLineTooLong => {
                parser::request_line_parts(self.input.filled()).map_or_else(
                    || RequestRecord::unparsed(self.peer, 0, 0, started.elapsed()),
                    |line| RequestRecord::of_line(self.peer, line),
                )
            }
            (None, _) => RequestRecord::unparsed(self.peer, 0, 0, started.elapsed()),
        };
        answer_and_close(
            &mut self.stream,
            &mut self.output,
            &response,
            known.method == "HEAD",
            self.limits.write_timeout,
            Linger::Bounded,
            |answered| {
                on_request(&RequestRecord {
                    status: answered.status,
                    body_bytes: answered.body_bytes,
                    duration: started.elapsed(),
                    ..known
                });
            },
        );
    }
}
