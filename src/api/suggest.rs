//! "Did you mean": suggestions for an unknown question or state name.
//!
//! Suggestions only: the request is still refused, never answered for a
//! guessed name.

/// How many "did you mean" suggestions an unknown name gets at most.
const MAX_SUGGESTIONS: usize = 3;

/// Longest name that is also looked up word by word ("fruit" finds the
/// question about fruit): a longer one cannot be a few typed words, and
/// matching a megabyte of words against every question is not worth it.
const MAX_WORDS_QUERY_BYTES: usize = 200;

/// `" (names are case-sensitive)"` when `wanted` is one of `known` but for
/// letter case, else `""`: the suggestion then carries the right spelling.
pub(super) fn case_hint(wanted: &str, known: &[&str]) -> &'static str {
    if known
        .iter()
        .any(|name| name.to_lowercase() == wanted.to_lowercase())
    {
        " (names are case-sensitive)"
    } else {
        ""
    }
}

/// The "did you mean" list for an unknown name: the [`closest`] names by
/// spelling, then the names that [`contain_every_word`] of it, without
/// repeats, at most [`MAX_SUGGESTIONS`].
pub(super) fn suggestions(wanted: &str, known: &[&str]) -> Vec<String> {
    let mut found = closest(wanted, known);
    for name in contain_every_word(wanted, known) {
        if found.len() == MAX_SUGGESTIONS {
            break;
        }
        if !found.contains(&name) {
            found.push(name);
        }
    }
    found
}

/// The names of `known` (in their order) that contain every word of
/// `wanted`, ignoring letter case: "obesity" finds the obesity question.
/// Words are runs of letters and digits; a `wanted` with no word, or longer
/// than [`MAX_WORDS_QUERY_BYTES`], finds nothing.
fn contain_every_word(wanted: &str, known: &[&str]) -> Vec<String> {
    if wanted.len() > MAX_WORDS_QUERY_BYTES {
        return Vec::new();
    }
    let wanted = wanted.to_lowercase();
    let words: Vec<&str> = wanted
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() {
        return Vec::new();
    }
    known
        .iter()
        .filter(|name| {
            let name = name.to_lowercase();
            words.iter().all(|word| name.contains(word))
        })
        .map(|&name| name.to_owned())
        .collect()
}

/// Up to [`MAX_SUGGESTIONS`] of `known`, closest to `wanted` first, by edit
/// distance over lower-cased characters; a name counts as close only when
/// that distance is at most half the longer of the two lengths.
///
/// The edit distance is at least the difference in length, so a name whose
/// length alone is out of budget is skipped without computing it: a client
/// sending a megabyte-long name costs a length comparison per known name,
/// not a megabyte-by-name distance table (checked by the integration test
/// `a_huge_unknown_name_is_cheap_and_not_echoed`).
fn closest(wanted: &str, known: &[&str]) -> Vec<String> {
    let wanted_len = wanted.chars().count();
    let budget = |len: usize| wanted_len.max(len) / 2;
    let candidates: Vec<&str> = known
        .iter()
        .copied()
        .filter(|name| {
            let len = name.chars().count();
            wanted_len.abs_diff(len) <= budget(len)
        })
        .collect();
    if candidates.is_empty() {
        return Vec::new();
    }
    let wanted: Vec<char> = wanted.to_lowercase().chars().collect();
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .filter_map(|name| {
            let candidate: Vec<char> = name.to_lowercase().chars().collect();
            let distance = edit_distance(&wanted, &candidate);
            (distance <= budget(name.chars().count())).then_some((distance, name))
        })
        .collect();
    scored.sort_unstable();
    scored
        .into_iter()
        .take(MAX_SUGGESTIONS)
        .map(|(_, name)| name.to_owned())
        .collect()
}
/// Levenshtein distance, two rows of memory.
fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_are_the_closest_names() {
        let known = ["Ohio", "Iowa", "Idaho", "Texas"];
        assert_eq!(closest("ohio", &known), vec!["Ohio"]);
        assert_eq!(closest("Idaoh", &known)[0], "Idaho");
        assert!(closest("zzzzzzzzzz", &known).is_empty());
        assert_eq!(edit_distance(&['a', 'b'], &['b', 'a']), 2);
    }

    #[test]
    fn short_names_and_wrong_case_are_suggested() {
        let questions = [
            "Percent of adults who have obesity",
            "Percent of adults who report consuming fruit less than one time daily",
            "Percent of adults who report consuming vegetables less than one time daily",
        ];
        assert_eq!(
            suggestions("obesity", &questions),
            vec!["Percent of adults who have obesity"]
        );
        assert_eq!(suggestions("FRUIT daily", &questions), vec![questions[1]]);
        assert_eq!(suggestions("less than one", &questions).len(), 2);
        assert!(suggestions("fruit vegetables", &questions).is_empty());
        assert!(suggestions("  ", &questions).is_empty());
        let long = "obesity ".repeat(30);
        assert!(contain_every_word(&long, &questions).is_empty());
        let states = ["Iowa", "Ohio", "Oregon"];
        assert_eq!(suggestions("ohio", &states), vec!["Ohio"]);
        assert_eq!(case_hint("ohio", &states), " (names are case-sensitive)");
        assert_eq!(case_hint("Ohoi", &states), "");
    }
}
