//! QR cross-device sign-in through its JSON API, as a native desktop app and a phone app use it.

use crate::backend_tests;
use crate::support::*;
use crate::web_sign_in::{add_web_app, phone_page_url};
use latchkey_client::dpop::DeviceKey;
use latchkey_client::{AppCredentials, Auth, Client, ClientError};
use latchkey_domain::pairing::PairingStatus;
use latchkey_domain::secret::SecretHash;
use latchkey_proto::oauth::TokenResponse;
use latchkey_store::{AppRecord, ClientKind, GrantType};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// What the server says to a credential that may never approve QR sign-ins.
const NOT_A_DEVICE: &str = "approve QR sign-ins from a signed-in browser or a registered device";

/// Registers app `id` with QR sign-in `on` or off.
pub(crate) async fn qr_app(app: &TestApp, id: &str, on: bool) {
    let rec = AppRecord {
        client_id: id.into(),
        display_name: format!("App {id}"),
        kind: ClientKind::Public,
        secret_hash: None,
        grant_types: vec![GrantType::DeviceCode],
        redirect_uris: vec![],
        app_url: Some(app.url.clone()),
        qr_sign_in: on,
        require_dpop: false,
        created_at: now(),
        post_logout_redirect_uris: Vec::new(),
        id_token_alg: Default::default(),
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
    let r = start(&app, "tray", None).await;
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

    // The desktop waits; the phone approves; the desktop wakes with its tokens, in the answer only.
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
    assert!(done["redirect_to"].is_null(), "no URL to carry tokens: {done}");
    let access = done["tokens"]["access_token"].as_str().expect("token");
    let me = app.client.userinfo(access).await.expect("the token works");
    assert_eq!(me.preferred_username, "alice");
    assert!(done["tokens"]["refresh_token"].is_null(), "a QR sign-in is not a device: no refresh token");
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
    let started = app.client.start_pairing("tray").await.expect("start");
    let code = started.phone_url.rsplit('/').next().unwrap_or_default().to_string();
    app.client.decide_pairing(&session, &code, true).await.expect("approve");
    let done = app.client.wait_pairing(&started.pairing_secret).await.expect("wait");
    assert_eq!(done.status, "approved");
    assert!(done.tokens.is_some_and(|t| !t.access_token.is_empty()));
    // Collected once: the next wait says so.
    let again = app.client.wait_pairing(&started.pairing_secret).await.expect("wait");
    assert_eq!(again.status, "consumed");

    let started = app.client.start_pairing("tray").await.expect("start");
    app.client.cancel_pairing(&started.pairing_secret).await.expect("cancel");
    assert_eq!(app.client.wait_pairing(&started.pairing_secret).await.expect("wait").status, "cancelled");
}

/// The retired fragment delivery: `return_to` is refused with a way on, and the
/// hosted page answers old links with 410 and what to do instead.
async fn return_to_and_the_hosted_page_are_retired(b: Backend) {
    let app = spawn_app(b).await;
    qr_app(&app, "tray", true).await;
    for any in [app.url.as_str(), "https://evil.example/", "javascript:alert(1)"] {
        let r = start(&app, "tray", Some(any)).await;
        assert_eq!(r.status(), 400, "{any}");
        let body: Value = r.json().await.expect("json");
        assert_eq!(body["error"], "invalid_request", "{body}");
        let why = body["error_description"].as_str().unwrap_or_default();
        assert!(why.contains("/oauth/authorize") && why.contains("/api/v1/pairings/wait"), "{why}");
    }
    assert_eq!(start(&app, "tray", None).await.status(), 200, "native apps need no return_to");
    for url in
        [format!("{}/apps/tray/qr-sign-in?return_to={}", app.url, app.url), format!("{}/apps/nope/qr-sign-in", app.url)]
    {
        let r = reqwest::get(&url).await.expect("send");
        assert_eq!(r.status(), 410, "{url}");
        assert_eq!(r.headers()["cache-control"], "no-store");
        let page = r.text().await.expect("text");
        assert!(page.contains("This sign-in link was retired") && page.contains("Sign in with your phone"), "{page}");
        assert!(!page.contains("lkp_"), "no QR sign-in was started: {page}");
    }
}

async fn the_switch_turns_every_part_off(b: Backend) {
    let app = spawn_app(b).await;
    qr_app(&app, "tray", true).await;
    qr_app(&app, "dark", false).await;
    assert_eq!(start(&app, "dark", None).await.status(), 404, "off by default");
    assert_eq!(start(&app, "nope", None).await.status(), 404);
    let http = reqwest::Client::new();

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
    app.change_app("tray", |u| u.qr_sign_in = false).await;
    let status = tokio::time::timeout(Duration::from_secs(15), waiter).await.expect("released").expect("task");
    assert_eq!(status, 404, "the waiting desktop hears the switch at once");
    assert_eq!(decide(&app, &session, &phone_url, "approve").await.status(), 404, "the phone too");
    let r = http.get(&phone_url).bearer_auth(&session).send().await.expect("send");
    assert_eq!(r.status(), 404);
}

/// A registered device of the user signed in as `session`: a client holding the
/// device's key, and the DPoP-bound tokens its device login got for `app_creds`.
async fn keyed_device(app: &TestApp, session: &str, app_creds: &AppCredentials, name: &str) -> (Client, TokenResponse) {
    let key = Arc::new(DeviceKey::generate().expect("key"));
    let device = Client::new(&app.url).expect("client").with_device_key(key);
    let auth = device.device_authorization(app_creds, "openid", Some(name)).await.expect("authorize");
    app.client.decide_device_login(session, &auth.user_code, true).await.expect("approve");
    let tokens = device.poll_token(app_creds, &auth.device_code).await.expect("tokens");
    assert_eq!(tokens.token_type, "DPoP", "a device login with a key gets key-bound tokens");
    (device, tokens)
}

/// The phone code a phone URL carries.
fn code_of(phone_url: &str) -> String {
    phone_url.rsplit('/').next().unwrap_or_default().to_string()
}

/// Whether the desktop's pairing still waits for a decision (nobody approved or denied it).
async fn still_pending(app: &TestApp, secret: &str) -> bool {
    let p = app.store.pairing_by_desktop_secret(&SecretHash::of(secret)).await.expect("read pairing");
    p.map(|p| p.state.status) == Some(PairingStatus::Pending)
}

/// The server's refusal, as status, code and description.
fn refusal(e: &ClientError) -> (Option<u16>, String, String) {
    match e {
        ClientError::Server { status, error, description } => {
            (Some(*status), error.clone(), description.clone().unwrap_or_default())
        }
        other => (None, String::new(), other.to_string()),
    }
}

async fn a_token_of_another_app_cannot_approve(b: Backend) {
    let app = spawn_app(b).await;
    qr_app(&app, "tray", true).await;
    app.add_app("other", ClientKind::Public, None, &[GrantType::DeviceCode]).await;
    let session = app.signed_in("alice").await;
    let started = app.client.start_pairing("tray").await.expect("start");
    // Even a key-bound token of a registered device: app B's token never approves a sign-in to app A.
    let (device, tokens) = keyed_device(&app, &session, &AppCredentials::public("other"), "other phone").await;
    let e = device.decide_pairing(Auth::Access(&tokens.access_token), &code_of(&started.phone_url), true).await;
    let e = e.expect_err("another app's token");
    let (status, code, description) = refusal(&e);
    assert_eq!((status, code), (Some(403), "forbidden".to_string()), "{description}");
    assert!(description.contains("cannot approve"), "{description}");
    assert!(still_pending(&app, &started.pairing_secret).await);
}

async fn a_qr_minted_token_cannot_approve_the_next_pairing(b: Backend) {
    let app = spawn_app(b).await;
    qr_app(&app, "tray", true).await;
    let session = app.signed_in("alice").await;
    // One honest QR sign-in, approved by a signed-in session: the desktop gets a bearer token.
    let first = app.client.start_pairing("tray").await.expect("start");
    app.client.decide_pairing(&session, &code_of(&first.phone_url), true).await.expect("approve");
    let done = app.client.wait_pairing(&first.pairing_secret).await.expect("wait");
    let minted = done.tokens.expect("tokens");
    assert_eq!(minted.token_type, "Bearer");
    app.client.userinfo(&minted.access_token).await.expect("the QR token works for the app");

    // The chain: the holder starts a new pairing and approves it with that token.
    let next = app.client.start_pairing("tray").await.expect("start");
    let code = code_of(&next.phone_url);
    for approve in [true, false] {
        let e = app.client.decide_pairing(Auth::Access(&minted.access_token), &code, approve).await;
        let (status, code, description) = refusal(&e.expect_err("a QR-minted token decides nothing"));
        assert_eq!((status, code), (Some(403), "access_denied".to_string()), "{description}");
        assert!(description.contains(NOT_A_DEVICE), "{description}");
    }
    // No new sign-in: the pairing still waits, and the desktop collects nothing.
    assert!(still_pending(&app, &next.pairing_secret).await);
    app.client.cancel_pairing(&next.pairing_secret).await.expect("cancel");
    let after = app.client.wait_pairing(&next.pairing_secret).await.expect("wait");
    assert_eq!(after.status, "cancelled");
    assert!(after.tokens.is_none());
}

async fn a_bare_bearer_token_cannot_approve(b: Backend) {
    let app = spawn_app(b).await;
    qr_app(&app, "tray", true).await;
    // A latchkey-cli login without a device key: a real device of a real user, but no key binding.
    let tokens = app.login("alice", "").await;
    assert_eq!(tokens.token_type, "Bearer");
    let started = app.client.start_pairing("tray").await.expect("start");
    let code = code_of(&started.phone_url);
    let e = app.client.decide_pairing(Auth::Access(&tokens.access_token), &code, true).await;
    let (status, err, description) = refusal(&e.expect_err("bare bearer"));
    assert_eq!((status, err), (Some(403), "access_denied".to_string()), "{description}");
    assert!(description.contains(NOT_A_DEVICE), "{description}");
    // The phone page's form takes the same rule: the token cannot approve there either.
    let r = reqwest::Client::new()
        .post(format!("{}/pair/decision", app.url))
        .bearer_auth(&tokens.access_token)
        .form(&[("csrf", ""), ("code", code.as_str()), ("decision", "approve")])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 403);
    assert!(still_pending(&app, &started.pairing_secret).await);
}

