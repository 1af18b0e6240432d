//! Loading: the CSV dialect, the row filters, the index, and the exact
//! error messages, on the hand-written files in `tests/fixtures`.

use crate::common;

use common::{fixture, load_fixture as load};
use le_stats_sportif::dataset::{Dataset, DatasetError};

const OBESITY: &str = "Percent of adults aged 18 years and older who have obesity";
const MUSCLE: &str =
    "Percent of adults who engage in muscle-strengthening activities on 2 or more days a week";
const OTHER: &str = "Some other question";

/// The error message loading `name` gives.
fn load_error(name: &str) -> String {
    match Dataset::load(&fixture(name)) {
        Ok(_) => panic!("{name} loaded, but it should not"),
        Err(e) => e.to_string(),
    }
}

// survey.csv, 21 records:
// - 2 out of the years (YearStart 2010; YearEnd 2023), though their values are fine;
// - 2 with an empty value (Utah "", Vermont "   ");
// - 17 kept: 10 obesity, 5 muscle-strengthening, 2 "Some other question".
#[test]
fn survey_counts_rows_and_reads_the_dialect() {
    let dataset = load("survey.csv");
    let s = dataset.summary();
    assert_eq!(s.path, fixture("survey.csv"));
    assert_eq!(s.rows_read, 21);
    assert_eq!(s.skipped_out_of_years, 2);
    assert_eq!(s.skipped_empty_value, 2);
    assert_eq!(s.rows_kept, 17);
    assert_eq!(s.questions, 3);
    // Vermont has only an empty value, and the empty location is no state.
    assert_eq!(s.locations, 8);
}

#[test]
fn survey_lists_questions_and_locations_sorted_by_code_point() {
    let dataset = load("survey.csv");
    assert_eq!(dataset.questions(), vec![OBESITY, MUSCLE, OTHER]);
    // Upper case sorts before lower case, as Python sorts strings.
    assert_eq!(
        dataset.locations(),
        vec!["Alabama", "Alaska", "Hawai'i", "Ohio", "Texas", "Utah", "Zeta", "apple"]
    );
    assert_eq!(
        dataset.locations_for(OBESITY),
        vec!["Alabama", "Alaska", "Hawai'i", "Ohio", "Texas", "Utah"]
    );
    assert_eq!(
        dataset.locations_for(MUSCLE),
        vec!["Alabama", "Zeta", "apple"]
    );
    assert_eq!(dataset.locations_for(OTHER), vec!["Alabama"]);
    assert!(dataset.locations_for("no such question").is_empty());
}

#[test]
fn question_and_state_lookups_follow_the_kept_rows() {
    let has_question = |dataset: &Dataset, question: &str| dataset.question(question).is_some();
    let has_state = |dataset: &Dataset, question: &str, state: &str| {
        dataset
            .question(question)
            .is_some_and(|q| q.state(state).is_some())
    };
    let dataset = load("survey.csv");
    assert!(has_question(&dataset, OBESITY));
    assert!(has_question(&dataset, OTHER));
    assert!(!has_question(&dataset, "no such question"));
    assert!(!has_question(&dataset, ""));
    // Case and spaces matter: the text must be exact.
    assert!(!has_question(&dataset, &OBESITY.to_uppercase()));
    assert!(!has_question(&dataset, &format!("{OBESITY} ")));

    assert!(has_state(&dataset, OBESITY, "Ohio"));
    assert!(has_state(&dataset, OBESITY, "Hawai'i"));
    // Ohio has rows, but none for this question.
    assert!(!has_state(&dataset, MUSCLE, "Ohio"));
    // Vermont's only row has a blank value; Utah keeps its non-empty row.
    assert!(!has_state(&dataset, OBESITY, "Vermont"));
    assert!(has_state(&dataset, OBESITY, "Utah"));
    // The row with an empty location belongs to no state.
    assert!(!has_state(&dataset, OTHER, ""));
    assert!(!has_state(&dataset, "no such question", "Ohio"));
}

