//! A real relying party in a real browser: the Node app in `rp/` (openid-client,
//! a library we did not write) signs people in through Latchkey with Debian's
//! chromium, as a web app would. What it shows on its callback page is what
//! the library accepted after its own checks (state, PKCE, nonce, the ID
//! token's EdDSA signature against the JWKS, iss, aud, RFC 9207's iss), so the
//! tests assert on that.
//!
//! The browser steps are small helpers ([`starts_sign_in`], [`signs_in_with_password`],
//! [`answers_consent`], [`rp_outcome`]): a test of another sign-in method swaps
//! the password step and keeps the rest. A passkey (Chromium's virtual
//! authenticator) and "Sign in with your phone" (a second browser as the phone,
//! the QR read off the desktop's screenshot with a real decoder) do so here.

use crate::backend_tests;
use crate::browser_passkeys::{add_passkey, browser_with_authenticator, passkey_sign_in, sign_out, spawn_on_localhost};
use crate::browser_support::*;
use crate::support::*;
use latchkey_proto::paths;
use latchkey_store::{AppId, AppRecord, ClientKind, GrantType, UserId};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

backend_tests!(
    a_relying_party_signs_a_person_in_with_a_password,
    denying_on_the_consent_page_tells_the_relying_party,
    a_second_sign_in_goes_straight_back_to_the_relying_party,
    a_relying_party_signs_a_person_in_with_a_passkey,
    a_relying_party_signs_a_person_in_with_their_phone,
    a_phone_that_cancels_signs_nobody_in_to_the_relying_party,
);

const APP_NAME: &str = "Node RP";

const NPM_HINT: &str = "the relying-party tests need Node.js 20 or later and the packages of \
     crates/latchkey/tests/integration/rp: install nodejs and npm, then run `npm ci` in that folder \
     (`cargo xtask test` does this)";

/// The relying party's folder.
fn rp_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/integration/rp")
}

/// `node`: the path in `LATCHKEY_NODE` (what `cargo xtask test` found), else on `PATH`.
fn node() -> PathBuf {
    if let Some(p) = std::env::var_os("LATCHKEY_NODE").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "LATCHKEY_NODE names {}, which does not exist; {NPM_HINT}", p.display());
        return p;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("node"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("`node` not found on PATH; {NPM_HINT}"))
}

/// The Node relying party, running; killed when dropped (a failing test too).
struct RelyingParty {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    url: String,
    /// The issuer it discovered Latchkey at (Latchkey's public URL).
    issuer: String,
    /// What it printed after its first line, and its stderr: for failure messages.
    output: Arc<Mutex<String>>,
}

impl RelyingParty {
    /// Starts the relying party for app `client_id` of `app` (confidential when
    /// `secret` is given). It listens on a port of its own choosing and prints it:
    /// no port is picked here that someone else could take in between.
    async fn start(app: &TestApp, client_id: &str, secret: Option<&str>) -> RelyingParty {
        Self::start_for(&app.url, client_id, secret).await
    }

