//! Passkeys in Chromium, with its virtual authenticator (the W3C WebDriver
//! WebAuthn extension: CTAP2, internal transport, resident keys, user
//! verification): a person adds a passkey on the Security page, signs out and
//! back in with it, goes passwordless; an OAuth authorization request is
//! completed with a passkey and its ID token says `hwk`; and the refusals: a
//! challenge answered twice, a removed passkey, a disabled account.

use crate::backend_tests;
use crate::browser_support::*;
use crate::support::*;
use fantoccini::wd::WebDriverCompatibleCommand;
use latchkey_store::{Actor, AppRecord, ClientKind, GrantType, UserId};

backend_tests!(a_person_signs_in_with_a_passkey_and_goes_passwordless, an_app_sign_in_with_a_passkey_says_hwk);

/// `POST /session/{id}/webauthn/authenticator` (W3C WebAuthn §11.3).
#[derive(Debug)]
struct AddVirtualAuthenticator;

impl WebDriverCompatibleCommand for AddVirtualAuthenticator {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/webauthn/authenticator", session.unwrap_or_default()))
    }
    fn method_and_body(&self, _: &url::Url) -> (hyper::Method, Option<String>) {
        let body = serde_json::json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserVerified": true,
        });
        (hyper::Method::POST, Some(body.to_string()))
    }
}

/// A server whose public URL names a host (browsers refuse an IP address as a passkey's site).
pub(crate) async fn spawn_on_localhost(b: Backend) -> (TestApp, String) {
    let app = spawn_app_with(b, |c| c.public_url = c.public_url.replace("127.0.0.1", "localhost")).await;
    let url = app.url.replace("127.0.0.1", "localhost");
    (app, url)
}

/// A browser with a virtual platform authenticator that verifies its user.
pub(crate) async fn browser_with_authenticator(chrome: &Chrome) -> Browser {
    let b = chrome.browser(DESKTOP).await;
    b.webdriver().issue_cmd(AddVirtualAuthenticator).await.expect("add a virtual authenticator");
    b
}

/// Adds a passkey named `name` on the Security page.
pub(crate) async fn add_passkey(b: &Browser, url: &str, name: &str) {
    b.goto(&format!("{url}/security")).await;
    b.type_into("#passkey-name", name).await;
    b.click("#add-passkey").await;
    b.wait_text(".notice", "Passkey added").await;
    assert!(b.text(".passkeys").await.contains(name));
}

/// Presses "Sign in with a passkey" on the sign-in page it shows.
pub(crate) async fn passkey_sign_in(b: &Browser) {
    b.wait_text("h1", "Sign in").await;
    b.click("#passkey-sign-in").await;
}

/// Signs out of Latchkey from the page shown (one with the sign-out form).
pub(crate) async fn sign_out(b: &Browser) {
    b.click("form[action='/signout'] button").await;
    b.wait_text("h1", "Sign in").await;
}

async fn a_person_signs_in_with_a_passkey_and_goes_passwordless(backend: Backend) {
    let (app, url) = spawn_on_localhost(backend).await;
    let alice = app.add_user("alice", false).await;
    let chrome = Chrome::start().await;
    let b = browser_with_authenticator(&chrome).await;
    b.goto(&format!("{url}/security")).await;
    b.sign_in("alice", PASSWORD).await;
    b.wait_text("h1", "Security").await;
    add_passkey(&b, &url, "Laptop").await;
    sign_out(&b).await;

    b.goto(&format!("{url}/signin?next=/security")).await;
    passkey_sign_in(&b).await;
    b.wait_text("h1", "Security").await;
    assert!(b.text(".passkeys").await.contains("Laptop"));
    // PostgreSQL's dump quotes the JSON detail inside its own JSON: compare unescaped.
    let kinds = app.database_text().await.replace("\\\"", "\"");
    assert!(kinds.contains("\"method\":\"passkey\""), "the sign-in is recorded as a passkey's");

    // Passwordless: the password goes after a passkey confirms it is them; then it opens nothing.
    b.click("#remove-password-passkey").await;
    b.wait_text(".notice", "Password removed").await;
    assert!(b.has("#passwordless").await);
    let refused = app.client.sign_in("alice", PASSWORD).await.expect_err("no password any more");
    assert!(refused.to_string().contains("wrong username or password"), "{refused}");

    // The last way in stays.
    b.click(".passkeys button.danger").await;
    b.wait_text(".error", "last way to sign in").await;

    // A disabled account's passkey opens nothing.
    app.store.set_user_disabled(UserId(&alice), true, Actor("admin"), now()).await.expect("disable");
    sign_out_or_home(&b, &url).await;
    passkey_sign_in(&b).await;
    b.wait_text(".error", "disabled").await;
    chrome.stop().await;
}

/// Signs out if the browser is still signed in, and opens the sign-in page.
async fn sign_out_or_home(b: &Browser, url: &str) {
    b.goto(&format!("{url}/")).await;
    if b.has("form[action='/signout']").await {
        sign_out(b).await;
    }
    b.goto(&format!("{url}/signin")).await;
}

async fn an_app_sign_in_with_a_passkey_says_hwk(backend: Backend) {
    let (app, url) = spawn_on_localhost(backend).await;
    app.add_user("alice", false).await;
    let redirect = format!("{url}/healthz");
    let record = AppRecord {
        client_id: "web-app".into(),
        display_name: "Web app".into(),
        kind: ClientKind::Public,
        secret_hash: None,
        grant_types: vec![GrantType::AuthorizationCode],
        redirect_uris: vec![redirect.clone()],
        app_url: None,
        qr_sign_in: false,
        require_dpop: false,
        created_at: now(),
        post_logout_redirect_uris: Vec::new(),
        id_token_alg: Default::default(),
    };
    app.store.create_app(record, None, now()).await.expect("create app");
    let chrome = Chrome::start().await;
    let b = browser_with_authenticator(&chrome).await;
    b.goto(&format!("{url}/security")).await;
    b.sign_in("alice", PASSWORD).await;
    add_passkey(&b, &url, "Laptop").await;
    sign_out(&b).await;

    let (challenge, verifier) = openidconnect::PkceCodeChallenge::new_random_sha256();
    let q = serde_urlencoded::to_string([
        ("client_id", "web-app"),
        ("redirect_uri", redirect.as_str()),
        ("response_type", "code"),
        ("scope", "openid"),
        ("state", "s1"),
        ("nonce", "n1"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ])
    .expect("query");
    b.goto(&format!("{url}/oauth/authorize?{q}")).await;
    b.wait_text("h1", "Sign in to continue to Web app").await;
    passkey_sign_in(&b).await;
    b.wait_text("h1", "Let Web app sign you in?").await;
    b.click("button[value='allow']").await;
    let back = b.wait_url(&redirect).await;
    let code = url::Url::parse(&back)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.to_string())
        .expect("a code");
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect.as_str()),
        ("client_id", "web-app"),
        ("code_verifier", verifier.secret().as_str()),
    ];
    let r = reqwest::Client::new().post(format!("{}/oauth/token", app.url)).form(&form).send().await.expect("token");
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.expect("json");
    let id_token = body["id_token"].as_str().expect("an ID token");
    let payload = id_token.split('.').nth(1).expect("a JWT");
    use base64::Engine;
    let claims: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64url"))
            .expect("claims");
    assert_eq!(claims["amr"], serde_json::json!(["hwk", "user"]), "{claims}");
    chrome.stop().await;
}
