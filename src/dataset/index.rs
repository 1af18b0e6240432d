//! Laying the kept rows out for the queries, and computing every group's
//! [`GroupSum`] once (the layout is described in the `dataset` module
//! documentation).

use super::word_hash::WordHashMap;
use std::ops::Range;

use super::interner::Interner;
use super::read::{RawRow, RawTable};
use super::{CategoryNames, CategorySum, Dataset, GroupSum, QuestionIndex, Row, StateIndex, NO_ID};

/// Lays the rows out for the queries (see the module documentation of
/// `dataset`).
pub(super) fn build(table: RawTable) -> Dataset {
    let RawTable {
        mut summary,
        rows: mut raw,
        questions,
        locations,
        category_names,
        pairs,
    } = table;
    let (question_rank, question_names) = questions.into_ranked();
    let (location_rank, locations) = locations.into_ranked();
    let (categories, category_rank) = rank_categories(category_names, pairs);

    // Group rows by question, keeping file order within a question
    // (`sort_by_key` is stable).
    raw.sort_by_key(|r| question_rank[r.question as usize]);
    let location_of = |i: u32| location_rank[raw[i as usize].location as usize];
    let rows = ranked_rows(&raw, &category_rank);

    let mut question_index = Vec::with_capacity(question_names.len());
    let mut by_state: Vec<u32> = Vec::with_capacity(raw.len());
    let mut category_sums: Vec<CategorySum> = Vec::new();
    let mut start = 0;
    for name in question_names {
        // Ranks are below u32::MAX (see `Interner::intern`).
        let rank = question_index.len() as u32;
        let end =
            start + raw[start..].partition_point(|r| question_rank[r.question as usize] == rank);
        // Row indices fit in u32 (`RawTable::rows`' invariant). Rows with no
        // location count in the question but belong to no state.
        let located = (start..end)
            .filter(|&i| raw[i].location != NO_ID)
            .map(|i| i as u32);
        let states = index_states(
            &rows,
            &mut by_state,
            &mut category_sums,
            located,
            location_of,
        );
        question_index.push(QuestionIndex {
            name,
            rows: start..end,
            sum: GroupSum::pairwise(rows[start..end].iter().map(|r| r.value)),
            states,
        });
        start = end;
    }

    summary.rows_kept = rows.len();
    summary.questions = question_index.len();
    summary.locations = locations.len();
    Dataset {
        summary,
        rows,
        by_state,
        questions: question_index,
        locations,
        categories,
        category_sums,
    }
}

/// The `raw` rows, in their order, with each category id replaced by its
/// rank (`category_rank[id]`).
fn ranked_rows(raw: &[RawRow], category_rank: &[u32]) -> Vec<Row> {
    raw.iter()
        .map(|r| Row {
            category: match r.category {
                NO_ID => NO_ID,
                id => category_rank[id as usize],
            },
            value: r.value,
        })
        .collect()
}

/// Appends one question's `located` row indices (in file order) to
/// `by_state`, grouped by state in name order and in file order within a
/// state, and each state's category sums to `category_sums`; returns the
/// question's states.
fn index_states(
    rows: &[Row],
    by_state: &mut Vec<u32>,
    category_sums: &mut Vec<CategorySum>,
    located: impl Iterator<Item = u32>,
    location_of: impl Fn(u32) -> u32,
) -> Vec<StateIndex> {
    let group_start = by_state.len();
    by_state.extend(located);
    // `sort_by_key` is stable: file order stays within each state.
    by_state[group_start..].sort_by_key(|&i| location_of(i));
    let mut states: Vec<StateIndex> = Vec::new();
    let mut at = group_start;
    for group in by_state[group_start..].chunk_by(|&a, &b| location_of(a) == location_of(b)) {
        states.push(StateIndex {
            location: location_of(group[0]),
            by_state: at..at + group.len(),
            sum: GroupSum::kahan(group.iter().map(|&i| rows[i as usize].value)),
            category_sums: push_category_sums(category_sums, rows, group),
        });
        at += group.len();
    }
    states
}

/// Appends the sums of each category of one (question, state) `group` of
/// row indices (in file order) to `sums`, sorted by category; returns where
/// they lie in `sums`.
fn push_category_sums(sums: &mut Vec<CategorySum>, rows: &[Row], group: &[u32]) -> Range<usize> {
    let category_of = |i: u32| rows[i as usize].category;
    let mut members: Vec<u32> = group
        .iter()
        .copied()
        .filter(|&i| category_of(i) != NO_ID)
        .collect();
    // `sort_by_key` is stable: file order stays within each category, as
    // the Kahan sum needs.
    members.sort_by_key(|&i| category_of(i));
    let start = sums.len();
    for same in members.chunk_by(|&a, &b| category_of(a) == category_of(b)) {
        sums.push(CategorySum {
            category: category_of(same[0]),
            sum: GroupSum::kahan(same.iter().map(|&i| rows[i as usize].value)),
        });
    }
    start..sums.len()
}

/// The sorted (category, stratification) pairs, and for each pair id (in
/// first-seen order) its rank in that sorted list.
fn rank_categories(
    names: Interner,
    pairs: WordHashMap<(u32, u32), u32>,
) -> (Vec<CategoryNames>, Vec<u32>) {
    let mut by_id: Vec<(u32, (u32, u32))> = pairs.into_iter().map(|(k, id)| (id, k)).collect();
    by_id.sort_unstable_by_key(|&(id, _)| id);
    let (name_rank, sorted_names) = names.into_ranked();
    // Comparing name ranks compares the names.
    let mut order: Vec<u32> = (0..by_id.len() as u32).collect();
    order.sort_by_key(|&id| {
        let (c, s) = by_id[id as usize].1;
        (name_rank[c as usize], name_rank[s as usize])
    });
    let mut rank = vec![0u32; order.len()];
    let mut sorted = Vec::with_capacity(order.len());
    for (r, &id) in order.iter().enumerate() {
        // `r < pairs.len()`, which was checked to fit in u32.
        rank[id as usize] = r as u32;
        let (c, s) = by_id[id as usize].1;
        sorted.push((
            sorted_names[name_rank[c as usize] as usize].clone(),
            sorted_names[name_rank[s as usize] as usize].clone(),
        ));
    }
    (sorted, rank)
}