    /// [`RelyingParty::start`] for a server whose public URL is `issuer` (a passkey
    /// test's server is `http://localhost:<port>`, and discovery checks that the
    /// issuer it names is the one asked for).
    async fn start_for(issuer: &str, client_id: &str, secret: Option<&str>) -> RelyingParty {
        let dir = rp_dir();
        assert!(dir.join("node_modules/openid-client").is_dir(), "{} has no node_modules; {NPM_HINT}", dir.display());
        let mut cmd = Command::new(node());
        cmd.arg("server.mjs")
            .current_dir(&dir)
            .env("ISSUER", issuer)
            .env("CLIENT_ID", client_id)
            .env("PORT", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        match secret {
            Some(s) => cmd.env("CLIENT_SECRET", s),
            None => cmd.env_remove("CLIENT_SECRET"),
        };
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run node: {e}; {NPM_HINT}"));
        let output = Arc::new(Mutex::new(String::new()));
        collect(child.stderr.take().expect("stderr"), output.clone());
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first = tokio::time::timeout(PATIENCE, stdout.next_line()).await;
        let port = match &first {
            Ok(Ok(Some(line))) => line.strip_prefix("listening ").and_then(|p| p.trim().parse::<u16>().ok()),
            _ => None,
        };
        let Some(port) = port else {
            // Give stderr a moment to arrive: it says why (discovery failed, a package is missing…).
            let _ = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
            panic!("the relying party did not start ({first:?}); it said:\n{}", output.lock().expect("log"));
        };
        collect(stdout.into_inner(), output.clone());
        RelyingParty { child, url: format!("http://127.0.0.1:{port}"), issuer: issuer.to_string(), output }
    }

    /// Its redirect URI, which the app must register exactly.
    fn redirect_uri(&self) -> String {
        format!("{}/callback", self.url)
    }

    /// Where a person starts signing in to it.
    fn login_url(&self) -> String {
        format!("{}/login", self.url)
    }

    /// Everything it logged (stderr), for failure messages.
    fn log(&self) -> String {
        self.output.lock().map(|s| s.clone()).unwrap_or_default()
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Appends what `from` prints to `into`, line by line, until it closes.
fn collect(from: impl AsyncRead + Unpin + Send + 'static, into: Arc<Mutex<String>>) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(from).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(mut s) = into.lock() {
                s.push_str(&line);
                s.push('\n');
            }
        }
    });
}

/// Registers the relying party as app `client_id` with its redirect URI, for the
/// authorization code grant, with "Sign in with your phone" on.
async fn register(app: &TestApp, rp: &RelyingParty, client_id: &str, secret: Option<&str>) {
    let record = AppRecord {
        client_id: client_id.into(),
        display_name: APP_NAME.into(),
        kind: if secret.is_some() { ClientKind::Confidential } else { ClientKind::Public },
        secret_hash: secret.map(latchkey_domain::secret::SecretHash::of),
        grant_types: vec![GrantType::AuthorizationCode],
        redirect_uris: vec![rp.redirect_uri()],
        app_url: Some(rp.url.clone()),
        qr_sign_in: true,
        require_dpop: false,
        created_at: now(),
        post_logout_redirect_uris: Vec::new(),
        id_token_alg: Default::default(),
    };
    app.store.create_app(record, None, now()).await.expect("register the relying party");
}

/// A fresh client secret (the relying party needs it before the app is registered).
fn new_secret() -> String {
    format!("rp-{}", uuid::Uuid::new_v4().simple())
}

/// The person opens the relying party's sign-in link and lands on Latchkey's sign-in page for it.
async fn starts_sign_in(b: &Browser, rp: &RelyingParty) {
    b.goto(&rp.login_url()).await;
    b.wait_text("h1", &format!("Sign in to continue to {APP_NAME}")).await;
    let at = b.url().await;
    assert!(at.starts_with(&format!("{}{}?", rp.issuer, paths::AUTHORIZE)), "on Latchkey's page: {at}");
}

/// The person types their username and password on Latchkey's sign-in page.
async fn signs_in_with_password(b: &Browser, username: &str, password: &str) {
    b.type_into("#username", username).await;
    b.type_into("#password", password).await;
    b.click(&format!("form[action='{}'] button[type='submit']", paths::AUTHORIZE_SIGN_IN)).await;
}

/// The person, who added a passkey earlier (Chromium's virtual authenticator
/// holds it), presses "Sign in with a passkey" on Latchkey's sign-in page.
async fn signs_in_with_passkey(b: &Browser) {
    passkey_sign_in(b).await;
}

/// The person picks "Sign in with your phone" on Latchkey's sign-in page; the
/// desktop shows a QR. Returns what the QR on screen says, read from a screenshot
/// with a real decoder (as a phone's camera would), which must be the link the
/// page also prints for those who cannot scan.
async fn signs_in_with_phone(desk: &Browser, rp: &RelyingParty) -> String {
    desk.click("#sign-in-with-phone").await;
    desk.wait_text("h1", &format!("Sign in to {APP_NAME} with your phone")).await;
    desk.wait_text("#qr-status", "Waiting for your phone").await;
    assert!(desk.has("#qr-image svg").await, "the QR is drawn on the page");
    let at = desk.url().await;
    assert!(at.starts_with(&format!("{}{}?", rp.issuer, paths::AUTHORIZE_PHONE)), "on Latchkey's QR page: {at}");
    let scanned = decode_qr(&desk.screenshot().await);
    let link = desk.find("#phone-link").await.attr("href").await.expect("href").expect("#phone-link has an href");
    assert_eq!(scanned, vec![link], "one QR on screen, carrying the phone link the page shows");
    scanned.into_iter().next().unwrap_or_default()
}

