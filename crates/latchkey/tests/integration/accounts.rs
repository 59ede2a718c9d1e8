//! Accounts that can be stopped, over real HTTP: a disabled account gets
//! nothing by any path, the admin commands that stop, restore, reset and
//! end an account, and the lock after repeated wrong passwords.

use crate::backend_tests;
use crate::support::*;
use latchkey_proto::api::EnrollmentKeyRequest;
use latchkey_store::{Actor, UserId};

/// The OAuth error code and HTTP status of a refusal.
fn refusal(e: latchkey_client::ClientError) -> (Option<u16>, String) {
    (e.status(), e.code().unwrap_or_default().to_string())
}

async fn a_disabled_account_gets_nothing_by_any_path(b: Backend) {
    let app = spawn_app(b).await;
    let alice = app.add_user("alice", false).await;
    let session = app.client.sign_in("alice", PASSWORD).await.expect("sign in").session_token;
    // Tokens from a finished login, a login approved but not yet collected, an enrollment key.
    let done = app.start_login("openid").await;
    app.client.decide_device_login(&session, &done.user_code, true).await.expect("approve");
    let tokens = app.client.poll_token(&device_app(), &done.device_code).await.expect("tokens");
    let refresh = tokens.refresh_token.clone().expect("refresh token");
    let waiting = app.start_login("openid").await;
    app.client.decide_device_login(&session, &waiting.user_code, true).await.expect("approve");
    let key = app
        .client
        .create_enrollment_key(&session, &EnrollmentKeyRequest { expires_in: Some(600), ..Default::default() })
        .await
        .expect("key")
        .key;

    app.store.set_user_disabled(UserId(&alice), true, Actor("admin-cli"), now()).await.expect("disable");

    let err = app.client.sign_in("alice", PASSWORD).await.expect_err("password sign-in");
    assert_eq!(err.status(), Some(403));
    assert!(err.to_string().contains("disabled"), "{err}");
    assert_eq!(app.client.me(&session).await.expect_err("session").status(), Some(401));
    assert_eq!(app.client.userinfo(&tokens.access_token).await.expect_err("userinfo").status(), Some(401));
    assert!(!app.client.introspect(&device_app(), &tokens.access_token).await.expect("introspect").active);
    assert!(!app.client.introspect(&device_app(), &refresh).await.expect("introspect").active);
    let e = app.client.refresh(&device_app(), &refresh).await.expect_err("refresh");
    assert_eq!(refusal(e), (Some(400), "invalid_grant".into()));
    let e = app.client.poll_token(&device_app(), &waiting.device_code).await.expect_err("token endpoint");
    assert_eq!(refusal(e), (Some(400), "access_denied".into()));
    let e = app.client.wait_token(&device_app(), &waiting.device_code).await.expect_err("instant endpoint");
    assert_eq!(refusal(e), (Some(400), "access_denied".into()));
    let enroll = headless_enrollment(&key);
    let e = app.keyed_client().enroll(&enroll).await.expect_err("enrollment key");
    assert_eq!(refusal(e), (Some(400), "invalid_grant".into()));

    // Enabled again, what was not spent works again.
    app.store.set_user_disabled(UserId(&alice), false, Actor("admin-cli"), now()).await.expect("enable");
    app.client.userinfo(&tokens.access_token).await.expect("access token again");
    app.client.me(&session).await.expect("session again");
    app.client.wait_token(&device_app(), &waiting.device_code).await.expect("the waiting login collects");
    app.client.refresh(&device_app(), &refresh).await.expect("refresh again");
}

async fn revoke_everything_ends_every_sign_in_at_once(b: Backend) {
    let app = spawn_app(b).await;
    let alice = app.add_user("alice", false).await;
    let session = app.client.sign_in("alice", PASSWORD).await.expect("sign in").session_token;
    let auth = app.start_login("openid").await;
    app.client.decide_device_login(&session, &auth.user_code, true).await.expect("approve");
    let tokens = app.client.poll_token(&device_app(), &auth.device_code).await.expect("tokens");
    let ended = app.store.revoke_everything(UserId(&alice), Actor("admin-cli"), now()).await.expect("revoke all");
    assert_eq!(ended.map(|r| (r.sessions, r.families)), Some((1, 1)));
    assert_eq!(app.client.me(&session).await.expect_err("session").status(), Some(401));
    assert_eq!(app.client.userinfo(&tokens.access_token).await.expect_err("token").status(), Some(401));
    // The account itself still signs in.
    app.client.sign_in("alice", PASSWORD).await.expect("sign in again");
}

