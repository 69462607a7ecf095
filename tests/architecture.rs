//! The architecture map kept true (rust-analyzer's "architecture invariants" habit): this test
//! reads `src/` as text and fails, naming the file and line, on
//! - a module the layer table below does not place (add it here and to ARCHITECTURE.md),
//! - an import that goes up a layer (or sideways where the layer forbids it),
//! - `tch` used outside the layers that may touch libtorch,
//! - a circle of imports between files (a file may use what the modules above it in the module
//!   tree define, as every Rust child module does; any other circle is one),
//!
//! and when ARCHITECTURE.md's layer table says something else than [`LAYERS`].
//!
//! An import is any `crate::`, `super::` or `self::` path in code (not in comments, strings or
//! `#[cfg(test)]` items: tests may reach up for fixtures), and a path through a child module the
//! file declares (`mod x;` … `x::y`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A layer of the crate: its name (as ARCHITECTURE.md's table says it), its top-level modules,
/// whether its modules may import each other, and whether it may use `tch`.
struct Layer {
    name: &'static str,
    modules: &'static [&'static str],
    sideways: bool,
    tch: bool,
}

/// From the bottom up: a module imports only from layers below its own (and from its own layer
/// where `sideways`). A new top-level module goes into one row here and into ARCHITECTURE.md.
const LAYERS: &[Layer] = &[
    Layer {
        name: "facts",
        modules: &["space", "device", "exit", "rng", "gpu", "threads", "nb201"],
        sideways: false,
        tch: false,
    },
    Layer {
        name: "architecture",
        modules: &["arch", "genotype"],
        sideways: true,
        tch: false,
    },
    Layer {
        name: "settings",
        modules: &["config"],
        sideways: true,
        tch: false,
    },
    Layer {
        name: "seam",
        modules: &["protocol"],
        sideways: true,
        tch: false,
    },
    Layer {
        name: "files",
        modules: &["dataset", "rundir"],
        sideways: true,
        tch: false,
    },
    Layer {
        name: "sweeps",
        modules: &["sweep"],
        sideways: true,
        tch: false,
    },
    Layer {
        name: "figures",
        modules: &["plot"],
        sideways: true,
        tch: false,
    },
    Layer {
        name: "engine",
        modules: &["engine"],
        sideways: true,
        tch: true,
    },
    Layer {
        name: "monitors",
        modules: &["app", "ui", "tui", "headless", "theme", "signals"],
        sideways: true,
        tch: false,
    },
    Layer {
        name: "command line",
        modules: &["cli"],
        sideways: true,
        tch: true,
    },
];

fn layer_of(top: &str) -> Option<(usize, &'static Layer)> {
    LAYERS
        .iter()
        .enumerate()
        .find(|(_, l)| l.modules.contains(&top))
}

/// One `.rs` file of the library: its module path and its text with comments, strings and test
/// items blanked (line numbers kept).
struct File {
    path: PathBuf,
    module: Vec<String>,
    code: String,
    /// The child modules it declares (`mod x;`), and which of them are test-only.
    children: Vec<String>,
    test_children: Vec<String>,
}

/// An import of one file by another.
struct Import {
    line: usize,
    text: String,
    to: usize,
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// `src/a/b.rs` and `src/a/b/mod.rs` → `["a", "b"]`; `src/lib.rs` → `[]`.
fn module_of(path: &Path) -> Vec<String> {
    let rel = path.strip_prefix(src()).unwrap();
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_string());
    }
    parts
}

