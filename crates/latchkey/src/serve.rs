//! `latchkey serve`.

use crate::settings::{FileSettings, StorageArgs, StorageSettings};
use anyhow::Context;
use clap::Args;
use latchkey_server::config::ServerConfig;
use latchkey_server::Server;
use std::process::ExitCode;
use std::time::Duration;

/// Flags of `latchkey serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    storage: StorageArgs,
    /// Address to listen on (default 127.0.0.1:8080; port 0 picks a free one).
    #[arg(long, env = "LATCHKEY_LISTEN")]
    listen: Option<String>,
    /// Public base URL, used as the issuer and in links (default http://<listen address>).
    #[arg(long, env = "LATCHKEY_PUBLIC_URL")]
    public_url: Option<String>,
    /// Take client IPs from the right-most X-Forwarded-For entry (only behind a proxy you control).
    #[arg(long, env = "LATCHKEY_TRUST_PROXY_HEADERS", num_args = 0..=1, default_missing_value = "true")]
    trust_proxy_headers: Option<bool>,
    /// Seconds a device code lives (RFC 8628 expires_in; 60..=3600).
    #[arg(long, env = "LATCHKEY_DEVICE_CODE_LIFETIME")]
    device_code_lifetime: Option<i64>,
    /// Seconds between polls a device starts with (RFC 8628 interval; 1..=60).
    #[arg(long, env = "LATCHKEY_POLL_INTERVAL")]
    poll_interval: Option<i64>,
    /// Seconds the instant-approval endpoint holds a request (1..=120).
    #[arg(long, env = "LATCHKEY_WAIT_TIMEOUT")]
    wait_timeout: Option<u64>,
    /// Seconds an access token is valid (60..=86400).
    #[arg(long, env = "LATCHKEY_ACCESS_TOKEN_LIFETIME")]
    access_token_lifetime: Option<i64>,
    /// Seconds a refresh token is valid (300..=31536000).
    #[arg(long, env = "LATCHKEY_REFRESH_TOKEN_LIFETIME")]
    refresh_token_lifetime: Option<i64>,
    /// Seconds a browser or API sign-in session is valid (300..=2592000).
    #[arg(long, env = "LATCHKEY_SESSION_LIFETIME")]
    session_lifetime: Option<i64>,
    /// Most active devices per user (1..=10000).
    #[arg(long, env = "LATCHKEY_DEVICE_CAP")]
    device_cap: Option<i64>,
    /// Device authorizations per client network per minute (0: unlimited).
    #[arg(long, env = "LATCHKEY_DEVICE_AUTH_PER_MINUTE")]
    device_auth_per_minute: Option<u32>,
}

/// The first value that was given: flag or environment (clap), then the file.
fn pick<T>(flag: Option<T>, file: Option<T>) -> Option<T> {
    flag.or(file)
}

fn in_range(what: &str, v: i64, lo: i64, hi: i64) -> anyhow::Result<i64> {
    if (lo..=hi).contains(&v) {
        Ok(v)
    } else {
        anyhow::bail!("{what} must be between {lo} and {hi}, not {v}")
    }
}

/// Checks that the public URL is an absolute http(s) URL without a trailing path, query or fragment.
fn check_public_url(url: &str) -> anyhow::Result<String> {
    let url = url.trim_end_matches('/');
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://")).ok_or_else(|| {
        anyhow::anyhow!("--public-url must start with https:// (or http:// for local use), not {url:?}")
    })?;
    if rest.is_empty() || rest.contains(['?', '#', ' ']) {
        anyhow::bail!("--public-url must be a base URL like https://login.example.com, not {url:?}");
    }
    Ok(url.to_string())
}

/// Runs the server until SIGINT or SIGTERM.
pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let file = FileSettings::load(args.storage.config.as_deref())?;
    let storage = args.storage.resolve(&file)?;
    let listen = pick(args.listen, file.listen.clone()).unwrap_or_else(|| "127.0.0.1:8080".into());
    let listener = tokio::net::TcpListener::bind(&listen).await.with_context(|| {
        format!("cannot listen on {listen} (is another server using it? pick another with --listen)")
    })?;
    let addr = listener.local_addr()?;
    let public_url = match pick(args.public_url, file.public_url.clone()) {
        Some(u) => check_public_url(&u)?,
        None if addr.ip().is_unspecified() => {
            // 0.0.0.0 is not an address anyone can reach; links need a real one.
            eprintln!("note: listening on all interfaces; set --public-url to the address clients use");
            format!("http://localhost:{}", addr.port())
        }
        None => format!("http://{addr}"),
    };

    let mut config = ServerConfig::new(public_url.clone());
    config.trust_proxy_headers = pick(args.trust_proxy_headers, file.trust_proxy_headers).unwrap_or(false);
    if let Some(v) = pick(args.device_code_lifetime, file.device_code_lifetime_secs) {
        config.device_code_lifetime_secs = in_range("the device code lifetime", v, 60, 3600)?;
    }
    if let Some(v) = pick(args.poll_interval, file.poll_interval_secs) {
        config.poll_interval_secs = in_range("the poll interval", v, 1, 60)?;
    }
    if let Some(v) = pick(args.wait_timeout, file.wait_timeout_secs) {
        config.wait_timeout = Duration::from_secs(in_range("the wait timeout", v as i64, 1, 120)? as u64);
    }
    if let Some(v) = pick(args.access_token_lifetime, file.access_token_lifetime_secs) {
        config.access_token_lifetime_secs = in_range("the access token lifetime", v, 60, 86_400)?;
    }
    if let Some(v) = pick(args.refresh_token_lifetime, file.refresh_token_lifetime_secs) {
        config.refresh_token_lifetime_secs = in_range("the refresh token lifetime", v, 300, 31_536_000)?;
    }
    if let Some(v) = pick(args.session_lifetime, file.session_lifetime_secs) {
        config.session_lifetime_secs = in_range("the session lifetime", v, 300, 2_592_000)?;
    }
    if let Some(v) = pick(args.device_cap, file.device_cap) {
        config.device_cap = in_range("the device cap", v, 1, 10_000)?;
    }
    if let Some(v) = pick(args.device_auth_per_minute, file.device_auth_per_minute) {
        config.device_authorizations_per_minute = v;
    }

    let store = crate::storage::open(&storage).await?;
    let users = store.count_users().await?;
    let server = Server::new(store, config).await.map_err(|e| anyhow::anyhow!("{e}"))?;

    let where_ = match &storage {
        StorageSettings::Sqlite { data_dir, .. } => format!("SQLite in {}", data_dir.display()),
        StorageSettings::Postgres { .. } => "PostgreSQL".to_string(),
    };
    println!("Latchkey listening on http://{addr} (public URL {public_url}, {where_})");
    if users == 0 {
        let dir = match &storage {
            StorageSettings::Sqlite { data_dir, .. } => {
                format!(" --data-dir {}", data_dir.display())
            }
            StorageSettings::Postgres { .. } => " --database <same URL>".to_string(),
        };
        println!("No accounts yet. Create the first admin (it asks for a password):");
        println!("    latchkey admin{dir} user add <name> --admin");
        println!("  (from a checkout: cargo run --release -- admin{dir} user add <name> --admin)");
    }
    server.run(listener, shutdown_signal()).await?;
    println!("Latchkey stopped.");
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
