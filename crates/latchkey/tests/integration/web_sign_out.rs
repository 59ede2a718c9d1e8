//! RP-initiated logout (`end_session_endpoint`) over real HTTP: an app that
//! signed someone in sends them to sign out of Latchkey and back; whoever
//! the app cannot vouch for is asked first; nothing goes to an unregistered URI.

use crate::backend_tests;
use crate::support::*;
use crate::web_pages::{get, post, Page};
use crate::web_sign_in::*;
use latchkey_store::ClientKind;

backend_tests!(
    an_app_signs_its_person_out_and_gets_them_back,
    without_the_apps_word_the_person_is_asked,
    logout_refusals_are_shown_on_our_own_page,
);

/// Signs alice in through the web app `web`; returns the ID token it got.
async fn signed_in_id_token(app: &TestApp, browser: &reqwest::Client) -> String {
    let (challenge, verifier) = pkce();
    let code = code_for(app, browser, "web", &challenge).await;
    let (status, body, _) = token_request(
        app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", "web"),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["id_token"].as_str().expect("id_token").to_string()
}

fn logout_url(app: &TestApp, params: &[(&str, &str)]) -> String {
    format!("{}/oauth/logout?{}", app.url, serde_urlencoded::to_string(params).expect("query"))
}

/// Whether the browser is still signed in to Latchkey: its session opens the Devices page.
async fn signed_in(app: &TestApp, browser: &reqwest::Client) -> bool {
    get(browser, &format!("{}/devices", app.url)).await.status == 200
}

fn form_of(page: &Page) -> (String, String) {
    (form_field(&page.html, "csrf"), html_unescape(&form_field(&page.html, "request")))
}

async fn an_app_signs_its_person_out_and_gets_them_back(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("alice", false).await;
    add_web_app(&app, "web", ClientKind::Public, None).await;
    let discovery: serde_json::Value = rp_http()
        .get(format!("{}/.well-known/openid-configuration", app.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["end_session_endpoint"], format!("{}/oauth/logout", app.url));

    let browser = browser();
    let id_token = signed_in_id_token(&app, &browser).await;
    assert!(signed_in(&app, &browser).await);

    // The ID token vouches for the signed-in person: signed out at once, sent back with state.
    let page = get(
        &browser,
        &logout_url(
            &app,
            &[("id_token_hint", &id_token), ("post_logout_redirect_uri", AFTER_LOGOUT), ("state", "bye 1")],
        ),
    )
    .await;
    assert_eq!(page.status, 303, "{}", page.html);
    assert_eq!(location(&page), format!("{AFTER_LOGOUT}?state=bye+1"));
    assert!(!signed_in(&app, &browser).await, "the Latchkey session ended");
    assert!(app.database_text().await.contains("signin.signed_out"), "the sign-out is in the audit log");

    // Signing out again (nobody signed in): nothing to ask, straight back. As a POST
    // too: it becomes the same GET, which carries the SameSite=Lax cookie.
    let again = post(
        &browser,
        &format!("{}/oauth/logout", app.url),
        &[("id_token_hint", id_token.as_str()), ("post_logout_redirect_uri", AFTER_LOGOUT)],
    )
    .await;
    assert_eq!(again.status, 303);
    assert!(location(&again).starts_with("/oauth/logout?"), "{}", location(&again));
    let follow = get(&browser, &format!("{}{}", app.url, location(&again))).await;
    assert_eq!((follow.status, location(&follow)), (303, AFTER_LOGOUT.to_string()));
}

async fn without_the_apps_word_the_person_is_asked(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("alice", false).await;
    app.add_user("bob", false).await;
    add_web_app(&app, "web", ClientKind::Public, None).await;
    let browser = browser();
    signed_in_id_token(&app, &browser).await;

    // A link anyone could embed (no hint): a page that asks, which cannot be framed.
    let url = logout_url(&app, &[("client_id", "web"), ("post_logout_redirect_uri", AFTER_LOGOUT)]);
    let ask = get(&browser, &url).await;
    assert_eq!(ask.status, 200, "{}", ask.html);
    assert!(ask.html.contains("Sign out of Latchkey?") && ask.html.contains("Web web"), "{}", ask.html);
    let csp = ask.headers.get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("form-action 'self' https://app.example"), "{csp}");
    assert!(signed_in(&app, &browser).await, "asking signs nobody out");

    // Staying, or a forged form, keeps the session.
    let (csrf, request) = form_of(&ask);
    let confirm = format!("{}/oauth/logout/confirm", app.url);
    let forged = post(&browser, &confirm, &[("csrf", "wrong"), ("request", &request), ("decision", "sign_out")]).await;
    assert_eq!(forged.status, 403, "{}", forged.html);
    let stay = post(&browser, &confirm, &[("csrf", &csrf), ("request", &request), ("decision", "stay")]).await;
    assert_eq!(stay.status, 200);
    assert!(signed_in(&app, &browser).await);

    // An ID token of someone else does not vouch for alice either.
    let bobs_browser = crate::support::browser();
    let (challenge, verifier) = pkce();
    let url_b = format!("{}/oauth/authorize?{}", app.url, plain_request("web", &challenge));
    let page = get(&bobs_browser, &url_b).await;
    let consent = sign_in_on_form(&bobs_browser, &app.url, &page, "bob").await;
    let back = decide_consent(&bobs_browser, &app.url, &consent, "allow").await;
    let code = param(&location(&back), "code").expect("bob's code");
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("client_id", "web"),
        ("code_verifier", verifier.as_str()),
    ];
    let (_, body, _) = token_request(&app, &form).await;
    let bobs_token = body["id_token"].as_str().expect("bob's ID token").to_string();
    let ask = get(&browser, &logout_url(&app, &[("id_token_hint", &bobs_token)])).await;
    assert_eq!(ask.status, 200, "bob's token asks alice rather than signing her out: {}", ask.html);

    // Confirming signs out and goes back to the app.
    let (csrf, request) = form_of(&ask);
    let (_, request_with_uri) = form_of(&get(&browser, &url).await);
    assert!(request.contains("id_token_hint"));
    let out =
        post(&browser, &confirm, &[("csrf", &csrf), ("request", &request_with_uri), ("decision", "sign_out")]).await;
    assert_eq!((out.status, location(&out)), (303, AFTER_LOGOUT.to_string()), "{}", out.html);
    assert!(!signed_in(&app, &browser).await);
}