/// The text with comments, string and char literals replaced by spaces (newlines kept).
fn blank_comments_and_strings(text: &str) -> String {
    let c: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |ch: char| if ch == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < c.len() {
        let next = c.get(i + 1).copied();
        if c[i] == '/' && next == Some('/') {
            while i < c.len() && c[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c[i] == '/' && next == Some('*') {
            let mut depth = 0;
            loop {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(c[i]));
                    i += 1;
                }
            }
        } else if c[i] == 'r'
            && (next == Some('"') || next == Some('#'))
            && (i == 0 || !is_ident(c[i - 1]))
        {
            // A raw string: r"…", r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while c.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if c.get(j) != Some(&'"') {
                out.push(c[i]);
                i += 1;
                continue;
            }
            let end: String = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            let rest: String = c[j + 1..].iter().collect();
            let len = rest.find(&end).map_or(rest.len(), |k| k + end.len());
            for ch in c[i..j + 1 + rest[..len].chars().count()].iter() {
                out.push(blank(*ch));
            }
            i = j + 1 + rest[..len].chars().count();
        } else if c[i] == '"' {
            out.push(' ');
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if i < c.len() {
                    out.push(blank(c[i]));
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
        } else if c[i] == '\''
            && (next == Some('\\') || (c.get(i + 2) == Some(&'\'') && next != Some('\'')))
        {
            // A char literal ('x', '\n', '\''); a lifetime ('a) is left alone.
            out.push(' ');
            i += 1;
            if c[i] == '\\' {
                out.push(' ');
                i += 1;
            }
            while i < c.len() && c[i] != '\'' {
                out.push(' ');
                i += 1;
            }
            out.push(' ');
            i += 1;
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

fn is_ident(ch: char) -> bool {
    ch.is_alphanumeric() || ch == '_'
}

/// Blanks every item under `#[cfg(test)]` (an inline `mod tests { … }`, a function, a `mod x;`
/// declaration) and returns the names of the test-only child modules declared so.
fn blank_test_items(code: &str) -> (String, Vec<String>) {
    let mut c: Vec<char> = code.chars().collect();
    let mut test_children = Vec::new();
    let pat: Vec<char> = "#[cfg(test)]".chars().collect();
    let mut i = 0;
    while i + pat.len() <= c.len() {
        if c[i..i + pat.len()] != pat[..] {
            i += 1;
            continue;
        }
        // The item runs to its first `;` (a declaration) or its matching `}`.
        let mut j = i + pat.len();
        let mut depth = 0;
        while j < c.len() {
            match c[j] {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                ';' if depth == 0 => break,
                _ => {}
            }
            j += 1;
        }
        let item: String = c[i + pat.len()..j.min(c.len())].iter().collect();
        let words: Vec<&str> = item.split_whitespace().collect();
        if let Some(k) = words.iter().position(|w| *w == "mod")
            && let Some(name) = words.get(k + 1)
            && !item.contains('{')
        {
            test_children.push(name.trim_end_matches(';').to_string());
        }
        let end = (j + 1).min(c.len());
        for ch in &mut c[i..end] {
            if *ch != '\n' {
                *ch = ' ';
            }
        }
        i = j + 1;
    }
    (c.into_iter().collect(), test_children)
}

/// The child modules a file declares (`mod x;`, `pub mod x;`, `pub(crate) mod x;`), one a line.
fn declared_children(code: &str) -> Vec<String> {
    code.lines()
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            match words.as_slice() {
                ["mod", name] => Some(*name),
                [vis, "mod", name] if vis.starts_with("pub") => Some(*name),
                _ => None,
            }
        })
        .filter_map(|n| n.strip_suffix(';'))
        .map(ToString::to_string)
        .collect()
}

/// The paths a use tree or path starting at `s` names: `a::b::{c, d::e}` → a::b::c, a::b::d::e.
fn paths_of(s: &str) -> Vec<Vec<String>> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    let mut out = Vec::new();
    tree(&s, &mut Vec::new(), &mut out);
    out
}

