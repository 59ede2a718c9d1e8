//! The account pages (Devices, Apps, Users, Audit) over real HTTP, as a browser without JavaScript uses them.

use crate::backend_tests;
use crate::support::*;
use latchkey_domain::secret::SecretHash;
use latchkey_proto::api::DeviceUpdate;
use latchkey_store::{AppId, DeviceId, UserId};
use latchkey_store::{ClientKind, GrantType};
use reqwest::header::HeaderMap;
use std::time::{Duration, Instant};

/// The value of the input with this `id`.
fn value_by_id(html: &str, id: &str) -> String {
    let at = html.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id} in page"));
    let rest = &html[at..];
    let start = rest.find("value=\"").map(|i| i + 7).unwrap_or_else(|| panic!("#{id} has no value"));
    rest[start..].split('"').next().unwrap_or_default().to_string()
}

/// The texts of the audit table's cells labelled `label`, top to bottom.
fn cells(html: &str, label: &str) -> Vec<String> {
    let marker = format!("data-label=\"{label}\">");
    html.match_indices(&marker)
        .map(|(i, _)| html[i + marker.len()..].split("</td>").next().unwrap_or_default())
        .map(|s| s.replace("<code>", "").replace("</code>", ""))
        .collect()
}

fn seqs(html: &str) -> Vec<i64> {
    cells(html, "#").iter().map(|s| s.parse().expect("a sequence number")).collect()
}

fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("x", s)]).unwrap_or_default().trim_start_matches("x=").to_string()
}

pub(crate) struct Page {
    pub(crate) status: u16,
    pub(crate) html: String,
    pub(crate) headers: HeaderMap,
}

