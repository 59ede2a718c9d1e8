//! The instant-approval endpoint: tokens the moment the user decides.

use crate::backend_tests;
use crate::support::*;
use std::time::Duration;

/// Bounds a wait so a broken wake-up fails the test instead of hanging it (not a timing assertion).
const LIVENESS: Duration = Duration::from_secs(15);

async fn waiting_device_gets_tokens_on_approval(b: Backend) {
    // The server would hold the request for a minute: only a wake-up can end it in time.
    let app = spawn_app_with(b, |c| c.wait_timeout = Duration::from_secs(60)).await;
    let session = app.signed_in("alice").await;
    let auth = app.start_login("openid").await;
    let waiter = {
        let (client, code) = (app.client.clone(), auth.device_code.clone());
        tokio::spawn(async move { client.wait_token(&device_app(), &code).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiter.is_finished(), "nothing decided yet, so the device is still waiting");
    app.client.decide_device_login(&session, &auth.user_code, true).await.expect("approve");
    let tokens = tokio::time::timeout(LIVENESS, waiter).await.expect("woken").expect("task").expect("tokens");
    assert!(tokens.id_token.is_some());
}

async fn waiting_device_hears_denial(b: Backend) {
    let app = spawn_app_with(b, |c| c.wait_timeout = Duration::from_secs(60)).await;
    let session = app.signed_in("alice").await;
    let auth = app.start_login("").await;
    let waiter = {
        let (client, code) = (app.client.clone(), auth.device_code.clone());
        tokio::spawn(async move { client.wait_token(&device_app(), &code).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    app.client.decide_device_login(&session, &auth.user_code, false).await.expect("deny");
    let err = tokio::time::timeout(LIVENESS, waiter).await.expect("woken").expect("task").expect_err("denied");
    assert_eq!(err.code(), Some("access_denied"));
}

async fn waiting_device_hears_expiry(b: Backend) {
    let app = spawn_app_outside_limits(b, |c| {
        c.wait_timeout = Duration::from_secs(60);
        c.device_code_lifetime = Duration::from_secs(1);
    })
    .await;
    let auth = app.start_login("").await;
    let r = tokio::time::timeout(LIVENESS, app.client.wait_token(&device_app(), &auth.device_code)).await.expect("answered");
    assert_eq!(r.expect_err("expired").code(), Some("expired_token"));
}

async fn wait_times_out_with_authorization_pending_and_never_slow_down(b: Backend) {
    let app = spawn_app_outside_limits(b, |c| c.wait_timeout = Duration::from_millis(200)).await;
    let auth = app.start_login("").await;
    for _ in 0..3 {
        let err = app.client.wait_token(&device_app(), &auth.device_code).await.expect_err("pending");
        assert_eq!(err.code(), Some("authorization_pending"), "waiting again at once is not polling too fast");
    }
}

async fn client_library_waits_through_timeouts_until_approval(b: Backend) {
    let app = spawn_app_outside_limits(b, |c| c.wait_timeout = Duration::from_millis(300)).await;
    let session = app.signed_in("alice").await;
    let auth = app.start_login("").await;
    let waiter = {
        let (client, auth) = (app.client.clone(), auth.clone());
        tokio::spawn(async move { client.wait_for_approval(&device_app(), &auth).await })
    };
    tokio::time::sleep(Duration::from_millis(800)).await;
    app.client.decide_device_login(&session, &auth.user_code, true).await.expect("approve");
    tokio::time::timeout(LIVENESS, waiter).await.expect("done").expect("task").expect("tokens");
}

async fn shutdown_releases_waiting_devices(b: Backend) {
    let mut app = spawn_app_with(b, |c| c.wait_timeout = Duration::from_secs(60)).await;
    let auth = app.start_login("").await;
    let waiter = {
        let (client, code) = (app.client.clone(), auth.device_code.clone());
        tokio::spawn(async move { client.wait_token(&device_app(), &code).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    tokio::time::timeout(LIVENESS, app.stop()).await.expect("graceful shutdown finishes");
    let err = waiter.await.expect("task").expect_err("released");
    assert_eq!(err.code(), Some("authorization_pending"), "the device is told to call again (another replica)");
}

backend_tests!(
    waiting_device_gets_tokens_on_approval,
    waiting_device_hears_denial,
    waiting_device_hears_expiry,
    wait_times_out_with_authorization_pending_and_never_slow_down,
    client_library_waits_through_timeouts_until_approval,
    shutdown_releases_waiting_devices,
);
