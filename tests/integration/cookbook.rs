//! The README's cookbook works as shown: `scripts/cookbook.sh --check` runs
//! every command of it against this build, on a server restarted over the
//! results of earlier runs (so job ids do not start at 1), twice, and
//! compares what they print with the outputs the README shows. Needs `curl`
//! and `jq` (`.ci/run` installs them) and the course subset.

use crate::common;

use std::process::Command;

fn check(readme: &std::path::Path) -> (bool, String) {
    let data = common::subset_csv().expect("checked by the caller");
    let output = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/cookbook.sh"))
        .arg("--check")
        .env("BIN", env!("CARGO_BIN_EXE_le-stats-sportif"))
        .env("DATA", data)
        .env("README", readme)
        .output()
        .expect("run bash");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[test]
fn the_readme_cookbook_prints_what_it_shows_twice_over_old_results() {
    if common::subset_csv().is_none() {
        return;
    }
    let readme = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"));
    let (ok, text) = check(readme);
    assert!(ok, "{text}");
    assert!(text.contains("README outputs match"), "{text}");

    // The check is real: one changed output in a copy is caught.
    let dir = common::TempDir::new("cookbook");
    let copy = dir.path().join("README.md");
    let original = std::fs::read_to_string(readme).unwrap();
    // Changed inside the cookbook block (the set-up may show it too).
    let block = original.find("<!-- cookbook:begin -->").expect("the block");
    let changed = format!(
        "{}{}",
        &original[..block],
        original[block..].replacen("{\"num_jobs\": 0}", "{\"num_jobs\": 1}", 1)
    );
    assert_ne!(changed, original, "the cookbook shows num_jobs");
    std::fs::write(&copy, changed).unwrap();
    let (ok, text) = check(&copy);
    assert!(!ok, "a wrong output passed: {text}");
    assert!(text.contains("+{\"num_jobs\": 0}"), "{text}");
}
