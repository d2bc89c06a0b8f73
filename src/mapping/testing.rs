//! `caduceus map test`: mapping test cases, structural diffs, and the
//! report of input fields no rule reads.
//!
//! Owns finding cases (`mappings/tests/<mapping>/<case>.hl7` with
//! `<case>.expected.json` beside it), running them, and comparing results
//! element by element (`Bundle.entry[2].resource.birthDate: expected
//! "1970-01-01", got "1970"`). A folder may hold `options.yaml` with a
//! `timezone:` for its cases (default UTC).

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{Registry, RunOptions};

/// One difference between expected and actual output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diff {
    /// Where (`Bundle.entry[0].resource.name[0].family`).
    pub path: String,
    /// Expected (JSON), or `(absent)`.
    pub expected: String,
    /// Got (JSON), or `(absent)`.
    pub got: String,
}

/// How a case went.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// Output equals the expected file.
    Pass,
    /// Output differs.
    Fail(Vec<Diff>),
    /// The mapping failed.
    Error(String),
    /// There is no expected file yet.
    NoExpected,
}

/// One case's result.
#[derive(Clone, Debug)]
pub struct CaseResult {
    /// Mapping name (the folder).
    pub mapping: String,
    /// Case name.
    pub case: String,
    /// Input file.
    pub input: PathBuf,
    /// Outcome.
    pub outcome: Outcome,
    /// Input fields with a value that no rule reads.
    pub unread: Vec<String>,
    /// Values no conversion could read, kept as extensions.
    pub kept: Vec<super::Kept>,
    /// The output, when the mapping ran.
    pub output: Option<Value>,
}

/// Compares two JSON values; differences in document order.
pub fn diff(expected: &Value, got: &Value, path: &str, out: &mut Vec<Diff>) {
    if out.len() >= 50 {
        return;
    }
    let show = |v: Option<&Value>| {
        v.map(|v| serde_json::to_string(v).unwrap_or_default())
            .unwrap_or_else(|| "(absent)".into())
    };
    match (expected, got) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, va) in a {
                let p = format!("{path}.{k}");
                match b.get(k) {
                    Some(vb) => diff(va, vb, &p, out),
                    None => out.push(Diff {
                        path: p,
                        expected: show(Some(va)),
                        got: show(None),
                    }),
                }
            }
            for (k, vb) in b {
                if !a.contains_key(k) {
                    out.push(Diff {
                        path: format!("{path}.{k}"),
                        expected: show(None),
                        got: show(Some(vb)),
                    });
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for i in 0..a.len().max(b.len()) {
                let p = format!("{path}[{i}]");
                match (a.get(i), b.get(i)) {
                    (Some(x), Some(y)) => diff(x, y, &p, out),
                    (x, y) => out.push(Diff {
                        path: p,
                        expected: show(x),
                        got: show(y),
                    }),
                }
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(Diff {
            path: path.to_string(),
            expected: show(Some(a)),
            got: show(Some(b)),
        }),
    }
}

fn options(dir: &Path) -> RunOptions {
    let mut o = RunOptions {
        report_unread: true,
        ..RunOptions::default()
    };
    if let Ok(text) = std::fs::read_to_string(dir.join("options.yaml"))
        && let Ok(root) = super::yaml::parse(&text)
        && let Some(tz) = root.get("timezone").and_then(|t| t.as_str())
        && let Ok(z) = jiff::tz::TimeZone::get(tz)
    {
        o.timezone = z;
    }
    o
}

/// Finds and runs cases under `tests_dir` (or only those under `only`).
/// With `accept`, writes the actual output as the expected file.
pub fn run_cases(
    reg: &Registry,
    tests_dir: &Path,
    only: Option<&Path>,
    accept: bool,
) -> Vec<CaseResult> {
    let mut results = Vec::new();
    let Ok(rd) = std::fs::read_dir(tests_dir) else {
        return results;
    };
    let mut dirs: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let mapping = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let opts = options(&dir);
        let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "hl7"))
                    .collect()
            })
            .unwrap_or_default();
        inputs.sort();
        for input in inputs {
            if let Some(o) = only {
                let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
                if !abs(&input).starts_with(abs(o)) {
                    continue;
                }
            }
            let case = input
                .file_stem()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let expected_file = input.with_file_name(format!("{case}.expected.json"));
            let data = std::fs::read(&input).unwrap_or_default();
            let (outcome, unread, kept, output) = match reg.run(&mapping, &data, &opts) {
                Err(e) => (Outcome::Error(e.to_string()), Vec::new(), Vec::new(), None),
                Ok(out) => {
                    let outcome = match std::fs::read(&expected_file) {
                        Err(_) => Outcome::NoExpected,
                        Ok(bytes) => match fhir::json::parse(&bytes) {
                            Err(e) => Outcome::Error(format!("{}: {e}", expected_file.display())),
                            Ok(expected) => {
                                let mut d = Vec::new();
                                let root = out
                                    .value
                                    .get("resourceType")
                                    .and_then(Value::as_str)
                                    .unwrap_or("")
                                    .to_string();
                                diff(&expected, &out.value, &root, &mut d);
                                if d.is_empty() {
                                    Outcome::Pass
                                } else {
                                    Outcome::Fail(d)
                                }
                            }
                        },
                    };
                    if accept && !matches!(outcome, Outcome::Pass) {
                        let _ = std::fs::write(
                            &expected_file,
                            fhir::json::to_string_pretty(&out.value) + "\n",
                        );
                    }
                    (outcome, out.unread, out.kept, Some(out.value))
                }
            };
            results.push(CaseResult {
                mapping: mapping.clone(),
                case,
                input,
                outcome,
                unread,
                kept,
                output,
            });
        }
    }
    results
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn structural_diffs() {
        let mut d = Vec::new();
        diff(
            &json!({"a": [1, 2], "b": {"c": "x"}, "gone": 1}),
            &json!({"a": [1, 3, 4], "b": {"c": "y"}, "new": true}),
            "R",
            &mut d,
        );
        let text: Vec<String> = d
            .iter()
            .map(|x| format!("{}: {} vs {}", x.path, x.expected, x.got))
            .collect();
        assert_eq!(
            text,
            [
                "R.a[1]: 2 vs 3",
                "R.a[2]: (absent) vs 4",
                "R.b.c: \"x\" vs \"y\"",
                "R.gone: 1 vs (absent)",
                "R.new: (absent) vs true"
            ]
        );
    }
}
