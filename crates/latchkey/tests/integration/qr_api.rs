//! QR cross-device sign-in through its JSON API, as a native desktop app and a phone app use it.

use crate::backend_tests;
use crate::support::*;
use latchkey_store::{Actor, AppId};
use latchkey_store::{AppRecord, AppUpdate, ClientKind, GrantType};
use serde_json::{json, Value};
use std::time::Duration;

async fn qr_app(app: &TestApp, id: &str, on: bool) {
    let rec = AppRecord {
        client_id: id.into(),
        display_name: format!("App {id}"),
        kind: ClientKind::Public,
        secret_hash: None,
        grant_types: vec![GrantType::DeviceCode],
        redirect_uris: vec![],
        app_url: Some(app.url.clone()),
        qr_sign_in: on,
        created_at: now(),
    };
    app.store.create_app(rec, None, now()).await.expect("app");
}

async fn start(app: &TestApp, client_id: &str, return_to: Option<&str>) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/api/v1/pairings", app.url))
        .json(&json!({"client_id": client_id, "return_to": return_to}))
        .send()
        .await
        .expect("send")
}

async fn wait(app: &TestApp, secret: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/api/v1/pairings/wait", app.url))
        .header("authorization", format!("Pairing {secret}"))
        .send()
        .await
        .expect("send")
}

async fn decide(app: &TestApp, bearer: &str, phone_url: &str, decision: &str) -> reqwest::Response {
    let code = phone_url.rsplit('/').next().unwrap_or_default();
    reqwest::Client::new()
        .post(format!("{}/api/v1/pairings/decision", app.url))
        .bearer_auth(bearer)
        .json(&json!({"phone_code": code, "decision": decision}))
        .send()
        .await
        .expect("send")
}

