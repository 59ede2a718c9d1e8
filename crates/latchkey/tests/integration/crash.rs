//! The real `latchkey serve` process killed with SIGKILL under load, on
//! durable SQLite and on PostgreSQL: everything it acknowledged survives the
//! restart (approved devices, issued token families, stored events, each
//! event once), and `latchkey admin audit verify` passes afterwards.
//!
//! Device logins and event batches run at once, so the kill lands while
//! transactions commit (and, on SQLite, while the checkpointer copies the log).

use crate::backend_tests;
use crate::support::Backend;
use latchkey_client::dpop::DeviceKey;
use latchkey_client::{AppCredentials, Auth, Client};
use latchkey_proto::api::{Capture, IdentityField, KindDeclaration};
use latchkey_proto::oauth::TokenResponse;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

pub(crate) const PASSWORD: &str = "crash-test-password-1";

/// Where the killed server keeps its data: a fresh SQLite directory, or a fresh PostgreSQL schema.
pub(crate) enum Data {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Data {
    pub(crate) async fn fresh(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                Data::Sqlite(std::env::temp_dir().join(format!("latchkey-crash-{}", uuid::Uuid::new_v4().simple())))
            }
            Backend::Postgres(url) => {
                // Created and migrated here; the server finds it through the URL's search_path.
                let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
                latchkey_store_postgres::PgStore::connect(&url, Some(&schema)).await.expect("PostgreSQL schema");
                let joiner = if url.contains('?') { '&' } else { '?' };
                Data::Postgres(format!("{url}{joiner}options=-c%20search_path%3D{schema}"))
            }
        }
    }

    /// `latchkey COMMAND <storage flags> ARGS...`.
    pub(crate) fn latchkey(&self, command: &str, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_latchkey"));
        c.arg(command);
        match self {
            // SQLite makes its own secret.key in the data directory.
            Data::Sqlite(dir) => c.arg("--data-dir").arg(dir).env_remove("LATCHKEY_SECRET_KEY"),
            // Every PostgreSQL replica is given the same key.
            Data::Postgres(url) => {
                c.arg("--database").arg(url).env("LATCHKEY_SECRET_KEY", &*crate::support::test_secret_key().to_text())
            }
        };
        c.args(args).env("LATCHKEY_LOG", "warn").kill_on_drop(true);
        c
    }
}

/// Starts `latchkey serve` on `listen` (port 0: a free one) with `extra` flags; the child and its URL.
pub(crate) async fn serve(data: &Data, listen: &str, extra: &[&str]) -> (Child, String) {
    serve_with(data, listen, extra, &[]).await
}

/// [`serve`] with environment variables set (or replaced) for the server.
pub(crate) async fn serve_with(data: &Data, listen: &str, extra: &[&str], env: &[(&str, &str)]) -> (Child, String) {
    let args: Vec<&str> = ["--listen", listen].into_iter().chain(extra.iter().copied()).collect();
    let mut command = data.latchkey("serve", &args);
    command.envs(env.iter().copied());
    let mut child = command
        // One address sends every login; the per-network limit is not what is tested.
        .env("LATCHKEY_DEVICE_AUTH_PER_MINUTE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn latchkey serve");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let url = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.expect("read stdout") {
            if let Some(rest) = line.strip_prefix("Latchkey listening on ") {
                return rest.split_whitespace().next().expect("address").to_string();
            }
        }
        panic!("latchkey serve ended before listening");
    })
    .await
    .expect("the server listened in time");
    // Keep draining stdout so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, url)
}

/// A device login of the CLI app with its own key: (client, tokens), or None if the server went away.
pub(crate) async fn login(
    url: &str,
    session: &str,
    name: &str,
    approved: &Mutex<Vec<String>>,
) -> Option<(Client, TokenResponse)> {
    let cli = AppCredentials::public(latchkey_proto::CLI_CLIENT_ID);
    let client = Client::new(url).ok()?.with_device_key(Arc::new(DeviceKey::generate().ok()?));
    let auth = client.device_authorization(&cli, "openid", Some(name)).await.ok()?;
    Client::new(url).ok()?.decide_device_login(session, &auth.user_code, true).await.ok()?;
    approved.lock().expect("lock").push(name.to_string());
    let tokens = client.poll_token(&cli, &auth.device_code).await.ok()?;
    Some((client, tokens))
}

fn ping(run: &str, n: usize) -> Capture {
    let mut identity = serde_json::Map::new();
    identity.insert("run".into(), run.into());
    identity.insert("n".into(), (n as i64).into());
    Capture { kind: "crash.ping".into(), identity, start: None, end: None, id: None }
}

backend_tests!(a_server_killed_under_load_keeps_everything_it_acknowledged);

