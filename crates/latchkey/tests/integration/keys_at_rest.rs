//! Keys at rest with the real binary: a wrong or missing server secret key stops
//! `latchkey serve` with a message naming the key it needs; `admin secret rotate`
//! re-encrypts every key and the tokens issued before keep working; and what the
//! database holds never contains a user code or private key material.

use crate::backend_tests;
use crate::crash::{login, serve, serve_with, Data, PASSWORD};
use crate::support::*;
use latchkey_domain::at_rest::SecretKey;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

backend_tests!(
    a_wrong_or_missing_secret_key_stops_the_server,
    rotating_the_secret_key_keeps_every_key_and_token,
    a_database_dump_holds_no_user_code_or_private_key,
);

/// Runs a command to its end (60 s at most): (success, stdout, stderr).
async fn finish(mut c: Command, stdin: Option<&str>) -> (bool, String, String) {
    c.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() }).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn latchkey");
    if let Some(text) = stdin {
        child.stdin.take().expect("stdin").write_all(text.as_bytes()).await.expect("write stdin");
    }
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("latchkey ended within 60 s")
        .expect("latchkey ran");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// The key the database's keys are sealed under after a first start: SQLite's own
/// `secret.key` (checked to be private), or the key the PostgreSQL replicas were given.
fn first_key(data: &Data) -> SecretKey {
    match data {
        Data::Sqlite(dir) => {
            let path = dir.join("secret.key");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&path).expect("secret.key was made").permissions().mode();
                assert_eq!(mode & 0o777, 0o600, "secret.key is readable by its owner only");
            }
            SecretKey::parse(&std::fs::read_to_string(path).expect("read secret.key")).expect("a secret key")
        }
        Data::Postgres(_) => test_secret_key(),
    }
}

async fn a_wrong_or_missing_secret_key_stops_the_server(backend: Backend) {
    let data = Data::fresh(backend).await;
    let (mut server, _) = serve(&data, "127.0.0.1:0", &[]).await;
    server.start_kill().expect("stop");
    server.wait().await.expect("stopped");
    let right = first_key(&data).id();

    let wrong = SecretKey::from_bytes([0x99; 32]);
    let mut c = data.latchkey("serve", &["--listen", "127.0.0.1:0"]);
    c.env("LATCHKEY_SECRET_KEY", &*wrong.to_text());
    let (ok, _, err) = finish(c, None).await;
    assert!(!ok, "a server with the wrong key must not start");
    assert!(err.contains("wrong server secret key"), "{err}");
    assert!(err.contains(&right) && err.contains(&wrong.id()), "names the expected and the given key ID: {err}");
    assert!(!err.contains("panicked"), "{err}");

    let mut c = data.latchkey("serve", &["--listen", "127.0.0.1:0"]);
    c.env("LATCHKEY_SECRET_KEY", "lksk_not-a-key");
    let (ok, _, err) = finish(c, None).await;
    assert!(!ok && err.contains("LATCHKEY_SECRET_KEY is not valid"), "{err}");

    let mut c = data.latchkey("serve", &["--listen", "127.0.0.1:0"]);
    c.env_remove("LATCHKEY_SECRET_KEY");
    if let Data::Sqlite(dir) = &data {
        std::fs::rename(dir.join("secret.key"), dir.join("moved.key")).expect("move secret.key away");
    }
    let (ok, _, err) = finish(c, None).await;
    assert!(!ok, "a server without the key must not start");
    assert!(err.contains(&right), "names the key it needs: {err}");
    match &data {
        Data::Sqlite(dir) => {
            assert!(err.contains("secret.key"), "{err}");
            assert!(!dir.join("secret.key").exists(), "no new key is made for a database with encrypted keys");
        }
        Data::Postgres(_) => assert!(err.contains("LATCHKEY_SECRET_KEY") && err.contains("same key"), "{err}"),
    }
}