#[test]
fn quoted_fields_keep_commas_quotes_and_newlines() {
    let dataset = load("survey.csv");
    let question = dataset.question(MUSCLE).unwrap();
    let alabama = question.state("Alabama").unwrap();
    let names: Vec<(&str, &str)> = alabama
        .rows()
        .map(|(id, _)| dataset.category(id.unwrap()))
        .collect();
    // File order within the state.
    assert_eq!(
        names,
        vec![
            ("Race/Ethnicity", "He said \"hi\""),
            ("Race/Ethnicity", "line1\nline2"),
            ("Mixed", "it's \"x\""),
        ]
    );
    let ohio = dataset.question(OBESITY).unwrap().state("Ohio").unwrap();
    let (id, _) = ohio.rows().next().unwrap();
    assert_eq!(
        dataset.category(id.unwrap()),
        ("Income", "$15,000 - $24,999")
    );
}

#[test]
fn values_are_in_file_order_and_trimmed() {
    let dataset = load("survey.csv");
    let question = dataset.question(OBESITY).unwrap();
    assert_eq!(question.name(), OBESITY);
    let values: Vec<f64> = question.values().collect();
    assert_eq!(
        values,
        vec![30.0, 20.0, 25.0, 10.0, 20.0, 30.0, 40.0, 50.0, 35.0, 5.0]
    );
    let hawaii: Vec<f64> = question.state("Hawai'i").unwrap().values().collect();
    assert_eq!(hawaii, vec![10.0, 20.0, 30.0]);
    // The empty location counts towards the question but is no state.
    let other = dataset.question(OTHER).unwrap();
    assert_eq!(other.values().collect::<Vec<_>>(), vec![1.0, 3.0]);
    assert_eq!(
        other.states().map(|s| s.name()).collect::<Vec<_>>(),
        vec!["Alabama"]
    );
}

#[test]
fn an_empty_category_or_stratification_has_no_category_id() {
    let dataset = load("survey.csv");
    let texas = dataset.question(OBESITY).unwrap().state("Texas").unwrap();
    assert_eq!(texas.rows().collect::<Vec<_>>(), vec![(None, 35.0)]);
}

#[test]
fn a_file_without_year_columns_keeps_every_row() {
    let dataset = load("plain_no_years.csv");
    let s = dataset.summary();
    assert_eq!((s.rows_read, s.rows_kept), (4, 4));
    assert_eq!((s.skipped_empty_value, s.skipped_out_of_years), (0, 0));
    assert_eq!(dataset.locations(), vec!["Guam", "Ohio"]);
}

#[test]
fn summary_display_names_path_counts_and_time() {
    let dataset = load("survey.csv");
    let text = dataset.summary().to_string();
    let ms = dataset.summary().load_time.as_millis();
    let expected = format!(
        "dataset:   {}\n\
         rows:      21 read, 17 kept, 2 skipped (empty value), 2 skipped (out of years 2011-2022)\n\
         contents:  3 questions, 8 locations\n\
         loaded in: {ms} ms",
        fixture("survey.csv").display()
    );
    assert_eq!(text, expected);
}

#[test]
fn a_bad_number_names_file_line_and_column() {
    // The record on lines 2-3 spans two lines, so "abc" is on line 5.
    assert_eq!(
        load_error("bad_number.csv"),
        format!(
            "{}: line 5, column \"Data_Value\": \"abc\" is not a number",
            fixture("bad_number.csv").display()
        )
    );
}

#[test]
fn nan_is_not_a_number() {
    assert_eq!(
        load_error("nan_value.csv"),
        format!(
            "{}: line 2, column \"Data_Value\": \"NaN\" is not a number",
            fixture("nan_value.csv").display()
        )
    );
}

