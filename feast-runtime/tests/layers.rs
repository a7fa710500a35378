//! The runtime's modules form layers: each may use only the modules before
//! it in [`ORDER`]. A `crate::x` path in code (not in comments) from a module
//! to one after it fails this test, naming the file and the line, so the
//! module graph stays acyclic:
//!
//! ```text
//! definition, config -> registry -> transform -> aggregate -> {online_store, offline_store}
//!   -> feature_store -> ingest -> {server, cli}
//! ```

use std::path::{Path, PathBuf};

/// Every top-level module, lowest layer first.
const ORDER: &[&str] = &[
    "definition",
    "config",
    "registry",
    "transform",
    "aggregate",
    "online_store",
    "offline_store",
    "feature_store",
    "ingest",
    "server",
    "cli",
    // Glue for the macros' generated code, and the crate root.
    "private",
    "lib",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a line names through `crate::`, including grouped
/// imports (`use crate::{a, b::c}`).
fn named_modules(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && name != "self" {
                    out.push(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

#[test]
fn modules_use_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let rank = |m: &str| ORDER.iter().position(|o| *o == m);
    let mut violations = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).expect("under src");
        let first = relative
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .expect("a path");
        let module = first.strip_suffix(".rs").unwrap_or(first);
        let Some(from) = rank(module) else {
            violations.push(format!(
                "{}: module `{module}` is not in ORDER",
                relative.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).expect("read a source file");
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for to in named_modules(line) {
                match rank(&to) {
                    Some(r) if r > from => violations.push(format!(
                        "{}:{}: `{module}` uses `{to}`, a higher layer",
                        relative.display(),
                        n + 1
                    )),
                    Some(_) => {}
                    None => violations.push(format!(
                        "{}:{}: `crate::{to}` is not a module in ORDER",
                        relative.display(),
                        n + 1
                    )),
                }
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn grouped_and_plain_paths_are_both_seen() {
    assert_eq!(
        named_modules("use crate::{json, offline_store::x};"),
        ["json", "offline_store"]
    );
    assert_eq!(
        named_modules("let x = crate::online_store::open(r);"),
        ["online_store"]
    );
    assert_eq!(named_modules("use crate::{self};"), Vec::<String>::new());
}
