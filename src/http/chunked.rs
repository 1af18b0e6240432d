//! The incremental decoder of a chunked request body (RFC 9112 §7.1).
//!
//! The connection loop feeds it the bytes after the head as they arrive; it
//! is a byte-at-a-time state machine (with one bulk copy for chunk data), so
//! a body split anywhere decodes the same, and every size it reads is
//! checked against the limits before a byte of data is kept.

use crate::http::parse_error::ParseError;
use crate::http::syntax::{is_field_value_char, is_tchar};
use crate::limits::{Limits, MAX_CHUNK_LINE};

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
    #[must_use]
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
    #[must_use]
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
    ///
    /// Kept whole on purpose (about 70 lines): the `match` below is the
    /// decoder's transition table, one row per (state, byte class), and a
    /// reader checks it against RFC 9112 §7.1 best in one piece.
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
