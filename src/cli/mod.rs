//! The `caduceus` command line: argument parsing and output, nothing else.
//! Each subcommand calls the library; errors carry context (`anyhow`) here,
//! at the binary's edge.

pub mod bench;
pub mod certs;
pub mod fhir;
pub mod map;
pub mod messages;
pub mod send;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::config::{self, Overrides};

/// Caduceus, a healthcare integration gateway.
#[derive(Parser, Debug)]
#[command(name = "caduceus", version, about, long_about = None)]
pub struct Cli {
    /// The server config file.
    #[arg(
        long,
        global = true,
        env = "CADUCEUS_CONFIG",
        default_value = "config/caduceus.yaml"
    )]
    pub config: PathBuf,
    /// The data directory (store, lock, ports.json); overrides the config's `data_dir`.
    #[arg(long, global = true, env = "CADUCEUS_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run everything the config names.
    Serve(ServeArgs),
    /// Validate config, connectors and mappings; print `file:line: message` per problem.
    Check,
    /// Send messages (a test client).
    #[command(subcommand)]
    Send(send::SendCommand),
    /// Load tools.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Read and reprocess stored messages.
    #[command(subcommand)]
    Messages(messages::MessagesCommand),
    /// Run and test mappings.
    #[command(subcommand)]
    Map(map::MapCommand),
    /// Certificates.
    #[command(subcommand)]
    Certs(certs::CertsCommand),
    /// Validate FHIR R4 files as the FHIR intake would.
    #[command(subcommand)]
    Fhir(fhir::FhirCommand),
}

/// `serve` options.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Override a listen address: NAME=HOST:PORT, where NAME is a listener
    /// from the server config (`http`, `mllp`) or a channel with its own
    /// address. Port 0 picks a free port (see <data_dir>/ports.json).
    #[arg(long = "listen", env = "CADUCEUS_LISTEN", value_delimiter = ',', value_parser = parse_listen)]
    pub listen: Vec<(String, String)>,
}

fn parse_listen(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(n, a)| (n.trim().to_string(), a.trim().to_string()))
        .filter(|(n, a)| !n.is_empty() && !a.is_empty())
        .ok_or_else(|| format!("expected NAME=HOST:PORT, got {s:?}"))
}

impl Cli {
    fn overrides(&self, listen: Vec<(String, String)>) -> Overrides {
        Overrides {
            data_dir: self.data_dir.clone(),
            listen,
        }
    }

    /// The data directory for commands that only read the store: the flag,
    /// else the config's, else `./data`.
    pub fn resolve_data_dir(&self) -> PathBuf {
        if let Some(d) = &self.data_dir {
            return d.clone();
        }
        match config::load(&self.config, &self.overrides(Vec::new())) {
            Ok(l) => l.data_dir,
            Err(_) => PathBuf::from("data"),
        }
    }
}

/// Runs the command line.
pub fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match &cli.command {
        Command::Serve(args) => {
            let loaded = match config::load(&cli.config, &cli.overrides(args.listen.clone())) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("{e}");
                    eprintln!(
                        "caduceus: not starting: the configuration has errors (run `caduceus check`)"
                    );
                    return Ok(ExitCode::from(1));
                }
            };
            let json = loaded.server.log.format == config::server::LogFormat::Json;
            crate::telemetry::init_tracing(&loaded.server.log.level, json);
            let rt = runtime()?;
            match rt.block_on(crate::server::serve(loaded)) {
                Ok(()) => Ok(ExitCode::SUCCESS),
                Err(e) => {
                    eprintln!("caduceus: {e}");
                    Ok(ExitCode::from(1))
                }
            }
        }
        Command::Check => check(&cli),
        Command::Send(c) => send::run(c),
        Command::Bench(c) => bench::run(c),
        Command::Messages(c) => messages::run(&cli, c),
        Command::Map(c) => map::run(&cli, c),
        Command::Certs(c) => certs::run(c),
        Command::Fhir(c) => fhir::run(c),
    }
}

fn check(cli: &Cli) -> anyhow::Result<ExitCode> {
    let loaded = match config::load(&cli.config, &cli.overrides(Vec::new())) {
        Ok(l) => l,
        Err(e) => {
            println!("{e}");
            return Ok(ExitCode::from(1));
        }
    };
    let mappings = crate::mapping::Registry::load(&loaded.mappings_dir);
    let channels = crate::pipeline::channel::compile_all(&loaded, mappings.as_ref().ok());
    let mut errors = Vec::new();
    if let Err(e) = &channels {
        errors.extend(e.iter().cloned());
    }
    if let Err(e) = &mappings {
        errors.extend(e.iter().cloned());
    }
    if !errors.is_empty() {
        for e in errors {
            println!("{e}");
        }
        return Ok(ExitCode::from(1));
    }
    match channels {
        Ok(plans) => {
            let n = mappings.as_ref().map(|m| m.mappings.len()).unwrap_or(0);
            println!(
                "ok: {} ({} channel{}: {}; {} mappings)",
                config::display_path(&loaded.file),
                plans.len(),
                if plans.len() == 1 { "" } else { "s" },
                plans
                    .iter()
                    .map(|p| p.name.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                n
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            for e in errors {
                println!("{e}");
            }
            Ok(ExitCode::from(1))
        }
    }
}

/// A multi-threaded runtime for commands that do I/O.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}
