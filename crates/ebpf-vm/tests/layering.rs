//! The engine's modules depend one way, as `src/lib.rs` describes: isa -> analysis -> vm ->
//! maps/helpers/context -> engines -> program. This test reads every source file's `crate::`
//! references and fails on an edge that goes up the order or across to a peer of the same layer.
//!
//! One edge still goes against the order, listed in `KNOWN_EXCEPTIONS` with why it exists; the
//! test also fails when it disappears, so that the list only ever shrinks (delete the entry in the
//! change that removes the edge).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The layers, lowest first. A module may use the modules of lower layers only; the modules of
/// one layer are peers and use neither each other nor anything above. `vm::env` (the run
/// environment, which holds helpers, maps and the run state) is the one submodule placed apart
/// from its parent (`SPLIT`): the rest of `vm` is below the maps.
const LAYERS: &[&[&str]] = &[
    &["error"],
    &["isa"],
    &["analysis"],
    &["memory", "limits", "run_trace", "coverage"],
    &["vm"],
    &["stack_reach"],
    &["maps"],
    &["pins"],
    &["run_state"],
    &["helpers"],
    &["context"],
    &["vm::env"],
    &["pointer_leaks"],
    &["verifier"],
    &["semantics"],
    &["interpreter", "jit"],
    &["verification"],
    &["run_space"],
    &["program"],
    &["test_run", "batch"],
];

/// Submodules with a layer of their own: a file at `src/<path>.rs` or under `src/<path>/`, and a
/// reference `crate::<parent>::<child>`, belong to `<parent>::<child>`.
const SPLIT: &[(&str, &str)] = &[("vm", "env")];

/// Today's edges against the order: (file under src/, module it uses, why). Remove an entry in
/// the change that removes its edge; never add one.
#[rustfmt::skip]
const KNOWN_EXCEPTIONS: &[(&str, &str, &str)] = &[
];

/// The layer of a top-level module, by its position in `LAYERS`.
fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The top-level module a file under src/ belongs to (`None` for the crate root).
fn module_of(relative: &Path) -> Option<String> {
    let first = relative
        .components()
        .next()?
        .as_os_str()
        .to_str()?
        .to_string();
    let module = match first.strip_suffix(".rs") {
        Some("lib") => return None,
        Some(stem) => stem.to_string(),
        None => first,
    };
    let second = relative
        .components()
        .nth(1)
        .and_then(|c| c.as_os_str().to_str());
    let child = second.map(|c| c.strip_suffix(".rs").unwrap_or(c));
    match SPLIT
        .iter()
        .find(|&&(p, c)| p == module && child == Some(c))
    {
        Some((p, c)) => Some(format!("{p}::{c}")),
        None => Some(module),
    }
}

/// The module a reference names: `name`, or `name::child` where `SPLIT` places that child apart
/// (`after` is the text after `name`).
fn qualified(name: &str, after: &str) -> String {
    let child = after
        .trim_start()
        .strip_prefix("::")
        .map(|t| identifier(t.trim_start()));
    match SPLIT.iter().find(|&&(p, c)| p == name && child == Some(c)) {
        Some((p, c)) => format!("{p}::{c}"),
        None => name.to_string(),
    }
}

/// The source with comments removed (line comments, doc comments and block comments), so that
/// a doc link to `crate::x` is not taken for a dependency.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let b = text.as_bytes();
    let mut k = 0;
    let mut in_string = false;
    while k < b.len() {
        if in_string {
            if b[k] == b'\\' {
                k += 2;
                continue;
            }
            if b[k] == b'"' {
                in_string = false;
            }
            out.push(b[k] as char);
            k += 1;
        } else if b[k] == b'"' {
            in_string = true;
            out.push('"');
            k += 1;
        } else if text[k..].starts_with("//") {
            while k < b.len() && b[k] != b'\n' {
                k += 1;
            }
        } else if text[k..].starts_with("/*") {
            let end = text[k + 2..].find("*/").map_or(b.len(), |e| k + 2 + e + 2);
            k = end;
        } else {
            let ch = text[k..].chars().next().expect("a character");
            out.push(ch);
            k += ch.len_utf8();
        }
    }
    out
}

