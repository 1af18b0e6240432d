//! The concurrency map (`CONCURRENCY.md`) cannot drift from the code: every
//! `Mutex`, `RwLock`, `Condvar`, channel end and atomic that `src/` declares
//! as a struct field or a `static` must be named in the map as
//! `` `Type::field` `` (or `` `NAME` `` for a static).
//!
//! The scan is textual on purpose: it reads the sources the way a reviewer
//! does, needs no compiler plug-in, and its rules are the ones written here.

use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The type names that make a declaration a synchronisation primitive.
const PRIMITIVES: &[&str] = &[
    "Mutex<",
    "RwLock<",
    "Condvar",
    "Sender<",
    "SyncSender<",
    "Receiver<",
    "Atomic",
    "OnceLock<",
    "Barrier",
];

/// One declaration found in `src/`: `Type::field` or a static's name.
#[derive(Debug)]
struct Declaration {
    name: String,
    at: String,
}

/// Every `.rs` file under `dir`, sorted (also used by `names.rs`).
pub(crate) fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

fn mentions_primitive(ty: &str) -> bool {
    PRIMITIVES.iter().any(|p| {
        ty.match_indices(p).any(|(at, _)| {
            // A whole type name: `AtomicU64`, `Mutex<…>`, not `MyMutexLike`.
            at == 0 || !ty.as_bytes()[at - 1].is_ascii_alphanumeric()
        })
    })
}

/// Struct fields and statics of `source` whose type is (or contains) a
/// synchronisation primitive. Stops at the first `#[cfg(test)]`: test
/// modules keep their own helpers off the map.
fn declarations(file: &str, source: &str) -> Vec<Declaration> {
    let mut found = Vec::new();
    let mut current_struct: Option<String> = None;
    for (index, raw) in source.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with("#[cfg(test)]") {
            break;
        }
        if line.starts_with("//") {
            continue;
        }
        let at = format!("{file}:{}", index + 1);
        let words: Vec<&str> = line.split_whitespace().collect();
        if let Some(pos) = words.iter().position(|w| *w == "struct") {
            if let Some(name) = words.get(pos + 1) {
                let name: String = name
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                // A one-line struct (`struct A;` or a tuple struct) has no
                // named fields to follow.
                current_struct = line.ends_with('{').then_some(name);
            }
            continue;
        }
        if line.starts_with('}') {
            current_struct = None;
            continue;
        }
        let unqualified = without_visibility(line);
        if let Some(rest) = unqualified.strip_prefix("static ") {
            if let Some((name, ty)) = rest.split_once(':') {
                if mentions_primitive(ty) {
                    found.push(Declaration {
                        name: name.trim().to_string(),
                        at,
                    });
                }
            }
            continue;
        }
        if let Some(owner) = &current_struct {
            if let Some((name, ty)) = unqualified.split_once(':') {
                let name = name.trim();
                if !name.is_empty()
                    && name.chars().all(|c| c.is_alphanumeric() || c == '_')
                    && mentions_primitive(ty)
                {
                    found.push(Declaration {
                        name: format!("{owner}::{name}"),
                        at,
                    });
                }
            }
        }
    }
    found
}

/// `line` without a leading `pub`, `pub(crate)`, `pub(super)` or
/// `pub(in …)`.
fn without_visibility(line: &str) -> &str {
    if let Some(rest) = line.strip_prefix("pub(") {
        return rest.split_once(") ").map_or(line, |(_, rest)| rest);
    }
    line.strip_prefix("pub ").unwrap_or(line)
}

fn all_declarations() -> Vec<Declaration> {
    let mut files = Vec::new();
    rust_files(&Path::new(ROOT).join("src"), &mut files);
    let mut found = Vec::new();
    for path in files {
        let source = std::fs::read_to_string(&path).expect("read source");
        let rel = path
            .strip_prefix(ROOT)
            .unwrap_or(&path)
            .display()
            .to_string();
        found.extend(declarations(&rel, &source));
    }
    found
}