/// Parses one use tree from `s` with `prefix`; returns the characters it used.
fn tree(s: &str, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    let mut i = 0;
    let b = s.as_bytes();
    let depth = prefix.len();
    loop {
        let start = i;
        while i < b.len() && (is_ident(b[i] as char)) {
            i += 1;
        }
        if i > start {
            prefix.push(s[start..i].to_string());
        }
        let group = if s[i..].starts_with("::{") {
            Some(3)
        } else if i == start && s[i..].starts_with('{') {
            // `crate::{a, b}`: the group right after the root.
            Some(1)
        } else {
            None
        };
        if let Some(skip) = group {
            i += skip;
            loop {
                let mut p = prefix.clone();
                i += tree(&s[i..], &mut p, out);
                if s[i..].starts_with(',') {
                    i += 1;
                    if s[i..].starts_with('}') {
                        i += 1;
                        break;
                    }
                } else {
                    if s[i..].starts_with('}') {
                        i += 1;
                    }
                    break;
                }
            }
            prefix.truncate(depth);
            return i;
        }
        if s[i..].starts_with("::") && b.get(i + 2).is_some_and(|c| is_ident(*c as char)) {
            i += 2;
            continue;
        }
        if s[i..].starts_with("::*") {
            i += 3;
        }
        break;
    }
    if prefix.len() > depth {
        out.push(prefix.clone());
    }
    prefix.truncate(depth);
    i
}

fn load() -> Vec<File> {
    let mut paths = Vec::new();
    rs_files(&src(), &mut paths);
    let mut files: Vec<File> = paths
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n != "main.rs"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let (code, test_children) = blank_test_items(&blank_comments_and_strings(&text));
            let children = declared_children(&code);
            File {
                module: module_of(&path),
                path,
                code,
                children,
                test_children,
            }
        })
        .collect();
    // Files declared under `#[cfg(test)]`, and everything below them, are tests.
    let test_modules: Vec<Vec<String>> = files
        .iter()
        .flat_map(|f| {
            f.test_children.iter().map(|c| {
                let mut m = f.module.clone();
                m.push(c.clone());
                m
            })
        })
        .collect();
    files.retain(|f| !test_modules.iter().any(|t| f.module.starts_with(t)));
    files
}

/// The file of the longest prefix of `path` that is a file's module.
fn resolve(files: &[File], path: &[String]) -> Option<usize> {
    (1..=path.len())
        .rev()
        .find_map(|n| files.iter().position(|f| f.module == path[..n]))
}

/// Every import of file `k`, resolved to the file it reaches.
fn imports(files: &[File], k: usize) -> Vec<Import> {
    let f = &files[k];
    let mut out = Vec::new();
    let code = &f.code;
    let mut roots: Vec<(&str, Vec<String>)> = vec![
        ("crate::", Vec::new()),
        ("self::", f.module.clone()),
        (
            "super::",
            f.module[..f.module.len().saturating_sub(1)].to_vec(),
        ),
    ];
    for c in &f.children {
        let mut m = f.module.clone();
        m.push(c.clone());
        roots.push((c.as_str(), m));
    }
    for (word, base) in &roots {
        let mut from = 0;
        while let Some(pos) = code[from..].find(word) {
            let at = from + pos;
            from = at + word.len();
            let before = code[..at].chars().next_back();
            if before.is_some_and(|ch| is_ident(ch) || ch == ':') {
                continue;
            }
            // A child module's own name counts only as the start of a path.
            let rest = &code[at..];
            let path_text = if word.ends_with("::") {
                &rest[word.len()..]
            } else if rest[word.len()..].starts_with("::") {
                &rest[word.len() + 2..]
            } else {
                continue;
            };
            let line = code[..at].matches('\n').count() + 1;
            let mut trees = paths_of(&path_text[..path_text.len().min(600)]);
            // `super::super::x`
            let mut base = base.clone();
            for p in trees.iter_mut() {
                while p.first().is_some_and(|s| s == "super") {
                    p.remove(0);
                    base.pop();
                }
            }
            if trees.is_empty() {
                // `use super::*;`, `super::{self}`: the module itself.
                trees.push(Vec::new());
            }
            for p in trees {
                let full: Vec<String> = base.iter().cloned().chain(p.iter().cloned()).collect();
                if let Some(to) = resolve(files, &full)
                    && to != k
                {
                    out.push(Import {
                        line,
                        text: format!("{}{}", word, p.join("::")),
                        to,
                    });
                }
            }
        }
    }
    out
}

