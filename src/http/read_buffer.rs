//! The read buffer of one connection: bytes received and not yet consumed.

/// The initial size of a connection's read buffer; it grows (by doubling)
/// only for heads that need it, up to the largest head the limits allow.
const INITIAL_READ_BUFFER: usize = 8 * 1024;

/// The read buffer of one connection: `data[start..end]` holds bytes received
/// and not yet consumed (the rest of a head, or pipelined requests).
///
/// Invariant: `start <= end <= data.len() <= max`, where `max` is the longest
/// head the limits allow; since [`crate::http::parser::parse_head`] fails before a head
/// grows past that, the buffer never needs to be larger.
pub(crate) struct ReadBuffer {
    data: Vec<u8>,
    start: usize,
    end: usize,
    max: usize,
}

impl ReadBuffer {
    pub(crate) fn new(max: usize) -> ReadBuffer {
        ReadBuffer {
            data: vec![0; INITIAL_READ_BUFFER.min(max)],
            start: 0,
            end: 0,
            max,
        }
    }

    pub(crate) fn filled(&self) -> &[u8] {
        &self.data[self.start..self.end]
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    pub(crate) fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Free space to read into, after moving unconsumed bytes to the front
    /// or growing if needed. Empty only when `max` bytes are unconsumed.
    pub(crate) fn spare(&mut self) -> &mut [u8] {
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

    pub(crate) fn commit(&mut self, n: usize) {
        self.end = (self.end + n).min(self.data.len());
    }
}
