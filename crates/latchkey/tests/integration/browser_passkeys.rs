//! Passkeys in Chromium, with its virtual authenticator (the W3C WebDriver
//! WebAuthn extension: CTAP2, internal transport, resident keys, user
//! verification): a person adds a passkey on the Security page, signs out and
//! back in with it, goes passwordless; an OAuth authorization request is
//! completed with a passkey and its ID token says `hwk`; and the refusals: a
//! passkey's answer that claims another account (its user handle, or the other
//! account's credential ID), a challenge answered twice, a removed passkey, a
//! disabled account.

use crate::backend_tests;
use crate::browser_support::*;
use crate::support::*;
use base64::Engine;
use fantoccini::wd::WebDriverCompatibleCommand;
use latchkey_store::{Actor, AppRecord, ClientKind, GrantType, UserId};
use serde_json::Value;

backend_tests!(
    a_person_signs_in_with_a_passkey_and_goes_passwordless,
    an_app_sign_in_with_a_passkey_says_hwk,
    a_passkey_never_speaks_for_another_account_nor_twice,
);

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

/// Opens the sign-in page and runs its passkey ceremony inside the page, as its
/// script does (options fetched with the form's CSRF token, the authenticator
/// answers); returns the answer without submitting it.
async fn passkey_answer(b: &Browser, url: &str) -> Value {
    b.goto(&format!("{url}/signin")).await;
    const SCRIPT: &str = r#"
        const done = arguments[arguments.length - 1];
        const bytes = (s) => {
            let b64 = s.replace(/-/g, "+").replace(/_/g, "/");
            while (b64.length % 4) b64 += "=";
            return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)).buffer;
        };
        const text = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)))
            .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
        (async () => {
            const form = document.querySelector("form.passkey-sign-in");
            const url = form.querySelector("[data-passkey-assert]").dataset.passkeyAssert;
            const r = await fetch(url, { method: "POST", headers: { "X-CSRF-Token": form.elements.csrf.value } });
            const pk = (await r.json()).publicKey;
            pk.challenge = bytes(pk.challenge);
            const c = await navigator.credentials.get({ publicKey: pk });
            return {
                id: c.id, rawId: text(c.rawId), type: c.type, extensions: {},
                response: {
                    authenticatorData: text(c.response.authenticatorData),
                    clientDataJSON: text(c.response.clientDataJSON),
                    signature: text(c.response.signature),
                    userHandle: c.response.userHandle ? text(c.response.userHandle) : null,
                },
            };
        })().then(done, (e) => done({ failed: String(e) }));
    "#;
    let answer = b.webdriver().execute_async(SCRIPT, vec![]).await.expect("run the ceremony");
    assert!(answer.get("failed").is_none(), "the authenticator did not answer: {answer}");
    answer
}

/// Submits `answer` on the sign-in page's passkey form, as the page would;
/// the status (0 for the redirect of a sign-in that worked) and the page.
async fn submit_answer(b: &Browser, answer: &Value) -> (u64, String) {
    const SCRIPT: &str = r#"
        const [answer, done] = [arguments[0], arguments[arguments.length - 1]];
        const form = document.querySelector("form.passkey-sign-in");
        const body = new URLSearchParams({ csrf: form.elements.csrf.value, next: "/", credential: JSON.stringify(answer) });
        fetch(form.action, { method: "POST", body, redirect: "manual" })
            .then(async (r) => done([r.status, await r.text()]), (e) => done([-1, String(e)]));
    "#;
    let got = b.webdriver().execute_async(SCRIPT, vec![answer.clone()]).await.expect("submit");
    (got[0].as_u64().unwrap_or(999), got[1].as_str().unwrap_or_default().to_string())
}

/// A user ID as WebAuthn carries it (the user handle): the UUID's 16 bytes, base64url.
fn user_handle(user_id: &str) -> String {
    let id = uuid::Uuid::parse_str(user_id).expect("user IDs are UUIDs");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes())
}

