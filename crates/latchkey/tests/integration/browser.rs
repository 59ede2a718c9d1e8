//! Tested as a person would: Debian's chromium, headless, against the real server.
//!
//! A device login approved by typing its code; "Sign in with your phone" on a
//! web app's sign-in page with two browsers (a desktop and a phone, separate
//! cookie jars) whose QR is decoded with a real decoder, ending in the app's
//! code redirect; the QR switch turned off while the desktop waits (from the
//! store, and from the Apps page); a denial on the phone; a device revoked on
//! the Devices page, whose token then stops working; an admin disabling, enabling,
//! resetting, revoking and deleting an account on the Users page. With `LATCHKEY_SCREENSHOTS=1` the tests also
//! (re)write the README's screenshots in `docs/screenshots/`.

use crate::backend_tests;
use crate::browser_support::*;
use crate::support::*;
use latchkey_store::AppId;
use latchkey_store::{AppRecord, ClientKind, GrantType};

const QR_APP: &str = "demo-dashboard";
const QR_APP_NAME: &str = "Demo Dashboard";

/// Checks the page with axe-core; then saves it at desktop width, then at phone width (the same page, resized).
async fn keep_both_widths(b: &Browser, keep: bool, name: &str) {
    b.assert_accessible(name).await;
    if !keep {
        return;
    }
    b.keep_screenshot(keep, &format!("{name}-desktop")).await;
    b.resize(PHONE).await;
    b.keep_screenshot(keep, &format!("{name}-phone")).await;
    b.resize(DESKTOP).await;
}

/// The web app's callback (a page of the server's own that answers "ok").
fn callback(app: &TestApp) -> String {
    format!("{}/healthz", app.url)
}

/// Registers a web app (authorization code, public) with QR sign-in on.
async fn add_qr_app(app: &TestApp) {
    let record = AppRecord {
        client_id: QR_APP.into(),
        display_name: QR_APP_NAME.into(),
        kind: ClientKind::Public,
        secret_hash: None,
        grant_types: vec![GrantType::AuthorizationCode],
        redirect_uris: vec![callback(app)],
        app_url: Some(app.url.clone()),
        qr_sign_in: true,
        require_dpop: false,
        created_at: now(),
        post_logout_redirect_uris: Vec::new(),
        id_token_alg: Default::default(),
    };
    app.store.create_app(record, None, now()).await.expect("create app");
}