#[test]
fn a_missing_column_names_it_on_line_1() {
    assert_eq!(
        load_error("missing_column.csv"),
        format!(
            "{}: line 1: missing required column \"Question\"",
            fixture("missing_column.csv").display()
        )
    );
    assert_eq!(
        load_error("empty.csv"),
        format!(
            "{}: line 1: missing required column \"LocationDesc\"",
            fixture("empty.csv").display()
        )
    );
}

#[test]
fn a_bad_year_names_file_line_and_column() {
    assert_eq!(
        load_error("bad_year.csv"),
        format!(
            "{}: line 3, column \"YearStart\": \"20x1\" is not a year",
            fixture("bad_year.csv").display()
        )
    );
}

#[test]
fn a_ragged_record_names_its_line() {
    assert_eq!(
        load_error("ragged.csv"),
        format!(
            "{}: line 3: the record has 3 fields, the header has 5",
            fixture("ragged.csv").display()
        )
    );
}

#[test]
fn invalid_utf8_names_the_column() {
    assert_eq!(
        load_error("bad_utf8.csv"),
        format!(
            "{}: line 2, column \"LocationDesc\": invalid UTF-8",
            fixture("bad_utf8.csv").display()
        )
    );
}

#[test]
fn an_unreadable_file_names_the_path() {
    let path = fixture("does-not-exist.csv");
    let message = Dataset::load(&path).unwrap_err().to_string();
    let prefix = format!("{}: cannot read: ", path.display());
    assert!(message.starts_with(&prefix), "{message}");
}

#[test]
fn a_long_bad_value_is_quoted_shortened() {
    let long = "x".repeat(1000);
    let csv = format!("LocationDesc,Question,Data_Value,StratificationCategory1,Stratification1\nOhio,Q,{long},T,T\n");
    let message = Dataset::from_bytes("mem.csv".as_ref(), csv.as_bytes())
        .unwrap_err()
        .to_string();
    let shown = "x".repeat(60);
    assert_eq!(
        message,
        format!("mem.csv: line 2, column \"Data_Value\": \"{shown}\"... is not a number")
    );
}

/// Every prefix of a valid file, and the file with each byte replaced by a
/// CSV-significant or invalid byte (cycling through them by position, to
/// keep the test quick in a debug build), loads or fails with a message:
/// never a panic.
#[test]
fn no_file_content_panics() {
    let bytes = std::fs::read(fixture("survey.csv")).unwrap();
    let name = std::path::Path::new("mutated.csv");
    let mut outcomes = (0, 0);
    let mut tally = |result: Result<Dataset, DatasetError>| match result {
        Ok(_) => outcomes.0 += 1,
        Err(e) => {
            assert!(e.to_string().starts_with("mutated.csv: "), "{e}");
            outcomes.1 += 1;
        }
    };
    for end in 0..=bytes.len() {
        tally(Dataset::from_bytes(name, &bytes[..end]));
    }
    let replacements = [b'"', b',', b'\n', b'\r', 0x00, 0xff, b'x'];
    let mut mutated = bytes.clone();
    for at in 0..bytes.len() {
        mutated[at] = replacements[at % replacements.len()];
        tally(Dataset::from_bytes(name, &mutated));
        mutated[at] = bytes[at];
    }
    // Both outcomes happen: the mutations do reach the checks.
    assert!(outcomes.0 > 0 && outcomes.1 > 0, "{outcomes:?}");
}