/// The phone opens the scanned link, signs in there as `username` (it is sent to
/// the sign-in page first), and answers the approval page: `"approve"` or `"deny"`.
async fn phone_answers(phone: &Browser, phone_url: &str, username: &str, decision: &str) {
    phone.goto(phone_url).await;
    let at = phone.wait_url("http").await;
    assert!(at.contains("/signin?next="), "a signed-out phone is sent to sign in first: {at}");
    phone.sign_in(username, PASSWORD).await;
    phone.wait_text("h1", &format!("Sign in to {APP_NAME} on the computer?")).await;
    phone.click(&format!("button[name='decision'][value='{decision}']")).await;
    phone.wait_text("h1", if decision == "approve" { "Signed in" } else { "Cancelled" }).await;
}

/// The person answers Latchkey's consent page: `"allow"` or `"deny"`.
async fn answers_consent(b: &Browser, decision: &str) {
    b.wait_text("h1", &format!("Let {APP_NAME} sign you in?")).await;
    b.click(&format!("button[name='decision'][value='{decision}']")).await;
}

/// What the relying party's callback page shows: its `#claims` and `#userinfo`
/// (parsed) once it accepted the sign-in, or the text of its `#error`.
async fn rp_outcome(b: &Browser, rp: &RelyingParty) -> Result<(Value, Option<Value>), String> {
    b.wait_url(&format!("{}?", rp.redirect_uri())).await;
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        if b.has("#claims").await {
            let claims = serde_json::from_str(&b.text("#claims").await).expect("#claims is JSON");
            let userinfo = match b.has("#userinfo").await {
                true => Some(serde_json::from_str(&b.text("#userinfo").await).expect("#userinfo is JSON")),
                false => None,
            };
            return Ok((claims, userinfo));
        }
        if b.has("#error").await {
            return Err(b.text("#error").await);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the relying party's callback shows neither #claims nor #error; it shows:\n{}\nit logged:\n{}",
            b.body_text().await,
            rp.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// [`rp_outcome`], which must be a sign-in the relying party accepted.
async fn rp_signed_in(b: &Browser, rp: &RelyingParty) -> (Value, Option<Value>) {
    rp_outcome(b, rp)
        .await
        .unwrap_or_else(|e| panic!("the relying party refused the sign-in: {e}\nit logged:\n{}", rp.log()))
}

/// The `amr` claim's values.
fn amr(id_token: &Value) -> Vec<&str> {
    id_token["amr"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default()
}

async fn a_relying_party_signs_a_person_in_with_a_password(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.add_user("alice", false).await;
    let secret = new_secret();
    let rp = RelyingParty::start(&app, "node-rp", Some(&secret)).await;
    register(&app, &rp, "node-rp", Some(&secret)).await;
    let chrome = Chrome::start().await;
    let b = chrome.browser(DESKTOP).await;

    starts_sign_in(&b, &rp).await;
    signs_in_with_password(&b, "alice", PASSWORD).await;
    answers_consent(&b, "allow").await;
    let (shown, userinfo) = rp_signed_in(&b, &rp).await;

    // What the library accepted is who signed in, how and when, for this app.
    let id = &shown["id_token"];
    assert_eq!(id["sub"], alice, "{shown}");
    assert_eq!(id["preferred_username"], "alice", "{shown}");
    assert!(amr(id).contains(&"pwd"), "amr says a password was used: {shown}");
    let auth_time = id["auth_time"].as_i64().expect("auth_time");
    assert!((now().as_secs() - auth_time).abs() < 60, "auth_time is when alice signed in: {shown}");
    assert_eq!(id["iss"], app.url.as_str(), "{shown}");
    let aud = &id["aud"];
    assert!(aud == "node-rp" || aud.as_array().is_some_and(|a| a.contains(&"node-rp".into())), "{shown}");
    assert_eq!(shown["nonce_valid"], true, "{shown}");
    assert_eq!(shown["id_token_alg"], "EdDSA", "{shown}");
    // The server has a userinfo endpoint, and the access token works there.
    let userinfo = userinfo.expect("the relying party fetched userinfo");
    assert_eq!(userinfo["sub"], alice, "{userinfo}");
    assert_eq!(userinfo["preferred_username"], "alice", "{userinfo}");

    // The server agrees: the consent is kept and the code was redeemed (by the secret's holder).
    let consent = app.store.consent(UserId(&alice), AppId("node-rp")).await.expect("read consent");
    assert!(consent.is_some(), "alice's consent to the relying party is remembered");
    let db = app.database_text().await;
    assert!(db.contains("consent.granted") && db.contains("oauth.code_redeemed"), "the sign-in is in the audit log");

    chrome.stop().await;
    rp.stop().await;
}

async fn denying_on_the_consent_page_tells_the_relying_party(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.add_user("alice", false).await;
    let secret = new_secret();
    let rp = RelyingParty::start(&app, "node-rp", Some(&secret)).await;
    register(&app, &rp, "node-rp", Some(&secret)).await;
    let chrome = Chrome::start().await;
    let b = chrome.browser(DESKTOP).await;

    starts_sign_in(&b, &rp).await;
    signs_in_with_password(&b, "alice", PASSWORD).await;
    answers_consent(&b, "deny").await;
    let error = match rp_outcome(&b, &rp).await {
        Err(e) => e,
        Ok(shown) => panic!("the relying party signed alice in though she denied: {shown:?}"),
    };
    assert!(error.contains("access_denied"), "the relying party says why: {error}");
    let at = b.url().await;
    assert!(!at.contains("code="), "no code reaches the app: {at}");
    let consent = app.store.consent(UserId(&alice), AppId("node-rp")).await.expect("read consent");
    assert_eq!(consent, None, "a denial is not remembered");

    chrome.stop().await;
    rp.stop().await;
}

async fn a_second_sign_in_goes_straight_back_to_the_relying_party(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.add_user("alice", false).await;
    // A public client (no secret): the relying party's other way to authenticate, covered here.
    let rp = RelyingParty::start(&app, "node-spa", None).await;
    register(&app, &rp, "node-spa", None).await;
    let chrome = Chrome::start().await;
    let b = chrome.browser(DESKTOP).await;

    starts_sign_in(&b, &rp).await;
    signs_in_with_password(&b, "alice", PASSWORD).await;
    answers_consent(&b, "allow").await;
    let (first, _) = rp_signed_in(&b, &rp).await;
    assert_eq!(first["id_token"]["sub"], alice, "{first}");

    // Signed in to Latchkey and consented: no page of ours is shown, so this
    // would wait on the sign-in page and fail if it were.
    b.goto(&rp.login_url()).await;
    let (second, _) = rp_signed_in(&b, &rp).await;
    let (one, two) = (&first["id_token"], &second["id_token"]);
    assert_eq!(two["sub"], alice, "{second}");
    assert_eq!(second["nonce_valid"], true, "{second}");
    assert_ne!(two["nonce"], one["nonce"], "a new request, with a new nonce");
    assert_eq!(two["auth_time"], one["auth_time"], "no new authentication: the same sign-in's time");
    assert!(amr(two).contains(&"pwd"), "{second}");

    chrome.stop().await;
    rp.stop().await;
}

async fn a_relying_party_signs_a_person_in_with_a_passkey(backend: Backend) {
    // A passkey's site must be a host name, not an IP address: the server's public
    // URL, and so the issuer the relying party discovers, is http://localhost:<port>.
    let (app, issuer) = spawn_on_localhost(backend).await;
    let alice = app.add_user("alice", false).await;
    let secret = new_secret();
    let rp = RelyingParty::start_for(&issuer, "node-rp", Some(&secret)).await;
    register(&app, &rp, "node-rp", Some(&secret)).await;
    let chrome = Chrome::start().await;
    let b = browser_with_authenticator(&chrome).await;

    // Alice added a passkey on another day (after a password sign-in) and signed out,
    // so this sign-in is the passkey's alone.
    b.goto(&format!("{issuer}/security")).await;
    b.sign_in("alice", PASSWORD).await;
    add_passkey(&b, &issuer, "Laptop").await;
    sign_out(&b).await;

    starts_sign_in(&b, &rp).await;
    signs_in_with_passkey(&b).await;
    answers_consent(&b, "allow").await;
    let (shown, userinfo) = rp_signed_in(&b, &rp).await;

    let id = &shown["id_token"];
    assert_eq!(id["sub"], alice, "{shown}");
    assert_eq!(id["iss"], issuer.as_str(), "{shown}");
    // A hardware-bound key that verified its user (RFC 8176), and no password.
    assert_eq!(amr(id), vec!["hwk", "user"], "{shown}");
    assert_eq!(shown["nonce_valid"], true, "{shown}");
    let auth_time = id["auth_time"].as_i64().expect("auth_time");
    assert!((now().as_secs() - auth_time).abs() < 60, "auth_time is the passkey sign-in's: {shown}");
    assert_eq!(userinfo.expect("the relying party fetched userinfo")["sub"], alice);

    chrome.stop().await;
    rp.stop().await;
}

async fn a_relying_party_signs_a_person_in_with_their_phone(backend: Backend) {
    let app = spawn_app(backend).await;
    let alice = app.add_user("alice", false).await;
    let secret = new_secret();
    let rp = RelyingParty::start(&app, "node-rp", Some(&secret)).await;
    register(&app, &rp, "node-rp", Some(&secret)).await;
    let chrome = Chrome::start().await;
    // Two browsers, two cookie jars: the computer alice signs in on, and her phone.
    let desk = chrome.browser(DESKTOP).await;
    let phone = chrome.browser(PHONE).await;

    starts_sign_in(&desk, &rp).await;
    let phone_url = signs_in_with_phone(&desk, &rp).await;
    phone_answers(&phone, &phone_url, "alice", "approve").await;
    // The desktop's page goes on by itself once the phone approved: to consent, then the app.
    answers_consent(&desk, "allow").await;
    let (shown, userinfo) = rp_signed_in(&desk, &rp).await;

    let id = &shown["id_token"];
    assert_eq!(id["sub"], alice, "{shown}");
    // Signed in over a second channel (RFC 8176 "mca"); no password was typed on the desktop.
    assert_eq!(amr(id), vec!["mca"], "{shown}");
    assert_eq!(shown["nonce_valid"], true, "{shown}");
    assert_eq!(userinfo.expect("the relying party fetched userinfo")["sub"], alice);

    chrome.stop().await;
    rp.stop().await;
}

async fn a_phone_that_cancels_signs_nobody_in_to_the_relying_party(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("alice", false).await;
    let secret = new_secret();
    let rp = RelyingParty::start(&app, "node-rp", Some(&secret)).await;
    register(&app, &rp, "node-rp", Some(&secret)).await;
    let chrome = Chrome::start().await;
    let desk = chrome.browser(DESKTOP).await;
    let phone = chrome.browser(PHONE).await;

    starts_sign_in(&desk, &rp).await;
    let phone_url = signs_in_with_phone(&desk, &rp).await;
    phone_answers(&phone, &phone_url, "alice", "deny").await;

    desk.wait_text("#qr-status", "cancelled").await;
    // The page has stopped waiting; had it been going to the app, it would have by now.
    let at = desk.url().await;
    assert!(at.starts_with(&format!("{}{}?", app.url, paths::AUTHORIZE_PHONE)), "the desktop stays put: {at}");
    assert!(!at.starts_with(&rp.url), "nothing reaches the relying party: {at}");
    // And the desktop was not signed in to Latchkey: starting again asks who it is.
    starts_sign_in(&desk, &rp).await;

    chrome.stop().await;
    rp.stop().await;
}
