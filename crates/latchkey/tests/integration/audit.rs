//! The audit log records every security-relevant action, seals it into a signed
//! Merkle tree, and names each kind of tampering: an edited row, a deleted row or
//! tail, a swapped pair, a forged checkpoint; and proofs reach clients.

use crate::backend_tests;
use crate::support::*;
use latchkey_client::audit::{check, AuditCheckError, CheckOutcome};

async fn kinds(app: &TestApp) -> Vec<String> {
    app.store.audit_entries(0, 10_000).await.expect("entries").into_iter().map(|e| e.kind).collect()
}

/// Seals, then verifies; the breaks found (empty when intact).
async fn breaks(app: &TestApp) -> Vec<String> {
    app.sealed().await;
    app.verify_audit(vec![]).await.broken
}

async fn every_step_of_a_login_is_recorded_in_order(b: Backend) {
    let app = spawn_app(b).await;
    let t = app.login("alice", "").await;
    let _ = app.client.sign_in("alice", "wrong password").await;
    let r2 = app.client.refresh(&device_app(), t.refresh_token.as_deref().expect("rt")).await.expect("refresh");
    let _ = app.client.refresh(&device_app(), t.refresh_token.as_deref().expect("rt")).await; // reuse
    drop(r2);
    let k = kinds(&app).await;
    let expected = [
        "app.created", // latchkey-cli
        "key.rotated",
        "app.created", // the tests' device app
        "user.created",
        "signin.succeeded",
        // A device's request is recorded with the decision on it, not when anyone asks.
        "device.registered",
        "grant.requested",
        "grant.approved",
        "grant.consumed",
        "signin.failed",
        "token.refresh_reused",
    ];
    assert_eq!(k, expected);
    let tree = app.sealed().await;
    assert_eq!(tree.size, expected.len() as u64);
    let report = app.verify_audit(vec![]).await;
    assert_eq!((report.size, report.broken.clone()), (expected.len() as u64, vec![]));
    assert_eq!(report.root, tree.root);
}

async fn editing_any_row_is_named(b: Backend) {
    let app = spawn_app(b).await;
    app.login("alice", "").await;
    assert_eq!(breaks(&app).await, Vec::<String>::new());
    let n = app.sealed().await.size as i64;
    for seq in 1..=n {
        // A one-character edit of the detail, then undone: verify must name it, then pass again.
        app.raw_sql(&format!("UPDATE audit_log SET detail = detail || ' ' WHERE seq = {seq}")).await;
        let b = breaks(&app).await;
        assert!(b.iter().any(|m| m.starts_with(&format!("entry {seq} (leaf {})", seq - 1))), "edit of {seq}: {b:?}");
        assert!(b.iter().any(|m| m.contains("the log was rewritten")), "and the root no longer matches: {b:?}");
        app.raw_sql(&format!("UPDATE audit_log SET detail = substr(detail, 1, length(detail) - 1) WHERE seq = {seq}"))
            .await;
        assert_eq!(breaks(&app).await, Vec::<String>::new());
    }
}

async fn deleting_a_row_or_the_tail_is_named(b: Backend) {
    let app = spawn_app(b.clone()).await;
    app.login("alice", "").await;
    app.sealed().await;
    let n = app.sealed().await.size as i64;
    app.raw_sql(&format!("DELETE FROM audit_log WHERE seq = {}", n / 2)).await;
    let b1 = breaks(&app).await;
    assert!(b1.iter().any(|m| m.contains("are missing: entries were deleted")), "a deleted row: {b1:?}");

    let app = spawn_app(b).await;
    app.login("alice", "").await;
    app.sealed().await;
    let n = app.sealed().await.size as i64;
    app.raw_sql(&format!("DELETE FROM audit_log WHERE seq > {}", n - 3)).await;
    let b2 = breaks(&app).await;
    let want = format!("checkpoint of size {n} but the log has only {} sealed entries: it was truncated", n - 3);
    assert!(b2.contains(&want), "a deleted tail: {b2:?}");
}