// survey.csv, obesity: 10 rows summing to 265 (see tests/integration/stats.rs for the
// rows); Hawai'i 10 + 20 + 30 with Age/18-24 twice and Total once; Texas's
// only row has no category. "Some other question": 1 (Alabama) and 3 (no
// location), so the question's sum counts a row no state has.
#[test]
fn sums_are_computed_per_question_state_and_category() {
    let dataset = load("survey.csv");
    let obesity = dataset.question(OBESITY).unwrap();
    let sum = obesity.sum();
    assert_eq!((sum.count(), sum.sum()), (10, 265.0));

    let hawaii = obesity.state("Hawai'i").unwrap();
    assert_eq!((hawaii.sum().count(), hawaii.sum().sum()), (3, 60.0));
    let categories: Vec<((&str, &str), u64, f64)> = hawaii
        .category_sums()
        .map(|(id, s)| (dataset.category(id), s.count(), s.sum()))
        .collect();
    assert_eq!(
        categories,
        vec![
            (("Age (years)", "18 - 24"), 2, 30.0),
            (("Total", "Total"), 1, 30.0)
        ]
    );

    let texas = obesity.state("Texas").unwrap();
    assert_eq!((texas.sum().count(), texas.sum().sum()), (1, 35.0));
    assert_eq!(texas.category_sums().len(), 0);

    let other = dataset.question(OTHER).unwrap();
    assert_eq!((other.sum().count(), other.sum().sum()), (2, 4.0));
    let alabama = other.state("Alabama").unwrap();
    assert_eq!((alabama.sum().count(), alabama.sum().sum()), (1, 1.0));
}

// Ten 0.7 then ten 0.1 in category A, a 1e6 in category B after each of
// them, and a row without a category. Summed in file order, as Python's
// floats do: Kahan 8.0, numpy pairwise 7.999999999999998. A's sum is Kahan
// over A's values alone, in file order; the question's is pairwise over all
// 41 rows.
#[test]
fn state_and_category_sums_are_kahan_in_file_order_and_the_question_sum_pairwise() {
    let mut csv =
        String::from("LocationDesc,Question,Data_Value,StratificationCategory1,Stratification1\n");
    let a_values = ["0.7"; 10].iter().chain(["0.1"; 10].iter());
    for v in a_values {
        csv.push_str(&format!("S,Q,{v},A,a\nS,Q,1000000,B,b\n"));
    }
    csv.push_str("S,Q,0,,\n");
    let dataset = Dataset::from_bytes("mem.csv".as_ref(), csv.as_bytes()).unwrap();
    let question = dataset.question("Q").unwrap();
    let state = question.state("S").unwrap();
    let sums: Vec<(&str, u64, f64)> = state
        .category_sums()
        .map(|(id, s)| (dataset.category(id).0, s.count(), s.sum()))
        .collect();
    assert_eq!(sums, vec![("A", 20, 8.0), ("B", 20, 20_000_000.0)]);
    assert_eq!(state.sum().count(), 41);
    assert_eq!(question.sum().count(), 41);

    // Alone in their question, the twenty values give the two sums apart.
    let mut csv =
        String::from("LocationDesc,Question,Data_Value,StratificationCategory1,Stratification1\n");
    for v in ["0.7"; 10].iter().chain(["0.1"; 10].iter()) {
        csv.push_str(&format!("S,Q,{v},A,a\n"));
    }
    let dataset = Dataset::from_bytes("mem.csv".as_ref(), csv.as_bytes()).unwrap();
    let question = dataset.question("Q").unwrap();
    assert_eq!(question.state("S").unwrap().sum().sum(), 8.0);
    assert_eq!(question.sum().sum(), 7.999999999999998);
}

#[test]
fn an_overflowing_sum_is_not_finite() {
    let csv = "LocationDesc,Question,Data_Value,StratificationCategory1,Stratification1\n\
               S,Q,1e308,T,T\nS,Q,1e308,T,T\n";
    let dataset = Dataset::from_bytes("mem.csv".as_ref(), csv.as_bytes()).unwrap();
    let question = dataset.question("Q").unwrap();
    let state = question.state("S").unwrap();
    assert!(!question.sum().sum().is_finite());
    assert!(!state.sum().sum().is_finite());
    let (_, category) = state.category_sums().next().unwrap();
    assert_eq!(category.count(), 2);
    assert!(!category.sum().is_finite());
}