#[test]
fn every_lock_condvar_channel_and_atomic_is_on_the_map() {
    let map = std::fs::read_to_string(Path::new(ROOT).join("CONCURRENCY.md"))
        .expect("CONCURRENCY.md at the top level");
    let found = all_declarations();
    assert!(
        found.len() >= 10,
        "the scan found only {} declarations; it is probably broken: {found:?}",
        found.len()
    );
    let missing: Vec<String> = found
        .iter()
        .filter(|d| !map.contains(&format!("`{}`", d.name)))
        .map(|d| format!("{} ({})", d.name, d.at))
        .collect();
    assert!(
        missing.is_empty(),
        "declared in src/ but not named in CONCURRENCY.md (as `Type::field`):\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn the_scan_finds_fields_and_statics_and_skips_tests() {
    let source = "\
pub struct Table {
    /// Invariant: …
    rows: Mutex<Vec<u8>>,
    pub(crate) ready: Condvar,
    pub(super) count: AtomicU64,
    name: String,
    sender: Option<SyncSender<Job>>,
}
struct Unit;
static NEXT: AtomicUsize = AtomicUsize::new(0);
pub(crate) static BOARD: OnceLock<Board> = OnceLock::new();
#[cfg(test)]
mod tests {
    struct Helper {
        lock: Mutex<()>,
    }
}
";
    let names: Vec<String> = declarations("x.rs", source)
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(
        names,
        [
            "Table::rows",
            "Table::ready",
            "Table::count",
            "Table::sender",
            "NEXT",
            "BOARD"
        ]
    );
}

/// The module segments that make a backticked path in CONCURRENCY.md the
/// name of a test (`lifecycle::loom_model::a_request_racing_the_wait_is_never_lost`).
const TEST_MODULES: &[&str] = &["tests", "loom_model", "shuttle_model"];

/// Where the test named `path` lives, if it exists: `a::b::tests::name`
/// must be a `fn name(` in `mod tests` of `src/a/b.rs` (or `src/a/b/mod.rs`);
/// `file::name` with `tests/integration/file.rs` a `fn name(` there; a path
/// ending at the test module (`jobs::tests`) needs only the module.
fn find_test(path: &str) -> Result<(), String> {
    let segments: Vec<&str> = path.split("::").collect();
    let root = Path::new(ROOT);
    let (file, rest) = match segments.iter().position(|s| TEST_MODULES.contains(s)) {
        Some(at) => {
            let module = segments[..at].join("/");
            let file = [format!("src/{module}.rs"), format!("src/{module}/mod.rs")]
                .into_iter()
                .map(|rel| root.join(rel))
                .find(|file| file.is_file())
                .ok_or_else(|| format!("`{path}`: no src/{module}.rs or src/{module}/mod.rs"))?;
            (file, &segments[at..])
        }
        None => (
            root.join(format!("tests/integration/{}.rs", segments[0])),
            &segments[1..],
        ),
    };
    let source =
        std::fs::read_to_string(&file).map_err(|e| format!("`{path}`: {}: {e}", file.display()))?;
    let module_found = match rest.first() {
        Some(module) if TEST_MODULES.contains(module) => source.contains(&format!("mod {module} ")),
        _ => true,
    };
    let function_found = match rest.last() {
        Some(name) if !TEST_MODULES.contains(name) => source.contains(&format!("fn {name}(")),
        _ => true,
    };
    if module_found && function_found {
        Ok(())
    } else {
        Err(format!("`{path}`: not found in {}", file.display()))
    }
}

/// The backticked paths in `text` that name a test: with a test-module
/// segment, or whose first segment is a file of `tests/integration/`.
fn named_tests(text: &str) -> Vec<&str> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|token| {
            let segments: Vec<&str> = token.split("::").collect();
            segments.len() >= 2
                && segments.iter().all(|s| {
                    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                })
                && (segments.iter().any(|s| TEST_MODULES.contains(s))
                    || Path::new(ROOT)
                        .join(format!("tests/integration/{}.rs", segments[0]))
                        .is_file())
        })
        .collect()
}

