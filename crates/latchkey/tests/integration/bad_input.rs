//! Malformed requests get RFC 6749 style errors with the right status, never a 500.

use crate::backend_tests;
use crate::support::*;
use latchkey_proto::oauth::ErrorBody;

async fn post(
    app: &TestApp,
    path: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, ErrorBody, reqwest::header::HeaderMap) {
    let resp = reqwest::Client::new()
        .post(format!("{}{path}", app.url))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body: ErrorBody = resp.json().await.expect("an RFC 6749 error body");
    (status, body, headers)
}

const FORM: &str = "application/x-www-form-urlencoded";

async fn oauth_endpoints_refuse_malformed_bodies(b: Backend) {
    let app = spawn_app(b).await;
    let (s, e, h) = post(&app, "/oauth/token", "application/json", r#"{"grant_type":"x"}"#).await;
    assert_eq!((s, e.error.as_str()), (400, "invalid_request"));
    assert_eq!(h.get("cache-control").map(|v| v.to_str().unwrap_or("")), Some("no-store"));

    let (s, e, _) = post(&app, "/oauth/token", FORM, "client_id=latchkey-cli").await;
    assert_eq!((s, e.error.as_str()), (400, "invalid_request"), "grant_type missing");

    let (s, e, _) = post(&app, "/oauth/token", FORM, "client_id=latchkey-cli&grant_type=password").await;
    assert_eq!((s, e.error.as_str()), (400, "unsupported_grant_type"));

    let (s, e, _) =
        post(&app, "/oauth/token", FORM, "client_id=latchkey-cli&client_id=latchkey-cli&grant_type=refresh_token")
            .await;
    assert_eq!((s, e.error.as_str()), (400, "invalid_request"), "repeated parameters are refused (RFC 6749 §3.1)");

    let (s, e, _) = post(
        &app,
        "/oauth/token",
        FORM,
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&client_id=latchkey-cli",
    )
    .await;
    assert_eq!((s, e.error.as_str()), (400, "invalid_request"), "device_code missing");

    let (s, e, _) = post(&app, "/oauth/device_authorization", FORM, "scope=openid").await;
    assert_eq!((s, e.error.as_str()), (401, "invalid_client"), "client_id missing");

    let (s, e, _) = post(
        &app,
        "/oauth/device_authorization",
        FORM,
        format!("client_id=latchkey-cli&device_name={}", "x".repeat(5000)),
    )
    .await;
    assert_eq!((s, e.error.as_str()), (400, "invalid_request"), "device name too long");

    let (s, e, _) = post(&app, "/oauth/device_authorization", FORM, "client_id=latchkey-cli&scope=%22quoted%22").await;
    assert_eq!((s, e.error.as_str()), (400, "invalid_scope"));

    let (s, e, _) = post(&app, "/oauth/token", FORM, vec![b'a'; 1024 * 1024]).await;
    assert_eq!((s, e.error.as_str()), (413, "request_too_large"));

    let (s, e, _) = post(&app, "/oauth/token", FORM, vec![0xff, 0xfe, 0x00]).await;
    assert_eq!(s, 400, "non-UTF-8 body: {e:?}");
}

async fn json_api_refuses_malformed_bodies(b: Backend) {
    let app = spawn_app(b).await;
    let (s, e, _) = post(&app, "/api/v1/session", FORM, "username=a&password=b").await;
    assert_eq!((s, e.error.as_str()), (415, "unsupported_media_type"));
    let (s, e, _) = post(&app, "/api/v1/session", "application/json", "{not json").await;
    assert_eq!((s, e.error.as_str()), (400, "invalid_request"));
    let (s, e, _) = post(&app, "/api/v1/session", "application/json", r#"{"username":"a"}"#).await;
    assert_eq!((s, e.error.as_str()), (400, "invalid_request"), "password missing");
    let session = app.signed_in("alice").await;
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/device/decision", app.url))
        .bearer_auth(&session)
        .json(&serde_json::json!({"user_code": "BCDF-GHJK", "decision": "maybe"}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 400);
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/device/lookup", app.url))
        .bearer_auth(&session)
        .json(&serde_json::json!({"user_code": "AEIOU-123"}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 400, "a code with vowels and digits cannot exist");
}

async fn unknown_paths_are_404_not_400(b: Backend) {
    let app = spawn_app(b).await;
    for path in ["/api/v1/nothing", "/nothing", "/oauth/nothing"] {
        let resp = reqwest::get(format!("{}{path}", app.url)).await.expect("send");
        assert_eq!(resp.status(), 404, "{path}");
        let body: ErrorBody = resp.json().await.expect("error body");
        assert_eq!(body.error, "not_found");
    }
    let resp = reqwest::get(format!("{}/oauth/token", app.url)).await.expect("send");
    assert_eq!(resp.status(), 405, "GET on a POST endpoint");
}

async fn token_responses_are_never_cached(b: Backend) {
    let app = spawn_app(b).await;
    let session = app.signed_in("alice").await;
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{}/oauth/device_authorization", app.url))
        .form(&[("client_id", "latchkey-cli")])
        .send()
        .await
        .expect("send");
    assert_eq!(resp.headers().get("cache-control").expect("cache-control"), "no-store");
    let auth: latchkey_proto::oauth::DeviceAuthorization = resp.json().await.expect("json");
    app.client.decide_device_login(&session, &auth.user_code, true).await.expect("approve");
    for path in ["/oauth/token", "/oauth/device/wait"] {
        let resp = http
            .post(format!("{}{path}", app.url))
            .form(&[
                ("client_id", "latchkey-cli"),
                ("grant_type", latchkey_proto::DEVICE_CODE_GRANT),
                ("device_code", &auth.device_code),
            ])
            .send()
            .await
            .expect("send");
        assert_eq!(resp.headers().get("cache-control").expect("cache-control"), "no-store", "{path}");
    }
    let resp = http
        .post(format!("{}/api/v1/session", app.url))
        .json(&serde_json::json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.headers().get("cache-control").expect("cache-control"), "no-store");
}

backend_tests!(
    oauth_endpoints_refuse_malformed_bodies,
    json_api_refuses_malformed_bodies,
    unknown_paths_are_404_not_400,
    token_responses_are_never_cached,
);