/// The kinds and details of the failed sign-ins recorded so far.
async fn refusals(app: &TestApp) -> Vec<String> {
    let entries = app.store.audit_entries(0, 10_000).await.expect("audit");
    entries.iter().filter(|e| e.kind.as_str() == "signin.failed").map(|e| e.detail.clone()).collect()
}

async fn a_passkey_never_speaks_for_another_account_nor_twice(backend: Backend) {
    let (app, url) = spawn_on_localhost(backend).await;
    let alice = app.add_user("alice", false).await;
    let bob = app.add_user("bob", false).await;
    let chrome = Chrome::start().await;
    // Two machines, each with its own authenticator: alice's and bob's passkeys.
    let (a, b) = (browser_with_authenticator(&chrome).await, browser_with_authenticator(&chrome).await);
    for (browser, name) in [(&a, "alice"), (&b, "bob")] {
        browser.goto(&format!("{url}/security")).await;
        browser.sign_in(name, PASSWORD).await;
        add_passkey(browser, &url, &format!("{name}'s key")).await;
        sign_out(browser).await;
    }
    let bobs = app.store.passkeys(UserId(&bob)).await.expect("bob's passkeys");
    let bobs_credential = bobs[0].credential_id.clone();

    // Alice's passkey claiming to be bob (the user handle is not signed): refused, recorded against alice's key.
    let mut claim = passkey_answer(&a, &url).await;
    assert_eq!(claim["response"]["userHandle"], user_handle(&alice), "the authenticator names alice");
    claim["response"]["userHandle"] = user_handle(&bob).into();
    let (status, page) = submit_answer(&a, &claim).await;
    assert_eq!(status, 401, "{page}");
    assert!(page.contains("The passkey was not accepted") || page.contains("the passkey was not accepted"), "{page}");
    let seen = refusals(&app).await;
    assert!(seen.iter().any(|d| d.contains("user handle of another account")), "recorded: {seen:?}");

    // The same challenge answered again, now honestly: refused, it was spent.
    let honest = passkey_answer(&a, &url).await;
    let (status, _) = submit_answer(&a, &honest).await;
    assert_eq!(status, 0, "a fresh challenge answered honestly signs alice in");
    // Replayed from a signed-out page that still holds the ceremony's cookie.
    sign_out_or_home(&a, &url).await;
    a.cookie(latchkey_server::passkeys::CEREMONY_COOKIE).await;
    let (status, page) = submit_answer(&a, &honest).await;
    assert_eq!(status, 400, "an answer is good once: {page}");
    assert!(page.contains("expired or was used already"), "{page}");

    // Alice's signature presented as bob's credential, naming bob: the signature does not verify.
    let mut swapped = passkey_answer(&a, &url).await;
    swapped["id"] = bobs_credential.clone().into();
    swapped["rawId"] = bobs_credential.into();
    swapped["response"]["userHandle"] = user_handle(&bob).into();
    let (status, page) = submit_answer(&a, &swapped).await;
    assert_eq!(status, 401, "{page}");
    assert!(refusals(&app).await.iter().any(|d| d.contains("assertion not valid")), "recorded");
    let entries = app.store.audit_entries(0, 10_000).await.expect("audit");
    let bob_in = entries.iter().filter(|e| e.kind.as_str() == "signin.succeeded" && e.subject.as_deref() == Some(&bob));
    assert_eq!(bob_in.count(), 1, "bob signed in once, with his password, never by alice's passkey");

    // A removed passkey opens nothing, though the authenticator still holds it.
    // It names no account any more, so (like an unknown username) it is not written to the log.
    a.goto(&format!("{url}/security")).await;
    a.sign_in("alice", PASSWORD).await;
    a.wait_text("h1", "Security").await;
    a.click(".passkeys button.danger").await;
    a.wait_text(".notice", "Passkey removed").await;
    sign_out(&a).await;
    let before = refusals(&app).await.len();
    passkey_sign_in(&a).await;
    a.wait_text(".error", "not accepted").await;
    assert_eq!(refusals(&app).await.len(), before, "an anonymous refusal adds nothing to the log");
    chrome.stop().await;
}