#[test]
fn every_test_the_map_names_exists() {
    let map = std::fs::read_to_string(Path::new(ROOT).join("CONCURRENCY.md"))
        .expect("CONCURRENCY.md at the top level");
    let named = named_tests(&map);
    assert!(
        named.len() >= 9,
        "found only {} test names in CONCURRENCY.md; the scan is probably broken: {named:?}",
        named.len()
    );
    let missing: Vec<String> = named
        .iter()
        .filter_map(|path| find_test(path).err())
        .collect();
    assert!(
        missing.is_empty(),
        "CONCURRENCY.md names tests that do not exist:\n  {}",
        missing.join("\n  ")
    );
}

/// The documents whose test names must exist: the README, `docs/*.md`
/// and this map.
fn documents() -> Vec<PathBuf> {
    let root = Path::new(ROOT);
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/ at the top level")
        .map(|entry| entry.expect("a docs/ entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    docs.sort();
    docs.push(root.join("README.md"));
    docs.push(root.join("CONCURRENCY.md"));
    docs
}

/// Test names spelt as files: `` `tests/integration/jobs.rs::name` `` and
/// `` `tests/integration/log.rs` (`name`) ``, as `jobs::name`.
fn named_test_files(text: &str) -> Vec<String> {
    let tokens: Vec<&str> = text.split('`').collect();
    let mut found = Vec::new();
    for (i, token) in tokens.iter().enumerate().skip(1).step_by(2) {
        let Some(rest) = token.strip_prefix("tests/integration/") else {
            continue;
        };
        if let Some((file, name)) = rest.split_once(".rs::") {
            found.push(format!("{file}::{name}"));
        } else if let (Some(file), Some(between), Some(name)) = (
            rest.strip_suffix(".rs"),
            tokens.get(i + 1),
            tokens.get(i + 2),
        ) {
            if between.trim() == "(" {
                found.push(format!("{file}::{name}"));
            }
        }
    }
    found
}

/// Every test named in the README, `docs/*.md` and CONCURRENCY.md exists,
/// and so does every `tests/integration/FILE.rs::name` a doc comment in
/// `src/` names (relative names there, like `tests::x`, are not checked).
#[test]
fn every_test_the_docs_name_exists() {
    let mut missing = Vec::new();
    let mut count = 0;
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).expect("a readable document");
        let mut named: Vec<String> = named_tests(&text).into_iter().map(String::from).collect();
        named.extend(named_test_files(&text));
        count += named.len();
        for path in named {
            if let Err(error) = find_test(&path) {
                missing.push(format!("{}: {error}", doc.display()));
            }
        }
    }
    let mut sources = Vec::new();
    rust_files(&Path::new(ROOT).join("src"), &mut sources);
    for file in sources {
        let text = std::fs::read_to_string(&file).expect("a readable source file");
        let docs: String = text
            .lines()
            .filter(|line| line.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for path in named_test_files(&docs) {
            count += 1;
            if let Err(error) = find_test(&path) {
                missing.push(format!("{}: {error}", file.display()));
            }
        }
    }
    assert!(
        count >= 40,
        "found only {count} test names in the docs; the scan is probably broken"
    );
    assert!(
        missing.is_empty(),
        "the docs name tests that do not exist:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn test_names_spelt_as_files_are_found() {
    assert_eq!(
        named_test_files(
            "`tests/integration/jobs.rs::a_b` and `tests/integration/log.rs` (`c_d`), not `tests/integration/pool.rs`"
        ),
        ["jobs::a_b", "log::c_d"]
    );
    assert!(find_test("jobs::no_such_test").is_err());
}

#[test]
fn a_misspelt_test_name_is_caught() {
    assert_eq!(
        named_tests("see `pool::shuttle_model::no_such_test` and `Jobs::closing`"),
        ["pool::shuttle_model::no_such_test"]
    );
    assert!(find_test("pool::shuttle_model::no_such_test").is_err());
    assert!(find_test("no_such_module::tests::x").is_err());
    assert!(find_test("lock_order_e2e::no_such_test").is_err());
    assert!(find_test("lifecycle::tests").is_ok());
}
