//! RFC 8628 over real HTTP: the happy path and every refusal the RFC names.

use crate::backend_tests;
use crate::support::*;
use latchkey_client::{AppCredentials, ClientError};
use latchkey_store::{ClientKind, GrantType};

fn code(r: Result<impl std::fmt::Debug, ClientError>) -> String {
    match r {
        Err(e) => e.code().unwrap_or("none").to_string(),
        Ok(v) => format!("ok: {v:?}"),
    }
}

async fn device_authorization_response_follows_rfc8628(b: Backend) {
    let app = spawn_app(b).await;
    let auth = app.start_login("openid profile").await;
    assert!(auth.device_code.len() >= 43, "device_code carries at least 256 bits");
    assert_eq!(auth.user_code.len(), 9);
    assert_eq!(&auth.user_code[4..5], "-");
    assert!(auth.user_code.chars().filter(|c| *c != '-').all(|c| "BCDFGHJKLMNPQRSTVWXZ".contains(c)));
    assert_eq!(auth.verification_uri, format!("{}/device", app.url));
    assert_eq!(auth.verification_uri_complete, format!("{}/device?user_code={}", app.url, auth.user_code));
    assert_eq!(auth.expires_in, 600);
    assert_eq!(auth.interval, 5);
}

async fn full_login_by_polling(b: Backend) {
    let app = spawn_app(b).await;
    let session = app.signed_in("alice").await;
    let auth = app.start_login("openid profile").await;
    assert_eq!(code(app.client.poll_token(&device_app(), &auth.device_code).await), "authorization_pending");

    let pending = app.client.lookup_device_login(&session, &auth.user_code).await.expect("lookup");
    assert_eq!(pending.app_name, DEVICE_APP_NAME);
    assert_eq!(pending.device_name.as_deref(), Some("test device"));
    assert_eq!(pending.requester_ip, "127.0.0.1");
    assert!(pending.requester_user_agent.starts_with("latchkey-client/"));
    assert!(!pending.different_network);

    app.client.decide_device_login(&session, &auth.user_code, true).await.expect("approve");
    let tokens = app.client.poll_token(&device_app(), &auth.device_code).await.expect("tokens");
    assert_eq!(tokens.token_type, "Bearer");
    assert_eq!(tokens.scope.as_deref(), Some("openid profile"));
    assert!(tokens.refresh_token.as_deref().is_some_and(|r| r.starts_with("lkr_")));
    assert!(tokens.id_token.is_some(), "openid was granted, so an ID token comes too");

    let me = app.client.userinfo(&tokens.access_token).await.expect("userinfo");
    assert_eq!(me.preferred_username, "alice");

    // The code is spent: a second poll is refused.
    assert_eq!(code(app.client.poll_token(&device_app(), &auth.device_code).await), "invalid_grant");
}

async fn user_code_is_accepted_in_any_case_and_spacing(b: Backend) {
    let app = spawn_app(b).await;
    let session = app.signed_in("alice").await;
    let auth = app.start_login("").await;
    let sloppy = auth.user_code.to_lowercase().replace('-', " ");
    app.client.lookup_device_login(&session, &sloppy).await.expect("lowercase with a space");
    let undashed = auth.user_code.replace('-', "");
    app.client.decide_device_login(&session, &undashed, true).await.expect("no dash");
    let tokens = app.client.poll_token(&device_app(), &auth.device_code).await.expect("tokens");
    assert!(tokens.id_token.is_none(), "no openid scope, no ID token");
}

async fn polling_too_fast_earns_slow_down_and_a_longer_interval(b: Backend) {
    let app = spawn_app(b).await;
    let auth = app.start_login("").await;
    assert_eq!(code(app.client.poll_token(&device_app(), &auth.device_code).await), "authorization_pending");
    let err = app.client.poll_token(&device_app(), &auth.device_code).await.expect_err("too fast");
    assert_eq!(err.code(), Some("slow_down"));
    assert!(err.to_string().contains("10 seconds"), "{err}");
    let err = app.client.poll_token(&device_app(), &auth.device_code).await.expect_err("still too fast");
    assert!(err.to_string().contains("15 seconds"), "{err}");
}