/// Where the app sends people to sign in (an authorization request), and its PKCE verifier.
fn sign_in_url(app: &TestApp) -> (String, String) {
    let (challenge, verifier) = crate::web_sign_in::pkce();
    let q = serde_urlencoded::to_string([
        ("client_id", QR_APP),
        ("redirect_uri", callback(app).as_str()),
        ("response_type", "code"),
        ("scope", "openid profile"),
        ("state", "st-1"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ])
    .expect("query");
    (format!("{}/oauth/authorize?{q}", app.url), verifier)
}

/// Opens the app's sign-in, picks "Sign in with your phone", and waits until
/// the page shows the QR and waits; returns the phone URL and the PKCE verifier.
async fn open_qr_page(app: &TestApp, desk: &Browser) -> (String, String) {
    let (url, verifier) = sign_in_url(app);
    desk.goto(&url).await;
    desk.wait_text("h1", &format!("Sign in to continue to {QR_APP_NAME}")).await;
    desk.click("#sign-in-with-phone").await;
    desk.wait_text("h1", &format!("Sign in to {QR_APP_NAME} with your phone")).await;
    desk.wait_text("#qr-status", "Waiting for your phone").await;
    let link = desk.find("#phone-link").await;
    let phone_url = link.attr("href").await.expect("href").expect("#phone-link has an href");
    assert_eq!(link.text().await.expect("text"), phone_url, "the link shows the URL it opens");
    assert!(phone_url.starts_with(&format!("{}/pair/lkp_", app.url)), "{phone_url}");
    // "Show a new code" is only for when this one is finished. (Checked as the
    // `hidden` property: `a.button { display:inline-block }` in latchkey.css
    // currently overrides `hidden`, so the link is still drawn while waiting.)
    let restart = desk.find("#qr-restart").await;
    assert_eq!(restart.prop("hidden").await.expect("hidden").as_deref(), Some("true"), "no restart while waiting");
    (phone_url, verifier)
}

/// Opens the phone URL on the phone, signs in there, and waits for the approval page.
async fn phone_signs_in_and_sees(phone: &Browser, phone_url: &str) {
    phone.goto(phone_url).await;
    let at = phone.wait_url("http").await;
    assert!(at.contains("/signin?next="), "a signed-out phone is sent to sign in first: {at}");
    // The phone's sign-in page must not offer "sign in with your phone" to itself.
    assert!(!phone.has(".qr, #phone-link, #sign-in-with-phone").await, "sign-in page offers QR sign-in to a phone");
    phone.sign_in("alice", PASSWORD).await;
    phone.wait_text("h1", &format!("Sign in to {QR_APP_NAME} on the computer?")).await;
    assert_eq!(phone.url().await, phone_url, "back on the phone URL after signing in");
}

async fn a_person_approves_a_device_login_by_typing_its_code(b: Backend) {
    let keep = keep_screenshots(&b);
    let app = spawn_app(b).await;
    app.add_user("alice", false).await;
    let auth = app
        .client
        .device_authorization(&device_app(), "openid profile", Some("Alice's laptop"))
        .await
        .expect("device login");
    let chrome = Chrome::start().await;
    let desk = chrome.browser(DESKTOP).await;

    // Signed out: /device sends the person to sign in, then back.
    desk.goto(&format!("{}/device", app.url)).await;
    let at = desk.wait_url(&format!("{}/signin?next=", app.url)).await;
    assert!(at.ends_with("?next=%2Fdevice"), "{at}");
    desk.wait_text("h1", "Sign in").await;
    keep_both_widths(&desk, keep, "signin").await;
    // A wrong password is refused on the page, which keeps the name typed.
    desk.sign_in("alice", "not the password").await;
    desk.wait_text("[role='alert']", "").await;
    assert!(desk.url().await.starts_with(&format!("{}/signin", app.url)));
    let kept = desk.find("#username").await.prop("value").await.expect("value");
    assert_eq!(kept.as_deref(), Some("alice"), "the name typed is kept");
    desk.sign_in("alice", PASSWORD).await;
    desk.wait_text("h1", "Sign in a device").await;
    assert_eq!(desk.url().await, format!("{}/device", app.url));
    assert!(desk.text("header").await.contains("alice"), "the header says who is signed in");

    // The code as a person types it: lower case, no dash.
    let typed = auth.user_code.replace('-', "").to_lowercase();
    assert_ne!(typed, auth.user_code);
    desk.type_into("#user_code", &typed).await;
    keep_both_widths(&desk, keep, "device-entry").await;
    desk.click("form[action='/device'] button[type='submit']").await;

    // What approving means: the app, the device, where it asked from, the code.
    desk.wait_text("h1", &format!("Let {DEVICE_APP_NAME} sign in as alice?")).await;
    let page = desk.body_text().await;
    for shown in [auth.user_code.as_str(), DEVICE_APP_NAME, "Alice's laptop", "127.0.0.1", "latchkey-client/"] {
        assert!(page.contains(shown), "the confirmation page shows {shown:?}:\n{page}");
    }
    assert_eq!(desk.text(".bigcode").await, auth.user_code, "the code is shown canonically");
    keep_both_widths(&desk, keep, "device-confirm").await;

    // Approve is refused by the page itself until the box is ticked.
    desk.click("button[name='decision'][value='approve']").await;
    assert!(desk.has("input[name='confirm']").await, "still on the confirmation page");
    let pending = app.client.poll_token(&device_app(), &auth.device_code).await.expect_err("still pending");
    assert_eq!(pending.code(), Some("authorization_pending"));

    desk.click("input[name='confirm']").await;
    assert!(desk.find("input[name='confirm']").await.is_selected().await.expect("checkbox state"));
    desk.click("button[name='decision'][value='approve']").await;
    desk.wait_text("h1", "Device approved").await;
    keep_both_widths(&desk, keep, "device-approved").await;

    // The device has its tokens, and they work.
    let tokens = app.client.poll_token(&device_app(), &auth.device_code).await.expect("tokens after Approve");
    let me = app.client.userinfo(&tokens.access_token).await.expect("userinfo");
    assert_eq!(me.preferred_username, "alice");
    chrome.stop().await;
}

async fn qr_sign_in_with_a_desktop_and_a_phone(b: Backend) {
    let keep = keep_screenshots(&b);
    let app = spawn_app(b).await;
    app.add_user("alice", false).await;
    add_qr_app(&app).await;
    let chrome = Chrome::start().await;
    let desk = chrome.browser(DESKTOP).await;
    let phone = chrome.browser(PHONE).await;

    let (phone_url, verifier) = open_qr_page(&app, &desk).await;
    keep_both_widths(&desk, keep, "qr-sign-in").await;

    // The QR image from the API, with the desktop's own pairing cookie: exactly the phone URL.
    // Each page has its own pairing cookie, named by the page's handle (so two QR tabs do not collide).
    let wait_url = desk.find("#qr-card").await.attr("data-wait-url").await.expect("attr").expect("a wait URL");
    let tab = wait_url.split_once("tab=").map(|(_, t)| t.to_string()).expect("the page's handle");
    let secret = desk.cookie(&format!("latchkey_pairing_{tab}")).await;
    let resp = reqwest::Client::new()
        .get(format!("{}/api/v1/pairings/qr?format=png&size=400&tab={tab}", app.url))
        .header("cookie", format!("latchkey_pairing_{tab}={secret}"))
        .send()
        .await
        .expect("QR image");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "image/png");
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let png = resp.bytes().await.expect("PNG");
    assert_eq!(decode_qr(&png), vec![phone_url.clone()], "the PNG QR carries exactly the phone URL");

    // And the QR as the person sees it on screen.
    let screen = desk.screenshot().await;
    assert_eq!(png_size(&screen), DESKTOP, "the screenshot is the desktop viewport");
    assert_eq!(decode_qr(&screen), vec![phone_url.clone()], "the QR on screen carries exactly the phone URL");

    // The phone scans it: signs in, sees what it approves, approves.
    phone_signs_in_and_sees(&phone, &phone_url).await;
    let desktop_ua = desk.webdriver().execute("return navigator.userAgent;", vec![]).await.expect("UA");
    let desktop_ua = desktop_ua.as_str().expect("UA string").to_string();
    let page = phone.body_text().await;
    for shown in [QR_APP_NAME, QR_APP, "127.0.0.1", desktop_ua.as_str(), "UTC"] {
        assert!(page.contains(shown), "the phone page shows {shown:?}:\n{page}");
    }
    let shot = phone.screenshot().await;
    assert_eq!(png_size(&shot), PHONE, "the phone screenshot is the phone viewport");
    phone.assert_accessible("qr-phone-approve").await;
    phone.keep_screenshot(keep, "qr-phone-approve").await;
    assert!(desk.text("#qr-status").await.contains("Waiting"), "the desktop still waits");

    phone.click("button[name='decision'][value='approve']").await;
    phone.wait_text("h1", "Signed in").await;
    assert!(phone.body_text().await.contains(&format!("signed in to {QR_APP_NAME} as alice")));
    phone.assert_accessible("qr-phone-approved").await;
    phone.keep_screenshot(keep, "qr-phone-approved").await;

    // The desktop is signed in to Latchkey, asked once to let the app in, and
    // sent back to the app with a code; no token is in any URL.
    desk.wait_text("h1", &format!("Let {QR_APP_NAME} sign you in?")).await;
    desk.click("button[value='allow']").await;
    let landed = desk.wait_url(&callback(&app)).await;
    assert!(!landed.contains('#') && !landed.contains("token"), "{landed}");
    let query = url::Url::parse(&landed).expect("url");
    let param = |name: &str| query.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.to_string());
    assert_eq!(param("state").as_deref(), Some("st-1"));
    let code = param("code").expect("a code");
    assert_eq!(desk.body_text().await.trim(), "ok", "the app's page loaded");
    let redirect_uri = callback(&app);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect_uri.as_str()),
        ("client_id", QR_APP),
        ("code_verifier", verifier.as_str()),
    ];
    let r = reqwest::Client::new().post(format!("{}/oauth/token", app.url)).form(&form).send().await.expect("token");
    assert_eq!(r.status(), 200);
    let tokens: serde_json::Value = r.json().await.expect("json");
    let access = tokens["access_token"].as_str().expect("an access token");
    let me = app.client.userinfo(access).await.expect("the server accepts the token");
    assert_eq!(me.preferred_username, "alice");

    // The code was used: opening it again on the phone does not approve anything.
    phone.goto(&phone_url).await;
    assert!(!phone.has("button[value='approve']").await, "a used code offers Approve again");
    chrome.stop().await;
}