async fn a_registered_devices_key_bound_token_approves(b: Backend) {
    let app = spawn_app(b).await;
    qr_app(&app, "tray", true).await;
    let session = app.signed_in("alice").await;
    // The phone that is signed in: a latchkey-cli device with its key approves a sign-in to any app.
    let (phone, tokens) = keyed_device(&app, &session, &cli(), "phone").await;
    let started = app.client.start_pairing("tray").await.expect("start");
    let decided = phone
        .decide_pairing(Auth::Access(&tokens.access_token), &code_of(&started.phone_url), true)
        .await
        .expect("a registered device approves");
    assert_eq!(decided.status, "approved");
    let done = app.client.wait_pairing(&started.pairing_secret).await.expect("wait");
    assert_eq!(done.status, "approved");
    let me = app.client.userinfo(&done.tokens.expect("tokens").access_token).await.expect("userinfo");
    assert_eq!(me.preferred_username, "alice");

    // And the app's own phone app, on a registered device with its key, approves sign-ins to itself.
    let (tray_phone, tray_tokens) = keyed_device(&app, &session, &AppCredentials::public("tray"), "tray phone").await;
    let started = app.client.start_pairing("tray").await.expect("start");
    tray_phone
        .decide_pairing(Auth::Access(&tray_tokens.access_token), &code_of(&started.phone_url), true)
        .await
        .expect("the app's own device token approves");
    assert_eq!(app.client.wait_pairing(&started.pairing_secret).await.expect("wait").status, "approved");
}