/// SIGKILL in the middle of logins and event batches loses nothing that was acknowledged.
async fn a_server_killed_under_load_keeps_everything_it_acknowledged(backend: Backend) {
    let data = Data::fresh(backend).await;
    let mut add = data
        .latchkey("admin", &["user", "add", "alice"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn admin");
    add.stdin.take().expect("stdin").write_all(format!("{PASSWORD}\n").as_bytes()).await.expect("password");
    let out = add.wait_with_output().await.expect("admin ran");
    assert!(out.status.success(), "admin user add: {}", String::from_utf8_lossy(&out.stderr));

    let (mut server, url) = serve(&data, "127.0.0.1:0", &[]).await;
    let session = Client::new(&url).expect("client").sign_in("alice", PASSWORD).await.expect("sign in").session_token;
    let (sender, tokens) = login(&url, &session, "sender", &Mutex::new(Vec::new())).await.expect("first login");
    let kind = KindDeclaration {
        identity: vec![
            IdentityField { name: "run".into(), ty: "string".into() },
            IdentityField { name: "n".into(), ty: "integer".into() },
        ],
        precision: "second".into(),
        merge: "exact".into(),
        retention_days: None,
    };
    sender.declare_event_kind(Auth::Access(&tokens.access_token), "crash.ping", &kind).await.expect("declare kind");

    // Load: four workers logging in, two sending batches of 200 events, until the kill.
    let approved = Arc::new(Mutex::new(Vec::<String>::new()));
    let issued = Arc::new(Mutex::new(Vec::<(Client, TokenResponse)>::new()));
    let stored = Arc::new(Mutex::new(BTreeSet::<String>::new()));
    let mut load = tokio::task::JoinSet::new();
    for w in 0..4 {
        let (url, session, approved, issued) = (url.clone(), session.clone(), approved.clone(), issued.clone());
        load.spawn(async move {
            // A user may have 50 active devices; stay under it with the sender.
            for i in 0..12 {
                match login(&url, &session, &format!("crash-{w}-{i}"), &approved).await {
                    Some(done) => issued.lock().expect("lock").push(done),
                    None => return,
                }
            }
        });
    }
    for w in 0..2 {
        let (sender, token, stored) = (sender.clone(), tokens.access_token.clone(), stored.clone());
        load.spawn(async move {
            for b in 0.. {
                let batch: Vec<Capture> = (0..200).map(|n| ping(&format!("w{w}"), b * 200 + n)).collect();
                let Ok(r) = sender.push_events(Auth::Access(&token), &batch).await else { return };
                stored.lock().expect("lock").extend(r.results.into_iter().filter_map(|x| x.id));
            }
        });
    }
    // Kill as soon as both kinds of work have been acknowledged, while they go on.
    let started = std::time::Instant::now();
    while issued.lock().expect("lock").len() < 8 || stored.lock().expect("lock").len() < 400 {
        assert!(started.elapsed() < Duration::from_secs(120), "the load never got going");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.start_kill().expect("SIGKILL");
    let status = server.wait().await.expect("server ended");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL), "killed, not stopped: {status:?}");
    }
    while load.join_next().await.is_some() {}

    // Restarted on the same files and address: every acknowledged thing is there.
    let address = url.trim_start_matches("http://").to_string();
    let (mut server, _) = serve(&data, &address, &[]).await;
    let api = Client::new(&url).expect("client");
    let names: BTreeSet<String> = api.devices(&session).await.expect("devices").into_iter().map(|d| d.name).collect();
    let approved = approved.lock().expect("lock").clone();
    for name in &approved {
        assert!(names.contains(name), "approved device {name} was lost; the server has {names:?}");
    }
    let cli = AppCredentials::public(latchkey_proto::CLI_CLIENT_ID);
    let issued = std::mem::take(&mut *issued.lock().expect("lock"));
    for (client, tokens) in &issued {
        client
            .refresh(&cli, tokens.refresh_token.as_deref().expect("refresh token"))
            .await
            .expect("issued tokens survive");
    }
    let fresh = sender.refresh(&cli, tokens.refresh_token.as_deref().expect("refresh token")).await.expect("refresh");
    let (mut ids, mut cursor) = (Vec::new(), 0);
    loop {
        let page = sender.pull_events(Auth::Access(&fresh.access_token), cursor, 1000, 0).await.expect("pull");
        if page.events.is_empty() {
            break;
        }
        ids.extend(page.events.into_iter().map(|e| e.id));
        cursor = page.cursor;
    }
    let unique: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(unique.len(), ids.len(), "an event is stored twice");
    let stored = stored.lock().expect("lock").clone();
    let lost: Vec<&String> = stored.difference(&unique).collect();
    assert!(lost.is_empty(), "{} of {} acknowledged events were lost", lost.len(), stored.len());
    assert!(approved.len() >= 8 && stored.len() >= 400, "the load was acknowledged before the kill");

    server.start_kill().expect("stop");
    let _ = server.wait().await;
    let verify = data.latchkey("admin", &["audit", "verify"]).output().await.expect("audit verify ran");
    assert!(
        verify.status.success(),
        "the audit log verifies after the crash: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    if let Data::Sqlite(dir) = &data {
        let _ = std::fs::remove_dir_all(dir);
    }
}
