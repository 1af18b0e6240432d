//! The output side of a connection: its reusable output buffer, a streamed
//! body written in pieces, and the buffer given back after a large answer.
//!
//! A streamed body ([`StreamBody`]) is written in pieces of about
//! [`STREAM_FLUSH_BYTES`], each within `write_timeout` of the previous one,
//! so the output buffer holds one piece, never the whole body; and a buffer
//! that a large response grew past [`MAX_RETAINED_OUTPUT`] is given back
//! once that response is written, so an idle keep-alive connection does not
//! keep its high-water mark (`a_large_output_buffer_is_given_back_a_small_one_kept`
//! below).

use crate::http::response::StreamBody;
use crate::http::timed_stream::TimedStream;
use std::io::{self, Write};
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// The initial capacity of a connection's output buffer: most answers fit.
pub(crate) const INITIAL_OUTPUT_BUFFER: usize = 1024;
/// After a response, an output buffer with more capacity than this is
/// replaced by a fresh one of [`INITIAL_OUTPUT_BUFFER`]: one large answer
/// must not pin its size for the rest of a keep-alive session.
pub(crate) const MAX_RETAINED_OUTPUT: usize = 64 * 1024;
/// A streamed body is sent whenever this much of it is buffered.
pub(crate) const STREAM_FLUSH_BYTES: usize = 32 * 1024;

/// How writing a streamed body ended.
pub(crate) struct Streamed {
    /// `Err` for a failed or timed-out write, an error of the body's
    /// function, or a panic in it: the response was cut short.
    pub(crate) result: io::Result<()>,
    /// Body bytes produced (chunk framing not counted), for the access log.
    pub(crate) body_bytes: u64,
}

/// Writes the head already in `output`, then `body` as it is produced: as
/// chunks if `chunked`, else as raw bytes (the caller closes the connection
/// after, which delimits the body). The output buffer is sent whenever it
/// holds [`STREAM_FLUSH_BYTES`], each piece within `write_timeout`.
///
/// On an error the response is cut short (a chunked one without its last
/// chunk, so the client sees it is incomplete) and the caller closes the
/// connection.
pub(crate) fn write_stream(
    stream: &mut TimedStream,
    output: &mut Vec<u8>,
    write_timeout: Duration,
    body: &StreamBody,
    chunked: bool,
) -> Streamed {
    let mut sink = StreamSink {
        stream,
        output,
        write_timeout,
        chunked,
        body_bytes: 0,
    };
    // `AssertUnwindSafe`: after a panic the connection is closed, and
    // nothing but the output buffer (cleared before every use) survives.
    let produced = panic::catch_unwind(AssertUnwindSafe(|| body.write_to(&mut sink)))
        .unwrap_or_else(|_| Err(io::Error::other("the response body panicked")));
    let body_bytes = sink.body_bytes;
    let result = produced.and_then(|()| {
        if chunked {
            output.extend_from_slice(b"0\r\n\r\n");
        }
        let now = Instant::now();
        stream.write_all_until(output, now + write_timeout, now)
    });
    Streamed { result, body_bytes }
}

/// Frames a streamed body into the output buffer and sends the buffer
/// whenever it holds [`STREAM_FLUSH_BYTES`].
struct StreamSink<'a> {
    stream: &'a mut TimedStream,
    output: &'a mut Vec<u8>,
    write_timeout: Duration,
    chunked: bool,
    /// Body bytes produced so far (chunk framing not counted).
    body_bytes: u64,
}

impl Write for StreamSink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // An empty chunk would end a chunked body early.
        if buf.is_empty() {
            return Ok(0);
        }
        self.body_bytes += buf.len() as u64;
        if self.chunked {
            write!(self.output, "{:x}\r\n", buf.len())?;
            self.output.extend_from_slice(buf);
            self.output.extend_from_slice(b"\r\n");
        } else {
            self.output.extend_from_slice(buf);
        }
        if self.output.len() >= STREAM_FLUSH_BYTES {
            let now = Instant::now();
            self.stream
                .write_all_until(self.output, now + self.write_timeout, now)?;
            self.output.clear();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Gives back the memory of an output buffer that a large response grew
/// past [`MAX_RETAINED_OUTPUT`]; a smaller buffer is kept for reuse.
pub(crate) fn shrink_output(output: &mut Vec<u8>) {
    if output.capacity() > MAX_RETAINED_OUTPUT {
        *output = Vec::with_capacity(INITIAL_OUTPUT_BUFFER);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_output_buffer_is_given_back_a_small_one_kept() {
        let mut output = Vec::with_capacity(INITIAL_OUTPUT_BUFFER);
        output.extend_from_slice(&vec![b'x'; 40 * 1024]);
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
