//! The hash of the loader's maps: a word at a time, not `SipHash`.
//!
//! Loading hashes the question, location and category text of every row
//! (about 75,000 strings of up to 245 bytes for the course data). With
//! std's `SipHash` loading the course data took 21–22 ms on the machine of
//! docs/bench.md's later 2026-12-06 figures, and 16–17 ms with this hash.
//! `SipHash` resists collisions crafted by whoever chooses the keys; here
//! the keys come from the data file the operator chose, and the maps
//! compare keys, so a collision costs only time. The mixing step is the
//! one rustc's `FxHasher` uses.

use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` with [`WordHasher`].
pub(super) type WordHashMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<WordHasher>>;

/// Mixes input eight bytes at a time: rotate, xor, multiply.
#[derive(Default, Clone)]
pub(super) struct WordHasher {
    hash: u64,
}

/// An odd constant with well-spread bits (the 64-bit `FxHasher` seed).
const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl WordHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for WordHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut buf = [0; 8];
            buf.copy_from_slice(word);
            self.add(u64::from_le_bytes(buf));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut buf = [0; 8];
            buf[..rest.len()].copy_from_slice(rest);
            // The length tells "ab" from "ab\0".
            self.add(u64::from_le_bytes(buf) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    fn hash(key: impl std::hash::Hash) -> u64 {
        BuildHasherDefault::<WordHasher>::default().hash_one(key)
    }

    #[test]
    fn strings_that_differ_in_one_byte_or_in_length_hash_apart() {
        let keys = [
            "",
            "a",
            "b",
            "ab",
            "ab\0",
            "abcdefgh",
            "abcdefgi",
            "abcdefgh\0",
            "Ohio",
            "Iowa",
        ];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(hash(a), hash(b), "{a:?} and {b:?}");
            }
        }
    }

    #[test]
    fn a_map_finds_what_was_put_in() {
        let mut map: WordHashMap<Box<str>, u32> = WordHashMap::default();
        for (i, name) in ["Ohio", "Iowa", "Guam", "District of Columbia"]
            .iter()
            .enumerate()
        {
            map.insert((*name).into(), i as u32);
        }
        assert_eq!(map.get("Guam"), Some(&2));
        assert_eq!(map.get("guam"), None);
    }
}
