//! One name per concept: no two types in `src/` share a name, and the
//! worker pool and the jobs layer share no method name (trait methods such
//! as `drop` and `fmt` aside). A textual scan, like `concurrency_map.rs`.

use crate::concurrency_map::rust_files;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Methods every type may have because a trait names them.
const TRAIT_METHODS: &[&str] = &["drop", "fmt", "default", "from", "eq", "deref", "deref_mut"];

/// The names of the types `source` declares: `struct`, `enum`, `trait`,
/// and `type` aliases with a visibility or at the top level (an
/// associated `type Target = T;` inside an `impl` is not a type).
fn type_names(source: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in source.lines() {
        let top_level = !line.starts_with(' ');
        let mut words = line.split_whitespace();
        let Some(mut word) = words.next() else {
            continue;
        };
        let public = word.starts_with("pub");
        if public {
            match words.next() {
                Some(next) => word = next,
                None => continue,
            }
        }
        let counts = match word {
            "struct" | "enum" | "trait" => true,
            "type" => public || top_level,
            _ => false,
        };
        if !counts {
            continue;
        }
        if let Some(name) = words.next() {
            let name: String = name
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if name.starts_with(|c: char| c.is_ascii_uppercase()) {
                names.insert(name);
            }
        }
    }
    names
}

/// The functions `source` declares outside its `mod tests`.
fn function_names(source: &str) -> BTreeSet<String> {
    let code = source.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
    code.split("fn ")
        .skip(1)
        .filter_map(|rest| {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            (!name.is_empty() && !TRAIT_METHODS.contains(&name.as_str())).then_some(name)
        })
        .collect()
}

#[test]
fn no_two_types_share_a_name() {
    let mut files = Vec::new();
    rust_files(&Path::new(ROOT).join("src"), &mut files);
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in &files {
        let source = std::fs::read_to_string(file).expect("a readable source file");
        let shown = file
            .strip_prefix(ROOT)
            .unwrap_or(file)
            .display()
            .to_string();
        for name in type_names(&source) {
            seen.entry(name).or_default().push(shown.clone());
        }
    }
    assert!(
        seen.len() >= 100,
        "found only {} types; the scan is probably broken",
        seen.len()
    );
    let shared: Vec<String> = seen
        .iter()
        .filter(|(_, files)| files.len() > 1)
        .map(|(name, files)| format!("{name}: {}", files.join(", ")))
        .collect();
    assert!(
        shared.is_empty(),
        "types that share a name:\n  {}",
        shared.join("\n  ")
    );
}

#[test]
fn the_pool_and_the_jobs_layer_share_no_method_name() {
    let read =
        |rel: &str| std::fs::read_to_string(Path::new(ROOT).join(rel)).expect("a source file");
    let pool = function_names(&read("src/pool.rs"));
    let mut jobs_files = Vec::new();
    rust_files(&Path::new(ROOT).join("src/jobs"), &mut jobs_files);
    let jobs: BTreeSet<String> = jobs_files
        .iter()
        .flat_map(|file| function_names(&std::fs::read_to_string(file).expect("a source file")))
        .collect();
    assert!(
        pool.contains("execute") && jobs.contains("submit"),
        "the scan is broken"
    );
    let shared: Vec<&String> = pool.intersection(&jobs).collect();
    assert!(
        shared.is_empty(),
        "pool.rs and src/jobs/ share method names: {shared:?}"
    );
}

#[test]
fn the_scans_see_what_they_should() {
    let source = "\
pub struct Table {
    rows: Vec<u8>,
}
enum Kind { A }
pub(crate) type Job = Box<dyn FnOnce()>;
impl Deref for Table {
    type Target = u8;
    fn deref(&self) -> &u8 { &0 }
}
fn run() {}
#[cfg(test)]
mod tests {
    fn helper() {}
}
";
    assert_eq!(
        type_names(source).into_iter().collect::<Vec<_>>(),
        ["Job", "Kind", "Table"]
    );
    assert_eq!(
        function_names(source).into_iter().collect::<Vec<_>>(),
        ["run"]
    );
}
