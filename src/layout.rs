//! Tests that keep the map true: the README's Layout section and the map that opens `lib.rs` are
//! one text, and it names every top-level module exactly once. Test-only; nothing here ships.

use std::path::Path;

fn read(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `# Layout` part of lib.rs's `//!` text, without the comment markers.
fn lib_map(lib: &str) -> String {
    let doc: Vec<&str> = lib
        .lines()
        .take_while(|l| l.starts_with("//!"))
        .map(|l| l.trim_start_matches("//!").strip_prefix(' ').unwrap_or(""))
        .collect();
    let start = doc
        .iter()
        .position(|l| *l == "# Layout")
        .expect("a # Layout heading")
        + 1;
    doc[start..].join("\n").trim().to_string()
}

/// The README's `## Layout` section, up to the next heading, without its first paragraph (which
/// says that this test exists).
fn readme_map(readme: &str) -> String {
    let (_, rest) = readme
        .split_once("\n## Layout\n")
        .expect("a ## Layout section");
    let section = rest.split("\n## ").next().unwrap_or(rest).trim();
    let (_, map) = section
        .split_once("\n\n")
        .expect("an intro paragraph, then the map");
    map.trim().to_string()
}

/// The modules a map's bullets name: the backticked words before the dash.
fn mapped_modules(map: &str) -> Vec<String> {
    map.lines()
        .filter_map(|l| l.strip_prefix("- "))
        .filter_map(|l| l.split(" — ").next())
        .flat_map(|names| names.split(", "))
        .map(|n| n.trim_matches('`').to_string())
        .collect()
}

#[test]
fn the_readmes_layout_and_the_map_in_lib_rs_are_the_same_text() {
    assert_eq!(readme_map(&read("README.md")), lib_map(&read("src/lib.rs")));
}

#[test]
fn the_map_names_every_top_level_module_once() {
    let lib = read("src/lib.rs");
    let mut declared: Vec<String> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';').to_string())
        .collect();
    let mut mapped = mapped_modules(&lib_map(&lib));
    declared.sort();
    mapped.sort();
    assert_eq!(mapped, declared);
}
