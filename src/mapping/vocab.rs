//! Vocabulary: lookup tables (YAML) and FHIR ConceptMaps (JSON) that live
//! beside the mappings, under `mappings/vocabulary/`.
//!
//! Owns loading both into one kind of [`Table`] and translating a code,
//! with the unmapped-code policy: `pass` (keep the code as it is),
//! `default` (use the table's default), `error` (the message goes to
//! `error` naming the code and where it came from). A YAML table sets its
//! policy with `unmapped:`; a ConceptMap with `group.unmapped.mode`
//! (`provided` = pass, `fixed` = default); a rule may override either.
//!
//! ```yaml
//! table: HL7CodingSystem
//! description: HL7 table 0396 names to FHIR system URIs
//! unmapped: pass
//! codes:
//!   LN: http://loinc.org
//!   SCT: http://snomed.info/sct
//! ```

use rustc_hash::FxHashMap as HashMap;
use std::path::{Path, PathBuf};

use crate::config::ConfigError;

use super::yaml::{self, YValue};

/// What to do with a code the table does not have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unmapped {
    /// Keep the source code.
    Pass,
    /// Use the table's default.
    Default,
    /// Fail the message.
    Error,
}

impl Unmapped {
    /// Reads `pass` / `default` / `error`.
    pub fn parse(s: &str) -> Option<Unmapped> {
        Some(match s {
            "pass" => Unmapped::Pass,
            "default" => Unmapped::Default,
            "error" => Unmapped::Error,
            _ => return None,
        })
    }
}

/// A target of a translation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Target code.
    pub code: String,
    /// Target display.
    pub display: Option<String>,
    /// Target system.
    pub system: Option<String>,
}

/// A translation, borrowed from its table (a code passed through as sent
/// is the one thing it owns).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetRef<'t> {
    /// Target code.
    pub code: std::borrow::Cow<'t, str>,
    /// Target display.
    pub display: Option<&'t str>,
    /// Target system.
    pub system: Option<&'t str>,
}

impl<'t> From<&'t Target> for TargetRef<'t> {
    fn from(t: &'t Target) -> TargetRef<'t> {
        TargetRef {
            code: std::borrow::Cow::Borrowed(&t.code),
            display: t.display.as_deref(),
            system: t.system.as_deref(),
        }
    }
}

/// One table.
#[derive(Clone, Debug)]
pub struct Table {
    /// Its name (`lookup(NAME, ...)`).
    pub name: String,
    /// The file it came from.
    pub file: PathBuf,
    /// Source code → target.
    pub entries: HashMap<String, Target>,
    /// Policy when a code is missing.
    pub unmapped: Unmapped,
    /// The default target.
    pub default: Option<Target>,
    /// A source code's display (lower case) → that code, for the displays
    /// exactly one code of the table has (a ConceptMap's `element.display`).
    pub displays: HashMap<String, String>,
}

impl Table {
    /// Translates a code per the policy (`policy` overrides the table's).
    /// `Ok(None)` means: no value (nothing to write).
    pub fn translate(
        &self,
        code: &str,
        policy: Option<Unmapped>,
    ) -> Result<Option<Target>, String> {
        Ok(self.translate_ref(code, policy)?.map(|t| Target {
            code: t.code.into_owned(),
            display: t.display.map(String::from),
            system: t.system.map(String::from),
        }))
    }

