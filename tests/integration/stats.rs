//! The nine statistics on hand-computed fixtures, their errors, and the
//! Python-compatible text they are written in.

use crate::common;

use common::load_fixture as load;
use le_stats_sportif::dataset::Dataset;
use le_stats_sportif::stats::{
    self, compute, direction, python_float_repr, python_repr_str, python_repr_tuple, validate,
    Answer, Direction, Endpoint, Query, StatsError,
};

const OBESITY: &str = "Percent of adults aged 18 years and older who have obesity";
const MUSCLE: &str =
    "Percent of adults who engage in muscle-strengthening activities on 2 or more days a week";
const OTHER: &str = "Some other question";

fn query(endpoint: Endpoint, question: &str, state: Option<&str>) -> Query {
    Query {
        endpoint,
        question: question.to_owned(),
        state: state.map(str::to_owned),
    }
}

/// The JSON text of the answer to a query, or the error's text.
fn json(dataset: &Dataset, endpoint: Endpoint, question: &str, state: Option<&str>) -> String {
    match compute(dataset, &query(endpoint, question, state)) {
        Ok(answer) => answer.to_json(),
        Err(e) => format!("error: {e}"),
    }
}

// survey.csv, obesity, kept rows in file order (state, category, value):
//   Alabama Gender/Male 30, Alabama Gender/Female 20, Alaska Gender/Male 25,
//   Hawai'i Age/18-24 10, Hawai'i Age/18-24 20, Hawai'i Total/Total 30,
//   Ohio Income/$15,000-$24,999 40 and 50, Texas (no category) 35, Utah Gender/Male 5.
// State means: Utah 5, Hawai'i (10+20+30)/3 = 20, Alabama (30+20)/2 = 25,
//   Alaska 25, Texas 35, Ohio (40+50)/2 = 45.
// Global mean: 265 / 10 = 26.5. Lower is better for obesity.
#[test]
fn survey_obesity_every_endpoint() {
    let d = load("survey.csv");
    use Endpoint::*;
    let cases: [(Endpoint, Option<&str>, &str); 12] = [
        (
            StatesMean,
            None,
            r#"{"Utah": 5.0, "Hawai'i": 20.0, "Alabama": 25.0, "Alaska": 25.0, "Texas": 35.0, "Ohio": 45.0}"#,
        ),
        (StateMean, Some("Ohio"), r#"{"Ohio": 45.0}"#),
        (StateMean, Some("Hawai'i"), r#"{"Hawai'i": 20.0}"#),
        // Ties (Alabama, Alaska at 25) come by name in both directions.
        (
            Best5,
            None,
            r#"{"Utah": 5.0, "Hawai'i": 20.0, "Alabama": 25.0, "Alaska": 25.0, "Texas": 35.0}"#,
        ),
        (
            Worst5,
            None,
            r#"{"Ohio": 45.0, "Texas": 35.0, "Alabama": 25.0, "Alaska": 25.0, "Hawai'i": 20.0}"#,
        ),
        (GlobalMean, None, r#"{"global_mean": 26.5}"#),
        // 26.5 minus each state mean, in states_mean order.
        (
            DiffFromMean,
            None,
            r#"{"Utah": 21.5, "Hawai'i": 6.5, "Alabama": 1.5, "Alaska": 1.5, "Texas": -8.5, "Ohio": -18.5}"#,
        ),
        (StateDiffFromMean, Some("Ohio"), r#"{"Ohio": -18.5}"#),
        // Texas's row has no category, so Texas is absent; Hawai'i's
        // apostrophe makes Python quote it with double quotes.
        (
            MeanByCategory,
            None,
            concat!(
                r#"{"('Alabama', 'Gender', 'Female')": 20.0, "('Alabama', 'Gender', 'Male')": 30.0, "#,
                r#""('Alaska', 'Gender', 'Male')": 25.0, "#,
                r#""(\"Hawai'i\", 'Age (years)', '18 - 24')": 15.0, "(\"Hawai'i\", 'Total', 'Total')": 30.0, "#,
                r#""('Ohio', 'Income', '$15,000 - $24,999')": 45.0, "('Utah', 'Gender', 'Male')": 5.0}"#
            ),
        ),
        (
            StateMeanByCategory,
            Some("Hawai'i"),
            r#"{"Hawai'i": {"('Age (years)', '18 - 24')": 15.0, "('Total', 'Total')": 30.0}}"#,
        ),
        (
            StateMeanByCategory,
            Some("Ohio"),
            r#"{"Ohio": {"('Income', '$15,000 - $24,999')": 45.0}}"#,
        ),
        // A state whose only row has no category: an empty inner object.
        (StateMeanByCategory, Some("Texas"), r#"{"Texas": {}}"#),
    ];
    for (endpoint, state, expected) in cases {
        assert_eq!(
            json(&d, endpoint, OBESITY, state),
            expected,
            "{endpoint:?} {state:?}"
        );
    }
}

// survey.csv, muscle-strengthening (higher is better), file order:
//   Alabama Race/Ethnicity/'He said "hi"' 10, Alabama Race/Ethnicity/'line1\nline2' 20,
//   Alabama Mixed/'it\'s "x"' 30, Zeta Gender/Male 12.5, apple Gender/Male 7.25.
// State means: apple 7.25, Zeta 12.5, Alabama 20. Global: 79.75 / 5 = 15.95.
#[test]
fn survey_muscle_directions_and_quoting() {
    let d = load("survey.csv");
    use Endpoint::*;
    let cases: [(Endpoint, Option<&str>, &str); 6] = [
        (
            StatesMean,
            None,
            r#"{"apple": 7.25, "Zeta": 12.5, "Alabama": 20.0}"#,
        ),
        (
            Best5,
            None,
            r#"{"Alabama": 20.0, "Zeta": 12.5, "apple": 7.25}"#,
        ),
        (
            Worst5,
            None,
            r#"{"apple": 7.25, "Zeta": 12.5, "Alabama": 20.0}"#,
        ),
        (GlobalMean, None, r#"{"global_mean": 15.95}"#),
        // 'Mixed' < 'Race/Ethnicity' and 'He said' < 'line1' by code point;
        // 'Zeta' < 'apple' because upper case sorts first.
        (
            MeanByCategory,
            None,
            concat!(
                r#"{"('Alabama', 'Mixed', 'it\\'s \"x\"')": 30.0, "#,
                r#""('Alabama', 'Race/Ethnicity', 'He said \"hi\"')": 10.0, "#,
                r#""('Alabama', 'Race/Ethnicity', 'line1\\nline2')": 20.0, "#,
                r#""('Zeta', 'Gender', 'Male')": 12.5, "('apple', 'Gender', 'Male')": 7.25}"#
            ),
        ),
        (
            StateMeanByCategory,
            Some("Alabama"),
            concat!(
                r#"{"Alabama": {"('Mixed', 'it\\'s \"x\"')": 30.0, "#,
                r#""('Race/Ethnicity', 'He said \"hi\"')": 10.0, "#,
                r#""('Race/Ethnicity', 'line1\\nline2')": 20.0}}"#
            ),
        ),
    ];
    for (endpoint, state, expected) in cases {
        assert_eq!(
            json(&d, endpoint, MUSCLE, state),
            expected,
            "{endpoint:?} {state:?}"
        );
    }
}

// survey.csv, "Some other question": Alabama 1, and 3 with an empty location.
// The empty location counts in the global mean ((1+3)/2 = 2) and nowhere else.
#[test]
fn an_empty_location_counts_only_in_the_global_mean() {
    let d = load("survey.csv");
    assert_eq!(
        json(&d, Endpoint::GlobalMean, OTHER, None),
        r#"{"global_mean": 2.0}"#
    );
    assert_eq!(
        json(&d, Endpoint::StatesMean, OTHER, None),
        r#"{"Alabama": 1.0}"#
    );
    assert_eq!(
        json(&d, Endpoint::DiffFromMean, OTHER, None),
        r#"{"Alabama": 1.0}"#
    );
    assert_eq!(
        json(&d, Endpoint::MeanByCategory, OTHER, None),
        r#"{"('Alabama', 'Total', 'Total')": 1.0}"#
    );
}

// plain_no_years.csv: Ohio 29.4, 30.1; Guam 0.1, 0.2 (in that order).
// As Python computes them: Ohio (29.4 + 30.1) / 2 = 29.75;
// Guam (0.1 + 0.2) / 2 = 0.15000000000000002; global
// (((29.4 + 30.1) + 0.1) + 0.2) / 4 = 14.950000000000001 (fewer than 8
// values: numpy adds them in order); 14.950000000000001 - 0.15000000000000002
// = 14.8 and 14.950000000000001 - 29.75 = -14.799999999999999.
#[test]
fn shortest_round_trip_digits() {
    let d = load("plain_no_years.csv");
    assert_eq!(
        json(&d, Endpoint::StatesMean, OBESITY, None),
        r#"{"Guam": 0.15000000000000002, "Ohio": 29.75}"#
    );
    assert_eq!(
        json(&d, Endpoint::GlobalMean, OBESITY, None),
        r#"{"global_mean": 14.950000000000001}"#
    );
    assert_eq!(
        json(&d, Endpoint::DiffFromMean, OBESITY, None),
        r#"{"Guam": 14.8, "Ohio": -14.799999999999999}"#
    );
}

/// A one-state CSV of `values` for question "Q", state "S".
fn one_state(values: &[String]) -> Dataset {
    let mut csv =
        String::from("LocationDesc,Question,Data_Value,StratificationCategory1,Stratification1\n");
    for v in values {
        csv.push_str(&format!("S,Q,{v},Total,Total\n"));
    }
    Dataset::from_bytes("generated.csv".as_ref(), csv.as_bytes()).unwrap()
}

// Ten 0.7 then ten 0.1. Summed in order, as Python's floats do:
//   naive 0.39999999999999986, numpy pairwise 0.3999999999999999, Kahan 0.4.
// pandas' groupby mean is Kahan; Series.mean is numpy's pairwise sum.
#[test]
fn group_means_are_kahan_and_the_global_mean_is_pairwise() {
    let values: Vec<String> = ["0.7"; 10]
        .iter()
        .chain(["0.1"; 10].iter())
        .map(ToString::to_string)
        .collect();
    let d = one_state(&values);
    assert_eq!(
        json(&d, Endpoint::StateMean, "Q", Some("S")),
        r#"{"S": 0.4}"#
    );
    assert_eq!(
        json(&d, Endpoint::GlobalMean, "Q", None),
        r#"{"global_mean": 0.3999999999999999}"#
    );
    assert_eq!(
        json(&d, Endpoint::StateDiffFromMean, "Q", Some("S")),
        r#"{"S": -1.1102230246251565e-16}"#
    );
}

// 333 values from the LCG x <- (1103515245 x + 12345) mod 2^31, seed 53,
// value k / 10 with k = (x >> 8) mod 1000. Computed in Python (plain floats):
//   naive 49.130330330330345, Kahan 49.13033033033033,
//   numpy pairwise 49.130330330330324 (333 > 128: the first half is
//   166 rounded down to a multiple of 8 = 160, then 173; each split again),
//   pairwise split at exactly n / 2 instead 49.13033033033034.
// All four differ, so this pins the recursion, its split and the remainders.
#[test]
fn the_pairwise_sum_splits_as_numpy_does() {
    let mut x: u64 = 53;
    let values: Vec<String> = (0..333)
        .map(|_| {
            x = (x * 1_103_515_245 + 12_345) % (1 << 31);
            let k = (x >> 8) % 1000;
            format!("{}.{}", k / 10, k % 10)
        })
        .collect();
    let d = one_state(&values);
    assert_eq!(
        json(&d, Endpoint::GlobalMean, "Q", None),
        r#"{"global_mean": 49.130330330330324}"#
    );
    assert_eq!(
        json(&d, Endpoint::StateMean, "Q", Some("S")),
        r#"{"S": 49.13033033033033}"#
    );
    assert_eq!(
        json(&d, Endpoint::StateDiffFromMean, "Q", Some("S")),
        r#"{"S": -7.105427357601002e-15}"#
    );
}

// Two values of 1e308: every sum overflows, yet each mean is the values'
// mean (pandas would answer inf), read from the rows again.
#[test]
fn a_mean_whose_sum_overflows_is_still_the_mean() {
    let d = one_state(&["1e308".to_owned(), "1e308".to_owned()]);
    assert_eq!(
        json(&d, Endpoint::StateMean, "Q", Some("S")),
        r#"{"S": 1e+308}"#
    );
    assert_eq!(
        json(&d, Endpoint::GlobalMean, "Q", None),
        r#"{"global_mean": 1e+308}"#
    );
    assert_eq!(
        json(&d, Endpoint::StateDiffFromMean, "Q", Some("S")),
        r#"{"S": 0.0}"#
    );
    assert_eq!(
        json(&d, Endpoint::StateMeanByCategory, "Q", Some("S")),
        r#"{"S": {"('Total', 'Total')": 1e+308}}"#
    );
}

// Three values of 1.7e308 (mean 1.7e308) and 1.5e308, 1.5e308, -1e308
// (mean 2e308 / 3, written 2e307 / 3 × 10): a running mean `m + v/k - m/k` overflows to NaN on
// these; the fallback must not.
#[test]
fn an_overflowing_mean_never_becomes_nan() {
    let d = one_state(&[
        "1.7e308".to_owned(),
        "1.7e308".to_owned(),
        "1.7e308".to_owned(),
    ]);
    assert_eq!(
        json(&d, Endpoint::StateMean, "Q", Some("S")),
        r#"{"S": 1.7e+308}"#
    );
    let d = one_state(&[
        "1.5e308".to_owned(),
        "1.5e308".to_owned(),
        "-1e308".to_owned(),
    ]);
    let text = json(&d, Endpoint::StateMean, "Q", Some("S"));
    let mean: f64 = text
        .trim_start_matches(r#"{"S": "#)
        .trim_end_matches('}')
        .parse()
        .unwrap_or_else(|_| panic!("not a number: {text}"));
    assert!((mean - 2e307 / 3.0 * 10.0).abs() <= 1e293, "{text}");
}

#[test]
fn errors_are_returned_in_order_question_state_direction() {
    let d = load("survey.csv");
    let unknown_question = |q: &str| StatsError::UnknownQuestion {
        question: q.to_owned(),
    };
    let unknown_state = |q: &str, s: &str| StatsError::UnknownState {
        question: q.to_owned(),
        state: s.to_owned(),
    };
    let cases = [
        // An unknown question wins over everything else.
        (
            query(Endpoint::Best5, "nope", None),
            unknown_question("nope"),
        ),
        (
            query(Endpoint::StateMean, "nope", Some("Nowhere")),
            unknown_question("nope"),
        ),
        (query(Endpoint::GlobalMean, "", None), unknown_question("")),
        // A state without kept rows for that question, even if it has others.
        (
            query(Endpoint::StateMean, MUSCLE, Some("Ohio")),
            unknown_state(MUSCLE, "Ohio"),
        ),
        (
            query(Endpoint::StateDiffFromMean, OBESITY, Some("Vermont")),
            unknown_state(OBESITY, "Vermont"),
        ),
        (
            query(Endpoint::StateMeanByCategory, OBESITY, Some("ohio")),
            unknown_state(OBESITY, "ohio"),
        ),
        (
            query(Endpoint::StateMean, OTHER, Some("")),
            unknown_state(OTHER, ""),
        ),
        // A state endpoint without a state breaks `Query`'s invariant; it is
        // an unknown state, not a panic.
        (
            query(Endpoint::StateMean, OBESITY, None),
            unknown_state(OBESITY, ""),
        ),
        (
            query(Endpoint::Best5, OTHER, None),
            StatsError::NoDirection {
                question: OTHER.to_owned(),
            },
        ),
        (
            query(Endpoint::Worst5, OTHER, None),
            StatsError::NoDirection {
                question: OTHER.to_owned(),
            },
        ),
    ];
    for (q, expected) in cases {
        assert_eq!(compute(&d, &q), Err(expected.clone()), "{q:?}");
        assert_eq!(validate(&d, &q), Err(expected), "{q:?}");
    }
}

#[test]
fn validate_accepts_exactly_what_compute_answers() {
    let d = load("survey.csv");
    for endpoint in Endpoint::ALL {
        for question in [OBESITY, MUSCLE, OTHER, "nope"] {
            for state in ["Ohio", "Alabama", "apple", "Vermont", ""] {
                let q = query(endpoint, question, endpoint.needs_state().then_some(state));
                assert_eq!(validate(&d, &q), compute(&d, &q).map(|_| ()), "{q:?}");
            }
        }
    }
}

#[test]
fn error_messages() {
    let unknown = StatsError::UnknownState {
        question: "Q".into(),
        state: "S".into(),
    };
    assert_eq!(unknown.to_string(), r#"unknown state "S" for question "Q""#);
}

#[test]
fn directions_of_the_nine_questions() {
    let lower = [
        "Percent of adults aged 18 years and older who have an overweight classification",
        OBESITY,
        "Percent of adults who engage in no leisure-time physical activity",
        "Percent of adults who report consuming fruit less than one time daily",
        "Percent of adults who report consuming vegetables less than one time daily",
    ];
    let higher = [
        "Percent of adults who achieve at least 150 minutes a week of moderate-intensity aerobic physical activity or 75 minutes a week of vigorous-intensity aerobic activity (or an equivalent combination)",
        "Percent of adults who achieve at least 150 minutes a week of moderate-intensity aerobic physical activity or 75 minutes a week of vigorous-intensity aerobic physical activity and engage in muscle-strengthening activities on 2 or more days a week",
        "Percent of adults who achieve at least 300 minutes a week of moderate-intensity aerobic physical activity or 150 minutes a week of vigorous-intensity aerobic activity (or an equivalent combination)",
        MUSCLE,
    ];
    for q in lower {
        assert_eq!(direction(q), Some(Direction::LowerIsBetter), "{q}");
    }
    for q in higher {
        assert_eq!(direction(q), Some(Direction::HigherIsBetter), "{q}");
    }
    assert_eq!(direction(OTHER), None);
    assert_eq!(direction(""), None);
    assert_eq!(direction(&OBESITY.to_lowercase()), None);
}

#[test]
fn endpoint_names_round_trip() {
    for endpoint in Endpoint::ALL {
        assert_eq!(Endpoint::from_name(endpoint.name()), Some(endpoint));
    }
    assert_eq!(
        Endpoint::from_name("states_mean"),
        Some(Endpoint::StatesMean)
    );
    assert_eq!(Endpoint::from_name("nope"), None);
}

/// Expected texts from Python 3: `json.dumps(x)` (= `repr(x)` for floats).
#[test]
fn floats_print_as_python_prints_them() {
    let table: [(f64, &str); 24] = [
        (0.0, "0.0"),
        (-0.0, "-0.0"),
        (25.0, "25.0"),
        (100.0, "100.0"),
        (36.800000000000004, "36.800000000000004"),
        (0.1, "0.1"),
        (1.5, "1.5"),
        (-2.75, "-2.75"),
        (0.15000000000000002, "0.15000000000000002"),
        (1e15, "1000000000000000.0"),
        (123456789012345.6, "123456789012345.6"),
        (9999999999999998.0, "9999999999999998.0"),
        (1e16, "1e+16"),
        (1.5e16, "1.5e+16"),
        (1e22, "1e+22"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (1e-4, "0.0001"),
        (0.00012345, "0.00012345"),
        (1e-5, "1e-05"),
        (-1e-5, "-1e-05"),
        (2.5e-5, "2.5e-05"),
        (1.2345e-7, "1.2345e-07"),
        (7.105427357601002e-15, "7.105427357601002e-15"),
        (5e-324, "5e-324"),
    ];
    for (x, expected) in table {
        assert_eq!(python_float_repr(x), expected, "{x:e}");
    }
    assert_eq!(python_float_repr(f64::NAN), "nan");
    assert_eq!(python_float_repr(f64::INFINITY), "inf");
    assert_eq!(python_float_repr(f64::NEG_INFINITY), "-inf");
}

/// The doubles on either side of where Python switches notation, as
/// Python 3 prints them (`repr(math.nextafter(1e-4, 0))` and so on).
#[test]
fn floats_switch_notation_where_python_does() {
    let table: [(f64, &str); 6] = [
        (1e-4_f64.next_down(), "9.999999999999999e-05"),
        (-(1e-4_f64.next_down()), "-9.999999999999999e-05"),
        (1e-4_f64.next_up(), "0.00010000000000000002"),
        (1e16_f64.next_down(), "9999999999999998.0"),
        (1e16_f64.next_up(), "1.0000000000000002e+16"),
        (-1e16, "-1e+16"),
    ];
    for (x, expected) in table {
        assert_eq!(python_float_repr(x), expected, "{x:e}");
    }
}

/// Expected texts from Python 3: `repr(s)`.
#[test]
fn strings_repr_as_python_reprs_them() {
    let table: [(&str, &str); 22] = [
        ("Ohio", "'Ohio'"),
        ("", "''"),
        ("Hawai'i", r#""Hawai'i""#),
        (r#"He said "hi""#, r#"'He said "hi"'"#),
        (r#"it's "x""#, r#"'it\'s "x"'"#),
        (r#"both'"\"#, r#"'both\'"\\'"#),
        (r"back\slash", r"'back\\slash'"),
        ("tab\there", r"'tab\there'"),
        ("line1\nline2", r"'line1\nline2'"),
        ("cr\r", r"'cr\r'"),
        ("nul\0", r"'nul\x00'"),
        ("del\x7f", r"'del\x7f'"),
        ("c1\u{85}", r"'c1\x85'"),
        ("nbsp\u{a0}", r"'nbsp\xa0'"),
        ("soft\u{ad}hyphen", r"'soft\xadhyphen'"),
        ("zwsp\u{200b}", r"'zwsp\u200b'"),
        ("ls\u{2028}", r"'ls\u2028'"),
        ("bom\u{feff}", r"'bom\ufeff'"),
        ("pua\u{e000}", r"'pua\ue000'"),
        ("plane15\u{f0000}", r"'plane15\U000f0000'"),
        ("café 日本", "'café 日本'"),
        ("emoji😀", "'emoji😀'"),
    ];
    for (s, expected) in table {
        assert_eq!(python_repr_str(s), expected, "{s:?}");
    }
}

#[test]
fn tuples_repr_as_python_reprs_them() {
    assert_eq!(python_repr_tuple(&[]), "()");
    assert_eq!(python_repr_tuple(&["a"]), "('a',)");
    assert_eq!(
        python_repr_tuple(&["Hawai'i", "Total", "Total"]),
        r#"("Hawai'i", 'Total', 'Total')"#
    );
}

#[test]
fn answers_serialise_in_order_with_python_separators() {
    // Keys out of alphabetical order stay as given.
    let flat = Answer::Flat(vec![("b".into(), 2.5), ("a".into(), 1.0)]);
    assert_eq!(flat.to_json(), r#"{"b": 2.5, "a": 1.0}"#);
    assert_eq!(Answer::Flat(vec![]).to_json(), "{}");
    let nested = Answer::Nested("S \"q\"".into(), vec![("k\n".into(), 1e16)]);
    assert_eq!(nested.to_json(), r#"{"S \"q\"": {"k\n": 1e+16}}"#);
    assert_eq!(Answer::Nested("S".into(), vec![]).to_json(), r#"{"S": {}}"#);
    // JSON has no infinity or NaN.
    let odd = Answer::Flat(vec![("i".into(), f64::INFINITY), ("n".into(), f64::NAN)]);
    assert_eq!(odd.to_json(), r#"{"i": null, "n": null}"#);
    // The output is JSON that parses back to the same values.
    let parsed: serde_json::Value = serde_json::from_str(&nested.to_json()).unwrap();
    assert_eq!(parsed["S \"q\""]["k\n"].as_f64(), Some(1e16));
}

/// The full CDC layout (34 columns, year columns present, all years 2011-2022,
/// no empty values). Expected numbers computed with Python's `csv` module and
/// exact `fractions.Fraction` arithmetic (no pandas), rounded to f64: a
/// scratch script outside the repository, so compared within 1e-9.
#[test]
fn full_schema_sample_loads_and_answers() {
    let Some(path) = common::shared("data/brfss_full_schema_sample.csv") else {
        return;
    };
    let d = Dataset::load(&path).unwrap();
    let s = d.summary();
    assert_eq!((s.rows_read, s.rows_kept), (159, 159));
    assert_eq!((s.skipped_empty_value, s.skipped_out_of_years), (0, 0));
    assert_eq!((s.questions, s.locations), (9, 51));

    let flat = |endpoint, state: Option<&str>| match compute(&d, &query(endpoint, OBESITY, state)) {
        Ok(Answer::Flat(entries)) => entries,
        other => panic!("{endpoint:?}: {other:?}"),
    };
    let close = |got: &[(String, f64)], want: &[(&str, f64)]| {
        let names: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
        let want_names: Vec<&str> = want.iter().map(|(k, _)| *k).collect();
        assert_eq!(names, want_names);
        for ((_, g), (k, w)) in got.iter().zip(want) {
            assert!((g - w).abs() <= 1e-9, "{k}: got {g}, want {w}");
        }
    };
    // 37 obesity rows in 25 states.
    close(
        &flat(Endpoint::GlobalMean, None),
        &[("global_mean", 32.23783783783784)],
    );
    assert_eq!(flat(Endpoint::StatesMean, None).len(), 25);
    // North Carolina and Rhode Island tie at 24.1: by name.
    close(
        &flat(Endpoint::Best5, None),
        &[
            ("Minnesota", 15.6),
            ("Arizona", 21.55),
            ("North Carolina", 24.1),
            ("Rhode Island", 24.1),
            ("New York", 24.2),
        ],
    );
    close(
        &flat(Endpoint::Worst5, None),
        &[
            ("Iowa", 43.55),
            ("Tennessee", 41.6),
            ("Wyoming", 39.15),
            ("Arkansas", 38.6),
            ("Nebraska", 36.8),
        ],
    );
    // Nebraska: 44.3, 31.0, 35.1 → 36.8; 32.2378... − 36.8 = −4.562162162162162.
    close(
        &flat(Endpoint::StateMean, Some("Nebraska")),
        &[("Nebraska", 36.8)],
    );
    close(
        &flat(Endpoint::StateDiffFromMean, Some("Nebraska")),
        &[("Nebraska", -4.562162162162162)],
    );
    assert_eq!(
        json(&d, Endpoint::StateMeanByCategory, OBESITY, Some("Nebraska")),
        concat!(
            r#"{"Nebraska": {"('Education', 'High school graduate')": 35.1, "#,
            r#""('Income', 'Less than $15,000')": 44.3, "#,
            r#""('Race/Ethnicity', 'Hawaiian/Pacific Islander')": 31.0}}"#
        )
    );
}

/// `stats` is pure: the same query gives the same answer, every time.
#[test]
fn compute_is_deterministic() {
    let d = load("survey.csv");
    for endpoint in Endpoint::ALL {
        let q = query(endpoint, OBESITY, endpoint.needs_state().then_some("Ohio"));
        assert_eq!(stats::compute(&d, &q), stats::compute(&d, &q));
    }
}