async fn native_desktop_is_signed_in_when_the_phone_approves(b: Backend) {
    let app = spawn_app(b).await;
    qr_app(&app, "tray", true).await;
    let session = app.signed_in("alice").await;
    let r = start(&app, "tray", Some(&format!("{}/after?x=1", app.url))).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let started: Value = r.json().await.expect("json");
    let secret = started["pairing_secret"].as_str().expect("secret").to_string();
    let phone_url = started["phone_url"].as_str().expect("phone url").to_string();
    assert!(phone_url.starts_with(&format!("{}/pair/lkp_", app.url)), "{phone_url}");
    assert!(started["expires_in"].as_i64().is_some_and(|e| e > 80 && e <= 90));

    // The images, from one endpoint, only for the secret's holder.
    let http = reqwest::Client::new();
    for (format, ctype) in [("svg", "image/svg+xml"), ("png", "image/png")] {
        let r = http
            .get(format!("{}/api/v1/pairings/qr?format={format}&size=300", app.url))
            .header("authorization", format!("Pairing {secret}"))
            .send()
            .await
            .expect("send");
        assert_eq!((r.status().as_u16(), r.headers()["content-type"].to_str().unwrap_or("")), (200, ctype));
        assert_eq!(r.headers()["cache-control"], "no-store");
    }
    let r = http
        .get(format!("{}/api/v1/pairings/qr?size=5000", app.url))
        .header("authorization", format!("Pairing {secret}"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400, "size out of bounds");
    let r = http.get(format!("{}/api/v1/pairings/qr", app.url)).send().await.expect("send");
    assert_eq!(r.status(), 401, "no secret, no image");

    // The desktop waits; the phone approves; the desktop wakes with tokens and where to go.
    let waiter = {
        let (url, secret) = (app.url.clone(), secret.clone());
        tokio::spawn(async move {
            reqwest::Client::new()
                .post(format!("{url}/api/v1/pairings/wait"))
                .header("authorization", format!("Pairing {secret}"))
                .send()
                .await
                .expect("send")
                .json::<Value>()
                .await
                .expect("json")
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = decide(&app, &session, &phone_url, "approve").await;
    assert_eq!(r.status(), 200);
    let done = tokio::time::timeout(Duration::from_secs(15), waiter).await.expect("woken").expect("task");
    assert_eq!(done["status"], "approved");
    let redirect = done["redirect_to"].as_str().expect("redirect");
    assert!(redirect.starts_with(&format!("{}/after?x=1#access_token=", app.url)), "{redirect}");
    let access = done["tokens"]["access_token"].as_str().expect("token");
    let me = app.client.userinfo(access).await.expect("the token works");
    assert_eq!(me.preferred_username, "alice");
    assert!(done["tokens"]["refresh_token"].is_null(), "no refresh token travels through a browser");
    // Collected once: a second wait hears it was used.
    let again: Value = wait(&app, &secret).await.json().await.expect("json");
    assert_eq!(again["status"], "consumed");
    // And the phone code is spent.
    assert_eq!(decide(&app, &session, &phone_url, "approve").await.status(), 409);
}

async fn the_client_library_speaks_the_pairing_api(b: Backend) {
    let app = spawn_app(b).await;
    qr_app(&app, "tray", true).await;
    let session = app.signed_in("alice").await;
    let started = app.client.start_pairing("tray", None).await.expect("start");
    let code = started.phone_url.rsplit('/').next().unwrap_or_default().to_string();
    app.client.decide_pairing(&session, &code, true).await.expect("approve");
    let done = app.client.wait_pairing(&started.pairing_secret).await.expect("wait");
    assert_eq!(done.status, "approved");
    assert!(done.tokens.is_some_and(|t| !t.access_token.is_empty()));
    // Collected once: the next wait says so.
    let again = app.client.wait_pairing(&started.pairing_secret).await.expect("wait");
    assert_eq!(again.status, "consumed");

    let started = app.client.start_pairing("tray", None).await.expect("start");
    app.client.cancel_pairing(&started.pairing_secret).await.expect("cancel");
    assert_eq!(app.client.wait_pairing(&started.pairing_secret).await.expect("wait").status, "cancelled");
}

async fn return_to_must_be_the_apps_own_origin(b: Backend) {
    let app = spawn_app(b).await;
    qr_app(&app, "tray", true).await;
    for bad in ["https://evil.example/", "javascript:alert(1)", "data:text/html,hi", "http://127.0.0.2:1/"] {
        let r = start(&app, "tray", Some(bad)).await;
        assert_eq!(r.status(), 400, "{bad}");
    }
    assert_eq!(start(&app, "tray", None).await.status(), 200, "native apps need no return_to");
}

async fn the_switch_turns_every_part_off(b: Backend) {
    let app = spawn_app(b).await;
    qr_app(&app, "tray", true).await;
    qr_app(&app, "dark", false).await;
    assert_eq!(start(&app, "dark", None).await.status(), 404, "off by default");
    assert_eq!(start(&app, "nope", None).await.status(), 404);
    let http = reqwest::Client::new();
    let page = http.get(format!("{}/apps/dark/qr-sign-in", app.url)).send().await.expect("send");
    assert_eq!(page.status(), 404);

    let session = app.signed_in("alice").await;
    let started: Value = start(&app, "tray", None).await.json().await.expect("json");
    let secret = started["pairing_secret"].as_str().expect("secret").to_string();
    let phone_url = started["phone_url"].as_str().expect("url").to_string();
    let waiter = {
        let (url, secret) = (app.url.clone(), secret.clone());
        tokio::spawn(async move {
            reqwest::Client::new()
                .post(format!("{url}/api/v1/pairings/wait"))
                .header("authorization", format!("Pairing {secret}"))
                .send()
                .await
                .expect("send")
                .status()
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let update = AppUpdate {
        display_name: "App tray".into(),
        grant_types: vec![],
        app_url: Some(app.url.clone()),
        qr_sign_in: false,
    };
    app.store.update_app(AppId("tray"), update, Actor("test"), now()).await.expect("update");
    app.store.notifier().notify_all();
    let status = tokio::time::timeout(Duration::from_secs(15), waiter).await.expect("released").expect("task");
    assert_eq!(status, 404, "the waiting desktop hears the switch at once");
    assert_eq!(decide(&app, &session, &phone_url, "approve").await.status(), 404, "the phone too");
    let r = http.get(&phone_url).bearer_auth(&session).send().await.expect("send");
    assert_eq!(r.status(), 404);
}

async fn a_token_of_another_app_cannot_approve(b: Backend) {
    let app = spawn_app(b).await;
    qr_app(&app, "tray", true).await;
    let started: Value = start(&app, "tray", None).await.json().await.expect("json");
    let phone_url = started["phone_url"].as_str().expect("url").to_string();
    // A latchkey-cli token (app B) of a real user.
    let tokens = app.login("alice", "").await;
    let r = decide(&app, &tokens.access_token, &phone_url, "approve").await;
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.expect("json");
    assert!(body["error_description"].as_str().unwrap_or("").contains("cannot approve"), "{body}");
}

async fn denial_and_cancellation_are_reported(b: Backend) {
    let app = spawn_app(b).await;
    qr_app(&app, "tray", true).await;
    let session = app.signed_in("alice").await;
    let started: Value = start(&app, "tray", None).await.json().await.expect("json");
    let (secret, phone_url) = (
        started["pairing_secret"].as_str().expect("s").to_string(),
        started["phone_url"].as_str().expect("u").to_string(),
    );
    assert_eq!(decide(&app, &session, &phone_url, "deny").await.status(), 200);
    let r: Value = wait(&app, &secret).await.json().await.expect("json");
    assert_eq!(r["status"], "denied");

    let started: Value = start(&app, "tray", None).await.json().await.expect("json");
    let (secret, phone_url) = (
        started["pairing_secret"].as_str().expect("s").to_string(),
        started["phone_url"].as_str().expect("u").to_string(),
    );
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/pairings/cancel", app.url))
        .header("authorization", format!("Pairing {secret}"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 204);
    let r: Value = wait(&app, &secret).await.json().await.expect("json");
    assert_eq!(r["status"], "cancelled");
    assert_eq!(decide(&app, &session, &phone_url, "approve").await.status(), 409);
}

async fn pages_that_approve_cannot_be_framed_and_codes_are_not_cached(b: Backend) {
    let app = spawn_app(b).await;
    qr_app(&app, "tray", true).await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let r = http.get(format!("{}/apps/tray/qr-sign-in?return_to={}/", app.url, app.url)).send().await.expect("send");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    assert!(r.headers()["content-security-policy"].to_str().unwrap_or("").contains("frame-ancestors 'none'"));
    assert_eq!(r.headers()["cache-control"], "no-store");
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("latchkey_pairing="))
        .expect("pairing cookie")
        .to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let html = r.text().await.expect("body");
    assert!(html.contains("<svg") && html.contains("/pair/lkp_"), "an inline QR and the phone link");
    // The phone page sends a signed-out phone to sign in first, and back.
    let phone =
        html.split("id=\"phone-link\">").nth(1).and_then(|s| s.split('<').next()).expect("phone link").to_string();
    let r = http.get(&phone).send().await.expect("send");
    assert_eq!(r.status(), 303);
    assert!(r.headers()["location"].to_str().unwrap_or("").starts_with("/signin?next=%2Fpair%2Flkp_"));
}

async fn starting_pairings_is_rate_limited(b: Backend) {
    let app = spawn_app_with(b, |c| c.pairings_per_minute = 3).await;
    qr_app(&app, "tray", true).await;
    for _ in 0..3 {
        assert_eq!(start(&app, "tray", None).await.status(), 200);
    }
    assert_eq!(start(&app, "tray", None).await.status(), 429);
}

backend_tests!(
    the_client_library_speaks_the_pairing_api,
    native_desktop_is_signed_in_when_the_phone_approves,
    return_to_must_be_the_apps_own_origin,
    the_switch_turns_every_part_off,
    a_token_of_another_app_cannot_approve,
    denial_and_cancellation_are_reported,
    pages_that_approve_cannot_be_framed_and_codes_are_not_cached,
    starting_pairings_is_rate_limited,
);