    /// Like [`Table::translate`], borrowing from the table.
    pub fn translate_ref(
        &self,
        code: &str,
        policy: Option<Unmapped>,
    ) -> Result<Option<TargetRef<'_>>, String> {
        if let Some(t) = self.entries.get(code) {
            return Ok(Some(t.into()));
        }
        // Codes are often sent in the other case.
        if code.chars().any(char::is_lowercase)
            && let Some(t) = self.entries.get(&code.to_uppercase())
        {
            return Ok(Some(t.into()));
        }
        // Some senders write a code's display instead of the code
        // (`Female`, `Inpatient`, `Married`, as Cerner-style aliases do):
        // that is the code, when exactly one code of the table has it.
        if !self.displays.is_empty()
            && let Some(t) = self
                .displays
                .get(&code.trim().to_lowercase())
                .and_then(|c| self.entries.get(c))
        {
            return Ok(Some(t.into()));
        }
        match policy.unwrap_or(self.unmapped) {
            Unmapped::Pass => Ok(Some(TargetRef {
                code: std::borrow::Cow::Owned(code.to_string()),
                display: None,
                system: None,
            })),
            Unmapped::Default => Ok(self.default.as_ref().map(TargetRef::from)),
            Unmapped::Error => Err(format!("code {code:?} is not in table {}", self.name)),
        }
    }
}

/// Every table, by name.
#[derive(Clone, Debug, Default)]
pub struct Vocabulary {
    tables: HashMap<String, std::sync::Arc<Table>>,
}

impl Vocabulary {
    /// A table by name.
    pub fn get(&self, name: &str) -> Option<&Table> {
        self.tables.get(name).map(|t| &**t)
    }

    /// A table by name, shared (a compiled call holds its table, so the
    /// runtime looks nothing up by name).
    pub fn shared(&self, name: &str) -> Option<std::sync::Arc<Table>> {
        self.tables.get(name).cloned()
    }

