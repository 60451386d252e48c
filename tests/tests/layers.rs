//! The workspace's shape, checked: the rules of docs/architecture.md that a
//! reader relies on to find things in one hop, and that a change could
//! break without any other test noticing.
//!
//! - Imports among the runtime's modules point one way: the only cycle is
//!   `chan` with `g` (a channel's wait queues hold goroutines, a goroutine
//!   parked in a select holds its cases, as Go's hchan and sudog).
//! - Nothing in `runtime/` names a target architecture: instruction
//!   encodings and register names come from `jit/src/isa/`.
//! - The every-instruction harness is a crate of its own (`stress/`).
//! - No source file outside tests passes 1,000 lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The module path of a file under `src` ("sched::stw"; "" for lib.rs).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts.join("::")
}

/// The source without comments and without a trailing `mod tests { .. }`.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests {") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path that follows `prefix` in `code`, as its `::`-separated words.
fn paths_after<'a>(code: &'a str, prefix: &str) -> Vec<Vec<&'a str>> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        out.push(rest[..end].split("::").filter(|w| !w.is_empty()).collect());
    }
    out
}

/// The longest prefix of `words` that names a module.
fn resolve(modules: &BTreeSet<String>, words: &[&str]) -> Option<String> {
    (1..=words.len())
        .rev()
        .map(|n| words[..n].join("::"))
        .find(|m| modules.contains(m))
}

/// The import graph of the crate rooted at `src`: an edge for every
/// `crate::` or `super::` path from one file's module to another's.
fn import_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(src, f)).collect();
    let mut graph = BTreeMap::new();
    for f in &files {
        let m = module_of(src, f);
        if m.ends_with("tests") {
            continue;
        }
        let code = code_of(&std::fs::read_to_string(f).unwrap());
        // `super` is the parent of the file's module (of `sched` for
        // sched/stw.rs, of the crate for sched/mod.rs).
        let mut parent: Vec<&str> = m.split("::").filter(|w| !w.is_empty()).collect();
        parent.pop();
        let mut edges = BTreeSet::new();
        for words in paths_after(&code, "crate::") {
            edges.extend(resolve(&modules, &words));
        }
        for words in paths_after(&code, "super::") {
            let mut full = parent.clone();
            full.extend(&words);
            edges.extend(resolve(&modules, &full));
        }
        edges.remove(&m);
        edges.remove("");
        graph.insert(m, edges);
    }
    graph
}

/// The strongly connected components of more than one module (Tarjan).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<BTreeSet<String>> {
    struct T<'a> {
        g: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        out: Vec<BTreeSet<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        let n = t.index.len();
        t.index.insert(v, n);
        t.low.insert(v, n);
        t.stack.push(v);
        for w in t.g.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !t.g.contains_key(w) {
                continue;
            }
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if t.stack.contains(&w) {
                let iw = t.index[w];
                let lv = t.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if t.low[v] == t.index[v] {
            let mut c = BTreeSet::new();
            while let Some(w) = t.stack.pop() {
                c.insert(w.to_string());
                if w == v {
                    break;
                }
            }
            if c.len() > 1 {
                t.out.push(c);
            }
        }
    }
    let mut t = T {
        g: graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v.as_str()) {
            visit(&mut t, v);
        }
    }
    t.out
}

/// The layers of the crate: its top-level modules (a subsystem such as
/// `sched`, whose files share its types), except that a file that names
/// nothing of its own subsystem is a layer of its own (the stop-request
/// word of `preempt::request` imports only `stats` and `sync`, and `g`
/// embeds it).
fn layers(files: &BTreeMap<String, BTreeSet<String>>) -> BTreeMap<String, BTreeSet<String>> {
    let top = |m: &str| m.split("::").next().unwrap_or("").to_string();
    let apart = |m: &str| {
        m.contains("::")
            && files[m]
                .iter()
                .all(|t| top(t) != top(m) || t.starts_with(&format!("{m}::")))
    };
    let node = |m: &str| if apart(m) { m.to_string() } else { top(m) };
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, edges) in files {
        let from = node(m);
        let to: BTreeSet<String> = edges
            .iter()
            .filter(|t| files.contains_key(*t))
            .map(|t| node(t))
            .filter(|t| *t != from)
            .collect();
        graph.entry(from).or_default().extend(to);
    }
    graph
}

