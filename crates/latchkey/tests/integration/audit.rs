//! The audit chain records every security-relevant action and detects tampering.

use crate::backend_tests;
use crate::support::*;
use latchkey_domain::audit::{ChainBreak, ChainVerifier};

async fn verify(app: &TestApp) -> Result<i64, ChainBreak> {
    let entries = app.store.audit_entries(0, 10_000).await.expect("entries");
    let mut v = ChainVerifier::default();
    for e in &entries {
        v.push(e)?;
    }
    v.finish(app.store.audit_head().await.expect("head")).map(|h| h.seq)
}

async fn kinds(app: &TestApp) -> Vec<String> {
    app.store.audit_entries(0, 10_000).await.expect("entries").into_iter().map(|e| e.kind).collect()
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
        "app.created",
        "key.rotated",
        "user.created",
        "signin.succeeded",
        "grant.requested",
        "device.registered",
        "grant.approved",
        "grant.consumed",
        "signin.failed",
        "token.refresh_reused",
    ];
    assert_eq!(k, expected);
    assert_eq!(verify(&app).await, Ok(expected.len() as i64));
}

async fn editing_any_row_is_detected(b: Backend) {
    let app = spawn_app(b).await;
    app.login("alice", "").await;
    let n = verify(&app).await.expect("intact");
    for seq in 1..=n {
        // A one-character edit of the detail, then undone: the chain must notice, then heal.
        app.raw_sql(&format!("UPDATE audit_log SET detail = detail || ' ' WHERE seq = {seq}")).await;
        assert_eq!(verify(&app).await, Err(ChainBreak::Altered { seq }), "edit of entry {seq}");
        app.raw_sql(&format!("UPDATE audit_log SET detail = substr(detail, 1, length(detail) - 1) WHERE seq = {seq}"))
            .await;
        assert_eq!(verify(&app).await, Ok(n));
    }
}

async fn deleting_any_row_is_detected(b: Backend) {
    let app = spawn_app(b.clone()).await;
    app.login("alice", "").await;
    let n = verify(&app).await.expect("intact");
    for seq in [1, n / 2, n] {
        let app = spawn_app(b.clone()).await;
        app.login("alice", "").await;
        app.raw_sql(&format!("DELETE FROM audit_log WHERE seq = {seq}")).await;
        let broke = verify(&app).await;
        assert!(broke.is_err(), "deleting entry {seq} went unnoticed");
    }
}

backend_tests!(every_step_of_a_login_is_recorded_in_order, editing_any_row_is_detected, deleting_any_row_is_detected);