async fn a_swapped_pair_and_a_forged_checkpoint_are_named(b: Backend) {
    let app = spawn_app(b).await;
    app.login("alice", "").await;
    app.sealed().await;
    // Entries 2 and 5 trade places in the tree.
    app.raw_sql(
        "BEGIN; UPDATE audit_log SET leaf = -1 WHERE seq = 2; UPDATE audit_log SET leaf = 1 WHERE seq = 5;
         UPDATE audit_log SET leaf = 4 WHERE seq = 2; COMMIT;",
    )
    .await;
    let b = breaks(&app).await;
    assert!(
        b.contains(&"entry 5 (leaf 1) does not match what was sealed there: it was edited or moved".into()),
        "{b:?}"
    );
    assert!(
        b.contains(&"entry 2 (leaf 4) does not match what was sealed there: it was edited or moved".into()),
        "{b:?}"
    );
    app.raw_sql(
        "BEGIN; UPDATE audit_log SET leaf = -1 WHERE seq = 2; UPDATE audit_log SET leaf = 4 WHERE seq = 5;
         UPDATE audit_log SET leaf = 1 WHERE seq = 2; COMMIT;",
    )
    .await;
    assert_eq!(breaks(&app).await, Vec::<String>::new());

    // A checkpoint with a bigger size, its signature kept.
    let note = app.store.audit_tree().await.expect("tree").checkpoint.expect("signed");
    let size = app.sealed().await.size;
    let forged = note.replacen(&format!("\n{size}\n"), &format!("\n{}\n", size + 1), 1);
    assert_ne!(forged, note);
    app.raw_sql(&format!("UPDATE audit_tree SET checkpoint = '{forged}'")).await;
    let report = app.verify_audit(vec![]).await;
    assert!(report.broken.iter().any(|m| m.starts_with("the latest checkpoint is forged")), "{:?}", report.broken);
}

async fn a_saved_checkpoint_catches_a_rewrite_with_the_servers_own_key(b: Backend) {
    let app = spawn_app(b).await;
    app.login("alice", "").await;
    let saved = app.sealed().await.checkpoint.expect("signed");
    app.login("bob", "").await;
    app.sealed().await;
    let label = "saved".to_string();
    assert_eq!(app.verify_audit(vec![(label.clone(), saved.clone())]).await.broken, Vec::<String>::new());
    // Someone with the database edits an old entry and re-seals everything after it, with
    // the key the database holds: only a checkpoint kept elsewhere shows it.
    app.raw_sql(
        "BEGIN; UPDATE audit_log SET detail = '{}' WHERE seq >= 4; UPDATE audit_log SET leaf = NULL;
         DELETE FROM audit_nodes; UPDATE audit_tree SET size = 0, checkpoint = NULL; COMMIT;",
    )
    .await;
    app.sealed().await;
    let report = app.verify_audit(vec![]).await;
    assert_eq!(report.broken, Vec::<String>::new(), "re-sealed with the database's key, the log looks intact alone");
    let report = app.verify_audit(vec![(label, saved)]).await;
    assert!(report.broken.iter().any(|m| m.contains("the log was rewritten")), "{:?}", report.broken);
}

