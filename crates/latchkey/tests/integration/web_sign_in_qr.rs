//! "Sign in with your phone" as a method of the web sign-in page: the desktop
//! browser shows a QR (decoded here with a real decoder), the signed-in phone
//! approves, and the desktop's authorization request goes on to its code
//! redirect. No token is ever in a URL or in the desktop's JSON.

use crate::backend_tests;
use crate::browser_support::decode_qr;
use crate::support::*;
use crate::web_pages::{get, post, sign_in, Page};
use crate::web_sign_in::*;
use latchkey_store::ClientKind;

backend_tests!(
    a_phone_signs_the_desktop_in_and_the_app_gets_a_code,
    a_cancelled_or_reused_qr_signs_nobody_in,
    the_apps_qr_switch_governs_the_phone_method,
);

/// The desktop starts a web sign-in, picks "Sign in with your phone" and reads the QR.
/// Returns the QR page's tab and the phone URL the QR carries.
async fn desktop_shows_qr(app: &TestApp, desktop: &reqwest::Client, challenge: &str) -> (String, String) {
    let url = authorize_url(
        &app.url,
        &[
            ("client_id", "web"),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", "openid profile"),
            ("state", "st"),
            ("nonce", "n-1"),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let signin = get(desktop, &url).await;
    assert_eq!(signin.status, 200, "{}", signin.html);
    let link = attr(&signin, "sign-in-with-phone", "href");
    assert!(link.starts_with("/oauth/authorize/phone?request="), "{link}");
    let qr_page = get(desktop, &format!("{}{}", app.url, html_unescape(&link))).await;
    assert_eq!(qr_page.status, 200, "{}", qr_page.html);
    let csp = qr_page.headers.get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let wait = html_unescape(&data_attr(&qr_page.html, "data-wait-url"));
    let tab = wait.rsplit_once("tab=").map(|(_, t)| t.to_string()).expect("the page names its tab");
    // The QR itself, as an image, through a real decoder.
    let png = desktop
        .get(format!("{}/api/v1/pairings/qr?format=png&size=300&tab={tab}", app.url))
        .send()
        .await
        .expect("qr")
        .bytes()
        .await
        .expect("png");
    let decoded = decode_qr(&png);
    assert_eq!(decoded.len(), 1, "one QR code");
    assert!(qr_page.html.contains(&decoded[0]), "the page shows the same phone link as its QR");
    (tab, decoded[0].clone())
}

/// The phone (signed in as `user`) approves or denies.
async fn phone_decides(app: &TestApp, phone_url: &str, user: &str, decision: &str) -> Page {
    let phone = browser();
    sign_in(app, &phone, user).await;
    let page = get(&phone, phone_url).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.html.contains("Web web"), "the phone names the app: {}", page.html);
    let csrf = form_field(&page.html, "csrf");
    let code = form_field(&page.html, "code");
    post(&phone, &format!("{}/pair/decision", app.url), &[("csrf", &csrf), ("code", &code), ("decision", decision)])
        .await
}

/// The desktop page's wait, as its script calls it.
async fn desktop_waits(app: &TestApp, desktop: &reqwest::Client, tab: &str) -> serde_json::Value {
    let r = desktop.post(format!("{}/api/v1/pairings/wait?tab={tab}", app.url)).send().await.expect("wait");
    assert_eq!(r.status(), 200);
    r.json().await.expect("json")
}

fn attr(page: &Page, id: &str, name: &str) -> String {
    let at = page.html.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id} in {}", page.html));
    let tag_start = page.html[..at].rfind('<').expect("tag");
    let tag_end = at + page.html[at..].find('>').expect("tag end");
    data_attr(&page.html[tag_start..tag_end], name)
}

fn data_attr(html: &str, name: &str) -> String {
    let start = html.find(&format!("{name}=\"")).unwrap_or_else(|| panic!("no {name} in {html}")) + name.len() + 2;
    html[start..start + html[start..].find('"').expect("closing quote")].to_string()
}

