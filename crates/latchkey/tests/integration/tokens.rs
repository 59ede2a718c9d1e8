//! Tokens after login: JWT verification against JWKS, refresh rotation and
//! reuse detection, introspection, revocation, key rotation.

use crate::backend_tests;
use crate::support::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use latchkey_client::dpop::DeviceKey;
use latchkey_client::{AppCredentials, Client};
use latchkey_store::{ClientKind, GrantType};
use std::sync::Arc;

#[derive(serde::Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: String,
    scope: String,
    sid: String,
}

async fn access_tokens_verify_against_the_published_jwks(b: Backend) {
    let app = spawn_app(b).await;
    let tokens = app.login("alice", "openid profile").await;
    let disco = app.client.discover().await.expect("discovery");
    assert_eq!(disco.issuer, app.url);
    let jwks = app.client.jwks().await.expect("jwks");
    let header = jsonwebtoken::decode_header(&tokens.access_token).expect("header");
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let kid = header.kid.expect("kid");
    let jwk = jwks.keys.iter().find(|k| k.kid == kid).expect("signing key is published");
    assert_eq!((jwk.kty.as_str(), jwk.crv.as_str(), jwk.alg.as_str()), ("OKP", "Ed25519", "EdDSA"));
    let key = DecodingKey::from_ed_components(&jwk.x).expect("key");
    let mut v = Validation::new(Algorithm::EdDSA);
    v.set_audience(&[DEVICE_APP]);
    v.set_issuer(&[&app.url]);
    let claims = jsonwebtoken::decode::<Claims>(&tokens.access_token, &key, &v).expect("valid").claims;
    assert_eq!((claims.iss, claims.aud, claims.scope.as_str()), (app.url.clone(), DEVICE_APP.into(), "openid profile"));
    assert!(!claims.sub.is_empty() && !claims.sid.is_empty());
    // The ID token verifies with the same key set.
    let id = tokens.id_token.expect("id token");
    jsonwebtoken::decode::<serde_json::Value>(&id, &key, &v).expect("id token valid");
    // A tampered token is refused everywhere.
    let mut parts: Vec<String> = tokens.access_token.split('.').map(String::from).collect();
    parts[1] = URL_SAFE_NO_PAD.encode(br#"{"iss":"x","sub":"admin"}"#);
    let forged = parts.join(".");
    assert_eq!(app.client.userinfo(&forged).await.expect_err("forged").status(), Some(401));
}

async fn refresh_rotates_and_reuse_revokes_the_family(b: Backend) {
    let app = spawn_app(b).await;
    let first = app.login("alice", "").await;
    let r1 = first.refresh_token.clone().expect("refresh");
    let second = app.client.refresh(&device_app(), &r1).await.expect("rotate");
    let r2 = second.refresh_token.clone().expect("new refresh");
    assert_ne!(r1, r2);
    app.client.userinfo(&second.access_token).await.expect("new access token works");

    // Replaying the old token is theft: everything of this sign-in dies.
    let err = app.client.refresh(&device_app(), &r1).await.expect_err("reuse");
    assert_eq!(err.code(), Some("invalid_grant"));
    assert_eq!(app.client.refresh(&device_app(), &r2).await.expect_err("family revoked").code(), Some("invalid_grant"));
    assert!(!app.client.introspect(&device_app(), &second.access_token).await.expect("introspect").active);
    assert_eq!(app.client.userinfo(&second.access_token).await.expect_err("revoked").status(), Some(401));
}

async fn a_dpop_proof_on_an_unbound_refresh_is_refused_without_spending_it(b: Backend) {
    let app = spawn_app(b).await;
    // A device login without a key: its family is not key-bound.
    let first = app.login("alice", "").await;
    assert_eq!(first.token_type, "Bearer");
    let rt = first.refresh_token.expect("refresh");
    let keyed = Client::new(&app.url).expect("client").with_device_key(Arc::new(DeviceKey::generate().expect("key")));
    // RFC 9449: a proof the server cannot honour is an error, not a silent downgrade to bearer tokens.
    let e = keyed.refresh(&device_app(), &rt).await.expect_err("refused");
    assert_eq!((e.status(), e.code()), (Some(400), Some("invalid_dpop_proof")));
    assert!(e.to_string().contains("not started with a DPoP key"), "{e}");
    // Refused before rotation: the token is still good without a proof, and no reuse was detected.
    let second = app.client.refresh(&device_app(), &rt).await.expect("the refused request spent nothing");
    assert_eq!(second.token_type, "Bearer");
    app.client.userinfo(&second.access_token).await.expect("the sign-in is alive");
    // A replayed (rotated) token with a proof is still theft: the family is revoked, as without one.
    let e = keyed.refresh(&device_app(), &rt).await.expect_err("reuse");
    assert_eq!(e.code(), Some("invalid_grant"));
    let r2 = second.refresh_token.expect("new refresh");
    assert_eq!(app.client.refresh(&device_app(), &r2).await.expect_err("family revoked").code(), Some("invalid_grant"));
    // Unknown tokens say what they always said, proof or not.
    let e = keyed.refresh(&device_app(), "lkr_nonsense").await.expect_err("unknown");
    assert_eq!(e.code(), Some("invalid_grant"));
}

async fn introspection_reports_active_tokens_to_allowed_apps(b: Backend) {
    let app = spawn_app(b).await;
    let t = app.login("alice", "profile").await;
    let i = app.client.introspect(&device_app(), &t.access_token).await.expect("introspect");
    assert!(i.active);
    assert_eq!(i.username.as_deref(), Some("alice"));
    assert_eq!(i.token_type.as_deref(), Some("Bearer"), "RFC 7662: the OAuth token type");
    assert_eq!(i.client_id.as_deref(), Some(DEVICE_APP));
    let r = app.client.introspect(&device_app(), t.refresh_token.as_deref().expect("rt")).await.expect("introspect");
    assert!(r.active);
    assert_eq!(r.scope.as_deref(), Some("profile"));
    // Another public app may not learn about our tokens.
    app.add_app("nosy", ClientKind::Public, None, &[GrantType::DeviceCode]).await;
    assert!(!app.client.introspect(&AppCredentials::public("nosy"), &t.access_token).await.expect("i").active);
    // A resource server (confidential) may.
    app.add_app("api", ClientKind::Confidential, Some("rs-secret"), &[]).await;
    let rs = AppCredentials { client_id: "api".into(), client_secret: Some("rs-secret".into()) };
    assert!(app.client.introspect(&rs, &t.access_token).await.expect("i").active);
    assert!(!app.client.introspect(&rs, "garbage").await.expect("i").active);
}

async fn revoking_the_refresh_token_ends_the_sign_in_at_once(b: Backend) {
    let app = spawn_app(b).await;
    let t = app.login("alice", "").await;
    let rt = t.refresh_token.clone().expect("rt");
    app.client.revoke(&device_app(), &rt).await.expect("revoke");
    assert!(!app.client.introspect(&device_app(), &rt).await.expect("i").active);
    assert!(!app.client.introspect(&device_app(), &t.access_token).await.expect("i").active, "not at expiry: now");
    assert_eq!(app.client.refresh(&device_app(), &rt).await.expect_err("dead").code(), Some("invalid_grant"));
    // Revoking an unknown token is not an error (RFC 7009 §2.2).
    app.client.revoke(&device_app(), "lkr_unknown").await.expect("unknown is fine");
    // Revoking an access token ends its whole sign-in too (what libraries do at logout).
    let t2 = app.login("bob", "").await;
    app.client.revoke(&device_app(), &t2.access_token).await.expect("access token revocation is accepted");
    assert!(!app.client.introspect(&device_app(), &t2.access_token).await.expect("i").active);
    let rt2 = t2.refresh_token.expect("rt");
    assert_eq!(
        app.client.refresh(&device_app(), &rt2).await.expect_err("family revoked").code(),
        Some("invalid_grant")
    );
}

async fn rotated_keys_stay_published_until_their_tokens_expire(b: Backend) {
    let app = spawn_app_with(b, |c| c.key_refresh_every = std::time::Duration::from_millis(100)).await;
    let before = app.login("alice", "").await;
    let old_kid = jsonwebtoken::decode_header(&before.access_token).expect("h").kid.expect("kid");
    let key = latchkey_server::keys::generate_key(now()).expect("key");
    let new_kid = key.kid.clone();
    app.store.add_signing_key(key, None, now()).await.expect("rotate");
    // Running servers pick the new key up on their next key refresh.
    let mut jwks = app.client.jwks().await.expect("jwks");
    for _ in 0..50 {
        if jwks.keys.iter().any(|k| k.kid == new_kid) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        jwks = app.client.jwks().await.expect("jwks");
    }
    assert!(jwks.keys.iter().any(|k| k.kid == new_kid), "new key published");
    assert!(jwks.keys.iter().any(|k| k.kid == old_kid), "old key still published");
    let after = app.client.refresh(&device_app(), before.refresh_token.as_deref().expect("rt")).await.expect("refresh");
    assert_eq!(jsonwebtoken::decode_header(&after.access_token).expect("h").kid.as_deref(), Some(new_kid.as_str()));
    app.client.userinfo(&before.access_token).await.expect("old token still valid");
}

/// An app that requires DPoP (Latchkey's own CLI app by default) refuses every
/// token request without a proof, and the switch can be set per app.
async fn an_app_that_requires_dpop_refuses_requests_without_a_proof(b: Backend) {
    let app = spawn_app(b).await;
    let session = app.signed_in("alice").await;
    let cli_app = app.store.app(latchkey_store::AppId(latchkey_proto::CLI_CLIENT_ID)).await.expect("app");
    assert!(cli_app.expect("built in").require_dpop, "on by default for latchkey-cli");
    let auth = app.client.device_authorization(&cli(), "openid", Some("laptop")).await.expect("authorize");
    app.client.decide_device_login(&session, &auth.user_code, true).await.expect("approve");
    for e in [
        app.client.poll_token(&cli(), &auth.device_code).await.expect_err("no proof"),
        app.client.wait_token(&cli(), &auth.device_code).await.expect_err("no proof"),
    ] {
        assert_eq!((e.status(), e.code()), (Some(400), Some("invalid_dpop_proof")), "{e}");
        assert!(e.to_string().contains("requires DPoP"), "{e}");
    }
    // Nothing was spent: the device with a key collects.
    let keyed = app.keyed_client();
    let tokens = keyed.poll_token(&cli(), &auth.device_code).await.expect("with a proof");
    assert_eq!(tokens.token_type, "DPoP");
    let e = app.client.refresh(&cli(), &tokens.refresh_token.expect("refresh")).await.expect_err("no proof");
    assert_eq!(e.code(), Some("invalid_dpop_proof"));
    let headless = headless_enrollment("lke_whatever");
    let e = app.client.enroll(&headless).await.expect_err("enrollment without a key");
    assert_eq!(e.code(), Some("invalid_dpop_proof"));

    // Switched on for another app, the same holds there.
    app.add_app("strict", ClientKind::Public, None, &[GrantType::DeviceCode]).await;
    app.change_app("strict", |u| u.require_dpop = true).await;
    let strict = AppCredentials::public("strict");
    let auth = app.client.device_authorization(&strict, "openid", None).await.expect("authorize");
    app.client.decide_device_login(&session, &auth.user_code, true).await.expect("approve");
    let e = app.client.poll_token(&strict, &auth.device_code).await.expect_err("no proof");
    assert_eq!(e.code(), Some("invalid_dpop_proof"));
}

/// A device code redeemed with a DPoP proof gets tokens bound to the proof's key
/// (RFC 9449 §5), even when the device registered no key: never bearer tokens
/// that the client would believe bound.
async fn a_proof_at_the_token_request_binds_the_tokens(b: Backend) {
    let app = spawn_app(b).await;
    let session = app.signed_in("alice").await;
    let auth = app.client.device_authorization(&device_app(), "openid", None).await.expect("authorize");
    app.client.decide_device_login(&session, &auth.user_code, true).await.expect("approve");
    let keyed = app.keyed_client();
    let tokens = keyed.poll_token(&device_app(), &auth.device_code).await.expect("tokens");
    assert_eq!(tokens.token_type, "DPoP");
    keyed.userinfo(&tokens.access_token).await.expect("with the key");
    let e = app.client.userinfo(&tokens.access_token).await.expect_err("as a bearer token");
    assert_eq!(e.status(), Some(401));
    let rt = tokens.refresh_token.expect("refresh");
    assert_eq!(app.client.refresh(&device_app(), &rt).await.expect_err("no proof").code(), Some("invalid_dpop_proof"));
    let again = keyed.refresh(&device_app(), &rt).await.expect("with the key");
    assert_eq!(again.token_type, "DPoP");
}

backend_tests!(
    an_app_that_requires_dpop_refuses_requests_without_a_proof,
    a_proof_at_the_token_request_binds_the_tokens,
    access_tokens_verify_against_the_published_jwks,
    refresh_rotates_and_reuse_revokes_the_family,
    a_dpop_proof_on_an_unbound_refresh_is_refused_without_spending_it,
    introspection_reports_active_tokens_to_allowed_apps,
    revoking_the_refresh_token_ends_the_sign_in_at_once,
    rotated_keys_stay_published_until_their_tokens_expire,
);