async fn denied_login_is_reported_and_cannot_be_approved_after(b: Backend) {
    let app = spawn_app(b).await;
    let session = app.signed_in("alice").await;
    let auth = app.start_login("").await;
    let d = app.client.decide_device_login(&session, &auth.user_code, false).await.expect("deny");
    assert_eq!(d.status, "denied");
    assert_eq!(code(app.client.poll_token(&device_app(), &auth.device_code).await), "access_denied");
    let again = app.client.decide_device_login(&session, &auth.user_code, true).await.expect_err("second decision");
    assert_eq!((again.status(), again.code()), (Some(409), Some("conflict")));
}

async fn second_approval_of_the_same_code_is_refused(b: Backend) {
    let app = spawn_app(b).await;
    let session = app.signed_in("alice").await;
    let auth = app.start_login("").await;
    app.client.decide_device_login(&session, &auth.user_code, true).await.expect("approve");
    let again = app.client.decide_device_login(&session, &auth.user_code, true).await.expect_err("twice");
    assert_eq!(again.status(), Some(409));
}

async fn expired_code_is_reported_and_cannot_be_approved(b: Backend) {
    let app = spawn_app_outside_limits(b, |c| c.device_code_lifetime = std::time::Duration::from_secs(1)).await;
    let session = app.signed_in("alice").await;
    let auth = app.start_login("").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(code(app.client.poll_token(&device_app(), &auth.device_code).await), "expired_token");
    let late = app.client.decide_device_login(&session, &auth.user_code, true).await.expect_err("expired");
    assert_eq!((late.status(), late.code()), (Some(410), Some("expired")));
}

async fn concurrent_pollers_get_tokens_exactly_once(b: Backend) {
    let app = spawn_app(b).await;
    let session = app.signed_in("alice").await;
    let auth = app.start_login("").await;
    app.client.decide_device_login(&session, &auth.user_code, true).await.expect("approve");
    let polls = (0..24).map(|i| {
        let client = app.client.clone();
        let code = auth.device_code.clone();
        async move {
            if i % 2 == 0 {
                client.poll_token(&device_app(), &code).await
            } else {
                client.wait_token(&device_app(), &code).await
            }
        }
    });
    let results = futures::future::join_all(polls).await;
    let winners = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(winners, 1, "exactly one poller gets tokens: {results:?}");
    assert!(results.iter().filter_map(|r| r.as_ref().err()).all(|e| e.code() == Some("invalid_grant")));
}

async fn unknown_codes_and_clients_are_refused(b: Backend) {
    let app = spawn_app(b).await;
    assert_eq!(code(app.client.poll_token(&device_app(), "lkd_nonsense").await), "invalid_grant");
    let stranger = AppCredentials::public("no-such-app");
    let err = app.client.device_authorization(&stranger, "", None).await.expect_err("unknown client");
    assert_eq!((err.status(), err.code()), (Some(401), Some("invalid_client")));
    // A device code is bound to the app it was issued to.
    app.add_app("other-app", ClientKind::Public, None, &[GrantType::DeviceCode]).await;
    let auth = app.start_login("").await;
    let other = AppCredentials::public("other-app");
    assert_eq!(code(app.client.poll_token(&other, &auth.device_code).await), "invalid_grant");
    let session = app.signed_in("alice").await;
    let err = app.client.lookup_device_login(&session, "BCDF-GHJK").await.expect_err("no such code");
    assert_eq!((err.status(), err.code()), (Some(404), Some("not_found")));
}

async fn apps_without_the_device_grant_get_unauthorized_client(b: Backend) {
    let app = spawn_app(b).await;
    app.add_app("plain", ClientKind::Public, None, &[GrantType::RefreshToken]).await;
    let err = app.client.device_authorization(&AppCredentials::public("plain"), "", None).await.expect_err("off");
    assert_eq!(err.code(), Some("unauthorized_client"));
    let err = app.client.poll_token(&AppCredentials::public("plain"), "lkd_x").await.expect_err("off");
    assert_eq!(err.code(), Some("unauthorized_client"));
}