async fn a_phone_signs_the_desktop_in_and_the_app_gets_a_code(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("alice", false).await;
    add_web_app(&app, "web", ClientKind::Public, None).await;
    let desktop = browser();
    let (challenge, verifier) = pkce();
    let (tab, phone_url) = desktop_shows_qr(&app, &desktop, &challenge).await;

    let pending = desktop_waits(&app, &desktop, &tab).await;
    assert_eq!(pending["status"], "pending", "{pending}");
    let done = phone_decides(&app, &phone_url, "alice", "approve").await;
    assert_eq!(done.status, 200, "{}", done.html);

    // The desktop hears "approved" and where to go; no token in the answer.
    let answer = desktop_waits(&app, &desktop, &tab).await;
    assert_eq!(answer["status"], "approved", "{answer}");
    assert!(answer.get("tokens").is_none_or(|t| t.is_null()), "no tokens for a web sign-in's page: {answer}");
    let next = answer["redirect_to"].as_str().expect("redirect_to").to_string();
    assert_eq!(next, format!("/oauth/authorize/phone/done?tab={tab}"));

    // Following it opens the desktop's session and continues the request: consent, then the code.
    let consent = get(&desktop, &format!("{}{next}", app.url)).await;
    assert!(consent
        .headers
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap_or("").starts_with("latchkey_session=")));
    let back = decide_consent(&desktop, &app.url, &consent, "allow").await;
    assert_eq!(back.status, 303, "{}", back.html);
    let to = location(&back);
    assert!(to.starts_with(REDIRECT) && param(&to, "state").as_deref() == Some("st"), "{to}");
    let code = param(&to, "code").expect("a code");
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("client_id", "web"),
        ("code_verifier", verifier.as_str()),
    ];
    let (status, body, _) = token_request(&app, &form).await;
    assert_eq!(status, 200, "{body}");
    let id_token = body["id_token"].as_str().expect("ID token");
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            id_token.split('.').nth(1).expect("payload"),
        )
        .expect("base64"),
    )
    .expect("claims");
    let alice = app.store.user_by_name("alice").await.expect("read").expect("alice");
    assert_eq!((claims["sub"].as_str(), claims["nonce"].as_str()), (Some(alice.id.as_str()), Some("n-1")));
    assert_eq!(claims["amr"], serde_json::json!(["mca"]), "signed in over a second channel (RFC 8176)");

    // The desktop is signed in to Latchkey now; the audit log says how.
    assert_eq!(get(&desktop, &format!("{}/devices", app.url)).await.status, 200);
    // PostgreSQL's dump quotes the JSON detail inside its own JSON: compare unescaped.
    let text = app.database_text().await.replace("\\\"", "\"");
    assert!(text.contains("\"method\":\"qr\"") && text.contains("session_id"), "sign-in by QR recorded");
    assert_eq!(app.verify_audit(vec![]).await.broken, Vec::<String>::new());

    // The approval is spent: following the link again signs nobody in.
    let other = browser();
    let again = get(&other, &format!("{}{next}", app.url)).await;
    assert!(again.status >= 400 && again.location().is_empty(), "{}", again.status);
}

async fn a_cancelled_or_reused_qr_signs_nobody_in(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("alice", false).await;
    add_web_app(&app, "web", ClientKind::Public, None).await;
    let desktop = browser();
    let (challenge, _) = pkce();
    let (tab, phone_url) = desktop_shows_qr(&app, &desktop, &challenge).await;

    // Going to the continuation before the phone decided does nothing.
    let early = get(&desktop, &format!("{}/oauth/authorize/phone/done?tab={tab}", app.url)).await;
    assert_eq!(early.status, 409, "{}", early.html);

    let denied = phone_decides(&app, &phone_url, "alice", "deny").await;
    assert_eq!(denied.status, 200);
    assert_eq!(desktop_waits(&app, &desktop, &tab).await["status"], "denied");
    let after = get(&desktop, &format!("{}/oauth/authorize/phone/done?tab={tab}", app.url)).await;
    assert_eq!(after.status, 409, "a cancelled QR is refused: {}", after.html);
    assert!(after
        .headers
        .get_all("set-cookie")
        .iter()
        .all(|c| !c.to_str().unwrap_or("").starts_with("latchkey_session=")));
    assert_ne!(get(&desktop, &format!("{}/devices", app.url)).await.status, 200, "the desktop is not signed in");
}

/// With the app's QR switch off, its sign-in page offers no phone, and the QR page is not there.
async fn the_apps_qr_switch_governs_the_phone_method(backend: Backend) {
    let app = spawn_app(backend).await;
    add_web_app(&app, "web", ClientKind::Public, None).await;
    app.change_app("web", |u| u.qr_sign_in = false).await;
    let desktop = browser();
    let (challenge, _) = pkce();
    let signin = get(&desktop, &format!("{}/oauth/authorize?{}", app.url, plain_request("web", &challenge))).await;
    assert_eq!(signin.status, 200, "{}", signin.html);
    assert!(signin.html.contains("passkey") && !signin.html.contains("sign-in-with-phone"), "{}", signin.html);
    let page = get(&desktop, &phone_page_url(&app.url, "web")).await;
    assert_eq!(page.status, 404, "{}", page.html);
}