#[test]
fn runtime_imports_point_one_way_but_for_chan_and_g() {
    let files = import_graph(&workspace().join("runtime/src"));
    assert!(files.len() > 30, "the runtime's modules were not found");
    let allowed: BTreeSet<String> = ["chan", "g"].map(String::from).into();
    // File by file, and subsystem by subsystem.
    for graph in [files.clone(), layers(&files)] {
        let found = cycles(&graph);
        let others: Vec<_> = found.iter().filter(|c| **c != allowed).collect();
        assert!(
            others.is_empty(),
            "import cycles among runtime/src's modules: {others:?}"
        );
    }
}

#[test]
fn the_cycle_finder_finds_cycles() {
    // The check above is only as good as the finder: a planted cycle
    // through three modules must be reported, and a chain must not.
    let edges = |list: &[(&str, &str)]| {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in list {
            g.entry(a.to_string()).or_default().insert(b.to_string());
            g.entry(b.to_string()).or_default();
        }
        g
    };
    let found = cycles(&edges(&[("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")]));
    assert_eq!(found, vec![["a", "b", "c"].map(String::from).into()]);
    assert!(cycles(&edges(&[("a", "b"), ("b", "c"), ("a", "c")])).is_empty());
    // A file that reaches another subsystem whose files reach its own
    // closes a cycle of subsystems; a leaf file of a subsystem does not.
    let files = edges(&[
        ("gc::heap", "sched"),
        ("sched::collect", "gc::heap"),
        ("sched::collect", "sched"),
        ("g", "preempt::request"),
        ("preempt::effect", "g"),
        ("preempt::effect", "preempt::request"),
    ]);
    assert!(cycles(&files).is_empty());
    assert_eq!(
        cycles(&layers(&files)),
        vec![["gc::heap", "sched"].map(String::from).into()]
    );
    // And the paths it reads are the ones written in the sources.
    let code = "use crate::sched::stw::Why;\nlet x = super::lock(&y); my_crate::no;";
    assert_eq!(
        paths_after(code, "crate::"),
        vec![vec!["sched", "stw", "Why"]]
    );
    assert_eq!(paths_after(code, "super::"), vec![vec!["lock"]]);
}

#[test]
fn no_target_architecture_is_named_in_the_runtime() {
    let mut files = Vec::new();
    rust_files(&workspace().join("runtime/src"), &mut files);
    let naming: Vec<_> = files
        .iter()
        .filter(|f| {
            let code = code_of(&std::fs::read_to_string(f).unwrap());
            code.contains("target_arch")
        })
        .collect();
    assert!(naming.is_empty(), "target_arch in the runtime: {naming:?}");
}

#[test]
fn the_every_instruction_harness_is_its_own_crate() {
    let root = workspace();
    assert!(root.join("stress/Cargo.toml").is_file());
    assert!(!root.join("runtime/src/stress").exists());
    let manifest = std::fs::read_to_string(root.join("runtime/Cargo.toml")).unwrap();
    assert!(
        !manifest.contains("preempt-stress"),
        "the runtime depends on the harness"
    );
}

#[test]
fn no_source_file_outside_tests_passes_a_thousand_lines() {
    let root = workspace();
    let mut files = Vec::new();
    for krate in ["", "runtime", "jit", "signals", "stress", "bench", "tests"] {
        let src = root.join(krate).join("src");
        if src.is_dir() {
            rust_files(&src, &mut files);
        }
    }
    assert!(files.len() > 50, "the sources were not found");
    let long: Vec<_> = files
        .iter()
        .filter(|f| {
            // Relative to the workspace: the root itself is reached
            // through `tests/..`.
            let name = f.strip_prefix(&root).unwrap_or(f).to_string_lossy();
            !(name.ends_with("tests.rs") || name.starts_with("tests/") || name.contains("/tests/"))
        })
        .filter_map(|f| {
            // A file's own unit tests (its trailing `mod tests`) are tests.
            let text = std::fs::read_to_string(f).unwrap();
            let n = text
                .find("#[cfg(test)]\nmod tests {")
                .map_or(&text[..], |i| &text[..i])
                .lines()
                .count();
            (n > 1000).then(|| format!("{} ({n} lines)", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "files over 1,000 lines: {long:?}");
}
