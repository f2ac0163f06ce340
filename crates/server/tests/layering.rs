#![allow(clippy::unwrap_used, clippy::expect_used)]

//! The modules of `oauth-server` form no cycle: no module uses another that (directly or
//! through others) uses it, so each can be read, and changed, knowing only what lies below it.
//! Read from the sources: every `crate::a::b` path outside `#[cfg(test)]` is an edge to the
//! module it names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn modules(dir: &Path, prefix: &str, out: &mut BTreeMap<String, String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_str().unwrap().to_owned();
        if path.is_dir() {
            modules(&path, &format!("{prefix}{stem}::"), out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let name = match stem.as_str() {
                "mod" => prefix.trim_end_matches("::").to_owned(),
                _ => format!("{prefix}{stem}"),
            };
            if name == "lib" || name == "main" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or("").to_owned();
            out.insert(name, code);
        }
    }
}

/// The module a `crate::...` path names: its longest prefix that is a module.
fn target<'a>(path: &str, names: &'a BTreeSet<String>) -> Option<&'a String> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len())
        .rev()
        .find_map(|k| names.get(&parts[..k].join("::")))
}

fn edges() -> BTreeMap<String, BTreeSet<String>> {
    let mut sources = BTreeMap::new();
    modules(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        "",
        &mut sources,
    );
    let names: BTreeSet<String> = sources.keys().cloned().collect();
    let mut graph = BTreeMap::new();
    for (name, code) in &sources {
        let mut out = BTreeSet::new();
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            let end = rest
                .find(|c: char| {
                    !(c.is_ascii_lowercase() || c == '_' || c == ':' || c.is_ascii_digit())
                })
                .unwrap_or(rest.len());
            if let Some(t) = target(rest[..end].trim_end_matches(':'), &names) {
                // A module and its own submodules are one unit.
                let nested =
                    t.starts_with(&format!("{name}::")) || name.starts_with(&format!("{t}::"));
                if t != name && !nested {
                    out.insert(t.clone());
                }
            }
        }
        graph.insert(name.clone(), out);
    }
    graph
}

/// Every module reachable from `from`.
fn reach(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<&String> = graph[from].iter().collect();
    while let Some(m) = todo.pop() {
        if seen.insert(m.clone()) {
            todo.extend(graph[m].iter());
        }
    }
    seen
}

#[test]
fn no_module_depends_on_itself_through_others() {
    let graph = edges();
    assert!(
        graph.len() > 20,
        "the sources were read: {:?}",
        graph.keys()
    );
    let cycles: Vec<&String> = graph
        .keys()
        .filter(|m| reach(&graph, m).contains(*m))
        .collect();
    assert!(cycles.is_empty(), "modules in a cycle: {cycles:?}");
}

#[test]
fn no_route_module_uses_another() {
    let graph = edges();
    for (name, uses) in &graph {
        if name.starts_with("routes::") {
            let routes: Vec<&String> = uses.iter().filter(|u| u.starts_with("routes")).collect();
            assert!(routes.is_empty(), "{name} uses {routes:?}");
        }
    }
}

#[test]
fn the_check_sees_a_cycle() {
    // The two sides of a cycle, as the reader above finds them.
    let names: BTreeSet<String> = ["a", "b", "routes::x"].map(String::from).into();
    assert_eq!(target("a::f", &names).map(String::as_str), Some("a"));
    assert_eq!(
        target("routes::x::y", &names).map(String::as_str),
        Some("routes::x")
    );
    assert_eq!(target("c::d", &names), None);
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a".to_owned(), ["b".to_owned()].into()),
        ("b".to_owned(), ["a".to_owned()].into()),
    ]
    .into();
    assert!(reach(&graph, "a").contains("a"));
}
