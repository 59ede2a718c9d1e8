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
    /// Take client IPs from X-Forwarded-For (only behind a proxy you control).
    #[arg(long, env = "LATCHKEY_TRUST_PROXY_HEADERS")]
    trust_proxy_headers: bool,
}

/// Runs the server until SIGINT or SIGTERM.
pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let file = FileSettings::load(args.storage.config.as_deref())?;
    let storage = args.storage.resolve(&file)?;
    let listen = args.listen.or(file.listen.clone()).unwrap_or_else(|| "127.0.0.1:8080".into());
    let listener = tokio::net::TcpListener::bind(&listen).await.with_context(|| {
        format!("cannot listen on {listen} (is another server using it? pick another with --listen)")
    })?;
    let addr = listener.local_addr()?;
    let public_url = args.public_url.or(file.public_url.clone()).unwrap_or_else(|| format!("http://{addr}"));

    let mut config = ServerConfig::new(public_url.clone());
    config.trust_proxy_headers = args.trust_proxy_headers || file.trust_proxy_headers.unwrap_or(false);
    if let Some(v) = file.device_code_lifetime_secs {
        config.device_code_lifetime_secs = v;
    }
    if let Some(v) = file.poll_interval_secs {
        config.poll_interval_secs = v;
    }
    if let Some(v) = file.wait_timeout_secs {
        config.wait_timeout = Duration::from_secs(v);
    }
    if let Some(v) = file.access_token_lifetime_secs {
        config.access_token_lifetime_secs = v;
    }
    if let Some(v) = file.refresh_token_lifetime_secs {
        config.refresh_token_lifetime_secs = v;
    }
    if let Some(v) = file.session_lifetime_secs {
        config.session_lifetime_secs = v;
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
