//! A socket whose every read and write is bounded by a deadline, and the
//! one way a connection ends after an error: answer, half-close, linger.
//!
//! Each call is given the time left to its deadline (`set_read_timeout` /
//! `set_write_timeout`, re-set before each call), so a slow client cannot
//! stretch a deadline by trickling bytes. Callers pass a clock reading
//! (`now`) taken just before the call, often the one the deadline or a
//! scoreboard state was computed from, so that the first system call costs
//! no second reading; its age only lengthens that first wait. Every retry
//! and every further write reads the clock again.

use crate::http::response::{self, Response, WriteOptions};
use crate::http::Version;
use crate::limits::{LINGER_MAX_BYTES, LINGER_TIMEOUT};
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

/// A `TcpStream` that remembers the timeouts last set on it: setting the
/// same value again is skipped, which saves a system call per keep-alive
/// request.
pub(crate) struct TimedStream {
    stream: TcpStream,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
}

/// How a bounded read ended.
pub(crate) enum ReadOutcome {
    Data(usize),
    Eof,
    TimedOut,
    Failed,
}

/// How long closing may wait for input the client is still sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Linger {
    /// Read and discard for at most [`LINGER_TIMEOUT`] and
    /// [`LINGER_MAX_BYTES`]: a connection thread can afford to wait.
    Bounded,
    /// Discard only what has already arrived, never blocking: the accept
    /// loop must not wait on one client (`tests::a_no_wait_answer_is_written_and_closed_without_waiting_for_the_client`).
    /// A client that sends faster than we discard is cut off after
    /// [`LINGER_MAX_BYTES`].
    NoWait,
}

/// What a final answer wrote, for the access log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Answered {
    /// The status written (or attempted).
    pub(crate) status: u16,
    /// Bytes of response body in the answer.
    pub(crate) body_bytes: u64,
}

impl TimedStream {
    pub(crate) fn new(stream: TcpStream) -> TimedStream {
        TimedStream {
            stream,
            read_timeout: None,
            write_timeout: None,
        }
    }

    /// One `read` into `dst`, bounded by `deadline`; `now` is a clock
    /// reading the caller took just before (see the module doc).
    pub(crate) fn read_until(
        &mut self,
        dst: &mut [u8],
        deadline: Instant,
        mut now: Instant,
    ) -> ReadOutcome {
        loop {
            let remaining = socket_timeout(deadline, now);
            // A zero timeout would mean "block forever" to the OS (and is an
            // error for `set_read_timeout`): the deadline has passed.
            if remaining.is_zero() {
                return ReadOutcome::TimedOut;
            }
            if self.read_timeout != Some(remaining) {
                if self.stream.set_read_timeout(Some(remaining)).is_err() {
                    return ReadOutcome::Failed;
                }
                self.read_timeout = Some(remaining);
            }
            match self.stream.read(dst) {
                Ok(0) => return ReadOutcome::Eof,
                Ok(n) => return ReadOutcome::Data(n),
                // The OS timeout may fire a little early: the loop re-checks
                // the deadline rather than trusting it.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(_) => return ReadOutcome::Failed,
            }
            now = Instant::now();
        }
    }

    /// Writes all of `bytes` before `deadline`; `now` is a clock reading
    /// the caller took just before (see the module doc). After a partial
    /// write the clock is read again, so a client that reads slowly cannot
    /// stretch the deadline
    /// (`tests::a_slow_reader_cannot_stretch_a_write_deadline`).
    ///
    /// # Errors
    /// `TimedOut` when the deadline passes first, `WriteZero` when the
    /// socket takes nothing, or the socket's own error.
    pub(crate) fn write_all_until(
        &mut self,
        bytes: &[u8],
        deadline: Instant,
        mut now: Instant,
    ) -> io::Result<()> {
        let mut written = 0;
        while written < bytes.len() {
            let remaining = socket_timeout(deadline, now);
            if remaining.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            if self.write_timeout != Some(remaining) {
                self.stream.set_write_timeout(Some(remaining))?;
                self.write_timeout = Some(remaining);
            }
            match self.stream.write(&bytes[written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) if written + n == bytes.len() => return Ok(()),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            now = Instant::now();
        }
        Ok(())
    }

    /// Closes gracefully after a final response: half-close, then read and
    /// discard what the client still sends, as `linger` allows. Closing with
    /// unread input would make the kernel send a RST, which can destroy our
    /// response before the client reads it.
    pub(crate) fn linger_close(&mut self, linger: Linger) {
        if self.stream.shutdown(Shutdown::Write).is_err() {
            return;
        }
        let mut discarded = 0;
        let mut sink = [0u8; 4096];
        match linger {
            Linger::Bounded => {
                let deadline = Instant::now() + LINGER_TIMEOUT;
                while discarded < LINGER_MAX_BYTES {
                    match self.read_until(&mut sink, deadline, Instant::now()) {
                        ReadOutcome::Data(n) => discarded += n,
                        _ => break,
                    }
                }
            }
            Linger::NoWait => {
                if self.stream.set_nonblocking(true).is_err() {
                    return;
                }
                while discarded < LINGER_MAX_BYTES {
                    match self.stream.read(&mut sink) {
                        Ok(n) if n > 0 => discarded += n,
                        _ => break,
                    }
                }
            }
        }
    }
}

/// The one path that answers an error and ends a connection, shared by the
/// connection loop (`4xx`/`5xx` for a request it cannot serve, `408`) and
/// the accept loop (`503` over the connection cap): serialises `response`
/// with `Connection: close` into `out`, writes it within `write_timeout`
/// (best effort: the connection is closed next anyway), tells `report` what
/// was written, then closes as `linger` allows (after the report, so that
/// the logged duration does not include the linger).
pub(crate) fn answer_and_close(
    stream: &mut TimedStream,
    out: &mut Vec<u8>,
    response: &Response,
    head_request: bool,
    write_timeout: Duration,
    linger: Linger,
    report: impl FnOnce(Answered),
) {
    let options = WriteOptions {
        version: Version::Http11,
        keep_alive: false,
        head_request,
    };
    out.clear();
    let status = response::serialize(response, options, out);
    let now = Instant::now();
    let _ = stream.write_all_until(out, now + write_timeout, now);
    report(Answered {
        status,
        body_bytes: body_len(out),
    });
    stream.linger_close(linger);
}

/// The body bytes in a serialised response: what follows the blank line
/// that ends its head.
pub(crate) fn body_len(out: &[u8]) -> u64 {
    out.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(0, |i| (out.len() - i - 4) as u64)
}

/// The time left to `deadline` at `now`, rounded down to whole milliseconds when it
/// is at least one: successive waits of the same length then ask for the
/// same timeout, and the cached value spares the `setsockopt` call. Rounding
/// down only ever wakes us early, and callers re-check the deadline.
fn socket_timeout(deadline: Instant, now: Instant) -> Duration {
    let remaining = deadline.saturating_duration_since(now);
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
    use std::net::TcpListener;

    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (client, server)
    }

