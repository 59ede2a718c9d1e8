//! Commands for a logged-in machine: `whoami`, `passwd`, `devices …`, `sessions …`, `approve`, `enroll-key create`.

use super::login::explain;
use super::{output, ClientArgs};
use anyhow::bail;
use clap::Subcommand;
use latchkey_client::account::Account;
use latchkey_client::{Auth, ClientError};
use latchkey_proto::api::{DeviceInfo, DeviceUpdate, EnrollmentKeyRequest};
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

/// `latchkey devices …`.
#[derive(Subcommand, Debug)]
pub enum DevicesCommand {
    /// List your devices.
    List,
    /// Give a device a new name (its slug stays).
    Rename {
        /// Device ID or slug.
        device: String,
        /// The new name.
        name: String,
    },
    /// Record that a device is somewhere else from now on.
    Move {
        /// Device ID or slug.
        device: String,
        /// The new location, or `later`.
        location: String,
    },
    /// Show where a device has been.
    History {
        /// Device ID or slug.
        device: String,
    },
    /// Revoke a device: its tokens stop working at once.
    Revoke {
        /// Device ID or slug.
        device: String,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

/// `latchkey sessions …`.
#[derive(Subcommand, Debug)]
pub enum SessionsCommand {
    /// List your sign-ins that are not devices (browsers, and apps signed in on the web).
    List,
    /// End one of them: its session or tokens stop working at once.
    Revoke {
        /// Its ID, from `latchkey sessions list`.
        id: String,
    },
}

/// Runs `latchkey sessions …`.
pub async fn sessions(common: &ClientArgs, cmd: SessionsCommand) -> anyhow::Result<ExitCode> {
    let mut account = common.account()?;
    match cmd {
        SessionsCommand::List => {
            let list = call(&mut account, |c, t| async move { c.sign_ins(Auth::Access(&t)).await }).await?;
            if common.json {
                output::json(&list)?;
            } else {
                output::sign_ins(&list, crate::cli::output::now_ms());
            }
        }
        SessionsCommand::Revoke { id } => {
            let s = call(&mut account, |c, t| {
                let id = id.clone();
                async move { c.end_sign_in(Auth::Access(&t), &id).await }
            })
            .await?;
            if common.json {
                output::json(&s)?;
            } else {
                println!("Ended the sign-in to {} from {}; it no longer works.", s.app, output::origin(&s));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Asks `question` on the terminal unless `yes`; refuses to act without a terminal.
pub(crate) fn confirm(question: &str, yes: bool) -> anyhow::Result<bool> {
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        bail!("refusing to act without confirmation; pass --yes");
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

/// Runs an account-API call with a fresh token (refreshing once on 401), with errors that say what to do.
pub(crate) async fn call<T, F, Fut>(account: &mut Account, f: F) -> anyhow::Result<T>
where
    F: Fn(latchkey_client::Client, String) -> Fut,
    Fut: std::future::Future<Output = Result<T, ClientError>>,
{
    account.with_token(f).await.map_err(|e| match e {
        latchkey_client::account::AccountError::Client(c) => explain(c),
        other => other.into(),
    })
}

pub(crate) async fn resolve(account: &mut Account, id_or_slug: &str) -> anyhow::Result<DeviceInfo> {
    let list = call(account, |c, t| async move { c.devices(Auth::Access(&t)).await }).await?;
    list.into_iter()
        .find(|d| d.id == id_or_slug || d.slug == id_or_slug)
        .ok_or_else(|| anyhow::anyhow!("you have no device {id_or_slug:?}; `latchkey devices list` shows them"))
}

/// Runs `latchkey whoami`.
pub async fn whoami(common: &ClientArgs) -> anyhow::Result<ExitCode> {
    let mut account = common.account()?;
    let me = call(&mut account, |c, t| async move { c.me(Auth::Access(&t)).await }).await?;
    if common.json {
        output::json(&me)?;
    } else {
        println!("{} on {}", me.username, account.session().server);
        if let Some(d) = &me.device {
            println!("this machine: \"{}\" ({}), location: {}", d.name, d.slug, output::location(&d.location));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `latchkey passwd`: the current and the new password from the terminal
/// (the new one twice), or the first two lines of stdin when piped.
pub async fn passwd(common: &ClientArgs) -> anyhow::Result<ExitCode> {
    let (current, new) = if std::io::stdin().is_terminal() {
        let current = rpassword::prompt_password("Current password: ")?;
        let new = rpassword::prompt_password("New password: ")?;
        if rpassword::prompt_password("New password again: ")? != new {
            bail!("the new passwords differ; nothing was changed");
        }
        (current, new)
    } else {
        let mut lines = std::io::stdin().lock().lines();
        let mut next = || -> anyhow::Result<String> {
            Ok(lines.next().transpose()?.unwrap_or_default().trim_end_matches('\r').to_string())
        };
        (next()?, next()?)
    };
    latchkey_domain::names::check_password(&new)?;
    let mut account = common.account()?;
    call(&mut account, |c, t| {
        let (current, new) = (current.clone(), new.clone());
        async move { c.change_password(Auth::Access(&t), &current, &new).await }
    })
    .await?;
    if !common.json {
        println!("Password changed; your other browser and API sessions were signed out.");
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `latchkey devices …`.
pub async fn devices(common: &ClientArgs, cmd: DevicesCommand) -> anyhow::Result<ExitCode> {
    let mut account = common.account()?;
    match cmd {
        DevicesCommand::List => {
            let list = call(&mut account, |c, t| async move { c.devices(Auth::Access(&t)).await }).await?;
            if common.json {
                output::json(&list)?;
            } else {
                output::devices(&list, output::now_ms());
            }
        }
        DevicesCommand::Rename { device, name } => {
            let d = resolve(&mut account, &device).await?;
            let update = DeviceUpdate { name: Some(name), location: None };
            let d = call(&mut account, |c, t| {
                let (id, u) = (d.id.clone(), update.clone());
                async move { c.update_device(Auth::Access(&t), &id, &u).await }
            })
            .await?;
            if common.json {
                output::json(&d)?;
            } else {
                println!("Renamed {} to \"{}\" (slug stays {}).", d.id, d.name, d.slug);
            }
        }
        DevicesCommand::Move { device, location } => {
            let d = resolve(&mut account, &device).await?;
            let update = DeviceUpdate { name: None, location: Some(location) };
            let d = call(&mut account, |c, t| {
                let (id, u) = (d.id.clone(), update.clone());
                async move { c.update_device(Auth::Access(&t), &id, &u).await }
            })
            .await?;
            if common.json {
                output::json(&d)?;
            } else {
                println!("{} is at {} from now on.", d.slug, output::location(&d.location));
            }
        }
        DevicesCommand::History { device } => {
            let d = resolve(&mut account, &device).await?;
            let h = call(&mut account, |c, t| {
                let id = d.id.clone();
                async move { c.device_locations(Auth::Access(&t), &id).await }
            })
            .await?;
            if common.json {
                output::json(&h)?;
            } else {
                for e in h {
                    println!("{}  {}", output::when(e.effective_at_ms), output::location(&e.location));
                }
            }
        }
        DevicesCommand::Revoke { device, yes } => {
            let d = resolve(&mut account, &device).await?;
            let this = if d.current { " (THIS machine: it will be logged out)" } else { "" };
            if !confirm(&format!("Revoke \"{}\" ({}){this}?", d.name, d.slug), yes)? {
                bail!("not revoked");
            }
            let r = call(&mut account, |c, t| {
                let id = d.id.clone();
                async move { c.revoke_device(Auth::Access(&t), &id).await }
            })
            .await?;
            if common.json {
                output::json(&r)?;
            } else {
                println!("Revoked \"{}\" ({}); its tokens no longer work.", r.name, r.slug);
            }
            if r.current {
                account.profile().remove()?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `latchkey approve USER_CODE`: approve another device's login from this trusted one.
pub async fn approve(common: &ClientArgs, user_code: &str, yes: bool, deny: bool) -> anyhow::Result<ExitCode> {
    let mut account = common.account()?;
    let code = user_code.to_string();
    let p = call(&mut account, |c, t| {
        let code = code.clone();
        async move { c.lookup_device_login(Auth::Access(&t), &code).await }
    })
    .await?;
    eprintln!("A device asks to sign in as {}:", account.session().username);
    eprintln!("  app:      {} ({})", p.app_name, p.client_id);
    if let Some(n) = &p.device_name {
        eprintln!("  device:   {n}");
    }
    eprintln!("  location: {}", output::location(&p.device_location));
    eprintln!("  from IP:  {}", p.requester_ip);
    eprintln!("  program:  {}", p.requester_user_agent);
    eprintln!("  asked at: {}", output::when(p.requested_at_ms));
    eprintln!("  code:     {}", p.user_code);
    if p.different_network {
        eprintln!(
            "WARNING: it asks from a different network than this machine. If someone sent you this code, deny it."
        );
    } else {
        eprintln!("Approve only if you started this sign-in yourself on a device in front of you.");
    }
    let approve = !deny && confirm("Approve?", yes)?;
    let r = call(&mut account, |c, t| {
        let code = code.clone();
        async move { c.decide_device_login(Auth::Access(&t), &code, approve).await }
    })
    .await?;
    if common.json {
        output::json(&r)?;
    } else {
        println!("{} {}.", if approve { "Approved" } else { "Denied" }, p.user_code);
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `latchkey enroll-key create`: a short-lived, single-use key for one of your new machines.
pub async fn create_enrollment_key(common: &ClientArgs, expires: humantime::Duration) -> anyhow::Result<ExitCode> {
    let mut account = common.account()?;
    let req = EnrollmentKeyRequest { expires_in: Some(expires.as_secs() as i64), reusable: false, tag: None };
    let k = call(&mut account, |c, t| {
        let req = req.clone();
        async move { c.create_enrollment_key(Auth::Access(&t), &req).await }
    })
    .await?;
    if common.json {
        output::json(&k)?;
    } else {
        println!("{}", k.key);
        eprintln!("Single use, valid until {}. On the new machine run:", output::when(k.info.expires_at_ms));
        eprintln!(
            "    latchkey login --server {} --enroll-key <the key above> --name NAME --location PLACE",
            account.session().server
        );
    }
    Ok(ExitCode::SUCCESS)
}
