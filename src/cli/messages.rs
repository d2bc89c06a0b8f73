//! `caduceus messages list|show|count|reprocess`: read the store (while
//! `serve` runs, too) and ask for reprocessing.
//!
//! Output contract (DESIGN.md §3): `list` prints the newest 100 unless
//! `--all`; `--json` prints NDJSON objects with `id` (string), `channel`,
//! `received_at` (RFC 3339 UTC), `format`, `type`, `control_id`, `state`,
//! `error`; `count` prints a bare integer; `show ID --raw` prints the
//! stored bytes exactly.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use jiff::Timestamp;

use super::{Cli, runtime};
use crate::server::store_path;
use crate::store::sqlite::SqliteStore;
use crate::store::{MessageDetail, MessageId, MessageQuery, MessageState, MessageSummary, Store};

/// `messages` subcommands.
#[derive(Subcommand, Debug)]
pub enum MessagesCommand {
    /// List messages, newest first (100 unless --all).
    List(ListArgs),
    /// Show one message with its deliveries and history.
    Show(ShowArgs),
    /// Print how many messages match.
    Count(Filters),
    /// Run messages through their channel again (new deliveries, new idempotency keys).
    Reprocess(ReprocessArgs),
}

/// Filters shared by list, count and reprocess.
#[derive(Args, Debug, Clone, Default)]
pub struct Filters {
    /// Only this channel.
    #[arg(long)]
    pub channel: Option<String>,
    /// Only this state: received, processed, filtered, error.
    #[arg(long)]
    pub state: Option<String>,
    /// Only this message type; `*` and `?` wildcards (`ADT^A0*`).
    #[arg(long = "type")]
    pub message_type: Option<String>,
    /// Only this control id (MSH-10).
    #[arg(long)]
    pub control_id: Option<String>,
    /// Only messages received since: an RFC 3339 time or a duration (`1h`, `30m`).
    #[arg(long)]
    pub since: Option<String>,
}

impl Filters {
    fn is_empty(&self) -> bool {
        self.channel.is_none()
            && self.state.is_none()
            && self.message_type.is_none()
            && self.control_id.is_none()
            && self.since.is_none()
    }

    fn query(&self, limit: Option<u64>) -> anyhow::Result<MessageQuery> {
        let state = match &self.state {
            Some(s) => Some(MessageState::parse(s).with_context(|| {
                format!("--state {s:?}: expected received, processed, filtered or error")
            })?),
            None => None,
        };
        let since = match &self.since {
            None => None,
            Some(s) => Some(match s.parse::<Timestamp>() {
                Ok(t) => t,
                Err(_) => {
                    let d = humantime::parse_duration(s).with_context(|| {
                        format!("--since {s:?}: expected an RFC 3339 time or a duration like 1h")
                    })?;
                    Timestamp::now()
                        .checked_sub(jiff::SignedDuration::try_from(d)?)
                        .context("--since is too far back")?
                }
            }),
        };
        Ok(MessageQuery {
            channel: self.channel.clone(),
            state,
            message_type: self.message_type.clone(),
            control_id: self.control_id.clone(),
            since,
            limit,
        })
    }
}

/// `messages list`
#[derive(Args, Debug)]
pub struct ListArgs {
    /// Filters.
    #[command(flatten)]
    pub filters: Filters,
    /// Every message, not just the newest 100.
    #[arg(long)]
    pub all: bool,
    /// NDJSON, one object per message.
    #[arg(long)]
    pub json: bool,
}

/// `messages show`
#[derive(Args, Debug)]
pub struct ShowArgs {
    /// Message id.
    pub id: i64,
    /// Print the stored bytes exactly as received, nothing else.
    #[arg(long, conflicts_with = "json")]
    pub raw: bool,
    /// One JSON object with deliveries and history (content excluded).
    #[arg(long)]
    pub json: bool,
}

/// `messages reprocess`
#[derive(Args, Debug)]
pub struct ReprocessArgs {
    /// Message ids; or use filters to pick them.
    pub ids: Vec<i64>,
    /// Filters (used when no ids are given).
    #[command(flatten)]
    pub filters: Filters,
}

fn open(cli: &Cli) -> anyhow::Result<Arc<dyn Store>> {
    let dir = cli.resolve_data_dir();
    let path = store_path(&dir);
    if !path.exists() {
        bail!(
            "no store at {} (run `caduceus serve` first, or pass --data-dir)",
            path.display()
        );
    }
    Ok(Arc::new(
        SqliteStore::open(&path).with_context(|| format!("opening {}", path.display()))?,
    ))
}

