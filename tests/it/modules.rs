//! The house flows one way: no import circle between the crate's top-level
//! modules, and `lib.rs`'s module map names every one of them.
//!
//! Read from the source: every `crate::NAME` a module's production code
//! mentions (a `#[cfg(test)]` block, to the end of its file, and `tests.rs`
//! files are left out: a test may build a whole config). A cycle between
//! top-level modules fails with the import lines that close it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The binary's own modules (`mod cli;` in `main.rs`): not the library's,
/// so not in `lib.rs`'s map, and their `crate::` is the binary.
fn binary_modules(src: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(src.join("main.rs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("mod ")?.strip_suffix(';'))
        .map(str::to_string)
        .collect()
}

/// Top-level module of the library → the `.rs` files that are it.
fn modules(src: &Path) -> BTreeMap<String, Vec<PathBuf>> {
    let binary = binary_modules(src);
    let mut out: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(src).unwrap();
            let first = rel.components().next().unwrap().as_os_str();
            let top = first.to_string_lossy().trim_end_matches(".rs").to_string();
            if top == "lib" || top == "main" || binary.contains(&top) {
                continue;
            }
            out.entry(top).or_default().push(path);
        }
    }
    out
}

/// The production text of a file: without its `#[cfg(test)]` tail.
fn production(path: &Path) -> String {
    if path.file_name().is_some_and(|n| n == "tests.rs") {
        return String::new();
    }
    let text = std::fs::read_to_string(path).unwrap();
    match text.find("#[cfg(test)]") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// Module → module it imports → where (file:line).
type Edges = BTreeMap<String, BTreeMap<String, Vec<String>>>;

fn edges(src: &Path, modules: &BTreeMap<String, Vec<PathBuf>>) -> Edges {
    let mut edges = Edges::new();
    for (module, files) in modules {
        for file in files {
            for (n, line) in production(file).lines().enumerate() {
                if line.trim_start().starts_with("//") {
                    continue;
                }
                for (i, _) in line.match_indices("crate::") {
                    let name: String = line[i + 7..]
                        .chars()
                        .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                        .collect();
                    if name != *module && modules.contains_key(&name) {
                        let at = format!("{}:{}", file.strip_prefix(src).unwrap().display(), n + 1);
                        edges
                            .entry(module.clone())
                            .or_default()
                            .entry(name)
                            .or_default()
                            .push(at);
                    }
                }
            }
        }
    }
    edges
}

/// Strongly connected components of more than one module (Tarjan).
fn cycles(nodes: &[String], edges: &Edges) -> Vec<Vec<String>> {
    struct Walk<'a> {
        edges: &'a Edges,
        index: BTreeMap<String, usize>,
        low: BTreeMap<String, usize>,
        stack: Vec<String>,
        on_stack: BTreeSet<String>,
        found: Vec<Vec<String>>,
    }
    fn visit(w: &mut Walk, v: &str) {
        let i = w.index.len();
        w.index.insert(v.to_string(), i);
        w.low.insert(v.to_string(), i);
        w.stack.push(v.to_string());
        w.on_stack.insert(v.to_string());
        let next: Vec<String> = w
            .edges
            .get(v)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        for u in next {
            if !w.index.contains_key(&u) {
                visit(w, &u);
                let low = w.low[v].min(w.low[&u]);
                w.low.insert(v.to_string(), low);
            } else if w.on_stack.contains(&u) {
                let low = w.low[v].min(w.index[&u]);
                w.low.insert(v.to_string(), low);
            }
        }
        if w.low[v] == w.index[v] {
            let mut component = Vec::new();
            while let Some(u) = w.stack.pop() {
                w.on_stack.remove(&u);
                let done = u == v;
                component.push(u);
                if done {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                w.found.push(component);
            }
        }
    }
    let mut w = Walk {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in nodes {
        if !w.index.contains_key(v) {
            visit(&mut w, v);
        }
    }
    w.found
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn no_import_circle_between_top_level_modules() {
    let src = src();
    let modules = modules(&src);
    assert!(modules.len() > 20, "read the crate's modules: {modules:?}");
    let edges = edges(&src, &modules);
    let nodes: Vec<String> = modules.keys().cloned().collect();
    let found = cycles(&nodes, &edges);
    let mut report = String::new();
    for component in &found {
        report.push_str(&format!("circle: {}\n", component.join(", ")));
        for a in component {
            for (b, at) in edges.get(a).into_iter().flatten() {
                if component.contains(b) {
                    report.push_str(&format!("  {a} → {b}: {}\n", at.join(", ")));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "top-level modules import each other in a circle; move the shared \
         words down into a leaf module (see lib.rs's map):\n{report}"
    );
}

#[test]
fn the_checker_finds_a_circle() {
    // The same walk on a made-up graph with a circle a → b → c → a.
    let mut edges = Edges::new();
    for (a, b) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")] {
        edges
            .entry(a.into())
            .or_default()
            .insert(b.into(), vec![format!("{a}.rs:1")]);
    }
    let nodes: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
    assert_eq!(
        cycles(&nodes, &edges),
        vec![vec!["a".to_string(), "b".into(), "c".into()]]
    );
}

#[test]
fn lib_rs_maps_every_module() {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let map: String = lib
        .lines()
        .take_while(|l| l.starts_with("//!"))
        .collect::<Vec<_>>()
        .join("\n");
    let missing: Vec<String> = modules(&src())
        .into_keys()
        .filter(|m| !map.contains(&format!("[`{m}`]")) && !map.contains(&format!("[`{m}::")))
        .collect();
    assert!(
        missing.is_empty(),
        "lib.rs's module map does not name: {missing:?}"
    );
}

/// The top-level modules in the order `lib.rs`'s map names them.
fn map_order() -> Vec<String> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let mut order: Vec<String> = Vec::new();
    for line in lib.lines().take_while(|l| l.starts_with("//!")) {
        for (i, _) in line.match_indices("[`") {
            let name: String = line[i + 2..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if !name.is_empty() && !order.contains(&name) {
                order.push(name);
            }
        }
    }
    order
}

#[test]
fn lib_rs_lists_modules_in_flow_order() {
    // The map's claim: each module uses only modules named before it.
    let src = src();
    let modules = modules(&src);
    let edges = edges(&src, &modules);
    let order = map_order();
    assert!(order.len() > 20, "read lib.rs's map: {order:?}");
    let place = |m: &str| order.iter().position(|o| o == m);
    let mut backward = Vec::new();
    for (a, imports) in &edges {
        for (b, at) in imports {
            if let (Some(pa), Some(pb)) = (place(a), place(b)) {
                if pb > pa {
                    backward.push(format!("{a} → {b} ({})", at.join(", ")));
                }
            }
        }
    }
    assert!(
        backward.is_empty(),
        "lib.rs's map lists these modules after a module that imports them; \
         move them up the map (or the import down the flow):\n{}",
        backward.join("\n")
    );
}
