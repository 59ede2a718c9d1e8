//! `latchkey login` and `latchkey logout`.

use super::{output, ClientArgs};
use anyhow::{bail, Context};
use clap::Args;
use latchkey_client::account::{session_from, Account, AccountError};
use latchkey_client::profile::{now_ms, Saved};
use latchkey_client::{AppCredentials, Auth, Client, ClientError, DeviceParams};
use latchkey_domain::device::Location;
use latchkey_domain::names::DisplayName;
use latchkey_proto::api::EnrollRequest;
use latchkey_proto::oauth::{DeviceAuthorization, TokenResponse};
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Flags of `latchkey login`.
#[derive(Args, Debug)]
pub struct LoginArgs {
    /// This machine's name (default: its hostname). Asked on first login.
    #[arg(long)]
    name: Option<String>,
    /// Where this machine is, or `later`. Asked on first login.
    #[arg(long)]
    location: Option<String>,
    /// A slug for this machine instead of one derived from its name.
    #[arg(long)]
    slug: Option<String>,
    /// Do not ask anything; take defaults and flags (for installers).
    #[arg(long, short = 'y')]
    yes: bool,
    /// Do not open a browser; just print the link and the code.
    #[arg(long)]
    no_browser: bool,
    /// Provision with an enrollment key instead of a browser approval.
    #[arg(long, env = "LATCHKEY_ENROLL_KEY")]
    enroll_key: Option<String>,
    /// Scope to ask for.
    #[arg(long, default_value = "openid profile")]
    scope: String,
}

fn hostname() -> String {
    gethostname::gethostname().to_string_lossy().trim().to_string()
}

/// A location guess from the time zone, e.g. `Europe/Berlin` → `Berlin, Europe`;
/// none on a machine whose zone names no place (such as `Etc/UTC`).
fn location_guess() -> Option<String> {
    let tz = std::env::var("TZ").ok().filter(|t| t.contains('/')).or_else(|| iana_time_zone::get_timezone().ok())?;
    latchkey_domain::humanize::place_from_time_zone(&tz)
}

fn ask(prompt: &str, default: Option<&str>) -> anyhow::Result<String> {
    match default {
        Some(d) => eprint!("{prompt} [{d}]: "),
        None => eprint!("{prompt}: "),
    }
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let line = line.trim();
    Ok(if line.is_empty() { default.unwrap_or("").to_string() } else { line.to_string() })
}

/// Name and location for a machine's first login: flags, else questions, else defaults.
fn describe_machine(args: &LoginArgs) -> anyhow::Result<(String, String)> {
    let interactive = !args.yes && std::io::stdin().is_terminal();
    let host = hostname();
    let name = match (&args.name, interactive) {
        (Some(n), _) => n.clone(),
        (None, true) => ask("Name this machine", Some(&host))?,
        (None, false) => host,
    };
    DisplayName::parse(&name).map_err(|e| anyhow::anyhow!("machine name: {e}"))?;
    let location = match (&args.location, interactive) {
        (Some(l), _) => l.clone(),
        (None, true) => loop {
            let guess = location_guess();
            let l = ask("Where is it? (a place, or \"later\")", guess.as_deref())?;
            match Location::parse(&l) {
                Ok(_) => break l,
                Err(e) => eprintln!("{e}"),
            }
        },
        // Never store an empty location silently: installers must say.
        (None, false) => bail!("pass --location PLACE (or --location later) when logging in without questions"),
    };
    Location::parse(&location).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((name, location))
}

fn platform() -> String {
    format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH)
}

fn qr(text: &str) -> Option<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    Some(code.render::<qrcode::render::unicode::Dense1x2>().quiet_zone(true).build())
}

fn can_open_browser() -> bool {
    if cfg!(target_os = "linux") {
        std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some()
    } else {
        true
    }
}