async fn clients_prove_the_log_only_grew(b: Backend) {
    let app = spawn_app(b).await;
    app.login("alice", "").await;
    app.sealed().await;
    let witness = std::env::temp_dir().join(format!("latchkey-witness-{}.json", uuid::Uuid::new_v4().simple()));
    let first = check(&app.client, &witness).await.expect("first check");
    assert!(matches!(first, CheckOutcome::FirstSeen { .. }), "{first:?}");
    app.login("bob", "").await;
    let tree = app.sealed().await;
    let second = check(&app.client, &witness).await.expect("second check");
    let CheckOutcome::Consistent { was, now } = second else { panic!("{second:?}") };
    assert!(was < now && now == tree.size, "{was} -> {now}");

    // An inclusion proof for one of alice's own entries, checked against the signed root.
    let alice = app.client.sign_in("alice", PASSWORD).await.expect("sign in").session_token;
    app.sealed().await;
    let own = app
        .store
        .audit_page(latchkey_store::AuditFilter {
            involving: Some(app.store.user_by_name("alice").await.expect("user").expect("alice").id),
            limit: 1,
            ..Default::default()
        })
        .await
        .expect("own")
        .remove(0);
    let p = app.client.audit_inclusion(alice.as_str(), own.seq).await.expect("inclusion proof");
    let keys = latchkey_server::audit_log::verifiers(&app.store.audit_keys().await.expect("keys"));
    let cp = latchkey_domain::audit::AuditCheckpoint::open(&p.checkpoint, &keys).expect("signed");
    let hashes: Vec<[u8; 32]> = p.hashes.iter().map(|h| b64_32(h)).collect();
    assert_eq!(b64_32(&p.leaf_hash), latchkey_domain::audit::leaf_hash(&own));
    latchkey_domain::merkle::verify_inclusion(&b64_32(&p.leaf_hash), p.leaf, p.tree_size, &hashes, &cp.root)
        .expect("the proof leads to the signed root");
    // Someone else's entry is not shown to alice.
    let err = app.client.audit_inclusion(alice.as_str(), 1).await.expect_err("not hers");
    assert_eq!(err.status(), Some(404));

    // The log is cut back: the client notices, whatever the server says now.
    let n = tree.size as i64;
    app.raw_sql(&format!(
        "BEGIN; DELETE FROM audit_log WHERE leaf >= {}; UPDATE audit_log SET leaf = NULL; DELETE FROM audit_nodes;
         UPDATE audit_tree SET size = 0, checkpoint = NULL; COMMIT;",
        n - 2
    ))
    .await;
    app.sealed().await;
    let err = check(&app.client, &witness).await.expect_err("a truncated log");
    assert!(matches!(err, AuditCheckError::Shrank { .. } | AuditCheckError::Rewritten { .. }), "{err}");
}

fn b64_32(s: &str) -> [u8; 32] {
    use base64::Engine;
    let v = base64::engine::general_purpose::STANDARD.decode(s).expect("base64");
    v.try_into().expect("32 bytes")
}

/// Anonymous requests write no audit entries: device authorizations, QR
/// starts, sign-ins with names nobody has. Those are counted in metrics; a real
/// account's failed sign-in is still recorded, and a decided request is
/// recorded with its decision.
async fn anonymous_requests_write_no_audit_entries(b: Backend) {
    let app = spawn_app_with(b, |c| c.metrics_listen = Some("127.0.0.1:0".into())).await;
    crate::qr_api::qr_app(&app, "tray", true).await;
    app.add_user("alice", false).await;
    let before = kinds(&app).await.len();
    for i in 0..5 {
        app.start_login("").await;
        app.client.start_pairing("tray").await.expect("QR start");
        let e = app.client.sign_in(&format!("nobody{i}"), "guess").await.expect_err("no such user");
        assert_eq!(e.status(), Some(401));
    }
    assert_eq!(kinds(&app).await.len(), before, "nothing anonymous reached the audit log");
    let metrics = reqwest::get(format!("{}/metrics", app.metrics_url.as_deref().expect("metrics")))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("latchkey_sign_ins_unknown_username_total 5"), "{metrics}");
    assert!(metrics.contains("latchkey_device_logins_total{outcome=\"started\"} 5"), "{metrics}");

    let _ = app.client.sign_in("alice", "wrong password").await.expect_err("wrong");
    let auth = app.start_login("").await;
    let session = app.client.sign_in("alice", PASSWORD).await.expect("sign in").session_token;
    app.client.decide_device_login(&session, &auth.user_code, false).await.expect("deny");
    let k = kinds(&app).await;
    assert_eq!(k[before..], ["signin.failed", "signin.succeeded", "grant.requested", "grant.denied"]);
    assert_eq!(breaks(&app).await, Vec::<String>::new());
}

backend_tests!(
    anonymous_requests_write_no_audit_entries,
    every_step_of_a_login_is_recorded_in_order,
    editing_any_row_is_named,
    deleting_a_row_or_the_tail_is_named,
    a_swapped_pair_and_a_forged_checkpoint_are_named,
    a_saved_checkpoint_catches_a_rewrite_with_the_servers_own_key,
    clients_prove_the_log_only_grew
);