impl Page {
    pub(crate) fn location(&self) -> &str {
        self.headers.get("location").and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

pub(crate) async fn get(c: &reqwest::Client, url: &str) -> Page {
    let r = c.get(url).send().await.expect("get");
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    Page { status, headers, html: r.text().await.expect("body") }
}

pub(crate) async fn post(c: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> Page {
    let r = c.post(url).form(form).send().await.expect("post");
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    Page { status, headers, html: r.text().await.expect("body") }
}

/// Signs `user` in through the sign-in form; returns the session's CSRF token.
pub(crate) async fn sign_in(app: &TestApp, c: &reqwest::Client, user: &str) -> String {
    let p = get(c, &format!("{}/signin", app.url)).await;
    let csrf = form_field(&p.html, "csrf");
    let p = post(
        c,
        &format!("{}/signin", app.url),
        &[("csrf", &csrf), ("next", "/"), ("username", user), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(p.status, 303, "signed in");
    let home = get(c, &format!("{}/", app.url)).await;
    form_field(&home.html, "csrf")
}

/// A device login approved through the API; returns the device ID and its tokens.
async fn approved_device(app: &TestApp, session: &str, name: &str, location: &str) -> (String, TokenPair) {
    let (id, tokens) = approved_device_with_tokens(app, session, name, location).await;
    (id, TokenPair { access: tokens.access_token, refresh: tokens.refresh_token.expect("a refresh token") })
}

struct TokenPair {
    access: String,
    refresh: String,
}

async fn signed_out_visitors_are_sent_to_sign_in(b: Backend) {
    let app = spawn_app(b).await;
    let c = browser();
    for path in ["/devices", "/apps", "/audit", "/apps/tray/edit", "/audit?kind=device.revoked"] {
        let p = get(&c, &format!("{}{path}", app.url)).await;
        assert_eq!(p.status, 303, "{path}");
        let next = path.split('?').next().unwrap_or(path);
        assert_eq!(p.location(), format!("/signin?next={}", urlencode(next)), "{path}");
    }
    let p = post(&c, &format!("{}/devices/enrollment-key", app.url), &[("csrf", "x")]).await;
    assert_eq!((p.status, p.location()), (303, "/signin?next=%2Fdevices"));
    assert_eq!(app.store.enrollment_keys(None).await.expect("keys").len(), 0, "nothing was made");

    // Signed in, the pages come back to where the person was going; none may be cached.
    app.add_user("alice", false).await;
    sign_in(&app, &c, "alice").await;
    for path in ["/devices", "/audit"] {
        let p = get(&c, &format!("{}{path}", app.url)).await;
        assert_eq!(p.status, 200, "{path}");
        assert_eq!(p.headers["cache-control"], "no-store", "{path}");
        assert_eq!(p.headers["x-frame-options"], "DENY", "{path}");
        // The nav: Devices and Audit, no Apps for a non-admin; the current page is marked.
        assert!(p.html.contains("<a href=\"/devices\"") && p.html.contains("<a href=\"/audit\""), "{path}");
        assert!(!p.html.contains("href=\"/apps\""), "{path}: no Apps link for non-admins");
        assert!(p.html.contains(&format!("<a href=\"{path}\" aria-current=\"page\">")), "{path}");
    }
}

async fn devices_page_renames_moves_and_revokes(b: Backend) {
    let app = spawn_app(b).await;
    let session = app.signed_in("alice").await;
    let (id, tokens) = approved_device(&app, &session, "Build server", "rack 4").await;
    let (other, other_tokens) = approved_device(&app, &session, "Laptop", "later").await;
    let slug = app.client.devices(&session).await.expect("devices").into_iter().find(|d| d.id == id).expect("d").slug;
    let c = browser();
    let csrf = sign_in(&app, &c, "alice").await;
    let devices = format!("{}/devices", app.url);

    let p = get(&c, &devices).await;
    assert_eq!(p.status, 200);
    for shown in
        ["Build server", &slug, "rack 4", "linux-x86_64", "Laptop", "not set yet", "2 active", "Created", "Last seen"]
    {
        assert!(p.html.contains(shown), "the list shows {shown:?}");
    }
    assert!(!p.html.contains("this device"), "a browser session is none of these devices");
    assert!(p.html.contains(&format!("section class=\"card device\" aria-labelledby=\"device-{id}\"")));
    // Asked with a device's own (latchkey-cli, DPoP-bound) token, the page marks that device, and only it.
    let key = std::sync::Arc::new(latchkey_client::dpop::DeviceKey::generate().expect("key"));
    let phone = latchkey_client::Client::new(&app.url).expect("client").with_device_key(key.clone());
    let auth = phone.device_authorization(&cli(), "openid", Some("Phone")).await.expect("device login");
    app.client.decide_device_login(&session, &auth.user_code, true).await.expect("approve");
    let phone_token = phone.poll_token(&cli(), &auth.device_code).await.expect("tokens").access_token;
    let phone_id = app.client.devices(&session).await.expect("devices").into_iter().find(|d| d.name == "Phone");
    let phone_id = phone_id.expect("listed").id;
    let r = reqwest::Client::new()
        .get(&devices)
        .header("authorization", format!("DPoP {phone_token}"))
        .header("dpop", key.proof("GET", &devices, Some(&phone_token)).expect("proof"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200);
    let html = r.text().await.expect("body");
    assert_eq!(html.matches("this device").count(), 1);
    let phone_card = html.split(&format!("aria-labelledby=\"device-{phone_id}\"")).nth(1).expect("the phone's card");
    assert!(phone_card.split("</section>").next().unwrap_or_default().contains("this device"));
    assert!(html.contains(&format!("aria-labelledby=\"device-{other}\"")), "the laptop is listed too");

    // Rename: a forged form is refused, a bad name explained, a good one saved (slug kept).
    let rename = format!("{devices}/{id}/rename");
    let p = post(&c, &rename, &[("csrf", "forged"), ("name", "Evil")]).await;
    assert_eq!(p.status, 403);
    let p = post(&c, &rename, &[("csrf", &csrf), ("name", "   ")]).await;
    assert_eq!(p.status, 400);
    assert!(p.html.contains("role=\"alert\""), "the refusal is shown on the list");
    let p = post(&c, &rename, &[("csrf", &csrf), ("name", "CI runner")]).await;
    assert_eq!((p.status, p.location()), (303, "/devices?done=renamed"));
    let p = get(&c, &format!("{}{}", app.url, p.location())).await;
    assert!(p.html.contains("Device renamed") && p.html.contains("CI runner") && p.html.contains(&slug));
    let d = app.store.device(DeviceId(&id)).await.expect("load").expect("device");
    assert_eq!((d.display_name.as_str(), d.slug.as_str()), ("CI runner", slug.as_str()));

    // Move, then defer the location; the history keeps every step.
    let relocate = format!("{devices}/{id}/move");
    let p = post(&c, &relocate, &[("csrf", &csrf), ("location", "rack 9")]).await;
    assert_eq!((p.status, p.location()), (303, "/devices?done=moved"));
    assert_eq!(app.store.device(DeviceId(&id)).await.expect("load").expect("d").location.as_deref(), Some("rack 9"));
    let p = post(&c, &relocate, &[("csrf", &csrf), ("location", "later")]).await;
    assert_eq!(p.status, 303);
    assert_eq!(app.store.device(DeviceId(&id)).await.expect("load").expect("d").location, None);
    let history = app.store.location_history(DeviceId(&id)).await.expect("history");
    let names: Vec<_> = history.iter().map(|h| h.location.as_deref()).collect();
    assert_eq!(names, [Some("rack 4"), Some("rack 9"), None]);

    // Another user's device cannot be touched through the forms.
    let bob = browser();
    app.add_user("bob", false).await;
    let bob_csrf = sign_in(&app, &bob, "bob").await;
    let p = post(&bob, &rename, &[("csrf", &bob_csrf), ("name", "Mine now")]).await;
    assert_eq!(p.status, 404);
    assert_eq!(get(&bob, &format!("{devices}/{id}/revoke")).await.status, 404);
    let p = post(&bob, &format!("{devices}/{id}/revoke"), &[("csrf", &bob_csrf), ("confirm", "yes")]).await;
    assert_eq!(p.status, 404);
    assert!(!p.html.contains("CI runner"), "nothing about alice's device leaks");

    // Revoke: a confirmation page, which insists on the tick.
    let confirm = get(&c, &format!("{devices}/{id}/revoke")).await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.html.contains("Revoke CI runner?") && confirm.html.contains("name=\"confirm\""));
    let p = post(&c, &format!("{devices}/{id}/revoke"), &[("csrf", &csrf)]).await;
    assert_eq!(p.status, 400);
    assert!(p.html.contains("Tick the box"));
    app.client.userinfo(&tokens.access).await.expect("not revoked without the tick");
    let p = post(&c, &format!("{devices}/{id}/revoke"), &[("csrf", &csrf), ("confirm", "yes")]).await;
    assert_eq!((p.status, p.location()), (303, "/devices?done=revoked"));

    // Its tokens are rejected at once, by userinfo and introspection; the other device is untouched.
    let e = app.client.userinfo(&tokens.access).await.expect_err("revoked");
    assert_eq!(e.status(), Some(401));
    assert!(!app.client.introspect(&device_app(), &tokens.access).await.expect("introspect").active);
    assert!(!app.client.introspect(&device_app(), &tokens.refresh).await.expect("introspect").active);
    app.client.userinfo(&other_tokens.access).await.expect("the other device still works");
    assert!(app.client.introspect(&device_app(), &other_tokens.refresh).await.expect("introspect").active);

    let p = get(&c, &format!("{devices}?done=revoked")).await;
    assert!(p.html.contains("Device revoked") && p.html.contains("2 active") && p.html.contains("Revoked "));
    assert!(!p.html.contains(&format!("/devices/{id}/revoke")), "no second revoke");
    assert!(p.html.contains(&format!("/devices/{other}/revoke")));
    // A revoked device can no longer be renamed, moved or revoked.
    assert_eq!(post(&c, &rename, &[("csrf", &csrf), ("name", "Back")]).await.status, 409);
    assert_eq!(get(&c, &format!("{devices}/{id}/revoke")).await.status, 409);
    assert_eq!(post(&c, &format!("{devices}/{id}/revoke"), &[("csrf", &csrf), ("confirm", "yes")]).await.status, 409);
}

async fn enrollment_key_is_shown_once(b: Backend) {
    let app = spawn_app(b).await;
    let alice = app.add_user("alice", false).await;
    let c = browser();
    let csrf = sign_in(&app, &c, "alice").await;
    let url = format!("{}/devices/enrollment-key", app.url);
    assert_eq!(post(&c, &url, &[("csrf", "forged")]).await.status, 403);

    let p = post(&c, &url, &[("csrf", &csrf)]).await;
    assert_eq!(p.status, 200);
    assert_eq!(p.headers["cache-control"], "no-store");
    let key = value_by_id(&p.html, "enroll-key");
    assert!(key.starts_with("lke_"), "{key}");
    let command = format!("latchkey login --server {} --enroll-key {key}", app.url);
    assert!(p.html.contains(&command), "the command to run, with the public URL");
    assert!(p.html.contains("shown only once"));

    // Stored as a hash, owned by alice, single use, short-lived; never shown again.
    let keys = app.store.enrollment_keys(Some(UserId(&alice))).await.expect("keys");
    assert_eq!(keys.len(), 1);
    assert!(!keys[0].reusable);
    assert!(keys[0].expires_at.millis_since(now()) <= 15 * 60 * 1000);
    assert!(!get(&c, &format!("{}/devices", app.url)).await.html.contains(&key));
    assert_eq!(
        post(&c, &url, &[("csrf", &csrf)]).await.status,
        200,
        "another press makes another key, it never shows the first again"
    );
    assert_eq!(app.store.enrollment_keys(Some(UserId(&alice))).await.expect("keys").len(), 2);

    // It works once, on a machine with no browser.
    let req = headless_enrollment(&key);
    let machine = app.keyed_client();
    machine.enroll(&req).await.expect("enrolled");
    assert!(machine.enroll(&req).await.is_err(), "single use");
    let p = get(&c, &format!("{}/devices", app.url)).await;
    assert!(p.html.contains("Headless box") && p.html.contains("basement"));
}

/// Signs in a new admin in a fresh browser.
async fn admin_browser(app: &TestApp) -> (reqwest::Client, String, String) {
    let id = app.add_user("root", true).await;
    let c = browser();
    let csrf = sign_in(app, &c, "root").await;
    (c, csrf, id)
}

async fn apps_pages_are_for_admins_only(b: Backend) {
    let app = spawn_app(b).await;
    app.add_user("alice", false).await;
    app.add_app("tray", ClientKind::Public, None, &[GrantType::DeviceCode]).await;
    let c = browser();
    let csrf = sign_in(&app, &c, "alice").await;
    for path in ["/apps", "/apps/tray/edit"] {
        let p = get(&c, &format!("{}{path}", app.url)).await;
        assert_eq!(p.status, 403, "{path}");
        assert!(p.html.contains("Admins only"), "{path}");
        assert!(!p.html.contains("App tray"), "{path}");
    }
    let form = [("csrf", csrf.as_str()), ("client_id", "sneaky"), ("display_name", "Sneaky"), ("kind", "public")];
    assert_eq!(post(&c, &format!("{}/apps", app.url), &form).await.status, 403);
    let edit = [
        ("csrf", csrf.as_str()),
        ("display_name", "Owned"),
        ("qr_sign_in", "yes"),
        ("app_url", "https://evil.example"),
    ];
    assert_eq!(post(&c, &format!("{}/apps/tray/edit", app.url), &edit).await.status, 403);
    assert!(app.store.app(AppId("sneaky")).await.expect("load").is_none());
    assert_eq!(app.store.app(AppId("tray")).await.expect("load").expect("tray").display_name, "App tray");

    // Admins see the Apps link.
    let (admin, _, _) = admin_browser(&app).await;
    let p = get(&admin, &format!("{}/devices", app.url)).await;
    assert!(p.html.contains("<a href=\"/apps\""));
}

async fn admin_creates_and_edits_apps(b: Backend) {
    let app = spawn_app(b).await;
    let (c, csrf, root) = admin_browser(&app).await;
    let apps = format!("{}/apps", app.url);

    let p = get(&c, &apps).await;
    assert_eq!(p.status, 200);
    assert!(p.html.contains("latchkey-cli") && p.html.contains("built-in"));
    assert!(!p.html.contains("/apps/latchkey-cli/edit"), "the built-in app is not editable here");
    assert_eq!(get(&c, &format!("{apps}/latchkey-cli/edit")).await.status, 403);

    // A public app with device login and QR sign-in.
    let p = post(
        &c,
        &apps,
        &[
            ("csrf", &csrf),
            ("client_id", "tray"),
            ("display_name", "Tray App"),
            ("kind", "public"),
            ("grant_device_code", "yes"),
            ("app_url", "https://tray.example.com"),
            ("qr_sign_in", "yes"),
        ],
    )
    .await;
    assert_eq!(p.status, 201);
    assert!(!p.html.contains("/qr-sign-in"), "no hosted QR page (retired): {}", p.html);
    assert!(!p.html.contains("Client secret"), "public apps have no secret");
    let tray = app.store.app(AppId("tray")).await.expect("load").expect("tray");
    assert_eq!(tray.display_name, "Tray App");
    assert_eq!(tray.kind, ClientKind::Public);
    assert_eq!(tray.grant_types, vec![GrantType::DeviceCode]);
    assert_eq!(tray.app_url.as_deref(), Some("https://tray.example.com"));
    assert!(tray.qr_sign_in && tray.secret_hash.is_none());

    // A confidential app: its secret is shown once and stored only as a hash.
    let p = post(
        &c,
        &apps,
        &[
            ("csrf", &csrf),
            ("client_id", "billing"),
            ("display_name", "Billing"),
            ("kind", "confidential"),
            ("grant_refresh_token", "yes"),
        ],
    )
    .await;
    assert_eq!(p.status, 201);
    let secret = value_by_id(&p.html, "client-secret");
    assert!(secret.starts_with("lkc_"), "{secret}");
    let billing = app.store.app(AppId("billing")).await.expect("load").expect("billing");
    assert_eq!(billing.kind, ClientKind::Confidential);
    assert_eq!(billing.secret_hash, Some(SecretHash::of(&secret)));
    assert_eq!(billing.grant_types, vec![GrantType::RefreshToken]);
    let list = get(&c, &apps).await.html;
    assert!(!list.contains(&secret), "never shown again");
    assert!(list.contains("Tray App") && list.contains("Billing"));

    // Mistakes are explained and keep what was typed.
    let p =
        post(&c, &apps, &[("csrf", &csrf), ("client_id", "tray"), ("display_name", "Again"), ("kind", "public")]).await;
    assert_eq!(p.status, 409);
    assert!(p.html.contains("already exists") && p.html.contains("value=\"Again\""));
    let p =
        post(&c, &apps, &[("csrf", &csrf), ("client_id", "Bad ID!"), ("display_name", "X"), ("kind", "public")]).await;
    assert_eq!(p.status, 400);
    assert!(p.html.contains("Client ID"));
    let p = post(&c, &apps, &[("csrf", "forged"), ("client_id", "forged"), ("display_name", "X"), ("kind", "public")])
        .await;
    assert_eq!(p.status, 403);
    assert!(app.store.app(AppId("forged")).await.expect("load").is_none());

    // Edit: the form shows the settings; saving changes them all at once.
    let edit = format!("{apps}/tray/edit");
    let p = get(&c, &edit).await;
    assert_eq!(p.status, 200);
    assert!(p.html.contains("value=\"Tray App\"") && p.html.contains("value=\"https://tray.example.com\""));
    let p = post(
        &c,
        &edit,
        &[
            ("csrf", &csrf),
            ("display_name", "Tray"),
            ("grant_device_code", "yes"),
            ("grant_refresh_token", "yes"),
            ("app_url", "https://tray.example.org:8443"),
        ],
    )
    .await;
    assert_eq!((p.status, p.location()), (303, "/apps/tray/edit?saved=1"));
    let p = get(&c, &format!("{}{}", app.url, p.location())).await;
    assert!(p.html.contains("Saved."));
    let tray = app.store.app(AppId("tray")).await.expect("load").expect("tray");
    assert_eq!(tray.display_name, "Tray");
    assert_eq!(tray.grant_types, vec![GrantType::DeviceCode, GrantType::RefreshToken]);
    assert_eq!(tray.app_url.as_deref(), Some("https://tray.example.org:8443"));
    assert!(!tray.qr_sign_in, "unticked means off");
    assert_eq!(get(&c, &format!("{apps}/nope/edit")).await.status, 404);

    // Both changes are in the audit log, by the admin.
    let created = app.store.audit_page(audit_filter(Some("app.created"))).await.expect("audit");
    assert!(created.iter().any(|e| e.subject.as_deref() == Some("billing") && e.actor.as_deref() == Some(&root)));
    let updated = app.store.audit_page(audit_filter(Some("app.updated"))).await.expect("audit");
    assert_eq!(updated.len(), 1);
    assert_eq!((updated[0].actor.as_deref(), updated[0].subject.as_deref()), (Some(root.as_str()), Some("tray")));
}

fn audit_filter(kind: Option<&str>) -> latchkey_store::AuditFilter {
    latchkey_store::AuditFilter { kind: kind.map(str::to_string), limit: 100, ..Default::default() }
}

/// The QR switch's rules on the Apps page (not with Require DPoP; a bad app URL
/// is refused), and switching it off stops a QR sign-in already waiting.
async fn qr_switch_rules_and_switching_it_off(b: Backend) {
    let app = spawn_app(b).await;
    let (c, csrf, _) = admin_browser(&app).await;
    let apps = format!("{}/apps", app.url);
    let create = |url: &'static str| {
        let csrf = csrf.clone();
        let c = c.clone();
        let apps = apps.clone();
        async move {
            post(
                &c,
                &apps,
                &[
                    ("csrf", &csrf),
                    ("client_id", "web"),
                    ("display_name", "Web"),
                    ("kind", "public"),
                    ("qr_sign_in", "yes"),
                    ("app_url", url),
                ],
            )
            .await
        }
    };
    for bad in ["javascript:alert(1)", "data:text/html,hi", "ftp://files.example", "https://", "https://a b.example"] {
        let p = create(bad).await;
        assert_eq!(p.status, 400, "{bad}");
        assert!(p.html.contains("must be an http(s) URL"), "{bad}");
    }
    assert!(app.store.app(AppId("web")).await.expect("load").is_none());

    // Editing: switching on together with Require DPoP is refused and changes nothing.
    app.add_app("tray", ClientKind::Public, None, &[GrantType::DeviceCode]).await;
    let edit = format!("{apps}/tray/edit");
    let p = post(
        &c,
        &edit,
        &[
            ("csrf", &csrf),
            ("display_name", "Renamed"),
            ("grant_device_code", "yes"),
            ("qr_sign_in", "yes"),
            ("require_dpop", "yes"),
        ],
    )
    .await;
    assert_eq!(p.status, 400);
    assert!(p.html.contains("QR sign-in and Require DPoP cannot both be on"), "a clear error");
    assert!(p.html.contains("value=\"Renamed\""), "what was typed is kept");
    let tray = app.store.app(AppId("tray")).await.expect("load").expect("tray");
    assert!(!tray.qr_sign_in && tray.display_name == "App tray");

    // A native app needs no app URL to switch it on; a QR sign-in waiting on it stops the moment it is switched off.
    let on = [("csrf", csrf.as_str()), ("display_name", "Tray"), ("grant_device_code", "yes"), ("qr_sign_in", "yes")];
    assert_eq!(post(&c, &edit, &on).await.status, 303);
    let started: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/api/v1/pairings", app.url))
        .json(&serde_json::json!({"client_id": "tray"}))
        .send()
        .await
        .expect("start")
        .json()
        .await
        .expect("json");
    let secret = started["pairing_secret"].as_str().expect("a pairing secret").to_string();
    let waiting = tokio::spawn({
        let url = format!("{}/api/v1/pairings/wait", app.url);
        async move {
            let t = Instant::now();
            let r = reqwest::Client::new()
                .post(url)
                .header("authorization", format!("Pairing {secret}"))
                .send()
                .await
                .expect("wait");
            (r.status().as_u16(), t.elapsed())
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let off = [("csrf", csrf.as_str()), ("display_name", "Tray"), ("grant_device_code", "yes")];
    assert_eq!(post(&c, &edit, &off).await.status, 303);
    let (status, took) = waiting.await.expect("waiter");
    assert_eq!(status, 404, "the waiting desktop is told QR sign-in is off");
    assert!(took < Duration::from_secs(10), "at once, not at the long-poll's timeout: {took:?}");
}

async fn audit_page_lists_filters_and_pages(b: Backend) {
    let app = spawn_app(b).await;
    let alice = app.add_user("alice", false).await;
    let c = browser();
    sign_in(&app, &c, "alice").await;
    let session = app.client.sign_in("alice", PASSWORD).await.expect("sign in").session_token;
    let (id, _) = approved_device(&app, &session, "Box", "desk").await;
    for i in 0..55 {
        let update = DeviceUpdate { name: Some(format!("Box {i}")), location: None };
        app.client.update_device(session.as_str(), &id, &update).await.expect("rename");
    }
    app.add_user("bob", false).await;
    let bob_session = app.client.sign_in("bob", PASSWORD).await.expect("sign in").session_token;
    approved_device(&app, &bob_session, "Bob's box", "elsewhere").await;

    let audit = format!("{}/audit", app.url);
    let tree = app.sealed().await;
    let p = get(&c, &audit).await;
    assert_eq!(p.status, 200);
    let hex: String = tree.root[..8].iter().map(|b| format!("{b:02x}")).collect();
    assert!(p.html.contains(&format!("{} entries sealed", tree.size)), "the signed log's size");
    assert!(p.html.contains(&format!("root <code>{hex}</code>")), "and its root");
    assert!(p.html.contains("Signed log"));
    let marks = cells(&p.html, "In the signed log");
    assert_eq!(marks.len(), 50);
    assert!(marks.iter().all(|m| m.contains("✓ leaf ")), "every entry proven in the signed log: {marks:?}");

    // Alice's own events only, newest first, 50 a page.
    let first = seqs(&p.html);
    assert_eq!(first.len(), 50);
    assert!(first.windows(2).all(|w| w[0] > w[1]), "newest first: {first:?}");
    let own = app
        .store
        .audit_page(latchkey_store::AuditFilter { involving: Some(alice.clone()), limit: 1000, ..Default::default() })
        .await
        .expect("own");
    assert_eq!(first[0], own[0].seq, "starts at the newest");
    assert!(cells(&p.html, "Kind").iter().all(|k| k == "device.renamed"), "the 50 newest are the renames");
    let said = cells(&p.html, "What happened");
    assert_eq!(said.len(), 50);
    assert!(said.iter().all(|a| a.starts_with("<span><strong>You</strong> renamed ")), "told as sentences: {said:?}");
    let older = format!("/audit?before={}", first[49]);
    assert!(p.html.contains(&format!("href=\"{older}\"")), "an Older link");

    let p2 = get(&c, &format!("{}{older}", app.url)).await;
    let second = seqs(&p2.html);
    assert_eq!(second.len(), own.len() - 50, "the rest on page two");
    assert!(second[0] < first[49], "no overlap");
    assert!(!p2.html.contains("rel=\"next\""), "no Older link on the last page");
    assert!(p2.html.contains("href=\"/audit\""), "a Newest link");
    let kinds = cells(&p2.html, "Kind");
    for k in ["user.created", "signin.succeeded", "grant.approved", "device.registered"] {
        assert!(kinds.iter().any(|x| x == k), "alice's {k} event is listed");
    }
    assert!(!p.html.contains("Bob") && !p2.html.contains("Bob"), "bob's events are not alice's");
    let all_seqs: Vec<i64> = first.iter().chain(&second).copied().collect();
    assert_eq!(all_seqs, own.iter().map(|e| e.seq).collect::<Vec<_>>());

    // Filter by kind; paging keeps the filter.
    let p = get(&c, &format!("{audit}?kind=device.registered")).await;
    assert_eq!(cells(&p.html, "Kind"), ["device.registered"]);
    assert!(p.html.contains("<option value=\"device.registered\" selected>"));
    let p = get(&c, &format!("{audit}?kind=device.renamed")).await;
    assert_eq!(seqs(&p.html).len(), 50);
    let older = format!("/audit?kind=device.renamed&amp;before={}", seqs(&p.html)[49]);
    assert!(p.html.contains(&older), "Older keeps the kind");
    let p = get(&c, &format!("{audit}?kind=device.renamed&before={}", seqs(&p.html)[49])).await;
    assert_eq!(cells(&p.html, "Kind"), vec!["device.renamed"; 5]);
    assert_eq!(get(&c, &format!("{audit}?kind=nonsense")).await.status, 400);
    assert_eq!(get(&c, &format!("{audit}?before=abc")).await.status, 400);
    let p = get(&c, &format!("{audit}?kind=")).await;
    assert_eq!(p.status, 200, "the select's 'All kinds' is no filter");

    // Admins see everyone's.
    let (admin, _, _) = admin_browser(&app).await;
    let p = get(&admin, &format!("{audit}?kind=device.registered")).await;
    assert_eq!(seqs(&p.html).len(), 2, "alice's and bob's devices");

    // A tampered entry of hers shows as not matching the signed log, on its own row.
    let newest = first[0];
    app.raw_sql(&format!("UPDATE audit_log SET detail = detail || ' ' WHERE seq = {newest}")).await;
    let p = get(&c, &audit).await;
    assert_eq!(p.status, 200);
    let marks = cells(&p.html, "In the signed log");
    assert!(marks[0].contains("does not match the signed log"), "the edited entry is marked: {}", marks[0]);
    assert!(marks[1..].iter().all(|m| m.contains("✓ leaf ")), "the others still hold");

    // A forged checkpoint (its size changed, its signature kept) is named on the page.
    let tree = app.sealed().await;
    let note = tree.checkpoint.expect("signed");
    let forged = note.replacen(&format!("\n{}\n", tree.size), &format!("\n{}\n", tree.size + 1), 1);
    app.raw_sql(&format!("UPDATE audit_tree SET checkpoint = '{forged}'")).await;
    let p = get(&c, &audit).await;
    assert_eq!(p.status, 200);
    assert!(p.html.contains("Log not verified") && p.html.contains("does not verify"), "the forgery is named");
    assert!(cells(&p.html, "In the signed log").iter().all(|m| m.contains("does not match")));
}

async fn users_pages_are_for_admins_only(b: Backend) {
    let app = spawn_app(b).await;
    let root = app.add_user("root", true).await;
    app.add_user("alice", false).await;
    let c = browser();
    // Signed out: sent to sign in, and nothing is done.
    let p = get(&c, &format!("{}/users", app.url)).await;
    assert_eq!((p.status, p.location()), (303, "/signin?next=%2Fusers"));
    let p = post(&c, &format!("{}/users/{root}/disable", app.url), &[("csrf", "x")]).await;
    assert_eq!((p.status, p.location()), (303, "/signin?next=%2Fusers"));

    // A non-admin gets 403 on every page and action, and sees no Users link.
    let csrf = sign_in(&app, &c, "alice").await;
    for path in ["/users".to_string(), format!("/users/{root}/password"), format!("/users/{root}/delete")] {
        let p = get(&c, &format!("{}{path}", app.url)).await;
        assert_eq!(p.status, 403, "{path}");
        assert!(p.html.contains("Admins only") && !p.html.contains("root</td>"), "{path}");
    }
    for action in ["disable", "enable", "password", "revoke-all", "delete"] {
        let form = [
            ("csrf", csrf.as_str()),
            ("confirm", "yes"),
            ("new_password", "a password of alice's"),
            ("repeat_password", "a password of alice's"),
        ];
        let p = post(&c, &format!("{}/users/{root}/{action}", app.url), &form).await;
        assert_eq!(p.status, 403, "{action}");
    }
    assert!(!get(&c, &format!("{}/devices", app.url)).await.html.contains("href=\"/users\""));
    let r = app.store.user_by_name("root").await.expect("load").expect("root is still there");
    assert!(r.status.check(now()).is_ok(), "root was not stopped");
    let entries = app.store.audit_entries(0, 10_000).await.expect("audit");
    assert!(!entries.iter().any(|e| e.kind.starts_with("user.") && e.kind != "user.created"), "nothing was done");
    app.client.sign_in("root", PASSWORD).await.expect("root's password is unchanged");
}

async fn users_page_refuses_what_it_must(b: Backend) {
    let app = spawn_app_with(b, |c| c.lock_after_failures = 2).await;
    let (c, csrf, root) = admin_browser(&app).await;
    let alice = app.add_user("alice", false).await;
    let users = format!("{}/users", app.url);
    let p = get(&c, &users).await;
    assert_eq!(p.status, 200);
    assert_eq!(p.headers["cache-control"], "no-store");
    assert!(p.html.contains("<a href=\"/users\" aria-current=\"page\">Users</a>"), "the nav marks the page");
    assert!(p.html.contains(&format!("action=\"/users/{alice}/disable\"")));
    for own in ["disable", "delete", "password"] {
        assert!(!p.html.contains(&format!("/users/{root}/{own}\"")), "no {own} offered for one's own account");
    }

    // A forged form changes nothing.
    let p = post(&c, &format!("{users}/{alice}/disable"), &[("csrf", "forged")]).await;
    assert_eq!(p.status, 403);
    let a = app.store.user_by_name("alice").await.expect("load").expect("alice");
    assert!(a.status.check(now()).is_ok(), "a forged form disables nobody");

    // One's own account cannot be disabled or deleted here (409), nor reset without the current password.
    let p = post(&c, &format!("{users}/{root}/disable"), &[("csrf", &csrf)]).await;
    assert_eq!(p.status, 409);
    assert!(p.html.contains("cannot disable your own account"), "{}", p.html);
    assert_eq!(get(&c, &format!("{users}/{root}/delete")).await.status, 409);
    let p = post(&c, &format!("{users}/{root}/delete"), &[("csrf", &csrf), ("confirm", "yes")]).await;
    assert_eq!(p.status, 409);
    assert!(p.html.contains("cannot delete your own account"), "{}", p.html);
    assert_eq!(get(&c, &format!("{users}/{root}/password")).await.status, 409);
    let form = [("csrf", csrf.as_str()), ("new_password", "my new password"), ("repeat_password", "my new password")];
    let p = post(&c, &format!("{users}/{root}/password"), &form).await;
    assert_eq!(p.status, 409);
    assert!(p.html.contains("/password"), "points to the Password page: {}", p.html);
    assert_eq!(get(&c, &users).await.status, 200, "the admin is still signed in and enabled");
    app.client.sign_in("root", PASSWORD).await.expect("root's password is unchanged");

    // An unknown ID is 404, on every page and action.
    for id in [uuid::Uuid::now_v7().to_string(), "not-an-id".into()] {
        for page in ["password", "revoke-all", "delete"] {
            assert_eq!(get(&c, &format!("{users}/{id}/{page}")).await.status, 404, "{id} {page}");
        }
        for action in ["disable", "enable", "password", "revoke-all", "delete"] {
            let form = [("csrf", csrf.as_str()), ("confirm", "yes"), ("new_password", "x"), ("repeat_password", "x")];
            assert_eq!(post(&c, &format!("{users}/{id}/{action}"), &form).await.status, 404, "{id} {action}");
        }
    }

    // Bad new passwords are explained on the form; nothing changes.
    let reset = format!("{users}/{alice}/password");
    let p = post(&c, &reset, &[("csrf", &csrf), ("new_password", "short"), ("repeat_password", "short")]).await;
    assert_eq!(p.status, 400);
    assert!(p.html.contains("role=\"alert\"") && p.html.contains("at least 8 characters"), "{}", p.html);
    let p =
        post(&c, &reset, &[("csrf", &csrf), ("new_password", "long enough 1"), ("repeat_password", "long enough 2")])
            .await;
    assert_eq!(p.status, 400);
    assert!(p.html.contains("The two passwords differ"));
    app.client.sign_in("alice", PASSWORD).await.expect("alice's password is unchanged");

    // The destructive actions insist on the tick.
    for action in ["revoke-all", "delete"] {
        let p = post(&c, &format!("{users}/{alice}/{action}"), &[("csrf", &csrf)]).await;
        assert_eq!(p.status, 400, "{action}");
        assert!(p.html.contains("Tick the box to confirm"), "{action}");
    }
    assert!(app.store.user_by_name("alice").await.expect("load").is_some());

    // A locked account shows until when, and Unlock lifts the lock.
    for _ in 0..2 {
        let _ = app.client.sign_in("alice", "not the password").await;
    }
    let p = get(&c, &users).await;
    assert!(p.html.contains("locked until ") && p.html.contains(" UTC"), "{}", p.html);
    assert!(p.html.contains("Unlock"));
    let p = post(&c, &format!("{users}/{alice}/enable"), &[("csrf", &csrf)]).await;
    assert_eq!((p.status, p.location()), (303, "/users?done=enabled"));
    let p = get(&c, &format!("{users}?done=enabled")).await;
    assert!(p.html.contains("Account enabled") && !p.html.contains("locked until"));
    app.client.sign_in("alice", PASSWORD).await.expect("unlocked");

    // Only the fixed notices are shown, never the query's text.
    let p = get(&c, &format!("{users}?done=%3Cscript%3Ealert(1)%3C%2Fscript%3E")).await;
    assert_eq!(p.status, 200);
    assert!(!p.html.contains("alert(1)") && !p.html.contains("role=\"status\""));
}

backend_tests!(
    signed_out_visitors_are_sent_to_sign_in,
    devices_page_renames_moves_and_revokes,
    enrollment_key_is_shown_once,
    apps_pages_are_for_admins_only,
    admin_creates_and_edits_apps,
    qr_switch_rules_and_switching_it_off,
    audit_page_lists_filters_and_pages,
    users_pages_are_for_admins_only,
    users_page_refuses_what_it_must,
);