async fn a_revoked_devices_token_cannot_approve(b: Backend) {
    let app = spawn_app(b).await;
    qr_app(&app, "tray", true).await;
    let session = app.signed_in("alice").await;
    let (phone, tokens) = keyed_device(&app, &session, &cli(), "phone").await;
    let id = app.client.devices(&session).await.expect("devices").into_iter().find(|d| d.name == "phone");
    let id = id.expect("the phone is registered").id;
    app.client.revoke_device(&session, &id).await.expect("revoke");
    let started = app.client.start_pairing("tray").await.expect("start");
    let code = code_of(&started.phone_url);
    let e = phone.decide_pairing(Auth::Access(&tokens.access_token), &code, true).await.expect_err("revoked");
    // Revoking a device revokes its tokens: refused as an invalid token, before any rule about approvers.
    assert_eq!((e.status(), e.code()), (Some(401), Some("invalid_token")));
    assert!(still_pending(&app, &started.pairing_secret).await);

    // A device marked revoked whose token family somehow survived is refused by the approver rule itself.
    let (phone, tokens) = keyed_device(&app, &session, &cli(), "phone 2").await;
    let id = app.client.devices(&session).await.expect("devices").into_iter().find(|d| d.name == "phone 2");
    let id = id.expect("registered").id;
    app.raw_sql(&format!("UPDATE devices SET status = 'revoked' WHERE id = '{id}'")).await;
    let e = phone.decide_pairing(Auth::Access(&tokens.access_token), &code, true).await.expect_err("revoked");
    let (status, err, description) = refusal(&e);
    assert_eq!((status, err), (Some(403), "access_denied".to_string()), "{description}");
    assert!(still_pending(&app, &started.pairing_secret).await);
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
    add_web_app(&app, "web", ClientKind::Public, None).await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let r = http.get(phone_page_url(&app.url, "web")).send().await.expect("send");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    assert!(r.headers()["content-security-policy"].to_str().unwrap_or("").contains("frame-ancestors 'none'"));
    assert_eq!(r.headers()["cache-control"], "no-store");
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("latchkey_pairing_"))
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

