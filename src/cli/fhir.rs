//! `caduceus fhir validate`: check FHIR R4 files the way the FHIR intake
//! checks a request body (same parser, same validator), so an engineer can
//! see what a partner's payload would get before sending it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::connectors::fhir::intake::{Syntax, parse_tree};

/// `fhir` subcommands.
#[derive(Subcommand, Debug)]
pub enum FhirCommand {
    /// Validate FHIR R4 resources or Bundles (JSON or XML); exit 1 when any has an error.
    Validate(ValidateArgs),
}

/// `fhir validate` options.
#[derive(Args, Debug)]
pub struct ValidateArgs {
    /// Files (`.xml` is read as FHIR XML, anything else as JSON unless it starts with `<`).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Print one OperationOutcome (JSON) per file instead of lines.
    #[arg(long)]
    pub json: bool,
}

/// Runs a `fhir` subcommand.
pub fn run(cmd: &FhirCommand) -> anyhow::Result<ExitCode> {
    let FhirCommand::Validate(a) = cmd;
    let mut failed = false;
    for file in &a.files {
        let body = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let xml = file
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("xml"))
            || body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<');
        let syntax = if xml { Syntax::Xml } else { Syntax::Json };
        let issues = match parse_tree(&body, syntax) {
            Ok(value) => fhir::validate::validate_tree(&value),
            Err(refusal) => refusal.issues,
        };
        failed |= fhir::validate::has_errors(&issues);
        let name = file.display();
        if a.json {
            let outcome = serde_json::json!({
                "resourceType": "OperationOutcome",
                "issue": if issues.is_empty() {
                    vec![serde_json::json!({"severity": "information", "code": "informational", "diagnostics": "valid FHIR R4"})]
                } else {
                    issues.iter().map(|i| {
                        let mut v = serde_json::json!({"severity": i.severity.as_str(), "code": i.code, "diagnostics": i.message});
                        if !i.location.is_empty() {
                            v["expression"] = serde_json::json!([i.location]);
                        }
                        v
                    }).collect()
                },
            });
            println!("{}", fhir::json::to_string(&outcome));
        } else if issues.is_empty() {
            println!("{name}: ok");
        } else {
            for i in &issues {
                println!("{name}: {i}");
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