fn identifier(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The top-level modules a source text names through `crate::` (including grouped uses such as
/// `use crate::{error::X, isa::Y}`).
fn crate_references(text: &str) -> BTreeSet<String> {
    let code = strip_comments(text);
    let mut found = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue; // `foo_crate::` is another crate's path
        }
        let tail = rest.trim_start();
        if let Some(group) = tail.strip_prefix('{') {
            // Names at the group's first level of nesting.
            let mut depth = 1;
            let mut expect_name = true;
            let mut k = 0;
            let g = group.as_bytes();
            while k < g.len() && depth > 0 {
                match g[k] {
                    b'{' => depth += 1,
                    b'}' => depth -= 1,
                    b',' if depth == 1 => expect_name = true,
                    c if depth == 1 && expect_name && (c.is_ascii_alphabetic() || c == b'_') => {
                        let name = identifier(&group[k..]);
                        found.insert(qualified(name, &group[k + name.len()..]));
                        expect_name = false;
                    }
                    _ => {}
                }
                k += 1;
            }
        } else {
            let name = identifier(tail);
            if !name.is_empty() {
                found.insert(qualified(name, &tail[name.len()..]));
            }
        }
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("readable source directory")
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every edge of `src/` that goes against the layers: (file, module used).
fn violations() -> BTreeSet<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut bad = BTreeSet::new();
    for path in files {
        let relative = path.strip_prefix(&src).expect("under src/");
        let Some(module) = module_of(relative) else {
            continue; // lib.rs declares and re-exports everything
        };
        let from = layer(&module).unwrap_or_else(|| {
            panic!(
                "src/{} is in module `{module}`, which LAYERS does not place",
                relative.display()
            )
        });
        let text = std::fs::read_to_string(&path).expect("readable source file");
        for used in crate_references(&text) {
            if used == module {
                continue;
            }
            let to = layer(&used).unwrap_or_else(|| {
                panic!(
                    "src/{} uses `crate::{used}`, which LAYERS does not place",
                    relative.display()
                )
            });
            if to >= from {
                let file = relative.to_string_lossy().replace('\\', "/");
                bad.insert((file, used));
            }
        }
    }
    bad
}

#[test]
fn modules_depend_one_way_down_the_layers() {
    let found = violations();
    let known: BTreeSet<(String, String)> = KNOWN_EXCEPTIONS
        .iter()
        .map(|&(f, m, _)| (f.to_string(), m.to_string()))
        .collect();
    let new: Vec<_> = found.difference(&known).collect();
    let gone: Vec<_> = known.difference(&found).collect();
    assert!(
        new.is_empty(),
        "edges against the layering (isa -> analysis -> vm -> maps/helpers/context -> engines -> \
         program; see src/lib.rs): {new:?}"
    );
    assert!(
        gone.is_empty(),
        "these known exceptions no longer exist: delete them from KNOWN_EXCEPTIONS: {gone:?}"
    );
}

#[test]
fn the_reference_reader_sees_grouped_and_plain_uses_but_not_comments() {
    let text = "use crate::{error::LoadError, isa::{Insn, opcodes::*}, vm::env::RunEnv};\n\
                use crate::vm::{RunOutput, STACK_SIZE};\n\
                // crate::program is only mentioned\n\
                /// see [`crate::jit`]\n\
                fn f() { crate::maps::handle(); let s = \"crate::vm\"; other_crate::x(); }\n\
                /* crate::helpers */";
    let found: Vec<String> = crate_references(text).into_iter().collect();
    // The string literal is code text too; a path in a string is rare enough to accept.
    assert_eq!(found, ["error", "isa", "maps", "vm", "vm::env"]);
}