fn rel(p: &Path) -> String {
    p.strip_prefix(Path::new(env!("CARGO_MANIFEST_DIR")))
        .unwrap_or(p)
        .display()
        .to_string()
}

#[test]
fn every_module_is_in_a_layer_and_imports_only_below_it() {
    let files = load();
    let mut problems = Vec::new();
    let tops: BTreeSet<&str> = files
        .iter()
        .filter_map(|f| f.module.first().map(String::as_str))
        .collect();
    for top in &tops {
        if layer_of(top).is_none() {
            problems.push(format!(
                "module `{top}` is in no layer: add it to a row of LAYERS in tests/architecture.rs and of the layer table in ARCHITECTURE.md"
            ));
        }
    }
    for (k, f) in files.iter().enumerate() {
        let Some(top) = f.module.first() else {
            continue;
        };
        let Some((mine, layer)) = layer_of(top) else {
            continue;
        };
        for imp in imports(&files, k) {
            let their_top = &files[imp.to].module[0];
            if their_top == top {
                continue;
            }
            let Some((theirs, their_layer)) = layer_of(their_top) else {
                continue;
            };
            if theirs > mine || (theirs == mine && !layer.sideways) {
                problems.push(format!(
                    "{}:{}: `{}` goes {} a layer: `{top}` ({}) may import only from layers below it{}",
                    rel(&f.path),
                    imp.line,
                    imp.text,
                    if theirs > mine { "up" } else { "sideways in" },
                    layer.name,
                    if theirs == mine {
                        String::new()
                    } else {
                        format!(", and `{their_top}` is in {}", their_layer.name)
                    }
                ));
            }
        }
        if !layer.tch {
            for (n, line) in f.code.lines().enumerate() {
                if let Some(at) = line.find("tch::")
                    && !line[..at].chars().next_back().is_some_and(is_ident)
                {
                    problems.push(format!(
                        "{}:{}: `tch` in `{top}` ({}): only the engine and the command line touch libtorch",
                        rel(&f.path),
                        n + 1,
                        layer.name
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

#[test]
fn no_import_circle_between_files() {
    let files = load();
    // Edges between files, but not to a file's ancestors (a child module using its parent's
    // items is how Rust modules work).
    let mut edges: BTreeMap<usize, BTreeMap<usize, (usize, String)>> = BTreeMap::new();
    for k in 0..files.len() {
        for imp in imports(&files, k) {
            if files[k].module.starts_with(&files[imp.to].module) {
                continue;
            }
            edges
                .entry(k)
                .or_default()
                .entry(imp.to)
                .or_insert((imp.line, imp.text));
        }
    }
    let circles = circles(files.len(), &edges);
    let mut report = String::new();
    for c in &circles {
        let _ = writeln!(report, "import circle:");
        for (i, &a) in c.iter().enumerate() {
            let b = c[(i + 1) % c.len()];
            let (line, text) = &edges[&a][&b];
            let _ = writeln!(
                report,
                "  {}:{line}: `{text}` → {}",
                rel(&files[a].path),
                rel(&files[b].path)
            );
        }
    }
    assert!(circles.is_empty(), "\n{report}");
}

/// One circle through each strongly connected group of files (Tarjan's algorithm, then the
/// shortest path back to the group's first file): break it, and the test shows the next one.
fn circles(n: usize, edges: &BTreeMap<usize, BTreeMap<usize, (usize, String)>>) -> Vec<Vec<usize>> {
    struct T<'a> {
        edges: &'a BTreeMap<usize, BTreeMap<usize, (usize, String)>>,
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        groups: Vec<Vec<usize>>,
    }
    fn visit(t: &mut T, v: usize) {
        t.index[v] = Some(t.next);
        t.low[v] = t.next;
        t.next += 1;
        t.stack.push(v);
        t.on[v] = true;
        let outs: Vec<usize> = t
            .edges
            .get(&v)
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default();
        for w in outs {
            match t.index[w] {
                None => {
                    visit(t, w);
                    t.low[v] = t.low[v].min(t.low[w]);
                }
                Some(i) if t.on[w] => t.low[v] = t.low[v].min(i),
                Some(_) => {}
            }
        }
        if Some(t.low[v]) == t.index[v] {
            let mut g = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on[w] = false;
                g.push(w);
                if w == v {
                    break;
                }
            }
            if g.len() > 1 {
                t.groups.push(g);
            }
        }
    }
    let mut t = T {
        edges,
        index: vec![None; n],
        low: vec![0; n],
        on: vec![false; n],
        stack: Vec::new(),
        next: 0,
        groups: Vec::new(),
    };
    for v in 0..n {
        if t.index[v].is_none() {
            visit(&mut t, v);
        }
    }
    // In each group, the shortest path from its smallest file back to itself.
    t.groups
        .iter()
        .map(|g| {
            let start = *g.iter().min().unwrap();
            let mut prev: BTreeMap<usize, usize> = BTreeMap::new();
            let mut queue = std::collections::VecDeque::from([start]);
            let mut end = start;
            'search: while let Some(v) = queue.pop_front() {
                for &w in edges.get(&v).map(|m| m.keys()).into_iter().flatten() {
                    if !g.contains(&w) {
                        continue;
                    }
                    if w == start {
                        end = v;
                        break 'search;
                    }
                    if let std::collections::btree_map::Entry::Vacant(e) = prev.entry(w) {
                        e.insert(v);
                        queue.push_back(w);
                    }
                }
            }
            let mut path = vec![end];
            while let Some(&p) = prev.get(path.last().unwrap()) {
                path.push(p);
            }
            if *path.last().unwrap() != start {
                path.push(start);
            }
            path.dedup();
            path.reverse();
            path
        })
        .collect()
}

#[test]
fn architecture_md_lists_the_same_layers() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md"))
            .unwrap();
    let start = text
        .find("| layer | modules |")
        .expect("ARCHITECTURE.md's layer table (| layer | modules | …)");
    let rows: Vec<(String, Vec<String>)> = text[start..]
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let modules = cells[2]
                .split('`')
                .skip(1)
                .step_by(2)
                .map(|m| m.trim_end_matches('/').to_string())
                .collect();
            (cells[1].to_string(), modules)
        })
        .collect();
    let want: Vec<(String, Vec<String>)> = LAYERS
        .iter()
        .map(|l| {
            (
                l.name.to_string(),
                l.modules.iter().map(ToString::to_string).collect(),
            )
        })
        .collect();
    assert_eq!(
        rows, want,
        "ARCHITECTURE.md's layer table and LAYERS in tests/architecture.rs differ: change both"
    );
}

/// The reader itself: comments, strings and test items do not count; use trees, `super::`
/// and child-module paths do.
#[test]
fn the_reader_finds_imports_in_code_only() {
    let text = r#"
//! crate::ui in a comment
use crate::{a::b, c::{d, e::F}};
use super::x::*;
const S: &str = "crate::nope";
fn f<'a>(c: char) -> bool { c == '"' && crate::g::h() }
#[cfg(test)]
mod tests {
    use crate::up::fixtures;
}
#[cfg(test)]
mod helpers;
mod child;
fn k() { child::run(); }
"#;
    let code = blank_comments_and_strings(text);
    assert!(
        !code.contains("crate::ui") && !code.contains("nope"),
        "{code}"
    );
    let (code, tests) = blank_test_items(&code);
    assert_eq!(tests, ["helpers"]);
    assert!(!code.contains("up::fixtures"), "{code}");
    assert_eq!(declared_children(&code), ["child"]);
    let at = code.find("crate::{").unwrap() + "crate::".len();
    assert_eq!(
        paths_of(&code[at..]),
        [vec!["a", "b"], vec!["c", "d"], vec!["c", "e", "F"]]
    );
    assert!(code.contains("crate::g::h"), "{code}");
    assert_eq!(code.lines().count(), text.lines().count());
}