async fn logout_refusals_are_shown_on_our_own_page(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("alice", false).await;
    add_web_app(&app, "web", ClientKind::Public, None).await;
    add_web_app(&app, "other", ClientKind::Public, None).await;
    let browser = browser();
    let id_token = signed_in_id_token(&app, &browser).await;
    let mut forged = id_token.clone();
    forged.pop();
    forged.push(if id_token.ends_with('A') { 'B' } else { 'A' });

    for (params, why) in [
        (
            vec![("client_id", "web"), ("post_logout_redirect_uri", "https://app.example/signed-out/")],
            "not a post-logout redirect URI registered",
        ),
        (
            vec![("client_id", "web"), ("post_logout_redirect_uri", "https://evil.example/")],
            "not a post-logout redirect URI registered",
        ),
        (vec![("post_logout_redirect_uri", AFTER_LOGOUT)], "names none"),
        (vec![("client_id", "nope"), ("post_logout_redirect_uri", AFTER_LOGOUT)], "no app is registered"),
        (vec![("id_token_hint", forged.as_str()), ("post_logout_redirect_uri", AFTER_LOGOUT)], "did not issue"),
        (vec![("id_token_hint", id_token.as_str()), ("client_id", "other")], "carries an ID token of"),
        (vec![("state", "a"), ("state", "b")], "more than once"),
    ] {
        let page = get(&browser, &logout_url(&app, &params)).await;
        assert_eq!(page.status, 400, "{params:?}: {}", page.html);
        assert!(page.location().is_empty(), "{params:?} must not redirect");
        assert!(page.html.contains(why), "{params:?}: expected {why:?} in {}", page.html);
    }
    assert!(signed_in(&app, &browser).await, "no refused request signed anyone out");
}