    /// Table names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.tables.keys().map(String::as_str).collect();
        v.sort();
        v
    }

    /// Loads every `.yaml` table and `.json` ConceptMap under `dir`.
    pub fn load(dir: &Path) -> Result<Vocabulary, Vec<ConfigError>> {
        let mut v = Vocabulary::default();
        let mut errors = Vec::new();
        let mut files = Vec::new();
        walk(dir, &mut files);
        files.sort();
        for f in files {
            let text = match std::fs::read_to_string(&f) {
                Ok(t) => t,
                Err(e) => {
                    errors.push(ConfigError::file(&f, format!("cannot read: {e}")));
                    continue;
                }
            };
            let table = if f.extension().is_some_and(|x| x == "json") {
                concept_map(&f, &text)
            } else {
                yaml_table(&f, &text)
            };
            match table {
                Ok(t) => {
                    if let Some(other) = v.tables.get(&t.name) {
                        errors.push(ConfigError::file(
                            &f,
                            format!(
                                "table {:?} is also defined in {}",
                                t.name,
                                crate::config::display_path(&other.file)
                            ),
                        ));
                    } else {
                        v.tables.insert(t.name.clone(), std::sync::Arc::new(t));
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(v)
        } else {
            Err(errors)
        }
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else if p
            .extension()
            .is_some_and(|x| x == "json" || x == "yaml" || x == "yml")
        {
            out.push(p);
        }
    }
}

fn concept_map(file: &Path, text: &str) -> Result<Table, ConfigError> {
    let v = fhir::json::parse(text.as_bytes()).map_err(|e| ConfigError {
        file: file.to_path_buf(),
        line: Some(e.line as u64),
        column: Some(e.column as u64),
        message: e.message,
    })?;
    if v.get("resourceType").and_then(|r| r.as_str()) != Some("ConceptMap") {
        return Err(ConfigError::file(
            file,
            "a JSON vocabulary file must be a FHIR ConceptMap",
        ));
    }
    let name = v
        .get("name")
        .and_then(|n| n.as_str())
        .ok_or_else(|| {
            ConfigError::file(
                file,
                "ConceptMap.name is required: it is the name rules use",
            )
        })?
        .to_string();
    let mut entries = HashMap::default();
    let mut unmapped = Unmapped::Pass;
    let mut default = None;
    // Display (lower case) → its code; `None` once two codes share it.
    let mut displays: HashMap<String, Option<String>> = HashMap::default();
    for g in v
        .get("group")
        .and_then(|g| g.as_array())
        .into_iter()
        .flatten()
    {
        let system = g.get("target").and_then(|t| t.as_str()).map(String::from);
        for el in g
            .get("element")
            .and_then(|e| e.as_array())
            .into_iter()
            .flatten()
        {
            let Some(code) = el.get("code").and_then(|c| c.as_str()) else {
                continue;
            };
            if let Some(d) = el.get("display").and_then(|d| d.as_str()) {
                let d = d.trim().to_lowercase();
                if !d.is_empty() && d != code.to_lowercase() {
                    displays
                        .entry(d)
                        .and_modify(|c| {
                            if c.as_deref() != Some(code) {
                                *c = None;
                            }
                        })
                        .or_insert_with(|| Some(code.to_string()));
                }
            }
            let Some(t) = el
                .get("target")
                .and_then(|t| t.as_array())
                .and_then(|t| t.first())
            else {
                continue;
            };
            let Some(tc) = t.get("code").and_then(|c| c.as_str()) else {
                continue;
            };
            entries.entry(code.to_string()).or_insert(Target {
                code: tc.to_string(),
                display: t.get("display").and_then(|d| d.as_str()).map(String::from),
                system: system.clone(),
            });
        }
        if let Some(u) = g.get("unmapped") {
            match u.get("mode").and_then(|m| m.as_str()) {
                Some("fixed") => {
                    unmapped = Unmapped::Default;
                    default = u.get("code").and_then(|c| c.as_str()).map(|c| Target {
                        code: c.to_string(),
                        display: u.get("display").and_then(|d| d.as_str()).map(String::from),
                        system: system.clone(),
                    });
                }
                Some("provided") => unmapped = Unmapped::Pass,
                _ => {}
            }
        }
    }
    // Only displays of codes the table translates, and no display that is
    // itself one of its codes (`N` the code wins over `n` a display).
    let displays = displays
        .into_iter()
        .filter_map(|(d, c)| Some((d, c?)))
        .filter(|(d, c)| entries.contains_key(c) && !entries.contains_key(&d.to_uppercase()))
        .collect();
    Ok(Table {
        name,
        file: file.to_path_buf(),
        entries,
        unmapped,
        default,
        displays,
    })
}

fn yaml_table(file: &Path, text: &str) -> Result<Table, ConfigError> {
    let root = yaml::parse(text).map_err(|e| ConfigError::from_yaml(file, &e))?;
    let at = |n: &yaml::YNode, m: String| ConfigError {
        file: file.to_path_buf(),
        line: Some(n.pos.line),
        column: Some(n.pos.column),
        message: m,
    };
    let YValue::Map(entries) = &root.value else {
        return Err(at(
            &root,
            "a lookup table is a mapping with `table:` and `codes:`".into(),
        ));
    };
    let mut name = None;
    let mut codes = HashMap::default();
    let mut unmapped = Unmapped::Pass;
    let mut default = None;
    let mut system = None;
    for (k, v) in entries {
        match k.as_str() {
            Some("table") => name = v.as_str().map(String::from),
            Some("description") => {}
            Some("system") => system = v.as_str().map(String::from),
            Some("unmapped") => {
                unmapped = v
                    .as_str()
                    .and_then(Unmapped::parse)
                    .ok_or_else(|| at(v, "unmapped: expected pass, default or error".into()))?
            }
            Some("default") => default = v.as_str().map(String::from),
            Some("codes") => {
                let YValue::Map(pairs) = &v.value else {
                    return Err(at(v, "codes: expected `source: target` pairs".into()));
                };
                for (ck, cv) in pairs {
                    let (Some(src), Some(dst)) = (ck.as_str(), cv.as_str()) else {
                        return Err(at(ck, "codes: each entry is `source: target`".into()));
                    };
                    codes.insert(src.to_string(), dst.to_string());
                }
            }
            _ => {
                return Err(at(
                    k,
                    format!(
                        "unknown key {:?} (expected table, description, system, unmapped, default, codes)",
                        k.as_str().unwrap_or("?")
                    ),
                ));
            }
        }
    }
    let name = name.ok_or_else(|| at(&root, "`table:` (the name rules use) is required".into()))?;
    let mk = |c: String| Target {
        code: c,
        display: None,
        system: system.clone(),
    };
    if unmapped == Unmapped::Default && default.is_none() {
        return Err(at(
            &root,
            "unmapped: default needs a `default:` code".into(),
        ));
    }
    Ok(Table {
        name,
        file: file.to_path_buf(),
        entries: codes.into_iter().map(|(k, v)| (k, mk(v))).collect(),
        unmapped,
        default: default.map(mk),
        displays: HashMap::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_and_concept_maps() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("sys.yaml"),
            "table: Sys\nunmapped: error\ncodes:\n  LN: http://loinc.org\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("sex.json"),
            r#"{"resourceType":"ConceptMap","name":"Sex","group":[{"target":"http://hl7.org/fhir/administrative-gender","element":[{"code":"F","target":[{"code":"female","equivalence":"equivalent"}]},{"code":"X","target":[{"equivalence":"unmatched"}]}],"unmapped":{"mode":"fixed","code":"unknown"}}]}"#,
        )
        .unwrap();
        let v = Vocabulary::load(dir.path()).unwrap();
        let sys = v.get("Sys").unwrap();
        assert_eq!(
            sys.translate("LN", None).unwrap().unwrap().code,
            "http://loinc.org"
        );
        assert!(
            sys.translate("XX", None)
                .unwrap_err()
                .contains("not in table Sys")
        );
        assert_eq!(
            sys.translate("XX", Some(Unmapped::Pass))
                .unwrap()
                .unwrap()
                .code,
            "XX"
        );
        let sex = v.get("Sex").unwrap();
        let f = sex.translate("f", None).unwrap().unwrap();
        assert_eq!(
            (f.code.as_str(), f.system.as_deref()),
            ("female", Some("http://hl7.org/fhir/administrative-gender"))
        );
        assert_eq!(sex.translate("X", None).unwrap().unwrap().code, "unknown");
        std::fs::write(dir.path().join("bad.yaml"), "table: B\nunmapped: maybe\n").unwrap();
        assert!(Vocabulary::load(dir.path()).is_err());
        std::fs::remove_file(dir.path().join("bad.yaml")).unwrap();
        // A code's display sent instead of the code is that code, when one
        // code alone has it; a display two codes share means neither.
        std::fs::write(
            dir.path().join("class.json"),
            r#"{"resourceType":"ConceptMap","name":"Class","group":[{"target":"http://terminology.hl7.org/CodeSystem/v3-ActCode","element":[{"code":"I","display":"Inpatient","target":[{"code":"IMP"}]},{"code":"E","display":"Emergency","target":[{"code":"EMER"}]},{"code":"U","display":"Unknown","target":[{"code":"UNK1"}]},{"code":"X","display":"unknown","target":[{"code":"UNK2"}]}]}]}"#,
        )
        .unwrap();
        let v = Vocabulary::load(dir.path()).unwrap();
        let class = v.get("Class").unwrap();
        let code = |c: &str| {
            class
                .translate(c, Some(Unmapped::Error))
                .map(|t| t.map(|t| t.code))
        };
        assert_eq!(code("Inpatient"), Ok(Some("IMP".into())));
        assert_eq!(code(" EMERGENCY "), Ok(Some("EMER".into())));
        assert!(code("Unknown").is_err(), "two codes share the display");
        assert!(code("Inpat").is_err());
        std::fs::write(dir.path().join("bad.yaml"), "table: B\nunmapped: maybe\n").unwrap();
        let e = Vocabulary::load(dir.path()).unwrap_err();
        assert_eq!((e[0].line, e[0].column), (Some(2), Some(11)));
    }
}