/// QR sign-ins become visible: listed with the user's browser sessions (app,
/// browser, IP, time), and ending one stops its tokens at once. Devices are not
/// listed here, and nobody ends another user's sign-in.
async fn web_sign_ins_are_listed_and_ended(b: Backend) {
    let app = spawn_app(b).await;
    qr_app(&app, "tray", true).await;
    let session = app.signed_in("alice").await;
    let other_browser = app.client.sign_in("alice", PASSWORD).await.expect("second sign-in").session_token;
    let device = app.login("bob", "openid").await;
    app.client.userinfo(&device.access_token).await.expect("bob's device works");
    let started = app.client.start_pairing("tray").await.expect("start");
    app.client.decide_pairing(&session, &code_of(&started.phone_url), true).await.expect("approve");
    let qr = app.client.wait_pairing(&started.pairing_secret).await.expect("wait").tokens.expect("tokens");
    app.client.userinfo(&qr.access_token).await.expect("the QR sign-in works");

    let listed = app.client.sign_ins(&session).await.expect("list");
    let shown: Vec<(&str, &str, bool)> = listed.iter().map(|s| (s.kind.as_str(), s.app.as_str(), s.current)).collect();
    assert_eq!(shown, [("app", "App tray", false), ("browser", "Latchkey", false), ("browser", "Latchkey", true)]);
    for s in &listed {
        assert_eq!(s.ip, "127.0.0.1", "{s:?}");
        assert!(s.user_agent.starts_with("latchkey-client/") || s.kind == "app", "{s:?}");
    }
    let qr_entry = &listed[0];
    assert_eq!(qr_entry.client_id.as_deref(), Some("tray"));
    assert!(qr_entry.user_agent.starts_with("latchkey-client/"), "the desktop's browser: {qr_entry:?}");

    // Another user cannot see or end them; unknown and malformed IDs are 404.
    let bob_session = app.client.sign_in("bob", PASSWORD).await.expect("bob").session_token;
    assert!(app.client.sign_ins(&bob_session).await.expect("bob's").iter().all(|s| s.kind == "browser"));
    for id in [qr_entry.id.as_str(), "00000000000000000000000000000000", "not an id", "%00"] {
        let e = app.client.end_sign_in(&bob_session, id).await.expect_err("not bob's");
        assert_eq!(e.status(), Some(404), "{id}: {e}");
    }
    app.client.userinfo(&qr.access_token).await.expect("still works");

    // Ending the QR sign-in stops its token at once; ending the other browser signs it out.
    let ended = app.client.end_sign_in(&session, &qr_entry.id).await.expect("end");
    assert_eq!(ended.app, "App tray");
    assert_eq!(app.client.userinfo(&qr.access_token).await.expect_err("ended").status(), Some(401));
    let other = listed.iter().find(|s| s.kind == "browser" && !s.current).expect("the other browser");
    app.client.end_sign_in(&session, &other.id).await.expect("end the other browser");
    assert_eq!(app.client.me(&other_browser).await.expect_err("signed out").status(), Some(401));
    let left = app.client.sign_ins(&session).await.expect("list");
    assert_eq!(left.iter().map(|s| s.current).collect::<Vec<_>>(), [true], "only this browser is left");
    assert_eq!(app.client.end_sign_in(&session, &qr_entry.id).await.expect_err("again").status(), Some(404));
    app.client.userinfo(&device.access_token).await.expect("a device is not a web sign-in");
}

