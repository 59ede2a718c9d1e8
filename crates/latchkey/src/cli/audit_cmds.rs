//! `latchkey audit check`: prove from this machine that the server's audit log only grew.

use super::ClientArgs;
use anyhow::bail;
use clap::Subcommand;
use latchkey_client::audit::{self, CheckOutcome};
use latchkey_client::Client;
use std::process::ExitCode;

/// `latchkey audit …`.
#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check that the server's signed audit log only grew since this machine last looked
    /// (it remembers the last checkpoint; the first check trusts the server's keys).
    Check {
        /// Forget the remembered checkpoint and keys first (after the operator replaced the audit key).
        #[arg(long)]
        forget: bool,
    },
}

/// Runs `latchkey audit …`.
pub async fn audit(args: &ClientArgs, command: AuditCommand) -> anyhow::Result<ExitCode> {
    let AuditCommand::Check { forget } = command;
    let profile = args.profile()?;
    let server = match (&args.server, profile.load()?) {
        (Some(s), _) => s.clone(),
        (None, Some(session)) => session.server,
        (None, None) => bail!("which server? log in first (`latchkey login --server URL`) or pass --server URL"),
    };
    let path = audit::witness_path(profile.dir());
    if forget {
        match std::fs::remove_file(&path) {
            Ok(()) => eprintln!("forgot the remembered checkpoint"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => bail!("cannot remove {}: {e}", path.display()),
        }
    }
    let client = Client::new(&server)?;
    match audit::check(&client, &path).await {
        Ok(CheckOutcome::FirstSeen { size, keys }) => {
            if args.json {
                println!("{}", serde_json::json!({"result": "first_seen", "size": size, "keys": keys}));
            } else {
                println!("first check: the log has {size} entries; this machine now trusts these keys:");
                for k in keys {
                    println!("  {k}");
                }
                println!("compare them with `latchkey admin audit checkpoint` on the server if you can");
            }
            Ok(ExitCode::SUCCESS)
        }
        Ok(CheckOutcome::Consistent { was, now }) => {
            if args.json {
                println!("{}", serde_json::json!({"result": "consistent", "was": was, "now": now}));
            } else {
                println!("audit log consistent: it grew from {was} to {now} entries and nothing before changed");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if args.json {
                println!("{}", serde_json::json!({"result": "failed", "error": e.to_string()}));
            } else {
                eprintln!("audit check FAILED: {e}");
            }
            Ok(ExitCode::FAILURE)
        }
    }
}
