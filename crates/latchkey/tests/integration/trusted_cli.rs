//! Trusted devices through the real `latchkey` binary: two machines compare
//! fingerprints and trust each other, one opens a session with the other, a
//! listener on the other prints what is sent, and a key rotation with its
//! signed chain keeps the trust.

use crate::backend_tests;
use crate::cli::{laptop_and_server, Machine};
use crate::support::*;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

async fn ok(m: &Machine, args: &[&str]) -> String {
    let (ok, out, err) = m.run(args).await;
    assert!(ok, "latchkey {args:?} failed: {err}");
    out
}

async fn fingerprint(m: &Machine) -> String {
    ok(m, &["device", "fingerprint"]).await.trim().to_string()
}

async fn two_machines_trust_each_other_and_talk(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.signed_in("alice").await;
    let (laptop, server) = laptop_and_server(&app, &alice).await;

    // Nothing is trusted yet: the session is refused, with the reason per target.
    let (made, out, _) = laptop.run(&["session", "create", "--with", "server"]).await;
    assert!(!made, "no session without trust: {out}");
    assert!(out.contains("not trusted"), "{out}");

    // `trust add` shows the other machine's fingerprint, the same one it shows itself.
    let server_fp = fingerprint(&server).await;
    assert_eq!(server_fp.split(' ').count(), 5, "{server_fp}");
    let (added, _, shown) = laptop.run(&["trust", "add", "server", "--yes"]).await;
    assert!(added, "{shown}");
    assert!(shown.contains(&server_fp), "trust add shows the fingerprint to compare: {shown}");
    let (added, _, err) = server.run(&["trust", "add", "laptop", "--yes"]).await;
    assert!(added, "{err}");
    // Without --yes and nobody to answer, nothing is trusted.
    let third = Machine::new(&app);
    third.login(&app, &alice, &["--yes", "--name", "Third", "--location", "home"]).await;
    let (added, _, _) = laptop.run(&["trust", "add", "third"]).await;
    assert!(!added, "trust needs a confirmation");
    let list = ok(&laptop, &["trust", "list"]).await;
    assert_eq!(list.matches("yes").count(), 2, "both directions hold:\n{list}");

    // The server's machine listens; the laptop opens a session and sends.
    let mut listener = server
        .cmd(&["session", "listen", "--count", "1", "--timeout", "30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("listen");
    let mut err_lines = BufReader::new(listener.stderr.take().expect("stderr")).lines();
    let online = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = err_lines.next_line().await.expect("read") {
            if line.contains("online") {
                return;
            }
        }
    })
    .await;
    assert!(online.is_ok(), "the listener came online");
    let out = ok(&laptop, &["session", "create", "--with", "server"]).await;
    assert!(out.contains("invited (online)"), "{out}");
    let session_id = out.lines().last().expect("the session ID").trim().to_string();
    let sessions = ok(&laptop, &["session", "list"]).await;
    assert!(sessions.contains(&session_id), "{sessions}");
    // The listener joins on its own; the message may wait until it holds the key.
    let mut sent = false;
    for _ in 0..50 {
        let (ok_send, _, _) = laptop.run(&["session", "send", &session_id, "hello from the laptop"]).await;
        if ok_send {
            sent = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(sent, "the laptop sent its message");
    let done =
        tokio::time::timeout(Duration::from_secs(30), listener.wait_with_output()).await.expect("listener ended");
    let done = done.expect("listener ran");
    assert!(done.status.success(), "listener failed: {}", String::from_utf8_lossy(&done.stderr));
    let line: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&done.stdout).trim()).expect("one JSON line");
    assert_eq!(line["text"], "hello from the laptop");
    assert_eq!(line["session"], session_id.as_str());

    // A chained key rotation keeps the trust: a new session works at once.
    let old_fp = fingerprint(&laptop).await;
    let rotated = ok(&laptop, &["device", "rotate-key"]).await;
    let new_fp = fingerprint(&laptop).await;
    assert_ne!(old_fp, new_fp);
    assert!(rotated.contains("carries over"), "{rotated}");
    let list = ok(&server, &["trust", "list"]).await;
    assert_eq!(list.matches("yes").count(), 2, "trust held across the signed rotation:\n{list}");
    ok(&laptop, &["session", "create", "--with", "server"]).await;

    // Removing trust ends it.
    ok(&server, &["trust", "remove", "laptop"]).await;
    let (made, out, _) = laptop.run(&["session", "create", "--with", "server"]).await;
    assert!(!made && out.contains("not trusted"), "{out}");
}

backend_tests!(two_machines_trust_each_other_and_talk);
