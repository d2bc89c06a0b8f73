//! The examples in docs/mapping.md are true: every mapping, table and rule
//! list in it compiles beside the shipped mappings, and the tutorial's
//! command prints exactly the output the guide shows.
//!
//! Markers in the guide (HTML comments, invisible when rendered):
//! `<!-- doc-test: file PATH -->` before a code block writes it to PATH;
//! `<!-- doc-test: run ARGS -->` before a `sh` block runs `caduceus ARGS`
//! and compares stdout with the next `json` block;
//! `<!-- doc-test: rules SOURCE TARGET -->` compiles a `rules:` block as a
//! segment mapping. Every other ```yaml block that is a mapping
//! (`mapping:`) or a table (`table:`) replaces the shipped file of the same
//! name in a copy of `mappings/` and must compile there.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use caduceus::mapping::Registry;
use common::*;

struct Block {
    marker: Option<String>,
    lang: String,
    body: String,
}

fn blocks(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut marker = None;
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some(m) = line
            .trim()
            .strip_prefix("<!-- doc-test:")
            .and_then(|m| m.strip_suffix("-->"))
        {
            marker = Some(m.trim().to_string());
        } else if let Some(lang) = line.strip_prefix("```") {
            let mut body = String::new();
            for l in lines.by_ref() {
                if l.starts_with("```") {
                    break;
                }
                body.push_str(l);
                body.push('\n');
            }
            out.push(Block {
                marker: marker.take(),
                lang: lang.trim().to_string(),
                body,
            });
        }
    }
    out
}

/// The file under `dir` whose first line is `key: name`, if any.
fn file_declaring(dir: &Path, key: &str, name: &str) -> Option<PathBuf> {
    let want = format!("{key}: {name}");
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).ok()?.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read_to_string(&p)
                .ok()
                .is_some_and(|t| t.lines().next() == Some(want.as_str()))
            {
                return Some(p);
            }
        }
    }
    None
}

fn guide() -> Vec<Block> {
    blocks(&std::fs::read_to_string(repo().join("docs/mapping.md")).unwrap())
}

#[test]
fn the_tutorial_runs_as_written() {
    let dir = tempfile::tempdir().unwrap();
    copy_mappings(&dir.path().join("mappings"));
    let all = guide();
    let mut ran = 0;
    for (i, b) in all.iter().enumerate() {
        let Some(m) = &b.marker else { continue };
        if let Some(path) = m.strip_prefix("file ") {
            let p = dir.path().join(path.trim());
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, &b.body).unwrap();
        } else if let Some(args) = m.strip_prefix("run ") {
            let expected = all[i + 1..]
                .iter()
                .find(|b| b.lang == "json")
                .expect("a json block after the command");
            let out = Command::new(BIN)
                .current_dir(dir.path())
                .args(args.split_whitespace())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "caduceus {args}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let want: serde_json::Value = serde_json::from_str(&expected.body).unwrap();
            assert_eq!(got, want, "caduceus {args}");
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                expected.body.trim(),
                "same text, same element order"
            );
            ran += 1;
        }
    }
    assert!(ran >= 1, "the guide has a runnable example");
}

#[test]
fn every_mapping_and_table_in_the_guide_compiles() {
    let mut checked = 0;
    for b in guide() {
        if b.lang != "yaml" || b.marker.as_deref().is_some_and(|m| m.starts_with("file ")) {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let maps = dir.path().join("mappings");
        copy_mappings(&maps);
        let first = b.body.lines().next().unwrap_or("");
        let (file, body) =
            if let Some(rules) = b.marker.as_deref().and_then(|m| m.strip_prefix("rules ")) {
                let mut parts = rules.split_whitespace();
                let (source, target) = (parts.next().unwrap(), parts.next().unwrap());
                (
                    maps.join("local/Doc.yaml"),
                    format!(
                        "mapping: Doc\nkind: segment\nsource: {source}\ntarget: {target}\n{}",
                        b.body
                    ),
                )
            } else if let Some(name) = first.strip_prefix("mapping: ") {
                (
                    file_declaring(&maps, "mapping", name.trim())
                        .unwrap_or_else(|| maps.join("local/doc.yaml")),
                    b.body.clone(),
                )
            } else if let Some(name) = first.strip_prefix("table: ") {
                (
                    file_declaring(&maps.join("vocabulary"), "table", name.trim())
                        .unwrap_or_else(|| maps.join("vocabulary/doc.yaml")),
                    b.body.clone(),
                )
            } else {
                continue;
            };
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, body).unwrap();
        if let Err(errors) = Registry::load(&maps) {
            panic!(
                "a guide example does not compile:\n{}\n{}",
                b.body,
                errors
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        checked += 1;
    }
    assert!(checked >= 5, "{checked} examples checked");
}
