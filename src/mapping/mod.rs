//! Mappings: declarative translation files, compiled once, run per message.
//!
//! Owns the mapping language and its tools: loading `mappings/` (mapping
//! files, `structures.txt`, `vocabulary/`) into a [`Registry`], running a
//! mapping on a message, and the test runner behind `caduceus map test`.
//!
//! # The syntax, and why
//!
//! Mapping files are YAML: a header (`mapping`, `kind`, `source`,
//! `target`) and a list of rules `target: expression`, where targets are
//! FHIR paths (counting from 0, as FHIRPath does: `name[0].family`,
//! `identifier[+]` to append) and expressions use HL7 paths as HL7 writes
//! them (`PID-5.1`, `PID-3[*]`, `OBX[*]-5`, `.1` inside a called mapping),
//! a small set of functions (`date`, `lookup`, `ref`...) and calls to
//! other mappings (`XPN_HumanName(PID-5[*])`). Rules may carry `when:`
//! (a condition) and `for:` (iterate over repetitions, segments or segment
//! groups). See `docs/mapping.md`.
//!
//! We wrote a small language rather than embedding CEL or jaq (DESIGN.md
//! §5) because neither reads HL7 paths: both would need every HL7 value
//! copied into JSON first (losing escapes, repetitions and segment groups)
//! and both would type-check nothing about FHIR. This one is compiled once
//! against the R4 schema and the message structures: a misspelt element,
//! a date written into a string, an unknown table or a cycle between
//! mappings is a `file:line:col` error at `caduceus check`, not a surprise
//! in production. It is YAML so that integration engineers diff and review
//! it like the rest of the config; the expression language is the same one
//! channel filters use in spirit (HL7 paths, `=`, `in`, `and`/`or`/`not`).
//!
//! - `yaml`: YAML with positions; `expr`: expression parsing.
//! - `compile`: files → plans, with every check; `functions`: the registry.
//! - `absence`: which rules need not run when what they read is empty.
//! - `runtime`: running plans; `datetime`: HL7 → FHIR dates and times.
//! - `structure`: message structures and segment groups; `vocab`: tables.
//! - `testing`: `map test` (cases, structural diffs, unread fields).
//! - `live`: the server's mappings, reloaded when the folder changes.

pub mod absence;
pub mod compile;
pub mod datetime;
pub mod expr;
pub mod functions;
pub mod live;
pub mod mend;
pub mod runtime;
pub mod structure;
pub mod testing;
pub mod vocab;
pub mod yaml;

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use compile::{BundleType, Mapping};
pub use runtime::{JsonOutput, Kept, MapError, Output, RunOptions};

use crate::config::ConfigError;

/// Everything under `mappings/`, compiled.
#[derive(Debug)]
pub struct Registry {
    /// Mappings by name.
    pub mappings: BTreeMap<String, Arc<Mapping>>,
    /// The same mappings in name order: a compiled call finds the mapping it
    /// calls by its place here, not by its name.
    pub list: Vec<Arc<Mapping>>,
    /// Lookup tables and ConceptMaps.
    pub vocab: vocab::Vocabulary,
    /// Message structures.
    pub structures: structure::Structures,
    /// The folder.
    pub dir: PathBuf,
    /// A digest of every file, recorded with each message mapped.
    pub version: String,
}

fn digest(dir: &Path) -> String {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    if p.file_name().is_some_and(|n| n == "tests") {
                        continue;
                    }
                    walk(&p, out);
                } else {
                    out.push(p);
                }
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, &mut files);
    files.sort();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for f in files {
        f.strip_prefix(dir).unwrap_or(&f).hash(&mut h);
        std::fs::read(&f).unwrap_or_default().hash(&mut h);
    }
    format!("{:016x}", h.finish())
}

impl Registry {
    /// Loads and compiles everything under `dir`.
    pub fn load(dir: &Path) -> Result<Registry, Vec<ConfigError>> {
        let mut errors = Vec::new();
        let structures_file = dir.join("structures.txt");
        let structures = match std::fs::read_to_string(&structures_file) {
            Ok(t) => match structure::Structures::parse(&t) {
                Ok(s) => s,
                Err((line, m)) => {
                    errors.push(ConfigError {
                        file: structures_file.clone(),
                        line: Some(line as u64),
                        column: None,
                        message: m,
                    });
                    structure::Structures::default()
                }
            },
            Err(_) => structure::Structures::default(),
        };
        let vocab = match vocab::Vocabulary::load(&dir.join("vocabulary")) {
            Ok(v) => v,
            Err(e) => {
                errors.extend(e);
                vocab::Vocabulary::default()
            }
        };
        let mappings = match compile::compile_dir(dir, &vocab, &structures) {
            Ok(m) => m,
            Err(e) => {
                errors.extend(e);
                BTreeMap::new()
            }
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        // Link each call to the mapping it calls.
        let list: Vec<Arc<Mapping>> = mappings.values().cloned().collect();
        let place: BTreeMap<&str, usize> = mappings
            .keys()
            .enumerate()
            .map(|(i, k)| (k.as_str(), i))
            .collect();
        for m in &list {
            compile::each_expr(m, &mut |e| {
                if let compile::CNode::Sub(name, _, at) = &e.node
                    && let Some(i) = place.get(name.as_str())
                {
                    let _ = at.set(*i);
                }
            });
        }
        Ok(Registry {
            list,
            mappings,
            vocab,
            structures,
            dir: dir.to_path_buf(),
            version: digest(dir),
        })
    }

    /// Resolves a mapping argument: a name, or a path to a mapping file.
    pub fn resolve_name(&self, arg: &str) -> Option<String> {
        if self.mappings.contains_key(arg) {
            return Some(arg.to_string());
        }
        let p = std::path::absolute(arg).ok()?;
        self.mappings
            .values()
            .find(|m| std::path::absolute(m.file.as_ref()).ok().as_deref() == Some(p.as_path()))
            .map(|m| m.name.clone())
    }
}
