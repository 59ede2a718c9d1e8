//! `latchkey admin user …` beyond `add`: list, disable, enable, delete,
//! reset-password, revoke-all. Every action is recorded in the audit log by
//! the store, as `admin-cli`.

use super::{read_password, UserCommand};
use crate::cli::account_cmds::confirm;
use anyhow::bail;
use latchkey_domain::names::{check_password, Username};
use latchkey_server::state::now;
use latchkey_store::{Actor, Store, UserId, UserRecord};
use std::process::ExitCode;

/// Who the audit log says acted.
const ACTOR: Actor<'static> = Actor("admin-cli");

/// Runs one `admin user` command other than `add`.
pub async fn run(store: &dyn Store, command: UserCommand) -> anyhow::Result<ExitCode> {
    match command {
        UserCommand::Add { .. } => bail!("`user add` is handled by the admin command itself"),
        UserCommand::List { json } => list(store, json).await,
        UserCommand::Disable { name } => set_disabled(store, &name, true).await,
        UserCommand::Enable { name } => set_disabled(store, &name, false).await,
        UserCommand::Delete { name, yes } => delete(store, &name, yes).await,
        UserCommand::ResetPassword { name } => reset_password(store, &name).await,
        UserCommand::RevokeAll { name } => revoke_all(store, &name).await,
    }
}

/// The user called `name`, or a message saying there is none.
async fn find(store: &dyn Store, name: &str) -> anyhow::Result<UserRecord> {
    let username = Username::parse(name)?;
    match store.user_by_name(username.as_str()).await? {
        Some(u) => Ok(u),
        None => bail!("there is no user {username}; `latchkey admin user list` shows who there is"),
    }
}

/// `active`, `disabled`, or `locked until …`.
fn status(u: &UserRecord) -> String {
    match u.status.check(now()) {
        Ok(()) => "active".into(),
        Err(latchkey_domain::account::AccountRefusal::Disabled) => "disabled".into(),
        Err(latchkey_domain::account::AccountRefusal::Locked { until }) => {
            format!("locked until {}", crate::cli::output::when(until.as_millis()))
        }
    }
}

async fn list(store: &dyn Store, json: bool) -> anyhow::Result<ExitCode> {
    let users = store.users().await?;
    if json {
        let v: Vec<_> = users
            .iter()
            .map(|u| {
                serde_json::json!({
                    "id": u.id,
                    "username": u.username,
                    "is_admin": u.is_admin,
                    "status": status(u),
                    "created_at": crate::cli::output::when(u.created_at.as_millis()),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!("{:<24} {:<6} {:<28} ID", "USERNAME", "ADMIN", "STATUS");
        for u in &users {
            let admin = if u.is_admin { "yes" } else { "no" };
            println!("{:<24} {:<6} {:<28} {}", u.username, admin, status(u), u.id);
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn set_disabled(store: &dyn Store, name: &str, disabled: bool) -> anyhow::Result<ExitCode> {
    let user = find(store, name).await?;
    if store.set_user_disabled(UserId(&user.id), disabled, ACTOR, now()).await?.is_none() {
        bail!("user {name} was deleted meanwhile");
    }
    if disabled {
        println!("Disabled {}: it gets nothing until `latchkey admin user enable {}`", user.username, user.username);
    } else {
        println!("Enabled {} (any lock from wrong passwords is lifted)", user.username);
    }
    Ok(ExitCode::SUCCESS)
}

async fn delete(store: &dyn Store, name: &str, yes: bool) -> anyhow::Result<ExitCode> {
    let user = find(store, name).await?;
    let question = format!("Delete {} and every device, session and token they hold?", user.username);
    if !confirm(&question, yes)? {
        println!("Nothing was deleted");
        return Ok(ExitCode::FAILURE);
    }
    if !store.delete_user(UserId(&user.id), ACTOR, now()).await? {
        bail!("user {name} was deleted meanwhile");
    }
    println!("Deleted {} ({})", user.username, user.id);
    Ok(ExitCode::SUCCESS)
}

async fn reset_password(store: &dyn Store, name: &str) -> anyhow::Result<ExitCode> {
    let user = find(store, name).await?;
    let password = read_password()?;
    check_password(&password)?;
    let hash = latchkey_server::passwords::hash(password).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    if !store.change_password(UserId(&user.id), &hash, None, ACTOR, now()).await? {
        bail!("user {name} was deleted meanwhile");
    }
    println!("Set a new password for {}; every session they had is ended", user.username);
    Ok(ExitCode::SUCCESS)
}

async fn revoke_all(store: &dyn Store, name: &str) -> anyhow::Result<ExitCode> {
    let user = find(store, name).await?;
    let Some(r) = store.revoke_everything(UserId(&user.id), ACTOR, now()).await? else {
        bail!("user {name} was deleted meanwhile");
    };
    println!(
        "Ended everything {} held: {} sessions, {} device and app sign-ins, {} approved logins not yet collected, \\
         {} QR sign-ins not yet collected, {} enrollment keys",
        user.username, r.sessions, r.families, r.grants, r.pairings, r.enrollment_keys
    );
    Ok(ExitCode::SUCCESS)
}
