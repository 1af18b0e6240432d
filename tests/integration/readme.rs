//! The README stays a newcomer's first read: short, with the rest in
//! `docs/`, and no link from one page to another that leads nowhere.

use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// About 450 lines: set-up, requirements, flags, the API, the cookbook and
/// links; performance, reliability and internals live in `docs/`.
const README_MAX_LINES: usize = 450;

#[test]
fn the_readme_is_under_450_lines() {
    let text = std::fs::read_to_string(Path::new(ROOT).join("README.md")).expect("README.md");
    let lines = text.lines().count();
    assert!(
        lines < README_MAX_LINES,
        "README.md has {lines} lines; keep it under {README_MAX_LINES} and move details to docs/"
    );
}

/// The Markdown pages: the README, CONCURRENCY.md and every `docs/*.md`.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![
        Path::new(ROOT).join("README.md"),
        Path::new(ROOT).join("CONCURRENCY.md"),
    ];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(Path::new(ROOT).join("docs"))
        .expect("docs/")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

/// The targets of `](target)` links in `text` that are not web addresses
/// or anchors in the same page, without their `#anchor`.
fn relative_links(text: &str) -> Vec<&str> {
    text.match_indices("](")
        .filter_map(|(at, _)| {
            let rest = &text[at + 2..];
            let target = &rest[..rest.find(')')?];
            let file = target.split('#').next()?;
            let external = target.contains("://") || target.starts_with("mailto:");
            (!external && !file.is_empty()).then_some(file)
        })
        .collect()
}

#[test]
fn every_relative_link_between_the_pages_leads_to_a_file() {
    let pages = pages();
    assert!(
        pages.len() >= 5,
        "README, CONCURRENCY.md and docs/: {pages:?}"
    );
    let mut broken = Vec::new();
    for page in &pages {
        let text = std::fs::read_to_string(page).expect("a page");
        let dir = page.parent().expect("a page is in a directory");
        for link in relative_links(&text) {
            if !dir.join(link).exists() {
                broken.push(format!("{}: {link}", page.display()));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "links to nothing:\n{}",
        broken.join("\n")
    );
}

#[test]
fn relative_links_are_found_and_web_addresses_skipped() {
    assert_eq!(
        relative_links("[a](docs/x.md#y) [b](https://e.org/) [c](#z) [d](../C.md)"),
        ["docs/x.md", "../C.md"]
    );
}
