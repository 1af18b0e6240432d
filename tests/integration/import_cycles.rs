//! The job path and its observers import each other in one direction only:
//! `jobs` → `job_events` → `metrics`, `scoreboard` → `trace`, and `server`
//! → `metrics`, `scoreboard`. Read from the `use crate::` lines (and the
//! `crate::name::` paths written inline) of their files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The modules checked: each is a file or a directory under `src/`.
const MODULES: [&str; 6] = [
    "jobs",
    "metrics",
    "scoreboard",
    "server",
    "job_events",
    "trace",
];

/// Every top-level module `text` names as `crate::name`.
fn named_modules(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            names.insert(name);
        }
    }
    names
}

/// A file's text before its unit tests (a test module may use any module:
/// it is a leaf nothing imports).
fn production_text(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// The text of module `name`: `src/name.rs`, or every file of `src/name/`.
fn module_text(src: &Path, name: &str) -> String {
    let file = src.join(format!("{name}.rs"));
    if file.exists() {
        return production_text(&file);
    }
    let mut text = String::new();
    for entry in std::fs::read_dir(src.join(name)).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") {
            text.push_str(&production_text(&path));
        }
    }
    text
}

/// A cycle in `graph`, if there is one (as the modules along it).
fn find_cycle(graph: &BTreeMap<&str, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        graph: &BTreeMap<&str, BTreeSet<String>>,
        node: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(graph, next, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|start| visit(graph, start, &mut Vec::new(), &mut done))
}

#[test]
fn the_observers_form_no_import_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph = BTreeMap::new();
    for name in MODULES {
        let text = module_text(&src, name);
        let uses: BTreeSet<String> = text
            .lines()
            .filter(|l| l.trim_start().starts_with("use crate::"))
            .flat_map(named_modules)
            .chain(named_modules(&text))
            .filter(|m| m != name && MODULES.contains(&m.as_str()))
            .collect();
        graph.insert(name, uses);
    }
    assert!(
        !graph["jobs"].contains("metrics"),
        "src/jobs imports metrics: {graph:?}"
    );
    assert_eq!(find_cycle(&graph), None, "{graph:?}");
    // The check finds the circle the job path had (metrics imported jobs
    // and server; jobs and server imported metrics).
    let mut old = graph.clone();
    old.get_mut("metrics").unwrap().insert("jobs".into());
    old.get_mut("jobs").unwrap().insert("metrics".into());
    assert!(find_cycle(&old).is_some());
}
