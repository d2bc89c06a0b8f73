//! `caduceus certs dev`: development certificates for the README's TLS
//! and mutual-TLS examples.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

/// `certs` subcommands.
#[derive(Subcommand, Debug)]
pub enum CertsCommand {
    /// Write a development CA, a localhost server certificate and partner client certificates.
    Dev(DevArgs),
}

/// `certs dev` options.
#[derive(Args, Debug)]
pub struct DevArgs {
    /// Output folder.
    #[arg(long, default_value = "certs/dev")]
    pub out: PathBuf,
    /// Partners to make client certificates for.
    #[arg(long, value_delimiter = ',', default_value = "partner-a,partner-b")]
    pub partners: Vec<String>,
}

/// Runs a `certs` subcommand.
pub fn run(cmd: &CertsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        CertsCommand::Dev(a) => {
            let files =
                crate::tls::dev::write_dev_set(&a.out, &a.partners).map_err(anyhow::Error::msg)?;
            for f in files {
                println!("{}", f.display());
            }
            eprintln!("development certificates only: never use them for real traffic");
            Ok(ExitCode::SUCCESS)
        }
    }
}