/// Runs `latchkey login`.
pub async fn login(common: &ClientArgs, args: LoginArgs) -> anyhow::Result<ExitCode> {
    let profile = common.profile()?;
    let existing = profile.load().ok().flatten();
    let server = match (&common.server, &existing) {
        (Some(s), _) => s.trim_end_matches('/').to_string(),
        (None, Some(s)) => s.server.clone(),
        (None, None) => bail!("which server? pass --server URL (or set LATCHKEY_SERVER)"),
    };
    let started = now_ms();
    // First login of this machine in this profile: no key yet, so ask what it is.
    let first = !profile.has_device_key();
    let key = Arc::new(profile.device_key()?);
    let client = Client::new(&server)?.with_device_key(key.clone());
    let app = AppCredentials::public(latchkey_proto::CLI_CLIENT_ID);
    let described = if first || args.name.is_some() || args.location.is_some() || args.enroll_key.is_some() {
        Some(describe_machine(&args)?)
    } else {
        None
    };

    let tokens = if let Some(enroll_key) = &args.enroll_key {
        let (name, location) = described.clone().unwrap_or_default();
        let req = EnrollRequest {
            enrollment_key: enroll_key.clone(),
            name,
            slug: args.slug.clone(),
            location,
            platform: platform(),
            client_version: env!("CARGO_PKG_VERSION").into(),
            scope: args.scope.clone(),
        };
        client.enroll(&req).await.map_err(explain)?.tokens
    } else {
        let params = DeviceParams {
            name: described.as_ref().map(|d| d.0.clone()),
            location: described.as_ref().map(|d| d.1.clone()),
            slug: args.slug.clone(),
            platform: Some(platform()),
            client_version: Some(env!("CARGO_PKG_VERSION").into()),
        };
        let auth = client.device_authorization_as(&app, &args.scope, &params).await.map_err(explain)?;
        show_code(&auth, !args.no_browser);
        wait(&client, &app, &auth).await?
    };

    let me = client.me(Auth::Access(&tokens.access_token)).await.map_err(explain)?;
    let username = me.username;
    let mut session = session_from(&server, latchkey_proto::CLI_CLIENT_ID, &tokens, &username, started);
    session.device = me.device;
    match profile.save_login(&session)? {
        Saved::Written => {}
        Saved::Superseded(newer) => {
            // Another login finished after this one started: it wins; give back our tokens.
            if let Some(rt) = &tokens.refresh_token {
                let _ = client.revoke(&app, rt).await;
            }
            eprintln!("Another login of this profile finished meanwhile (as {}); keeping it.", newer.username);
            return Ok(ExitCode::SUCCESS);
        }
    }
    if let Some(d) = &session.device {
        // So other devices can invite this one to trusted sessions from the start.
        let dev = latchkey_client::trusted::TrustedDevice::new(
            client.clone(),
            key.clone(),
            d.id.clone(),
            tokens.access_token.clone(),
            profile.dir().to_path_buf(),
        );
        if let Err(e) = dev.publish_session_key().await {
            eprintln!("warning: could not publish this machine's session key ({e}); `latchkey session listen` does it");
        }
    }
    if common.json {
        output::json(&serde_json::json!({"server": server, "username": username, "device": session.device}))?;
    } else {
        match &session.device {
            Some(d) => println!(
                "Logged in to {server} as {username}. This machine is \"{}\" ({}), location: {}.",
                d.name,
                d.slug,
                output::location(&d.location)
            ),
            None => println!("Logged in to {server} as {username}."),
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn show_code(auth: &DeviceAuthorization, open_browser: bool) {
    eprintln!();
    eprintln!("To sign in this machine, open this link on a device where you are signed in:");
    eprintln!();
    eprintln!("    {}", auth.verification_uri_complete);
    eprintln!();
    eprintln!("and check that it shows the code  {}", auth.user_code);
    if let Some(q) = qr(&auth.verification_uri_complete) {
        eprintln!("{q}");
    }
    if open_browser && can_open_browser() && webbrowser::open(&auth.verification_uri_complete).is_ok() {
        eprintln!("(opened in your browser)");
    }
}

async fn wait(client: &Client, app: &AppCredentials, auth: &DeviceAuthorization) -> anyhow::Result<TokenResponse> {
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.set_message("Waiting for approval… (Ctrl-C cancels)");
    spinner.enable_steady_tick(Duration::from_millis(120));
    let result = tokio::select! {
        r = client.wait_for_approval(app, auth) => r,
        _ = tokio::signal::ctrl_c() => {
            spinner.finish_and_clear();
            bail!("cancelled; nothing was saved");
        }
    };
    spinner.finish_and_clear();
    result.map_err(|e| match e.code() {
        Some("access_denied") => anyhow::anyhow!("the sign-in was denied; nothing was saved"),
        Some("expired_token") => {
            anyhow::anyhow!("the code expired before anyone approved it; run `latchkey login` again")
        }
        _ => explain(e),
    })
}

/// Turns client errors into messages that say what to do.
pub fn explain(e: ClientError) -> anyhow::Error {
    match &e {
        ClientError::Http(_) => anyhow::anyhow!("{e}. Is the server URL right and the server running?"),
        ClientError::Server { description: Some(d), .. } => anyhow::anyhow!("{d}"),
        _ => anyhow::anyhow!("{e}"),
    }
}

/// Flags of `latchkey logout`.
#[derive(Args, Debug)]
pub struct LogoutArgs {
    /// Forget the session here even if the server cannot be reached to revoke it.
    #[arg(long)]
    force: bool,
}

/// Runs `latchkey logout`: revoke on the server, then forget here.
pub async fn logout(common: &ClientArgs, args: LogoutArgs) -> anyhow::Result<ExitCode> {
    let profile = common.profile()?;
    let account = match Account::open(profile.clone(), common.server.as_deref()) {
        Ok(a) => a,
        Err(AccountError::NotLoggedIn) => {
            println!("Not logged in.");
            return Ok(ExitCode::SUCCESS);
        }
        Err(AccountError::Profile(e)) => {
            // A damaged session file cannot be revoked; remove it so the user can start over.
            profile.remove()?;
            println!("Removed the damaged session ({e}).");
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => return Err(e.into()),
    };
    let s = account.session().clone();
    if let Some(rt) = &s.refresh_token {
        let app = AppCredentials::public(&s.client_id);
        if let Err(e) = account.client().revoke(&app, rt).await {
            if !args.force {
                return Err(explain(e)).context("could not revoke the session on the server; nothing was removed (use --force to forget it here anyway)");
            }
            eprintln!("warning: could not revoke on the server ({e}); forgetting it here anyway");
        }
    }
    profile.remove()?;
    println!("Logged out of {} ({}).", s.server, s.username);
    Ok(ExitCode::SUCCESS)
}
