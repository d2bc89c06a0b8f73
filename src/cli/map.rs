//! `caduceus map run` and `caduceus map test`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};

use super::Cli;
use crate::config;
use crate::mapping::testing::{Outcome, run_cases};
use crate::mapping::{BundleType, Registry, RunOptions};

/// `map` subcommands.
#[derive(Subcommand, Debug)]
pub enum MapCommand {
    /// Translate one file and print the result.
    Run(RunArgs),
    /// Run the mapping test cases under mappings/tests/ (or PATH) and print a diff per failure.
    Test(TestArgs),
}

/// Bundle types on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum BundleArg {
    /// A transaction Bundle (default).
    Transaction,
    /// A message Bundle (MessageHeader first).
    Message,
}

/// `map run` options.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// A mapping name from mappings/ (e.g. hl7v2-fhir-r4) or a path to a mapping file.
    pub mapping: String,
    /// The input message, or a batch file (FHS/BHS or several messages: one result per message, as a JSON array).
    #[arg(long)]
    pub input: PathBuf,
    /// Bundle type.
    #[arg(long, value_enum)]
    pub bundle_type: Option<BundleArg>,
    /// Time zone for timestamps without an offset (IANA); default: the server config's.
    #[arg(long)]
    pub timezone: Option<String>,
    /// Print the fields of the input that no rule read.
    #[arg(long)]
    pub unread: bool,
    /// Print the result even when it is not valid FHIR R4 (to see what a mapping made).
    #[arg(long)]
    pub no_validate: bool,
    /// Fail on a message value no conversion can read (a date that is no date),
    /// rather than keep it in an `hl7v2-unreadable-value` extension.
    #[arg(long)]
    pub strict: bool,
}

/// `map test` options.
#[derive(Args, Debug)]
pub struct TestArgs {
    /// Only cases under this folder or this file.
    pub path: Option<PathBuf>,
    /// Write the actual output as the expected file where they differ (review the diff before committing!).
    #[arg(long)]
    pub accept: bool,
}

fn registry(cli: &Cli) -> anyhow::Result<(Registry, jiff::tz::TimeZone)> {
    let (dir, tz) = match config::load(&cli.config, &config::Overrides::default()) {
        Ok(l) => (l.mappings_dir, l.timezone),
        Err(_) => (PathBuf::from("mappings"), jiff::tz::TimeZone::UTC),
    };
    if !dir.is_dir() {
        anyhow::bail!(
            "no mappings folder at {} (run from the folder that holds config/ and mappings/, or pass --config)",
            config::display_path(&dir)
        );
    }
    match Registry::load(&dir) {
        Ok(r) => Ok((r, tz)),
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            anyhow::bail!(
                "{} error(s) in {}",
                errors.len(),
                config::display_path(&dir)
            )
        }
    }
}

/// Runs a `map` subcommand.
pub fn run(cli: &Cli, cmd: &MapCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        MapCommand::Run(a) => {
            let (reg, tz) = registry(cli)?;
            let Some(name) = reg.resolve_name(&a.mapping) else {
                eprintln!(
                    "caduceus: no mapping {:?} (known: {})",
                    a.mapping,
                    reg.mappings.keys().cloned().collect::<Vec<_>>().join(", ")
                );
                return Ok(ExitCode::from(1));
            };
            let input = std::fs::read(&a.input)
                .with_context(|| format!("reading {}", a.input.display()))?;
            let timezone = match &a.timezone {
                Some(t) => {
                    jiff::tz::TimeZone::get(t).with_context(|| format!("--timezone {t:?}"))?
                }
                None => tz,
            };
            let opts = RunOptions {
                bundle_type: a.bundle_type.map(|b| match b {
                    BundleArg::Transaction => BundleType::Transaction,
                    BundleArg::Message => BundleType::Message,
                }),
                timezone,
                validate: !a.no_validate,
                report_unread: a.unread,
                exhaustive: false,
                strict: a.strict,
            };
            // A batch file (FHS/BHS, or several MSH): each message is mapped
            // and the results are printed as a JSON array, one per message;
            // a message that fails is named on stderr and the rest still map.
            let messages: Vec<&[u8]> = match hl7v2::batch::split(&input) {
                Ok(split)
                    if split.messages.len() > 1
                        || split.file_header.is_some()
                        || !split.batch_headers.is_empty() =>
                {
                    split.messages.iter().map(|r| &input[r.clone()]).collect()
                }
                _ => vec![&input[..]],
            };
            let batch = messages.len() > 1
                || input.trim_ascii_start().starts_with(b"FHS")
                || input.trim_ascii_start().starts_with(b"BHS");
            let mut bundles = Vec::new();
            let mut failed = 0;
            for (i, m) in messages.iter().enumerate() {
                match reg.run(&name, m, &opts) {
                    Ok(out) => {
                        for k in &out.kept {
                            if batch {
                                eprintln!("message {}: kept, not read: {k}", i + 1);
                            } else {
                                eprintln!("kept, not read: {k}");
                            }
                        }
                        if a.unread {
                            for u in &out.unread {
                                if batch {
                                    eprintln!("message {}: unread: {u}", i + 1);
                                } else {
                                    eprintln!("unread: {u}");
                                }
                            }
                        }
                        bundles.push(out.value);
                    }
                    Err(e) if batch => {
                        failed += 1;
                        eprintln!("message {} of {}: {e}", i + 1, messages.len());
                    }
                    Err(e) => eprintln!("{e}"),
                }
            }
            match (batch, bundles.pop()) {
                (false, Some(one)) => println!("{}", fhir::json::to_string_pretty(&one)),
                (false, None) => return Ok(ExitCode::from(1)),
                (true, last) => {
                    bundles.extend(last);
                    println!(
                        "{}",
                        fhir::json::to_string_pretty(&serde_json::Value::Array(bundles))
                    );
                }
            }
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        MapCommand::Test(a) => {
            let (reg, _) = registry(cli)?;
            let results = run_cases(&reg, &reg.dir.join("tests"), a.path.as_deref(), a.accept);
            let mut failed = 0;
            for r in &results {
                let name = format!("{}/{}", r.mapping, r.case);
                match &r.outcome {
                    Outcome::Pass => println!("ok      {name}"),
                    Outcome::NoExpected => {
                        failed += 1;
                        println!(
                            "MISSING {name}: no {}.expected.json{}",
                            r.case,
                            if a.accept {
                                " (written)"
                            } else {
                                " (--accept writes it)"
                            }
                        );
                    }
                    Outcome::Error(e) => {
                        failed += 1;
                        println!("ERROR   {name}: {e}");
                    }
                    Outcome::Fail(diffs) => {
                        failed += 1;
                        println!(
                            "FAIL    {name}{}",
                            if a.accept {
                                " (expected file rewritten)"
                            } else {
                                ""
                            }
                        );
                        for d in diffs {
                            println!(
                                "          {}: expected {}, got {}",
                                d.path, d.expected, d.got
                            );
                        }
                    }
                }
                for u in &r.unread {
                    println!(
                        "          unread: {u} holds a value no rule reads (map it, or list it under `ignore:`)"
                    );
                }
                for k in &r.kept {
                    println!("          kept, not read: {k}");
                }
            }
            println!("{} case(s), {} failed", results.len(), failed);
            Ok(if failed == 0 && !results.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}