async fn confidential_apps_must_authenticate(b: Backend) {
    let app = spawn_app(b).await;
    app.add_app("backend", ClientKind::Confidential, Some("s3cret"), &[GrantType::DeviceCode]).await;
    let good = AppCredentials { client_id: "backend".into(), client_secret: Some("s3cret".into()) };
    app.client.device_authorization(&good, "", None).await.expect("right secret");
    for secret in [None, Some("wrong".to_string())] {
        let bad = AppCredentials { client_id: "backend".into(), client_secret: secret };
        let err = app.client.device_authorization(&bad, "", None).await.expect_err("refused");
        assert_eq!((err.status(), err.code()), (Some(401), Some("invalid_client")));
    }
    // HTTP Basic works too (client_secret_basic).
    let resp = reqwest::Client::new()
        .post(format!("{}/oauth/device_authorization", app.url))
        .basic_auth("backend", Some("s3cret"))
        .form(&[("scope", "openid")])
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
}

async fn unknown_scopes_are_refused(b: Backend) {
    let app = spawn_app(b).await;
    let err = app.client.device_authorization(&device_app(), "openid admin:everything", None).await.expect_err("scope");
    assert_eq!(err.code(), Some("invalid_scope"));
}

async fn wrong_codes_are_rate_limited(b: Backend) {
    let app = spawn_app(b).await;
    let session = app.signed_in("mallory").await;
    let auth = app.start_login("").await;
    for _ in 0..5 {
        let err = app.client.lookup_device_login(&session, "BCDF-GHJK").await.expect_err("wrong");
        assert_eq!(err.status(), Some(404));
    }
    let err = app.client.lookup_device_login(&session, "BCDF-GHJK").await.expect_err("limited");
    assert_eq!((err.status(), err.code()), (Some(429), Some("too_many_requests")));
    // Once limited, even the right code is refused: guessing cannot continue.
    let err = app.client.decide_device_login(&session, &auth.user_code, true).await.expect_err("limited");
    assert_eq!(err.status(), Some(429));
    // Another user (another session) is limited by IP only after more failures, so they can still approve.
    let alice = app.signed_in("alice").await;
    app.client.decide_device_login(&alice, &auth.user_code, true).await.expect("alice approves");
}

async fn approving_needs_a_signed_in_user(b: Backend) {
    let app = spawn_app(b).await;
    let auth = app.start_login("").await;
    let err = app.client.decide_device_login("lks_not-a-session", &auth.user_code, true).await.expect_err("no session");
    assert_eq!((err.status(), err.code()), (Some(401), Some("unauthenticated")));
    let session = app.signed_in("alice").await;
    app.client.sign_out(&session).await.expect("sign out");
    let err = app.client.decide_device_login(&session, &auth.user_code, true).await.expect_err("signed out");
    assert_eq!(err.status(), Some(401));
    assert_eq!(code(app.client.poll_token(&device_app(), &auth.device_code).await), "authorization_pending");
}

async fn wrong_password_is_refused(b: Backend) {
    let app = spawn_app(b).await;
    app.add_user("alice", false).await;
    let err = app.client.sign_in("alice", "not the password").await.expect_err("wrong");
    assert_eq!((err.status(), err.code()), (Some(401), Some("invalid_credentials")));
    let err = app.client.sign_in("nobody", "not the password").await.expect_err("unknown");
    assert_eq!(err.code(), Some("invalid_credentials"), "unknown users look the same as wrong passwords");
}

backend_tests!(
    device_authorization_response_follows_rfc8628,
    full_login_by_polling,
    user_code_is_accepted_in_any_case_and_spacing,
    polling_too_fast_earns_slow_down_and_a_longer_interval,
    denied_login_is_reported_and_cannot_be_approved_after,
    second_approval_of_the_same_code_is_refused,
    expired_code_is_reported_and_cannot_be_approved,
    concurrent_pollers_get_tokens_exactly_once,
    unknown_codes_and_clients_are_refused,
    apps_without_the_device_grant_get_unauthorized_client,
    confidential_apps_must_authenticate,
    unknown_scopes_are_refused,
    wrong_codes_are_rate_limited,
    approving_needs_a_signed_in_user,
    wrong_password_is_refused,
);
