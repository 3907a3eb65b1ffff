//! The crate's shape, checked as a test: sibling modules depend on each other one way only (no
//! import cycles). Reads the sources under `src/` at test time; touches nothing else.
//!
//! A module naming another through `crate::…` or `super::…` (in its production part, before its
//! first `#[cfg(test)]`, comments left out) makes the two modules' ancestors just below their
//! common parent depend on each other: `engine/event.rs` naming `crate::engine::evidence::Analysis`
//! is the edge `engine::event → engine::evidence`. A cycle of such edges fails the test.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A module's path below the crate root (`["engine", "event"]`); the root's is empty.
type ModPath = Vec<String>;

/// Sibling dependencies: from a module, to each sibling it depends on, with a file that says so.
type Graph = BTreeMap<ModPath, BTreeMap<ModPath, PathBuf>>;

#[test]
fn sibling_modules_depend_on_each_other_one_way_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = BTreeMap::new();
    modules(&src, &src, &mut files);
    let graph = sibling_graph(&files);
    let cycles: Vec<String> = cycles(&graph)
        .iter()
        .map(|cycle| describe(cycle, &graph))
        .collect();
    assert!(
        cycles.is_empty(),
        "import cycles between sibling modules (move what both use to one of them, or to their parent):\n{}",
        cycles.join("\n")
    );
}

/// Every `.rs` file under `dir` by the module path it defines (`lib.rs` is the root; `main.rs`, a
/// crate of its own, is left out).
fn modules(root: &Path, dir: &Path, out: &mut BTreeMap<ModPath, PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            modules(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let rel = path
                .strip_prefix(root)
                .expect("under src/")
                .with_extension("");
            let module: ModPath = rel.iter().map(|s| s.to_string_lossy().into()).collect();
            let module = match module.as_slice() {
                [one] if one == "main" => continue,
                [one] if one == "lib" => Vec::new(),
                _ => module,
            };
            out.insert(module, path);
        }
    }
}

fn sibling_graph(files: &BTreeMap<ModPath, PathBuf>) -> Graph {
    let mut graph = Graph::new();
    for (from, file) in files {
        let text = std::fs::read_to_string(file).expect("a source file is readable");
        for named in references(&production(&text), from) {
            // The longest prefix that is a module: `engine::evidence::Analysis` is `engine::evidence`.
            let Some(to) = (0..=named.len())
                .rev()
                .map(|n| &named[..n])
                .find(|m| files.contains_key(*m))
            else {
                continue;
            };
            let common = from.iter().zip(to).take_while(|(a, b)| a == b).count();
            if common < from.len() && common < to.len() {
                let edges = graph.entry(from[..=common].to_vec()).or_default();
                edges.entry(to[..=common].to_vec()).or_insert(file.clone());
            }
        }
    }
    graph
}

/// The part of a file before its first `#[cfg(test)]`, without `//` comments (doc links included).
fn production(text: &str) -> String {
    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
    let lines = code
        .lines()
        .map(|l| l.split("//").next().unwrap_or_default());
    lines.collect::<Vec<_>>().join("\n")
}

/// The paths module `at` names through `crate::` or `super::`, made absolute.
fn references(code: &str, at: &ModPath) -> Vec<ModPath> {
    let parent = at[..at.len().saturating_sub(1)].to_vec();
    let mut refs = Vec::new();
    for (prefix, base) in [("crate::", Vec::new()), ("super::", parent)] {
        for (i, _) in code.match_indices(prefix) {
            // `other_crate::`, or the second `super` of `super::super::` (the first one reads it).
            let before = &code[..i];
            if before.ends_with(|c: char| c.is_alphanumeric() || c == '_') || before.ends_with("::")
            {
                continue;
            }
            for path in paths(&code[i + prefix.len()..]) {
                let mut full = base.clone();
                for segment in path {
                    match segment.as_str() {
                        "super" => {
                            full.pop();
                        }
                        _ => full.push(segment),
                    }
                }
                refs.push(full);
            }
        }
    }
    refs
}

/// The paths at the start of `s`: `a::b::C`, or each item of a group such as `{a::{b, c}, d}`.
fn paths(s: &str) -> Vec<Vec<String>> {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    if end > 0 {
        let tails = match s[end..].strip_prefix("::") {
            Some(rest) => paths(rest),
            None => vec![Vec::new()],
        };
        let head = s[..end].to_string();
        let with_head = |tail: Vec<String>| std::iter::once(head.clone()).chain(tail).collect();
        return tails.into_iter().map(with_head).collect();
    }
    match s.strip_prefix('{') {
        Some(group) => group_items(group)
            .into_iter()
            .flat_map(|item| paths(item.trim()))
            .collect(),
        None => vec![Vec::new()],
    }
}

/// The items of a `{…}` group (its opening brace already taken off), split at its own commas.
fn group_items(s: &str) -> Vec<&str> {
    let (mut depth, mut start, mut items) = (0, 0, Vec::new());
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&s[start..i]);
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items
}

/// Cycles in the graph, each as the modules along it with the first one repeated at the end.
fn cycles(graph: &Graph) -> Vec<Vec<ModPath>> {
    fn visit(
        node: &ModPath,
        graph: &Graph,
        stack: &mut Vec<ModPath>,
        done: &mut BTreeSet<ModPath>,
        found: &mut Vec<Vec<ModPath>>,
    ) {
        if let Some(i) = stack.iter().position(|m| m == node) {
            found.push([&stack[i..], std::slice::from_ref(node)].concat());
            return;
        }
        if !done.insert(node.clone()) {
            return;
        }
        stack.push(node.clone());
        for next in graph.get(node).into_iter().flat_map(BTreeMap::keys) {
            visit(next, graph, stack, done, found);
        }
        stack.pop();
    }
    let (mut done, mut found) = (BTreeSet::new(), Vec::new());
    for node in graph.keys() {
        visit(node, graph, &mut Vec::new(), &mut done, &mut found);
    }
    found
}

/// `engine::event -> engine::evidence -> engine::event`, and the file behind each step.
fn describe(cycle: &[ModPath], graph: &Graph) -> String {
    let name = |m: &ModPath| m.join("::");
    let file = |p: &Path| {
        let rel = p.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap_or(p);
        rel.display().to_string()
    };
    let steps: Vec<String> = cycle
        .windows(2)
        .map(|w| format!("  {} uses {}", file(&graph[&w[0]][&w[1]]), name(&w[1])))
        .collect();
    let path: Vec<String> = cycle.iter().map(name).collect();
    format!("{}\n{}", path.join(" -> "), steps.join("\n"))
}