/// Runs a `messages` subcommand.
pub fn run(cli: &Cli, cmd: &MessagesCommand) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    rt.block_on(async {
        let store = open(cli)?;
        let mut out = std::io::stdout().lock();
        match cmd {
            MessagesCommand::List(a) => {
                let q = a.filters.query(if a.all { None } else { Some(100) })?;
                let rows = store.list(&q).await?;
                if a.json {
                    for r in &rows {
                        serde_json::to_writer(&mut out, r)?;
                        writeln!(out)?;
                    }
                } else {
                    print_table(&mut out, &rows)?;
                }
            }
            MessagesCommand::Count(f) => {
                writeln!(out, "{}", store.count(&f.query(None)?).await?)?;
            }
            MessagesCommand::Show(a) => {
                let Some(d) = store.get(MessageId(a.id)).await? else {
                    eprintln!("caduceus: no message with id {}", a.id);
                    return Ok(ExitCode::from(1));
                };
                if a.raw {
                    out.write_all(&d.raw)?;
                } else if a.json {
                    serde_json::to_writer_pretty(&mut out, &d.to_json())?;
                    writeln!(out)?;
                } else {
                    print_detail(&mut out, &d)?;
                }
            }
            MessagesCommand::Reprocess(a) => {
                let ids: Vec<MessageId> = if !a.ids.is_empty() {
                    a.ids.iter().map(|i| MessageId(*i)).collect()
                } else if !a.filters.is_empty() {
                    store
                        .list(&a.filters.query(None)?)
                        .await?
                        .into_iter()
                        .map(|m| m.id)
                        .collect()
                } else {
                    bail!("give message ids, or filters such as --state error --channel NAME");
                };
                let mut failed = 0;
                for id in &ids {
                    if let Err(e) = store
                        .reprocess(*id, "requested with `caduceus messages reprocess`")
                        .await
                    {
                        eprintln!("caduceus: message {id}: {e}");
                        failed += 1;
                    }
                }
                writeln!(
                    out,
                    "queued {} message(s) for reprocessing",
                    ids.len() - failed
                )?;
                if failed > 0 {
                    return Ok(ExitCode::from(1));
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn print_table(out: &mut impl Write, rows: &[MessageSummary]) -> std::io::Result<()> {
    let cell = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".into());
    let table: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                r.id.to_string(),
                r.received_at
                    .get(..19)
                    .unwrap_or(&r.received_at)
                    .replace('T', " "),
                r.channel.clone(),
                cell(&r.message_type),
                cell(&r.control_id),
                r.state.as_str().to_string(),
                r.error
                    .clone()
                    .map(|e| e.chars().take(80).collect())
                    .unwrap_or_default(),
            ]
        })
        .collect();
    let head = [
        "ID",
        "RECEIVED (UTC)",
        "CHANNEL",
        "TYPE",
        "CONTROL ID",
        "STATE",
        "ERROR",
    ];
    let mut widths: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for row in &table {
        for (w, c) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |out: &mut dyn Write, cells: Vec<&str>| -> std::io::Result<()> {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        writeln!(out, "{}", s.trim_end())
    };
    line(out, head.to_vec())?;
    for row in &table {
        line(out, row.iter().map(String::as_str).collect())?;
    }
    Ok(())
}

fn print_detail(out: &mut impl Write, d: &MessageDetail) -> std::io::Result<()> {
    let s = &d.summary;
    let or = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
    writeln!(out, "Message {}", s.id)?;
    writeln!(out, "  channel:     {}", s.channel)?;
    writeln!(out, "  received:    {}", s.received_at)?;
    writeln!(out, "  format:      {}", s.format.as_str())?;
    writeln!(out, "  type:        {}", or(&s.message_type))?;
    writeln!(out, "  control id:  {}", or(&s.control_id))?;
    writeln!(out, "  sender:      {}", or(&d.sender))?;
    writeln!(out, "  peer:        {}", or(&d.peer))?;
    writeln!(out, "  state:       {}", s.state.as_str())?;
    if let Some(e) = &s.error {
        writeln!(out, "  error:       {e}")?;
    }
    if let Some(m) = &d.mapping_version {
        writeln!(out, "  mapping:     {m}")?;
    }
    writeln!(out, "Deliveries")?;
    if d.deliveries.is_empty() {
        writeln!(out, "  (none)")?;
    }
    for del in &d.deliveries {
        writeln!(
            out,
            "  #{} {}  {}  attempts {}  key {}{}{}{}",
            del.id,
            del.destination,
            del.state.as_str(),
            del.attempts,
            del.idempotency_key,
            del.next_attempt_at
                .as_ref()
                .map(|t| format!("  next attempt {t}"))
                .unwrap_or_default(),
            del.last_error
                .as_ref()
                .map(|e| format!("  last error: {e}"))
                .unwrap_or_default(),
            del.response
                .as_ref()
                .map(|r| format!("  response: {r}"))
                .unwrap_or_default(),
        )?;
    }
    writeln!(out, "History")?;
    for e in &d.events {
        let who = e
            .delivery_id
            .map(|i| format!("delivery #{i} "))
            .unwrap_or_default();
        writeln!(
            out,
            "  {}  {who}{}  {}",
            e.at,
            e.state,
            e.reason.clone().unwrap_or_default()
        )?;
    }
    writeln!(
        out,
        "Content ({} bytes; `--raw` prints it exactly)",
        d.raw.len()
    )?;
    // Decoded with the message's own character set (MSH-18) when it parses.
    let charset = hl7v2::Message::parse(&d.raw)
        .map(|m| m.charset())
        .unwrap_or(hl7v2::Charset::Default);
    let text = charset.decode(std::borrow::Cow::Borrowed(&d.raw[..]));
    for line in text.split(['\r', '\n']).filter(|l| !l.is_empty()) {
        writeln!(out, "  {line}")?;
    }
    Ok(())
}
