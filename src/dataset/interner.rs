//! Strings numbered in first-seen order, and ranked by name once all are in.

use super::word_hash::WordHashMap;

/// Strings numbered in first-seen order.
#[derive(Default)]
pub(super) struct Interner {
    ids: WordHashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
}

impl Interner {
    /// The id of `name`, or `None` when ids are exhausted (more than
    /// `u32::MAX - 1` distinct names; `u32::MAX` stays free for `NO_ID`).
    pub(super) fn intern(&mut self, name: &str) -> Option<u32> {
        if let Some(&id) = self.ids.get(name) {
            return Some(id);
        }
        let id = u32::try_from(self.names.len())
            .ok()
            .filter(|&id| id != u32::MAX)?;
        self.ids.insert(name.into(), id);
        self.names.push(name.into());
        Some(id)
    }

    /// For each id, its rank among the names in sorted order; and the sorted names.
    pub(super) fn into_ranked(self) -> (Vec<u32>, Vec<Box<str>>) {
        let mut order: Vec<u32> = (0..self.names.len() as u32).collect();
        order.sort_by(|&a, &b| self.names[a as usize].cmp(&self.names[b as usize]));
        let mut rank = vec![0u32; order.len()];
        for (r, &id) in order.iter().enumerate() {
            // `r < names.len()`, which `intern` kept below u32::MAX.
            rank[id as usize] = r as u32;
        }
        let mut names: Vec<Option<Box<str>>> = self.names.into_iter().map(Some).collect();
        let sorted = order
            .iter()
            // Each id appears once in `order`, so each name is taken once.
            .map(|&id| names[id as usize].take().expect("each id appears once"))
            .collect();
        (rank, sorted)
    }
}
