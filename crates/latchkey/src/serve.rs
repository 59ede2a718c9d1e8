//! `latchkey serve`.

use crate::settings::{DataArgs, StorageSettings};
use anyhow::Context;
use clap::Args;
use latchkey_server::config::ServerConfig;
use latchkey_server::tls::{Tls, TlsReloader};
use latchkey_server::Server;
use std::process::ExitCode;

/// Flags of `latchkey serve`: the settings file, storage, and the server's own settings.
#[derive(Args, Debug)]
pub struct ServeCommand {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    serve: latchkey_server::config::ServeArgs,
}

/// Runs the server until SIGINT or SIGTERM.
pub async fn run(args: ServeCommand) -> anyhow::Result<ExitCode> {
    let settings = args.data.resolve(args.serve)?;
    let storage = StorageSettings::of(&settings);
    let secret = crate::secret_key::Source::from_settings(settings.secret_key_file.as_deref())?;
    let listen = settings.listen.clone();
    let listener = tokio::net::TcpListener::bind(&listen).await.with_context(|| {
        format!("cannot listen on {listen} (is another server using it? pick another with --listen)")
    })?;
    let addr = listener.local_addr()?;
    // Checked before the files are read, so a missing half is named as such.
    settings.validate()?;
    let tls = match (&settings.tls_cert, &settings.tls_key) {
        (Some(cert), Some(key)) => Some(Tls::from_pem_files(cert, key)?),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let public_url = match &settings.public_url {
        Some(u) => u.clone(),
        None if addr.ip().is_unspecified() => {
            // 0.0.0.0 is not an address anyone can reach; links need a real one.
            eprintln!("note: listening on all interfaces; set --public-url to the address clients use");
            format!("{scheme}://localhost:{}", addr.port())
        }
        None => format!("{scheme}://{addr}"),
    };
    let config = ServerConfig::from_settings(settings, public_url);
    config.validate()?;
    let public_url = config.public_url.clone();

    let store = crate::storage::open(&storage, &secret).await?;
    let users = store.count_users().await?;
    let server = Server::new(store, config).await.map_err(|e| anyhow::anyhow!("{e}"))?;

    let where_ = match &storage {
        StorageSettings::Sqlite { data_dir, .. } => format!("SQLite in {}", data_dir.display()),
        StorageSettings::Postgres { .. } => "PostgreSQL".to_string(),
    };
    let reloads = tls.as_ref().map(|tls| reload_on_sighup(tls.reloader()));
    println!("Latchkey listening on {scheme}://{addr} (public URL {public_url}, {where_})");
    if let Some(m) = server.metrics_addr() {
        println!("Prometheus metrics on http://{m}/metrics");
    }
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
    let served = match &tls {
        Some(tls) => server.run_tls(listener, tls, shutdown_signal()).await,
        None => server.run(listener, shutdown_signal()).await,
    };
    if let Some(reloads) = reloads {
        reloads.abort();
    }
    served?;
    println!("Latchkey stopped.");
    Ok(ExitCode::SUCCESS)
}

/// Re-reads the TLS certificate and key on every SIGHUP; a bad pair keeps the one in use.
/// Subscribes before returning, so a SIGHUP sent once the server has said it listens
/// reloads rather than kills it (SIGHUP's default action).
fn reload_on_sighup(reloader: TlsReloader) -> tokio::task::JoinHandle<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::hangup()) {
            Ok(mut hangups) => tokio::spawn(async move {
                while hangups.recv().await.is_some() {
                    match reloader.reload() {
                        Ok(()) => tracing::info!("SIGHUP: reloaded the TLS certificate"),
                        Err(e) => tracing::error!(error = %e, "SIGHUP: kept the TLS certificate in use"),
                    }
                }
            }),
            Err(e) => {
                tracing::error!(error = %e, "cannot watch for SIGHUP; the TLS certificate will not be reloaded");
                tokio::spawn(async {})
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = reloader;
        tokio::spawn(async {})
    }
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
