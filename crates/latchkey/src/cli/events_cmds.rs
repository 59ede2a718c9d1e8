//! `latchkey events …`: declare event kinds, push captures through the outbox, pull the merged stream.

use super::account_cmds::call;
use super::login::explain;
use super::{output, ClientArgs};
use anyhow::{bail, Context};
use clap::{Subcommand, ValueEnum};
use latchkey_client::account::Account;
use latchkey_client::outbox::{FlushReport, Outbox, OutboxError, MAX_BATCH};
use latchkey_client::Auth;
use latchkey_proto::api::{Capture, IdentityField, KindDeclaration, KindInfo, PullResponse};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Events per pull request.
const PULL_PAGE: usize = 1000;

/// At most this many bad lines are listed before the rest are only counted.
const BAD_LINES_SHOWN: usize = 20;

/// `latchkey events …`.
#[derive(Subcommand, Debug)]
pub enum EventsCommand {
    /// Declare and list the event kinds of this app (the CLI).
    Kinds {
        #[command(subcommand)]
        command: KindsCommand,
    },
    /// Queue the captures of a JSON Lines file (`-`: stdin) on disk, then send them.
    ///
    /// Nothing is queued if any line is bad. Exits with 1 if the server rejected any.
    Push {
        /// One capture per line: {"kind": …, "identity": {…}, "start": …, "end": …}.
        file: PathBuf,
        /// Captures per request (at most 1000).
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u16).range(1..=MAX_BATCH as i64))]
        batch: u16,
    },
    /// Send what is still queued (e.g. after a push was interrupted).
    Flush {
        /// Captures per request (at most 1000).
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u16).range(1..=MAX_BATCH as i64))]
        batch: u16,
    },
    /// Print the events of all your devices changed after a cursor, one JSON object a line.
    ///
    /// The cursor to pass next time goes to stderr as `cursor N`. An event with `merged_into` set was merged into that one: drop it.
    Pull {
        /// Only events changed after this cursor (0: everything).
        #[arg(long, default_value_t = 0)]
        since: i64,
        /// If nothing changed yet, wait up to this many seconds (at most 60) for something to.
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=60))]
        wait: u64,
        /// At most this many events.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        limit: Option<u64>,
    },
}

/// `latchkey events kinds …`.
#[derive(Subcommand, Debug)]
pub enum KindsCommand {
    /// Declare a kind (again: safe; its identity cannot change once declared).
    Declare {
        /// The kind's name.
        name: String,
        /// An identity field, in order: NAME:TYPE with TYPE string, integer or timestamp.
        #[arg(long = "field", value_name = "NAME:TYPE", value_parser = identity_field)]
        fields: Vec<IdentityField>,
        /// `exact`: the same identity is the same event; `interval`: overlapping intervals are one event.
        #[arg(long, value_enum, default_value_t = Merge::Exact)]
        merge: Merge,
        /// How precisely times are compared.
        #[arg(long, value_enum, default_value_t = Precision::Second)]
        precision: Precision,
        /// Delete events this many days after they were first seen (default: keep them).
        #[arg(long, value_parser = clap::value_parser!(i64).range(1..))]
        retention_days: Option<i64>,
    },
    /// List the kinds.
    List,
}

/// How captures of a kind become one event.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Merge {
    /// Same identity, same event.
    Exact,
    /// Same identity and overlapping intervals, one event.
    Interval,
}

/// How precisely times are compared.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Precision {
    /// To the minute.
    Minute,
    /// To the second.
    Second,
    /// To the millisecond.
    Millisecond,
}

fn value_name(v: impl ValueEnum) -> String {
    v.to_possible_value().map(|p| p.get_name().to_string()).unwrap_or_default()
}

/// Parses `--field NAME:TYPE`.
fn identity_field(s: &str) -> Result<IdentityField, String> {
    let (name, ty) = s.rsplit_once(':').ok_or_else(|| format!("{s:?} is not NAME:TYPE"))?;
    if name.trim().is_empty() {
        return Err(format!("{s:?} has no field name before the ':'"));
    }
    if !matches!(ty, "string" | "integer" | "timestamp") {
        return Err(format!("{ty:?} is not a field type; use string, integer or timestamp"));
    }
    Ok(IdentityField { name: name.to_string(), ty: ty.to_string() })
}

