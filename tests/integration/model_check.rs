//! The mutants of the concurrency protocols (`tests/mutants/*.patch`, run
//! by `make model_check`) cannot rot unnoticed, and the first page of
//! CONCURRENCY.md shows commands that work. Cheap checks only: building
//! and running the mutants is `make model_check`'s job (in `.ci/run`).

use crate::common::TempDir;
use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn mutants() -> Vec<PathBuf> {
    let mut patches: Vec<PathBuf> = std::fs::read_dir(Path::new(ROOT).join("tests/mutants"))
        .expect("tests/mutants/")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "patch"))
        .collect();
    patches.sort();
    patches
}

/// The value of `field: value` in a patch's header (before the diff).
fn header<'a>(patch: &'a str, field: &str) -> Option<&'a str> {
    patch
        .lines()
        .take_while(|line| !line.starts_with("diff --git"))
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .map(str::trim)
}

/// The source file of a library test path such as
/// `log::queue::loom_model::name`, and the test's name.
fn test_source(test: &str) -> (PathBuf, &str) {
    let parts: Vec<&str> = test.split("::").collect();
    assert!(parts.len() >= 3, "not a module::model::test path: {test}");
    let module = parts[..parts.len() - 2].join("/");
    let file = Path::new(ROOT).join(format!("src/{module}.rs"));
    let file = if file.exists() {
        file
    } else {
        Path::new(ROOT).join(format!("src/{module}/mod.rs"))
    };
    (file, parts[parts.len() - 1])
}

/// The test exists: its file has the model module and a `fn` of its name.
fn assert_model_test_exists(test: &str, checker: &str) {
    let (file, name) = test_source(test);
    let source =
        std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let model = test.rsplit("::").nth(1).expect("a model module");
    assert_eq!(model, format!("{checker}_model"), "{test} under {checker}");
    assert!(
        source.contains(&format!("mod {model} {{")) && source.contains(&format!("fn {name}()")),
        "no model test {test} in {}",
        file.display()
    );
}

fn git_apply(dir: &Path, args: &[&str], patch: &Path) -> std::process::Output {
    Command::new("git")
        .current_dir(dir)
        .arg("apply")
        .args(args)
        .arg(patch)
        .output()
        .expect("git")
}

/// Applies `patch` to a copy of the files it touches, reverts it, and
/// checks the copy is byte for byte the original again.
fn assert_applies_and_reverts(patch: &Path) {
    let text = std::fs::read_to_string(patch).expect("patch");
    let scratch = TempDir::new("mutant");
    let files: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("+++ b/"))
        .collect();
    assert!(!files.is_empty(), "{} changes no file", patch.display());
    for file in &files {
        let copy = scratch.path().join(file);
        std::fs::create_dir_all(copy.parent().expect("a parent")).expect("mkdir");
        std::fs::copy(Path::new(ROOT).join(file), &copy).expect("copy");
    }
    for args in [&[][..], &["-R"][..]] {
        let applied = git_apply(scratch.path(), args, patch);
        assert!(
            applied.status.success(),
            "git apply {args:?} {}: {}",
            patch.display(),
            String::from_utf8_lossy(&applied.stderr)
        );
    }
    for file in &files {
        let original = std::fs::read(Path::new(ROOT).join(file)).expect("read");
        let reverted = std::fs::read(scratch.path().join(file)).expect("read");
        assert!(
            original == reverted,
            "{file} differs after apply and revert"
        );
    }
}

/// Every mutant says what it breaks and which model test must catch it,
/// that test exists, and the patch still applies (and reverts) against
/// today's tree. `make model_check` then shows each one caught.
#[test]
fn every_mutant_applies_and_names_an_existing_model_test() {
    let patches = mutants();
    assert!(patches.len() >= 10, "{} mutants", patches.len());
    for patch in &patches {
        let text = std::fs::read_to_string(patch).expect("patch");
        for field in ["Protocol", "Bug", "Checker", "Test"] {
            assert!(
                header(&text, field).is_some_and(|v| !v.is_empty()),
                "{}: no {field}: in the header",
                patch.display()
            );
        }
        let checker = header(&text, "Checker").unwrap_or_default();
        assert!(["loom", "shuttle"].contains(&checker), "{checker}");
        assert_model_test_exists(header(&text, "Test").unwrap_or_default(), checker);
        assert_applies_and_reverts(patch);
    }
}

/// The mutants live in patches, never as switches in the code a student
/// reads.
#[test]
fn no_mutant_switch_in_src() {
    fn scan(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("src/") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                scan(&path, found);
            } else if std::fs::read_to_string(&path).is_ok_and(|s| s.contains("cfg(mutant")) {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    scan(&Path::new(ROOT).join("src"), &mut found);
    assert!(found.is_empty(), "cfg(mutant) in {found:?}");
}

/// `make model_check` fails, saying why, when a patch no longer applies
/// (no build is started: the patches are checked first).
#[test]
fn model_check_fails_on_a_patch_that_no_longer_applies() {
    let dir = TempDir::new("bad-mutants");
    std::fs::write(
        dir.path().join("stale.patch"),
        "Protocol: none\nBug: none\nChecker: loom\n\
         Test: lifecycle::loom_model::a_request_racing_the_wait_is_never_lost\n\n\
         diff --git a/src/lifecycle.rs b/src/lifecycle.rs\n\
         --- a/src/lifecycle.rs\n+++ b/src/lifecycle.rs\n\
         @@ -1,3 +1,3 @@\n-this line is not in the file\n+nor is this one\n context\n context\n",
    )
    .expect("write");
    let run = Command::new("bash")
        .arg(Path::new(ROOT).join("scripts/model_check.sh"))
        .env("MUTANTS_DIR", dir.path())
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(!run.status.success(), "exit 0 with a stale patch: {stdout}");
    assert!(
        stdout.contains("mutant stale: NOT CAUGHT (the patch no longer applies")
            && stdout.contains("model check: 1 mutants, 0 caught, 1 not caught"),
        "{stdout}"
    );
}

/// The first page of CONCURRENCY.md: the mutant it applies by hand applies
/// and reverts cleanly, names the very test the page runs, and that test
/// exists.
#[test]
fn the_first_page_commands_work() {
    let page = std::fs::read_to_string(Path::new(ROOT).join("CONCURRENCY.md")).expect("page");
    let first = &page[..page.find("\n## The map").expect("a '## The map' section")];
    let patch = first
        .split_whitespace()
        .find(|word| word.starts_with("tests/mutants/") && word.ends_with(".patch"))
        .expect("the first page applies a mutant");
    assert!(
        first.contains(&format!("git apply {patch}"))
            && first.contains(&format!("git apply -R {patch}")),
        "the first page applies and reverts {patch}"
    );
    let test = first
        .split_whitespace()
        .find(|word| word.contains("::loom_model::"))
        .expect("the first page runs a loom model test");
    let text = std::fs::read_to_string(Path::new(ROOT).join(patch)).expect(patch);
    assert_eq!(
        header(&text, "Test"),
        Some(test),
        "{patch} names the page's test"
    );
    assert_model_test_exists(test, "loom");
    assert_applies_and_reverts(&Path::new(ROOT).join(patch));
}
