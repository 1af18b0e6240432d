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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffer_grows_to_max_and_no_further_and_reuses_consumed_space() {
        let max = 3 * INITIAL_READ_BUFFER;
        let mut buffer = ReadBuffer::new(max);
        let mut received = 0;
        loop {
            let spare = buffer.spare().len();
            if spare == 0 {
                break;
            }
            buffer.commit(spare);
            received += spare;
        }
        assert_eq!(received, max, "spare is empty only when max bytes wait");
        assert_eq!(buffer.filled().len(), max);
        buffer.consume(10);
        assert_eq!(buffer.filled().len(), max - 10);
        assert_eq!(buffer.spare().len(), 10, "consumed bytes are reused");
        assert_eq!(buffer.data.len(), max, "never larger than max");
        buffer.consume(max);
        assert!(buffer.is_empty());
    }
}