/// Runs `latchkey events …`.
pub async fn events(common: &ClientArgs, cmd: EventsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        EventsCommand::Kinds { command } => kinds(common, command).await,
        EventsCommand::Push { file, batch } => push(common, &file, batch.into()).await,
        EventsCommand::Flush { batch } => flush(common, batch.into()).await,
        EventsCommand::Pull { since, wait, limit } => pull(common, since, wait, limit).await,
    }
}

async fn kinds(common: &ClientArgs, cmd: KindsCommand) -> anyhow::Result<ExitCode> {
    let mut account = common.account()?;
    match cmd {
        KindsCommand::Declare { name, fields, merge, precision, retention_days } => {
            let decl = KindDeclaration {
                identity: fields,
                precision: value_name(precision),
                merge: value_name(merge),
                retention_days,
            };
            let kind = call(&mut account, |c, t| {
                let (name, decl) = (name.clone(), decl.clone());
                async move { c.declare_event_kind(Auth::Access(&t), &name, &decl).await }
            })
            .await?;
            if common.json {
                output::json(&kind)?;
            } else {
                println!("{}", describe(&kind));
            }
        }
        KindsCommand::List => {
            let list = call(&mut account, |c, t| async move { c.event_kinds(Auth::Access(&t)).await }).await?;
            if common.json {
                output::json(&list)?;
            } else if list.is_empty() {
                println!("No event kinds yet (`latchkey events kinds declare` makes one).");
            } else {
                for k in &list {
                    println!("{}", describe(k));
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One line about a kind, for people.
fn describe(k: &KindInfo) -> String {
    let d = &k.declaration;
    let identity: Vec<String> = d.identity.iter().map(|f| format!("{}:{}", f.name, f.ty)).collect();
    let identity = if identity.is_empty() { "(none)".to_string() } else { identity.join(", ") };
    let kept = match d.retention_days {
        Some(n) => format!("kept {n} days"),
        None => "kept forever".into(),
    };
    format!("{}: identity {identity}; merge {}, precision {}, {kept}", k.name, d.merge, d.precision)
}

/// Reads captures, one JSON object a line; blank lines are skipped. Any bad line refuses them all.
fn parse_captures(text: &str, source: &str) -> anyhow::Result<Vec<Capture>> {
    let mut captures = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Capture>(line) {
            Ok(c) => captures.push(c),
            Err(e) => bad.push(format!("line {}, column {}: {}", i + 1, e.column(), without_position(&e))),
        }
    }
    if !bad.is_empty() {
        for b in bad.iter().take(BAD_LINES_SHOWN) {
            eprintln!("{source}: {b}");
        }
        if bad.len() > BAD_LINES_SHOWN {
            eprintln!("{source}: … and {} more bad lines", bad.len() - BAD_LINES_SHOWN);
        }
        bail!("{} of the lines of {source} are not captures; nothing was queued", bad.len());
    }
    Ok(captures)
}

/// serde_json's message without its " at line L column C" (the line is ours to number).
fn without_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// The outbox of the account's profile, claimed for the account (never sends one account's captures as another's).
fn outbox(account: &Account) -> anyhow::Result<Outbox> {
    let outbox = Outbox::open(account.profile().outbox_path())?;
    let s = account.session();
    outbox.claim(&format!("{} on {}", s.username, s.server))?;
    Ok(outbox)
}

/// Runs `latchkey events push FILE`.
async fn push(common: &ClientArgs, file: &std::path::Path, batch: usize) -> anyhow::Result<ExitCode> {
    let (text, source) = if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).context("cannot read stdin")?;
        (text, "stdin".to_string())
    } else {
        let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
        (text, file.display().to_string())
    };
    let captures = parse_captures(&text, &source)?;
    let mut account = common.account()?;
    let outbox = outbox(&account)?;
    let queued = outbox.add(&captures)?;
    send(common, &mut account, &outbox, batch, Some(queued)).await
}

/// Runs `latchkey events flush`.
async fn flush(common: &ClientArgs, batch: usize) -> anyhow::Result<ExitCode> {
    let mut account = common.account()?;
    let outbox = outbox(&account)?;
    if outbox.pending()? == 0 && !common.json {
        println!("Nothing to send.");
        return Ok(ExitCode::SUCCESS);
    }
    send(common, &mut account, &outbox, batch, None).await
}

/// Flushes the outbox, refreshing the token as needed, and reports; exit code 1 if anything was rejected.
async fn send(
    common: &ClientArgs,
    account: &mut Account,
    outbox: &Outbox,
    batch: usize,
    queued: Option<usize>,
) -> anyhow::Result<ExitCode> {
    let mut report = FlushReport::default();
    let mut retried = false;
    let outcome: anyhow::Result<()> = loop {
        let token = match account.access_token().await {
            Ok(t) => t,
            Err(e) => break Err(e.into()),
        };
        match outbox.flush_once(account.client(), Auth::Access(&token), batch).await {
            Ok(Some(r)) => {
                report.absorb(r);
                retried = false;
            }
            Ok(None) => break Ok(()),
            Err(OutboxError::Client(e)) if e.status() == Some(401) && !retried => {
                retried = true;
                if let Err(e) = account.refresh().await {
                    break Err(e.into());
                }
            }
            Err(OutboxError::Client(e)) => break Err(explain(e)),
            Err(e) => break Err(e.into()),
        }
    };
    let pending = outbox.pending().unwrap_or(0);
    if common.json {
        let rejected: Vec<_> =
            report.rejected.iter().map(|(c, r)| serde_json::json!({"capture": c, "reason": r})).collect();
        let mut out = serde_json::json!({
            "created": report.created,
            "duplicate": report.duplicate,
            "merged": report.merged,
            "rejected": rejected,
            "pending": pending,
        });
        if let Some(q) = queued {
            out["queued"] = q.into();
        }
        output::json(&out)?;
    } else if outcome.is_ok() || report.total() > 0 {
        for (c, reason) in &report.rejected {
            eprintln!("rejected {}: {reason}", serde_json::to_string(c)?);
        }
        println!(
            "{} created, {} duplicate, {} merged, {} rejected",
            report.created,
            report.duplicate,
            report.merged,
            report.rejected.len()
        );
    }
    if let Err(e) = outcome {
        let (n, are) = if pending == 1 { ("capture", "is") } else { ("captures", "are") };
        eprintln!(
            "{pending} {n} {are} still queued in {}; `latchkey events flush` sends them.",
            outbox.path().display()
        );
        return Err(e);
    }
    Ok(if report.rejected.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Runs `latchkey events pull`: page after page until caught up (or `limit`), waiting only for the first.
async fn pull(common: &ClientArgs, since: i64, wait: u64, limit: Option<u64>) -> anyhow::Result<ExitCode> {
    let mut account = common.account()?;
    let mut cursor = since;
    let mut all = Vec::new();
    let mut left = limit.unwrap_or(u64::MAX);
    let mut wait = wait;
    let stdout = std::io::stdout();
    while left > 0 {
        let page = left.min(PULL_PAGE as u64) as i64;
        let after = cursor;
        let resp =
            call(&mut account, |c, t| async move { c.pull_events(Auth::Access(&t), after, page, wait).await }).await?;
        wait = 0;
        let advanced = resp.cursor > cursor;
        cursor = resp.cursor.max(cursor);
        if resp.events.is_empty() || !advanced {
            break;
        }
        left = left.saturating_sub(resp.events.len() as u64);
        if common.json {
            all.extend(resp.events);
        } else {
            let mut out = stdout.lock();
            for e in &resp.events {
                writeln!(out, "{}", serde_json::to_string(e)?)?;
            }
            out.flush()?;
        }
    }
    if common.json {
        output::json(&PullResponse { events: all, cursor })?;
    } else {
        eprintln!("cursor {cursor}");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_name_colon_type() {
        let f = identity_field("starts_at:timestamp").expect("parses");
        assert_eq!((f.name.as_str(), f.ty.as_str()), ("starts_at", "timestamp"));
        assert!(identity_field("title").is_err());
        assert!(identity_field(":string").is_err());
        assert!(identity_field("title:text").expect_err("unknown type").contains("string, integer or timestamp"));
    }

    #[test]
    fn bad_lines_are_numbered_and_refuse_the_whole_file() {
        let ok = "{\"kind\":\"k\",\"identity\":{\"a\":1}}\n\n{\"kind\":\"k\",\"identity\":{}}\n";
        assert_eq!(parse_captures(ok, "f").expect("good").len(), 2, "blank lines are skipped");
        let bad = "{\"kind\":\"k\",\"identity\":{}}\n{\"kind\":\"k\"}\nnot json\n";
        let e = parse_captures(bad, "f").expect_err("refused").to_string();
        assert!(e.contains("2 of the lines") && e.contains("nothing was queued"), "{e}");
        assert_eq!(without_position(&serde_json::from_str::<Capture>("{}").expect_err("bad")), "missing field `kind`");
    }
}