/// Signs in with a password as a client on `network` (through a trusted proxy's `X-Forwarded-For`).
async fn sign_in_from(app: &TestApp, network: &str, password: &str) -> (u16, String) {
    let resp = reqwest::Client::new()
        .post(format!("{}{}", app.url, latchkey_proto::paths::SESSION))
        .header("x-forwarded-for", network)
        .json(&latchkey_proto::api::SignInRequest { username: "alice".into(), password: password.into() })
        .send()
        .await
        .expect("send");
    (resp.status().as_u16(), resp.text().await.expect("body"))
}

async fn repeated_wrong_passwords_lock_until_lifted(b: Backend) {
    let app = spawn_app_with(b, |c| {
        c.trust_proxy_headers = true;
        c.lock_after_failures = 3;
    })
    .await;
    let alice = app.add_user("alice", false).await;
    let guesser = "203.0.113.7";
    for _ in 0..3 {
        // A wrong password says the same whether or not it locked: no hint which names exist.
        assert_eq!(sign_in_from(&app, guesser, "wrong").await.0, 401);
    }
    assert_eq!(sign_in_from(&app, guesser, "wrong").await.0, 401);
    // The right password from the failing network: locked, and until when.
    let (status, body) = sign_in_from(&app, guesser, PASSWORD).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("locked until") && body.contains(" UTC"), "{body}");
    let entries = app.store.audit_entries(0, 10_000).await.expect("audit");
    assert_eq!(entries.iter().filter(|e| e.kind == "user.locked").count(), 1);

    // An admin's enable lifts it.
    app.store.set_user_disabled(UserId(&alice), false, Actor("admin-cli"), now()).await.expect("enable");
    assert_eq!(sign_in_from(&app, guesser, PASSWORD).await.0, 200);

    // Locked again; the right password from a network that has not been failing lifts it.
    for _ in 0..3 {
        assert_eq!(sign_in_from(&app, guesser, "wrong").await.0, 401);
    }
    assert_eq!(sign_in_from(&app, guesser, PASSWORD).await.0, 403);
    let (status, body) = sign_in_from(&app, "2001:db8:1:2::5", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    // Lifted for everyone: the guesser's network signs in with the right password too.
    assert_eq!(sign_in_from(&app, guesser, PASSWORD).await.0, 200);
}

async fn changing_the_password_ends_the_other_sessions(b: Backend) {
    let app = spawn_app(b).await;
    app.add_user("alice", false).await;
    let here = app.client.sign_in("alice", PASSWORD).await.expect("sign in").session_token;
    let other = app.client.sign_in("alice", PASSWORD).await.expect("sign in").session_token;
    let e = app.client.change_password(here.as_str(), "not the password", "new password 1").await.expect_err("wrong");
    assert_eq!(refusal(e), (Some(403), "forbidden".into()));
    let e = app.client.change_password(here.as_str(), PASSWORD, "short").await.expect_err("too short");
    assert_eq!(refusal(e), (Some(400), "invalid_request".into()));
    app.client.me(other.as_str()).await.expect("refusals change nothing");

    app.client.change_password(here.as_str(), PASSWORD, "new password 1").await.expect("change");
    app.client.me(here.as_str()).await.expect("this session stays");
    assert_eq!(app.client.me(other.as_str()).await.expect_err("other session").status(), Some(401));
    assert_eq!(app.client.sign_in("alice", PASSWORD).await.expect_err("old password").status(), Some(401));
    app.client.sign_in("alice", "new password 1").await.expect("new password");
    let entries = app.store.audit_entries(0, 10_000).await.expect("audit");
    let changed: Vec<_> = entries.iter().filter(|e| e.kind == "user.password_changed").collect();
    assert_eq!(changed.len(), 1);
    assert!(changed[0].detail.contains("\"sessions_ended\":1"), "{}", changed[0].detail);
}

backend_tests!(
    changing_the_password_ends_the_other_sessions,
    a_disabled_account_gets_nothing_by_any_path,
    revoke_everything_ends_every_sign_in_at_once,
    repeated_wrong_passwords_lock_until_lifted
);