async fn rotating_the_secret_key_keeps_every_key_and_token(backend: Backend) {
    let data = Data::fresh(backend).await;
    let (ok, _, err) = finish(data.latchkey("admin", &["user", "add", "alice"]), Some(&format!("{PASSWORD}\n"))).await;
    assert!(ok, "admin user add: {err}");
    let (mut server, url) = serve(&data, "127.0.0.1:0", &[]).await;
    let api = latchkey_client::Client::new(&url).expect("client");
    let session = api.sign_in("alice", PASSWORD).await.expect("sign in").session_token;
    let (client, tokens) = login(&url, &session, "before", &Mutex::new(Vec::new())).await.expect("a login");
    let kids: Vec<String> = api.jwks().await.expect("jwks").keys.into_iter().map(|k| k.kid).collect();
    server.start_kill().expect("stop");
    server.wait().await.expect("stopped");
    let old = first_key(&data);

    // Rotate with every server stopped.
    let (ok, out, err) = finish(data.latchkey("admin", &["secret", "rotate"]), None).await;
    assert!(ok, "admin secret rotate: {err}");
    assert!(err.contains("Re-encrypted"), "{err}");
    let new = match &data {
        Data::Sqlite(dir) => {
            assert!(dir.join(format!("secret.key.{}", old.id())).exists(), "the old key is kept for old backups");
            first_key(&data)
        }
        Data::Postgres(_) => SecretKey::parse(out.trim()).expect("the new key is printed"),
    };
    assert_ne!(new.id(), old.id());
    assert!(err.contains(&new.id()) && err.contains(&old.id()), "{err}");

    // The old key no longer opens the database.
    let mut c = data.latchkey("serve", &["--listen", "127.0.0.1:0"]);
    if let Data::Sqlite(dir) = &data {
        c.env_remove("LATCHKEY_SECRET_KEY").arg("--secret-key-file").arg(dir.join(format!("secret.key.{}", old.id())));
    } else {
        c.env("LATCHKEY_SECRET_KEY", &*old.to_text());
    }
    let (ok, _, err) = finish(c, None).await;
    assert!(!ok && err.contains("wrong server secret key"), "{err}");

    // Restarted with the new key on the same address: the same signing keys, and the old tokens work.
    let new_text = new.to_text();
    let env: Vec<(&str, &str)> = match &data {
        Data::Sqlite(_) => vec![],
        Data::Postgres(_) => vec![("LATCHKEY_SECRET_KEY", &new_text)],
    };
    let address = url.trim_start_matches("http://").to_string();
    let (mut server, _) = serve_with(&data, &address, &[], &env).await;
    let after: Vec<String> = api.jwks().await.expect("jwks").keys.into_iter().map(|k| k.kid).collect();
    assert_eq!(after, kids, "the signing keys survive the rotation");
    client.userinfo(&tokens.access_token).await.expect("an access token issued before verifies");
    let cli = latchkey_client::AppCredentials::public(latchkey_proto::CLI_CLIENT_ID);
    let fresh = client.refresh(&cli, tokens.refresh_token.as_deref().expect("refresh token")).await.expect("refresh");
    client.userinfo(&fresh.access_token).await.expect("a new access token verifies");
    login(&url, &session, "after", &Mutex::new(Vec::new())).await.expect("a login after the rotation");
    server.start_kill().expect("stop");
    server.wait().await.expect("stopped");

    let mut c = data.latchkey("admin", &["audit", "verify"]);
    c.envs(env.iter().copied());
    let (ok, out, err) = finish(c, None).await;
    assert!(ok, "the audit log verifies after the rotation: {out}{err}");
}

async fn a_database_dump_holds_no_user_code_or_private_key(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.signed_in("alice").await;
    let pending = app.start_login("openid").await;
    let canonical = pending.user_code.replace('-', "");
    app.sealed().await;
    let dump = app.database_text().await;

    assert!(!dump.contains(&canonical), "the user code is not stored");
    let unkeyed = latchkey_domain::secret::SecretHash::of(&canonical);
    assert!(!dump.contains(unkeyed.as_str()), "nor its unkeyed SHA-256");
    assert!(dump.contains(&test_secret_key().user_code_hash(&canonical)), "its HMAC is what finds the grant");
    let signing = app.store.signing_keys().await.expect("signing keys");
    assert!(!signing.is_empty());
    for k in &signing {
        assert!(!dump.contains(&hex::encode(&k.private_pkcs8)), "the PKCS#8 of {} is not stored", k.kid);
        // An Ed25519 PKCS#8 v2 document carries the 32-byte seed at bytes 16..48.
        assert!(!dump.contains(&hex::encode(&k.private_pkcs8[16..48])), "nor the seed of {}", k.kid);
    }
    for k in app.store.audit_keys().await.expect("audit keys") {
        assert!(!dump.contains(&hex::encode(k.seed)), "the seed of audit key {:08x} is not stored", k.key_id);
    }
    // The code still finds its grant.
    app.client.decide_device_login(&session, &pending.user_code, true).await.expect("approve with the typed code");
}