    /// The accept loop's `503`: written whole, reported, and closed without
    /// waiting for a client that keeps its side open after sending a request.
    #[test]
    fn a_no_wait_answer_is_written_and_closed_without_waiting_for_the_client() {
        let (mut client, server) = pair();
        client
            .write_all(&vec![b'x'; 2 * LINGER_MAX_BYTES])
            .unwrap_or(());
        let mut stream = TimedStream::new(server);
        let mut reported = None;
        let start = Instant::now();
        answer_and_close(
            &mut stream,
            &mut Vec::new(),
            &Response::error(503, "too many connections"),
            false,
            Duration::from_secs(5),
            Linger::NoWait,
            |answered| reported = Some(answered),
        );
        assert!(
            start.elapsed() < LINGER_TIMEOUT,
            "waited {:?}",
            start.elapsed()
        );
        let body = b"{\"status\": \"error\", \"reason\": \"too many connections\"}\n";
        assert_eq!(
            reported,
            Some(Answered {
                status: 503,
                body_bytes: body.len() as u64
            })
        );
        drop(stream);
        let mut reply = Vec::new();
        let _ = client.read_to_end(&mut reply);
        let reply = String::from_utf8_lossy(&reply);
        assert!(reply.starts_with("HTTP/1.1 503 "), "{reply}");
        assert!(reply.contains("Connection: close\r\n"), "{reply}");
        assert!(
            reply.ends_with(std::str::from_utf8(body).unwrap()),
            "{reply}"
        );
    }

    #[test]
    fn a_read_past_its_deadline_times_out() {
        let (_client, server) = pair();
        let mut stream = TimedStream::new(server);
        let mut buf = [0u8; 16];
        let deadline = Instant::now() + Duration::from_millis(50);
        assert!(matches!(
            stream.read_until(&mut buf, deadline, Instant::now()),
            ReadOutcome::TimedOut
        ));
        assert!(Instant::now() >= deadline, "the OS timeout is not trusted");
    }

    /// Against a reader that drains a little at a time, each `write`
    /// returns a partial count at its socket timeout rather than an error:
    /// only the deadline, checked against a fresh reading after each
    /// partial write, ends the write.
    #[test]
    fn a_slow_reader_cannot_stretch_a_write_deadline() {
        let (client, server) = pair();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let stop = std::sync::Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut client = client;
                let mut buf = [0u8; 16 * 1024];
                // Pacing is the point of this client: 16 KiB per 20 ms.
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if matches!(client.read(&mut buf), Ok(0) | Err(_)) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        let mut stream = TimedStream::new(server);
        let timeout = Duration::from_millis(300);
        let start = Instant::now();
        let result = stream.write_all_until(&vec![b'x'; 32 << 20], start + timeout, start);
        let took = start.elapsed();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        drop(stream);
        reader.join().unwrap();
        // Timed out by the deadline check, or by the socket timeout if the
        // reader ever stalled that long: either way, an error in time.
        let kind = result.map_err(|e| e.kind());
        assert!(
            matches!(
                kind,
                Err(io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock)
            ),
            "{kind:?}"
        );
        assert!(took < Duration::from_secs(2), "the write took {took:?}");
    }
}