async fn qr_switch_turned_off_stops_the_waiting_desktop(b: Backend) {
    let keep = keep_screenshots(&b);
    let app = spawn_app(b).await;
    app.add_user("root", true).await;
    add_qr_app(&app).await;
    let chrome = Chrome::start().await;
    let desk = chrome.browser(DESKTOP).await;
    let (phone_url, _) = open_qr_page(&app, &desk).await;

    // The page is waiting on the long poll (bounded wait for it to be in flight).
    let deadline = std::time::Instant::now() + PATIENCE;
    while app.store.notifier().waiting_subjects() == 0 {
        assert!(std::time::Instant::now() < deadline, "the desktop page never started waiting");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // An admin turns QR sign-in off (what the Apps page does).
    app.change_app(QR_APP, |u| u.qr_sign_in = false).await;

    // The desktop says so, clearly, and offers a way on.
    let status = desk.wait_text("#qr-status", "QR sign-in is turned off").await;
    assert!(status.contains("Sign in another way"), "{status}");
    let restart = desk.find("#qr-restart").await;
    assert_eq!(restart.prop("hidden").await.expect("hidden").as_deref(), Some("false"), "offers a new code");
    assert!(restart.is_displayed().await.expect("visible"), "offers a new code");
    desk.keep_screenshot(keep, "qr-sign-in-turned-off-desktop").await;

    // The phone URL is gone, for a signed-out phone and for anyone.
    let resp = reqwest::get(&phone_url).await.expect("phone URL");
    assert_eq!(resp.status(), 404);
    let phone = chrome.browser(PHONE).await;
    phone.goto(&phone_url).await;
    assert!(phone.body_text().await.contains("not available"), "{}", phone.body_text().await);
    assert!(!phone.has("button[value='approve']").await);
    // And the app's sign-in page no longer offers it.
    desk.goto(&sign_in_url(&app).0).await;
    desk.wait_text("h1", &format!("Sign in to continue to {QR_APP_NAME}")).await;
    assert!(!desk.has("#sign-in-with-phone").await, "the phone method is gone while the switch is off");
    chrome.stop().await;
}

async fn qr_cancelled_on_the_phone_tells_the_desktop(b: Backend) {
    let keep = keep_screenshots(&b);
    let app = spawn_app(b).await;
    app.add_user("alice", false).await;
    add_qr_app(&app).await;
    let chrome = Chrome::start().await;
    let desk = chrome.browser(DESKTOP).await;
    let phone = chrome.browser(PHONE).await;
    let (phone_url, _) = open_qr_page(&app, &desk).await;
    let page_url = desk.url().await;

    phone_signs_in_and_sees(&phone, &phone_url).await;
    phone.click("button[name='decision'][value='deny']").await;
    phone.wait_text("h1", "Cancelled").await;
    phone.assert_accessible("qr-phone-cancelled").await;
    phone.keep_screenshot(keep, "qr-phone-cancelled").await;

    let status = desk.wait_text("#qr-status", "cancelled on the phone").await;
    assert!(!status.contains("Waiting"), "{status}");
    assert_eq!(desk.url().await, page_url, "the desktop stays put: nobody was signed in");
    desk.keep_screenshot(keep, "qr-sign-in-cancelled-desktop").await;

    // "Show a new code" starts over with a fresh QR.
    desk.click("#qr-restart").await;
    desk.wait_text("#qr-status", "Waiting for your phone").await;
    let fresh = desk.find("#phone-link").await.attr("href").await.expect("href").expect("href");
    assert_ne!(fresh, phone_url, "a new code, not the cancelled one");
    chrome.stop().await;
}

/// A device login approved through the API, for a user who already has a session: its ID and access token.
async fn approved_device(app: &TestApp, session: &str, name: &str, location: &str) -> (String, String) {
    let (id, tokens) = approved_device_with_tokens(app, session, name, location).await;
    (id, tokens.access_token)
}

/// The "notify" mitigation: a new sign-in elsewhere and a new device are announced
/// on this browser's pages, each with a one-click "Not you? Revoke" that ends it.
async fn new_sign_ins_are_announced_with_a_way_to_revoke_them(b: Backend) {
    let keep = keep_screenshots(&b);
    let app = spawn_app(b).await;
    app.add_user("alice", false).await;
    let chrome = Chrome::start().await;
    let desk = chrome.browser(DESKTOP).await;
    desk.goto(&format!("{}/signin", app.url)).await;
    desk.sign_in("alice", PASSWORD).await;
    desk.wait_text("h1", "Signed in as alice").await;
    assert!(!desk.has(".news").await, "nothing new yet: this browser's own sign-in is not news");

    // Elsewhere: another sign-in, then a new device approved from it.
    let elsewhere = app.client.sign_in("alice", PASSWORD).await.expect("sign in elsewhere").session_token;
    let (_, device_token) = approved_device(&app, &elsewhere, "Alice's new laptop", "Berlin").await;

    desk.goto(&format!("{}/", app.url)).await;
    let news = desk.wait_text(".news", "New device").await;
    assert!(news.contains("Alice's new laptop (linux-x86_64) in Berlin, added just now"), "{news}");
    assert!(news.contains("New sign-in: Latchkey on latchkey-client from 127.0.0.1, just now"), "{news}");
    let forms = desk.webdriver().find_all(fantoccini::Locator::Css(".news form")).await.expect("forms");
    assert_eq!(forms.len(), 2, "{news}");
    keep_both_widths(&desk, keep, "new-sign-in-banner").await;

    // "Not you? Revoke" on the sign-in: it ends at once, and the banner forgets it.
    desk.click(".news form[action^='/sign-ins/'] button").await;
    desk.wait_text("[role='status']", "Sign-in ended").await;
    assert_eq!(app.client.me(&elsewhere).await.expect_err("ended").status(), Some(401));
    let news = desk.text(".news").await;
    assert!(!news.contains("New sign-in") && news.contains("New device"), "{news}");
    let table = desk.text(".sign-ins").await;
    assert!(table.contains("this browser") && !table.contains("latchkey-client"), "{table}");

    // And on the device: its token stops, and nothing is left to announce.
    app.client.userinfo(&device_token).await.expect("the device works until revoked");
    desk.click(".news form[action^='/devices/'] button").await;
    desk.wait_text("[role='status']", "Device revoked").await;
    assert_eq!(app.client.userinfo(&device_token).await.expect_err("revoked").status(), Some(401));
    assert!(!desk.has(".news").await, "nothing new is left");
    chrome.stop().await;
}

async fn revoking_a_device_on_the_devices_page_stops_its_token(b: Backend) {
    let keep = keep_screenshots(&b);
    let app = spawn_app(b).await;
    let session = app.signed_in("alice").await;
    let (laptop, laptop_token) = approved_device(&app, &session, "Alice's laptop", "home office").await;
    let (server, server_token) = approved_device(&app, &session, "build server", "rack 4").await;
    for t in [&laptop_token, &server_token] {
        app.client.userinfo(t).await.expect("both devices' tokens work");
    }
    let chrome = Chrome::start().await;
    let desk = chrome.browser(DESKTOP).await;

    desk.goto(&format!("{}/devices", app.url)).await;
    desk.wait_url(&format!("{}/signin?next=%2Fdevices", app.url)).await;
    desk.sign_in("alice", PASSWORD).await;
    desk.wait_text("main h1", "Devices").await;
    let page = desk.body_text().await;
    for shown in ["Alice's laptop", "build server", "home office", "rack 4", "linux-x86_64", "2 active"] {
        assert!(page.contains(shown), "the Devices page shows {shown:?}:\n{page}");
    }
    keep_both_widths(&desk, keep, "devices").await;

    // Revoke the build server: a confirmation page first.
    let link = format!("a[href='/devices/{server}/revoke']");
    assert!(desk.text(&link).await.starts_with("Revoke"), "the revoke link says what it does");
    desk.click(&link).await;
    desk.wait_text("h1", "Revoke build server?").await;
    keep_both_widths(&desk, keep, "device-revoke").await;
    // The page refuses to go on until the box is ticked.
    desk.click("form[action$='/revoke'] button[type='submit']").await;
    desk.wait_text("h1", "Revoke build server?").await;
    app.client.userinfo(&server_token).await.expect("not revoked yet");
    desk.click("input[name='confirm']").await;
    desk.click("form[action$='/revoke'] button[type='submit']").await;
    desk.wait_text("[role='status']", "Device revoked").await;
    assert!(desk.url().await.ends_with("/devices?done=revoked"));
    let card = desk.text(&format!("section[aria-labelledby='device-{server}']")).await;
    assert!(card.contains("revoked") && card.contains("Revoked "), "the card shows it revoked:\n{card}");
    assert!(!desk.has(&link).await, "a revoked device offers no second revoke");
    assert!(desk.has(&format!("a[href='/devices/{laptop}/revoke']")).await, "the laptop is untouched");

    // Its token is rejected at once; the other device's still works.
    let err = app.client.userinfo(&server_token).await.expect_err("a revoked device's token is rejected");
    assert_eq!(err.status(), Some(401), "{err:?}");
    app.client.userinfo(&laptop_token).await.expect("the laptop's token still works");

    // The audit page shows it, filtered by kind, under an intact chain.
    desk.goto(&format!("{}/audit", app.url)).await;
    desk.wait_text("main h1", "Audit log").await;
    desk.wait_text(".chain", "Signed log").await;
    keep_both_widths(&desk, keep, "audit").await;
    desk.find("#kind").await.select_by_value("device.revoked").await.expect("choose a kind");
    desk.click("form.filter button[type='submit']").await;
    desk.wait_url(&format!("{}/audit?kind=device.revoked", app.url)).await;
    let rows = desk.webdriver().find_all(fantoccini::Locator::Css("table.log tbody tr")).await.expect("rows");
    assert_eq!(rows.len(), 1, "one revocation: {}", desk.body_text().await);
    assert!(rows[0].text().await.expect("row").contains("device.revoked"));
    chrome.stop().await;
}

async fn switching_qr_off_on_the_apps_page_stops_the_waiting_desktop(b: Backend) {
    let keep = keep_screenshots(&b);
    let app = spawn_app(b).await;
    app.add_user("root", true).await;
    add_qr_app(&app).await;
    let chrome = Chrome::start().await;
    let admin = chrome.browser(DESKTOP).await;
    let desk = chrome.browser(DESKTOP).await;

    // The admin sees the app on the Apps page, QR sign-in on.
    admin.goto(&format!("{}/apps", app.url)).await;
    admin.sign_in("root", PASSWORD).await;
    admin.wait_text("main h1", "Apps").await;
    let card = admin.text(&format!("section[aria-labelledby='app-{QR_APP}']")).await;
    assert!(card.contains(QR_APP_NAME) && card.contains("QR sign-in on"), "{card}");
    keep_both_widths(&admin, keep, "apps").await;

    // Someone signing in to the app on a computer picks their phone and waits.
    let (phone_url, _) = open_qr_page(&app, &desk).await;

    // The admin switches QR sign-in off.
    admin.click(&format!("a[href='/apps/{QR_APP}/edit']")).await;
    admin.wait_text("h1", &format!("Edit {QR_APP_NAME}")).await;
    let switch = admin.find("input[name='qr_sign_in']").await;
    assert!(switch.is_selected().await.expect("state"), "the switch shows on");
    keep_both_widths(&admin, keep, "app-edit").await;
    switch.click().await.expect("untick");
    admin.click(&format!("form[action='/apps/{QR_APP}/edit'] button[type='submit']")).await;
    admin.wait_text("[role='status']", "Saved").await;
    assert!(!admin.find("input[name='qr_sign_in']").await.is_selected().await.expect("state"), "saved off");

    // The waiting desktop stops with a clear message; the phone URL is gone.
    desk.wait_text("#qr-status", "QR sign-in is turned off").await;
    assert_eq!(reqwest::get(&phone_url).await.expect("phone URL").status(), 404);
    assert!(!app.store.app(AppId(QR_APP)).await.expect("app").expect("exists").qr_sign_in);
    chrome.stop().await;
}

async fn an_admin_stops_an_account_on_the_users_page(b: Backend) {
    let keep = keep_screenshots(&b);
    let app = spawn_app(b).await;
    let root = app.add_user("root", true).await;
    let bob = app.add_user("bob", false).await;
    let bob_session = app.client.sign_in("bob", PASSWORD).await.expect("bob signs in").session_token;
    let (_, bob_token) = approved_device(&app, &bob_session, "Bob's laptop", "desk").await;
    app.client.userinfo(&bob_token).await.expect("bob's token works");
    let chrome = Chrome::start().await;
    let desk = chrome.browser(DESKTOP).await;

    // Signed out, the page sends the admin to sign in and back.
    desk.goto(&format!("{}/users", app.url)).await;
    desk.wait_url(&format!("{}/signin?next=%2Fusers", app.url)).await;
    desk.sign_in("root", PASSWORD).await;
    desk.wait_text("main h1", "Users").await;
    assert_eq!(desk.text("nav a[aria-current='page']").await, "Users", "the nav marks the page");
    let bob_row = format!("#user-{bob}");
    let row = desk.text(&bob_row).await;
    for shown in ["bob", "no", "active", "Disable", "Reset password", "Revoke everything", "Delete"] {
        assert!(row.contains(shown), "bob's row shows {shown:?}: {row}");
    }
    let own = desk.text(&format!("#user-{root}")).await;
    assert!(own.contains("root") && own.contains("yes") && own.contains("you"), "{own}");
    for action in ["disable", "delete", "password"] {
        assert!(!desk.has(&format!("[action='/users/{root}/{action}'], [href='/users/{root}/{action}']")).await);
    }
    keep_both_widths(&desk, keep, "users").await;

    // Disable: bob's token stops at once; Enable: it works again.
    desk.click(&format!("form[action='/users/{bob}/disable'] button")).await;
    desk.wait_text("[role='status']", "Account disabled").await;
    assert!(desk.text(&bob_row).await.contains("disabled"));
    assert_eq!(app.client.userinfo(&bob_token).await.expect_err("disabled").status(), Some(401));
    assert!(!app.client.introspect(&device_app(), &bob_token).await.expect("introspect").active);
    desk.click(&format!("form[action='/users/{bob}/enable'] button")).await;
    desk.wait_text("[role='status']", "Account enabled").await;
    assert!(desk.text(&bob_row).await.contains("active"));
    app.client.userinfo(&bob_token).await.expect("enabled again, the token works");

    // Reset password: the two fields must agree; then only the new password signs in.
    desk.click(&format!("a[href='/users/{bob}/password']")).await;
    desk.wait_text("h1", "Reset the password of bob").await;
    keep_both_widths(&desk, keep, "user-password").await;
    desk.type_into("#new_password", "a new password for bob").await;
    desk.type_into("#repeat_password", "a new password for Bob").await;
    desk.click("form[action$='/password'] button[type='submit']").await;
    desk.wait_text("[role='alert']", "The two passwords differ").await;
    desk.type_into("#new_password", "a new password for bob").await;
    desk.type_into("#repeat_password", "a new password for bob").await;
    desk.click("form[action$='/password'] button[type='submit']").await;
    desk.wait_text("[role='status']", "Password set").await;
    assert_eq!(app.client.sign_in("bob", PASSWORD).await.expect_err("old password").status(), Some(401));
    app.client.sign_in("bob", "a new password for bob").await.expect("the new password signs in");
    assert_eq!(app.client.me(&bob_session).await.expect_err("old session").status(), Some(401));
    app.client.userinfo(&bob_token).await.expect("devices stay signed in");

    // Revoke everything: a confirmation page, which insists on the tick (here and on the server).
    desk.click(&format!("a[href='/users/{bob}/revoke-all']")).await;
    desk.wait_text("h1", "Revoke everything bob holds?").await;
    keep_both_widths(&desk, keep, "user-revoke-all").await;
    desk.click("form[action$='/revoke-all'] button[type='submit']").await;
    desk.wait_text("h1", "Revoke everything bob holds?").await;
    desk.webdriver()
        .execute("document.querySelector(\"input[name='confirm']\").required = false;", vec![])
        .await
        .expect("let the form go without the tick");
    desk.click("form[action$='/revoke-all'] button[type='submit']").await;
    desk.wait_text("[role='alert']", "Tick the box to confirm").await;
    app.client.userinfo(&bob_token).await.expect("nothing revoked without the tick");
    desk.click("input[name='confirm']").await;
    desk.click("form[action$='/revoke-all'] button[type='submit']").await;
    desk.wait_text("[role='status']", "Everything the account held was ended").await;
    assert_eq!(app.client.userinfo(&bob_token).await.expect_err("revoked").status(), Some(401));
    assert!(!app.client.introspect(&device_app(), &bob_token).await.expect("introspect").active);

    // Delete: confirmed, bob is gone from the list and cannot sign in.
    desk.click(&format!("a[href='/users/{bob}/delete']")).await;
    desk.wait_text("h1", "Delete bob?").await;
    keep_both_widths(&desk, keep, "user-delete").await;
    desk.click("input[name='confirm']").await;
    desk.click("form[action$='/delete'] button[type='submit']").await;
    desk.wait_text("[role='status']", "Account deleted").await;
    assert!(!desk.has(&bob_row).await, "bob is gone from the list");
    assert!(!desk.text("table").await.contains("bob"));
    assert!(desk.has(&format!("#user-{root}")).await);
    assert_eq!(app.client.sign_in("bob", "a new password for bob").await.expect_err("deleted").status(), Some(401));

    // The audit log has each action, by the admin, on bob.
    let entries = app.store.audit_entries(0, 10_000).await.expect("audit");
    let by_root: Vec<&str> = entries
        .iter()
        .filter(|e| e.actor.as_deref() == Some(root.as_str()) && e.subject.as_deref() == Some(bob.as_str()))
        .map(|e| e.kind.as_str())
        .collect();
    assert_eq!(
        by_root,
        ["user.disabled", "user.enabled", "user.password_changed", "user.revoked_all", "user.deleted"],
        "every action is recorded with the admin as actor"
    );
    desk.goto(&format!("{}/audit?kind=user.deleted", app.url)).await;
    desk.wait_text("main h1", "Audit log").await;
    let rows = desk.webdriver().find_all(fantoccini::Locator::Css("table.log tbody tr")).await.expect("rows");
    assert_eq!(rows.len(), 1, "one deletion: {}", desk.body_text().await);
    let what = rows[0].find(fantoccini::Locator::Css("td[data-label='What happened']")).await.expect("sentence cell");
    assert_eq!(
        what.text().await.expect("text"),
        "You deleted the account bob",
        "the admin sees their own action as theirs, and the account by the name it had"
    );
    chrome.stop().await;
}

/// The desktop page counts its code down and, when the code expires, shows a
/// fresh one by itself (no reload), which then works like the first.
async fn qr_code_refreshes_itself_after_it_expires(b: Backend) {
    // A short long-poll, so the page hears about the expiry within seconds.
    let app = spawn_app_with(b, |c| c.wait_timeout = std::time::Duration::from_secs(2)).await;
    app.add_user("alice", false).await;
    add_qr_app(&app).await;
    let chrome = Chrome::start().await;
    let desk = chrome.browser(DESKTOP).await;
    let phone = chrome.browser(PHONE).await;
    let (first, _) = open_qr_page(&app, &desk).await;
    let page_url = desk.url().await;
    desk.wait_text("#qr-countdown", "This code expires in 1:").await;

    // The code runs out (its 90 seconds, made to pass at once).
    app.raw_sql("UPDATE pairings SET expires_at = 0").await;
    let mut fresh = first.clone();
    for _ in 0..150 {
        fresh = desk.find("#phone-link").await.attr("href").await.expect("href").unwrap_or_default();
        if fresh != first {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_ne!(fresh, first, "a new code appeared by itself");
    assert_eq!(desk.url().await, page_url, "without leaving or reloading the page");
    desk.wait_text("#qr-status", "Waiting for your phone").await;
    desk.wait_text("#qr-countdown", "This code expires in 1:").await;
    assert_eq!(decode_qr(&desk.screenshot().await), vec![fresh.clone()], "the QR on screen is the new code");
    desk.assert_accessible("qr-sign-in-refreshed").await;

    // The old code is dead; the new one signs the desktop in.
    phone_signs_in_and_sees(&phone, &fresh).await;
    phone.click("button[name='decision'][value='approve']").await;
    phone.wait_text("h1", "Signed in").await;
    desk.wait_text("h1", &format!("Let {QR_APP_NAME} sign you in?")).await;
    chrome.stop().await;
}

backend_tests!(
    qr_code_refreshes_itself_after_it_expires,
    a_person_approves_a_device_login_by_typing_its_code,
    qr_sign_in_with_a_desktop_and_a_phone,
    new_sign_ins_are_announced_with_a_way_to_revoke_them,
    qr_switch_turned_off_stops_the_waiting_desktop,
    qr_cancelled_on_the_phone_tells_the_desktop,
    revoking_a_device_on_the_devices_page_stops_its_token,
    switching_qr_off_on_the_apps_page_stops_the_waiting_desktop,
    an_admin_stops_an_account_on_the_users_page,
);