async fn starting_pairings_is_rate_limited(b: Backend) {
    let app = spawn_app_with(b, |c| c.pairings_per_minute = 3).await;
    qr_app(&app, "tray", true).await;
    for _ in 0..3 {
        assert_eq!(start(&app, "tray", None).await.status(), 200);
    }
    assert_eq!(start(&app, "tray", None).await.status(), 429);
}

/// Two QR pages open in one browser each keep their own code: the second
/// page's cookie does not replace the first's, and each page waits on its own.
async fn two_qr_pages_in_one_browser_keep_their_own_codes(b: Backend) {
    let app = spawn_app_with(b, |c| c.wait_timeout = Duration::from_secs(1)).await;
    add_web_app(&app, "web", ClientKind::Public, None).await;
    let session = app.signed_in("alice").await;
    let web = browser();
    let open = || {
        let (web, url) = (web.clone(), phone_page_url(&app.url, "web"));
        async move {
            let html = web.get(url).send().await.expect("page").text().await.expect("html");
            let phone = html.split("id=\"phone-link\">").nth(1).and_then(|s| s.split('<').next()).expect("link");
            let wait = html.split("data-wait-url=\"").nth(1).and_then(|s| s.split('"').next()).expect("wait URL");
            (phone.to_string(), wait.replace("&#x3D;", "=").replace("&#x3F;", "?"))
        }
    };
    let (phone_a, wait_a) = open().await;
    let (phone_b, wait_b) = open().await;
    assert_ne!(wait_a, wait_b, "each page has its own handle");
    app.client.decide_pairing(&session, &code_of(&phone_a), true).await.expect("approve the first page's code");
    let status = |wait: String| {
        let (web, url) = (web.clone(), format!("{}{wait}", app.url));
        async move {
            let r = web.post(url).send().await.expect("wait");
            assert_eq!(r.status(), 200);
            r.json::<serde_json::Value>().await.expect("json")["status"].as_str().unwrap_or_default().to_string()
        }
    };
    assert_eq!(status(wait_a).await, "approved", "the first page is signed in, though a second one opened since");
    assert_eq!(status(wait_b).await, "pending", "the second page still waits on its own code");
    let _ = phone_b;
}

backend_tests!(
    two_qr_pages_in_one_browser_keep_their_own_codes,
    the_client_library_speaks_the_pairing_api,
    native_desktop_is_signed_in_when_the_phone_approves,
    return_to_and_the_hosted_page_are_retired,
    the_switch_turns_every_part_off,
    a_token_of_another_app_cannot_approve,
    a_qr_minted_token_cannot_approve_the_next_pairing,
    a_bare_bearer_token_cannot_approve,
    a_registered_devices_key_bound_token_approves,
    a_revoked_devices_token_cannot_approve,
    denial_and_cancellation_are_reported,
    pages_that_approve_cannot_be_framed_and_codes_are_not_cached,
    starting_pairings_is_rate_limited,
    web_sign_ins_are_listed_and_ended,
);
