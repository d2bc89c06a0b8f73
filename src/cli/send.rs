//! `caduceus send mllp --to HOST:PORT FILE...`: a test client.
//!
//! One message per file unless it holds several MSH segments (or a batch);
//! LF and CRLF segment ends become CR. Prints `file<TAB>MSH-10<TAB>MSA-1`
//! per message (`-` when the message's MSH-15 asks for no accept ACK);
//! exits 1 when any ACK is not AA/CA.

use std::path::PathBuf;
use std::process::ExitCode;

use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use hl7v2::ack::{AckCondition, AckMode};

use super::runtime;
use crate::config::units::HumanDuration;
use crate::connectors::mllp::client::Client;
use crate::connectors::mllp::destination::normalize_segment_ends;
use crate::tls::{TlsClientConfig, TlsVersion, client_config, server_name};

/// `send` subcommands.
#[derive(Subcommand, Debug)]
pub enum SendCommand {
    /// Send HL7 files over MLLP and print each ACK.
    Mllp(SendMllpArgs),
}

/// `send mllp` options.
#[derive(Args, Debug)]
pub struct SendMllpArgs {
    /// HOST:PORT of the MLLP listener.
    #[arg(long)]
    pub to: String,
    /// How long to wait for each ACK.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub timeout: HumanDuration,
    /// Use TLS, trusting this CA (PEM).
    #[arg(long)]
    pub tls_ca: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    #[arg(long, requires = "tls_ca")]
    pub tls_cert: Option<PathBuf>,
    /// Client key (PEM) for mutual TLS.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Name to verify on the server certificate (default: the host of --to).
    #[arg(long)]
    pub server_name: Option<String>,
    /// Files to send.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

fn parse_duration(s: &str) -> Result<HumanDuration, String> {
    humantime::parse_duration(s)
        .map(HumanDuration)
        .map_err(|e| e.to_string())
}

/// Runs a `send` subcommand.
pub fn run(cmd: &SendCommand) -> anyhow::Result<ExitCode> {
    let SendCommand::Mllp(a) = cmd;
    let tls = match &a.tls_ca {
        Some(ca) => {
            let cfg = TlsClientConfig {
                ca: ca.clone(),
                cert: a.tls_cert.clone(),
                key: a.tls_key.clone(),
                server_name: a.server_name.clone(),
                min_version: TlsVersion::Tls12,
            };
            let base = std::env::current_dir()?;
            Some((
                client_config(&cfg, &base)?,
                server_name(&cfg, &a.to).map_err(anyhow::Error::msg)?,
            ))
        }
        None => None,
    };
    let rt = runtime()?;
    rt.block_on(async {
        let mut client = Client::connect(&a.to, a.timeout.get(), tls, 16 << 20).await?;
        let mut all_ok = true;
        for file in &a.files {
            let data =
                std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            let messages: Vec<&[u8]> = match hl7v2::batch::split(&data) {
                Ok(s) if !s.messages.is_empty() => {
                    s.messages.iter().map(|r| &data[r.clone()]).collect()
                }
                _ => vec![&data[..]],
            };
            for m in messages {
                let wire = normalize_segment_ends(m);
                let parsed = hl7v2::Message::parse(&wire);
                let control = parsed
                    .as_ref()
                    .map(|p| p.control_id().into_owned())
                    .ok()
                    .or_else(|| hl7v2::ack::recover_header(&wire).and_then(|r| r.control_id))
                    .unwrap_or_default();
                // Enhanced mode: MSH-15 NE asks for no accept ACK, ER for one
                // only on error; don't wait for what will not come.
                let accept = match parsed.as_ref().map(AckMode::of) {
                    Ok(AckMode::Enhanced { accept, .. }) => accept,
                    _ => AckCondition::Always,
                };
                let wait = match accept {
                    AckCondition::Never => None,
                    AckCondition::ErrorOnly => Some(Duration::from_secs(2).min(a.timeout.get())),
                    _ => Some(a.timeout.get()),
                };
                client
                    .write(&wire)
                    .await
                    .with_context(|| format!("{}: sending to {}", file.display(), a.to))?;
                client
                    .flush()
                    .await
                    .with_context(|| format!("{}: sending to {}", file.display(), a.to))?;
                let Some(wait) = wait else {
                    println!("{}\t{control}\t-", file.display());
                    continue;
                };
                let reply = match tokio::time::timeout(wait, client.read()).await {
                    Ok(r) => r.with_context(|| {
                        format!("{}: reading the ACK from {}", file.display(), a.to)
                    })?,
                    Err(_) if accept == AckCondition::ErrorOnly => {
                        println!("{}\t{control}\t-", file.display());
                        continue;
                    }
                    Err(_) => anyhow::bail!("{}: no ACK within {}", file.display(), a.timeout),
                };
                let code = match hl7v2::read_ack(&reply) {
                    Ok(ack) => {
                        all_ok &= ack.code.is_accept();
                        ack.code.as_str().to_string()
                    }
                    Err(e) => {
                        all_ok = false;
                        eprintln!("{}: the reply is not an ACK: {e}", file.display());
                        "?".into()
                    }
                };
                println!("{}\t{control}\t{code}", file.display());
            }
        }
        client.close().await;
        Ok(if all_ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    })
}
