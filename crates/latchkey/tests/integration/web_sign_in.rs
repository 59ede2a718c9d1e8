//! Web sign-in (OpenID Connect authorization code with PKCE) over real HTTP:
//! a third-party relying-party library (`openidconnect`) discovers the server,
//! sends the person through our sign-in and consent pages (a cookie-keeping
//! client without JavaScript is the browser) and validates the ID token
//! strictly; then every refusal the flow owes.

use crate::backend_tests;
use crate::support::*;
use crate::web_pages::{get, post, Page};
use latchkey_client::AppCredentials;
use latchkey_store::{AppId, AppRecord, ClientKind, GrantType, UserId};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdTokenClaims, CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};

backend_tests!(
    a_relying_party_library_signs_in_and_validates_everything,
    a_confidential_app_authenticates_at_the_token_endpoint,
    refusals_on_our_page_never_reach_the_redirect_uri,
    refusals_go_back_to_the_app_with_its_state,
    a_code_redeems_once_and_a_replay_revokes_what_it_issued,
    codes_are_bound_to_their_app_redirect_uri_and_verifier,
    prompt_and_max_age_are_honoured,
    consent_can_be_withdrawn_and_ends_the_apps_sign_ins,
    an_app_can_have_rs256_id_tokens,
);

pub(crate) const REDIRECT: &str = "http://127.0.0.1:9/callback";
/// Where the test apps may be sent after RP-initiated logout.
pub(crate) const AFTER_LOGOUT: &str = "https://app.example/signed-out";

pub(crate) async fn add_web_app(app: &TestApp, client_id: &str, kind: ClientKind, secret: Option<&str>) {
    let record = AppRecord {
        client_id: client_id.into(),
        display_name: format!("Web {client_id}"),
        kind,
        secret_hash: secret.map(latchkey_domain::secret::SecretHash::of),
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        redirect_uris: vec![REDIRECT.into(), "https://app.example/cb?tenant=1".into()],
        app_url: None,
        qr_sign_in: true,
        require_dpop: false,
        created_at: now(),
        post_logout_redirect_uris: vec![AFTER_LOGOUT.into()],
        id_token_alg: Default::default(),
    };
    app.store.create_app(record, None, now()).await.expect("create app");
}

/// An HTTP client for the relying party: it must not follow redirects (openidconnect's advice).
pub(crate) fn rp_http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("http")
}

pub(crate) fn location(p: &Page) -> String {
    p.location().to_string()
}

/// The query parameters of a redirect to the app.
fn query_of(location: &str) -> Vec<(String, String)> {
    let q = location.split_once('?').map(|(_, q)| q).unwrap_or("");
    serde_urlencoded::from_str(q).expect("query")
}

pub(crate) fn param(location: &str, name: &str) -> Option<String> {
    query_of(location).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// The browser signs in on the authorization endpoint's own form, as `user`.
pub(crate) async fn sign_in_on_form(browser: &reqwest::Client, url: &str, page: &Page, user: &str) -> Page {
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.html.contains("Sign in to continue to"), "{}", page.html);
    let csrf = form_field(&page.html, "csrf");
    let request = html_unescape(&form_field(&page.html, "request"));
    let form = [("csrf", csrf.as_str()), ("request", request.as_str()), ("username", user), ("password", PASSWORD)];
    post(browser, &format!("{url}/oauth/authorize/sign-in"), &form).await
}

/// The browser answers the consent page.
pub(crate) async fn decide_consent(browser: &reqwest::Client, url: &str, page: &Page, decision: &str) -> Page {
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.html.contains("sign you in?"), "{}", page.html);
    let csrf = form_field(&page.html, "csrf");
    let request = html_unescape(&form_field(&page.html, "request"));
    post(
        browser,
        &format!("{url}/oauth/authorize/consent"),
        &[("csrf", &csrf), ("request", &request), ("decision", decision)],
    )
    .await
}

pub(crate) fn html_unescape(s: &str) -> String {
    s.replace("&amp;", "&").replace("&#x2b;", "+").replace("&#43;", "+").replace("&quot;", "\"").replace("&#x27;", "'")
}

/// A hand-made authorization URL (for the refusals the library would never send).
pub(crate) fn authorize_url(url: &str, params: &[(&str, &str)]) -> String {
    format!("{url}/oauth/authorize?{}", serde_urlencoded::to_string(params).expect("query"))
}

/// The query of the plainest valid authorization request by `client_id` (to
/// [`REDIRECT`], scope `openid`, PKCE `challenge`).
pub(crate) fn plain_request(client_id: &str, challenge: &str) -> String {
    serde_urlencoded::to_string([
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("scope", "openid"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ])
    .expect("query")
}

/// The "Sign in with your phone" page of a new authorization request by `client_id`.
pub(crate) fn phone_page_url(url: &str, client_id: &str) -> String {
    let request = plain_request(client_id, &pkce().0);
    format!("{url}/oauth/authorize/phone?{}", serde_urlencoded::to_string([("request", request)]).expect("query"))
}

/// A PKCE pair from the relying-party library (not from our own code).
pub(crate) fn pkce() -> (String, String) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    (challenge.as_str().to_string(), verifier.secret().clone())
}

/// Runs a whole hand-made authorization for a signed-in browser that already
/// consented (or is asked and allows); returns the code.
pub(crate) async fn code_for(app: &TestApp, browser: &reqwest::Client, client_id: &str, challenge: &str) -> String {
    let url = authorize_url(
        &app.url,
        &[
            ("client_id", client_id),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "s1"),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let mut page = get(browser, &url).await;
    if page.html.contains("Sign in to continue to") {
        page = sign_in_on_form(browser, &app.url, &page, "alice").await;
    }
    if page.html.contains("sign you in?") {
        page = decide_consent(browser, &app.url, &page, "allow").await;
    }
    assert_eq!(page.status, 303, "{}", page.html);
    param(&location(&page), "code").expect("a code")
}

pub(crate) async fn token_request(
    app: &TestApp,
    form: &[(&str, &str)],
) -> (u16, serde_json::Value, reqwest::header::HeaderMap) {
    let r = rp_http().post(format!("{}/oauth/token", app.url)).form(form).send().await.expect("token request");
    let (status, headers) = (r.status().as_u16(), r.headers().clone());
    (status, r.json().await.expect("json"), headers)
}

async fn a_relying_party_library_signs_in_and_validates_everything(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("alice", false).await;
    add_web_app(&app, "web", ClientKind::Public, None).await;
    let http = rp_http();

    // Discovery, as a strict library reads it: the issuer must match, the endpoints must be there.
    let provider = CoreProviderMetadata::discover_async(IssuerUrl::new(app.url.clone()).expect("issuer"), &http)
        .await
        .expect("the discovery document passes openidconnect's validation");
    let client = CoreClient::from_provider_metadata(provider, ClientId::new("web".into()), None)
        .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).expect("redirect"));
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf_state, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();

    // The browser follows the link: sign in, then consent.
    let browser = browser();
    let page = get(&browser, auth_url.as_str()).await;
    let consent = sign_in_on_form(&browser, &app.url, &page, "alice").await;
    let csp = consent.headers.get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or("");
    assert!(csp.contains("form-action 'self' http://127.0.0.1:9"), "the consent form may end at the app: {csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(consent.html.contains("Web web") && consent.html.contains("alice"), "{}", consent.html);
    let back = decide_consent(&browser, &app.url, &consent, "allow").await;
    assert_eq!(back.status, 303, "{}", back.html);
    let to = location(&back);
    assert!(to.starts_with(&format!("{REDIRECT}?code=lka_")), "{to}");
    assert_eq!(param(&to, "state").as_deref(), Some(csrf_state.secret().as_str()));
    assert_eq!(param(&to, "iss").as_deref(), Some(app.url.as_str()), "RFC 9207 iss");

    // The library redeems the code with its verifier and validates the ID token.
    let code = param(&to, "code").expect("code");
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .expect("token endpoint known")
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("the code redeems");
    let id_verifier = client.id_token_verifier().set_allowed_algs(vec![CoreJwsSigningAlgorithm::EdDsa]);
    let id_token = tokens.id_token().expect("an ID token for scope openid");
    let claims: &CoreIdTokenClaims = id_token.claims(&id_verifier, &nonce).expect("the ID token validates");
    let alice = app.store.user_by_name("alice").await.expect("read").expect("alice");
    assert_eq!(claims.subject().as_str(), alice.id);
    assert_eq!(claims.preferred_username().map(|u| u.as_str()), Some("alice"));
    assert_eq!(claims.nonce().map(|n| n.secret().as_str()), Some(nonce.secret().as_str()));
    let amr: Vec<String> = claims.auth_method_refs().into_iter().flatten().map(|a| a.to_string()).collect();
    assert_eq!(amr, vec!["pwd"]);
    let auth_time = claims.auth_time().expect("auth_time").timestamp();
    assert!((now().as_secs() - auth_time).abs() < 60, "auth_time is when alice signed in");
    let refresh = tokens.refresh_token().expect("offline_access and the refresh grant give a refresh token");

    // The access token works where tokens are checked; the refresh token rotates.
    let access = tokens.access_token().secret();
    let info = app.client.userinfo(access).await.expect("userinfo");
    assert_eq!(info.sub, alice.id);
    let web = AppCredentials::public("web");
    let refreshed = app.client.refresh(&web, refresh.secret()).await.expect("refresh");
    assert!(refreshed.refresh_token.is_some());

    // A second sign-in in the same browser: signed in and consented, so straight back with a code.
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let (again, _, _) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let page = get(&browser, again.as_str()).await;
    assert_eq!(page.status, 303, "remembered consent: no page at all: {}", page.html);
    assert!(param(&location(&page), "code").is_some());

    // Everything was recorded: the consent, the redemption, and it verifies.
    let kinds = app.database_text().await;
    assert!(kinds.contains("consent.granted") && kinds.contains("oauth.code_redeemed"));
    let report = app.verify_audit(vec![]).await;
    assert_eq!(report.broken, Vec::<String>::new(), "{report:?}");
}

async fn a_confidential_app_authenticates_at_the_token_endpoint(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("alice", false).await;
    add_web_app(&app, "server-side", ClientKind::Confidential, Some("s3cret")).await;
    let browser = browser();
    let (challenge, verifier) = pkce();
    let code = code_for(&app, &browser, "server-side", &challenge).await;
    let base = [("grant_type", "authorization_code"), ("redirect_uri", REDIRECT), ("code_verifier", verifier.as_str())];

    // Without its secret: invalid_client, and the code is not spent.
    let mut form = base.to_vec();
    form.extend([("code", code.as_str()), ("client_id", "server-side")]);
    let (status, body, _) = token_request(&app, &form).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "{body}");

    // client_secret_basic, through the library.
    let http = rp_http();
    let provider = CoreProviderMetadata::discover_async(IssuerUrl::new(app.url.clone()).expect("issuer"), &http)
        .await
        .expect("discovery");
    let client = CoreClient::from_provider_metadata(
        provider,
        ClientId::new("server-side".into()),
        Some(ClientSecret::new("s3cret".into())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).expect("redirect"));
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .expect("token endpoint")
        .set_pkce_verifier(PkceCodeVerifier::new(verifier.clone()))
        .request_async(&http)
        .await
        .expect("client_secret_basic works");
    assert!(tokens.id_token().is_some());

    // client_secret_post works too.
    let (challenge, verifier) = pkce();
    let code = code_for(&app, &browser, "server-side", &challenge).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier.as_str()),
        ("code", code.as_str()),
        ("client_id", "server-side"),
        ("client_secret", "s3cret"),
    ];
    let (status, body, headers) = token_request(&app, &form).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers.get("cache-control").and_then(|v| v.to_str().ok()), Some("no-store"));
}

async fn refusals_on_our_page_never_reach_the_redirect_uri(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("alice", false).await;
    add_web_app(&app, "web", ClientKind::Public, None).await;
    app.add_app("device-only", ClientKind::Public, None, &[GrantType::DeviceCode]).await;
    let (challenge, _) = pkce();
    let good = |client: &'static str, redirect: &'static str| {
        vec![
            ("client_id", client),
            ("redirect_uri", redirect),
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "s1"),
            ("code_challenge", "x"),
            ("code_challenge_method", "S256"),
        ]
    };
    let browser = browser();
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (good("web", "https://evil.example/cb"), "is not registered for this app"),
        (good("web", "http://127.0.0.1:9/callback/"), "is not registered for this app"),
        (good("web", "https://app.example/cb"), "is not registered for this app"),
        (good("nobody", REDIRECT), "no app is registered"),
        (good("device-only", REDIRECT), "not set up for web sign-in"),
        (good("web", "").into_iter().filter(|(k, _)| *k != "redirect_uri").collect(), "no redirect_uri"),
        (good("web", REDIRECT).into_iter().filter(|(k, _)| *k != "client_id").collect(), "names no app"),
    ];
    for (params, says) in cases {
        let mut params = params;
        for p in params.iter_mut() {
            if p.0 == "code_challenge" {
                p.1 = challenge.as_str();
            }
        }
        let page = get(&browser, &authorize_url(&app.url, &params)).await;
        assert_eq!(page.status, 400, "{params:?}: {}", page.html);
        assert!(page.location().is_empty(), "never a redirect: {params:?}");
        assert!(page.html.contains(says), "{params:?} should say {says:?}: {}", page.html);
    }
}

async fn refusals_go_back_to_the_app_with_its_state(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("alice", false).await;
    add_web_app(&app, "web", ClientKind::Public, None).await;
    let (challenge, _) = pkce();
    let browser = browser();
    let base = vec![
        ("client_id", "web"),
        ("redirect_uri", "https://app.example/cb?tenant=1"),
        ("response_type", "code"),
        ("scope", "openid"),
        ("state", "st"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let with = |k: &'static str, v: &'static str| {
        let mut p: Vec<(&str, &str)> = base.iter().copied().filter(|(n, _)| *n != k).collect();
        if !v.is_empty() {
            p.push((k, v));
        }
        p
    };
    for (params, error) in [
        (with("code_challenge", ""), "invalid_request"),
        (with("code_challenge_method", "plain"), "invalid_request"),
        (with("response_type", "token"), "unsupported_response_type"),
        (with("scope", "openid admin"), "invalid_scope"),
        (with("prompt", "none"), "login_required"),
        (with("request", "eyJhbGciOiJub25lIn0.e30."), "request_not_supported"),
    ] {
        let page = get(&browser, &authorize_url(&app.url, &params)).await;
        assert_eq!(page.status, 303, "{params:?}: {}", page.html);
        let to = location(&page);
        assert!(to.starts_with("https://app.example/cb?tenant=1&error="), "{to}");
        assert_eq!(param(&to, "error").as_deref(), Some(error), "{params:?}");
        assert_eq!(param(&to, "state").as_deref(), Some("st"));
        assert_eq!(param(&to, "iss").as_deref(), Some(app.url.as_str()));
        assert!(param(&to, "error_description").is_some_and(|d| !d.is_empty()));
    }

    // Signed in but never asked: prompt=none cannot show the consent page.
    let page = get(&browser, &authorize_url(&app.url, &with("prompt", ""))).await;
    let page = sign_in_on_form(&browser, &app.url, &page, "alice").await;
    assert!(page.html.contains("sign you in?"));
    let page = get(&browser, &authorize_url(&app.url, &with("prompt", "none"))).await;
    assert_eq!(param(&location(&page), "error").as_deref(), Some("consent_required"));

    // The person denies: access_denied, and nothing is remembered.
    let page = get(&browser, &authorize_url(&app.url, &base)).await;
    let back = decide_consent(&browser, &app.url, &page, "deny").await;
    assert_eq!(param(&location(&back), "error").as_deref(), Some("access_denied"));
    let alice = app.store.user_by_name("alice").await.expect("read").expect("alice");
    assert_eq!(app.store.consent(UserId(&alice.id), AppId("web")).await.expect("read"), None);

    // A consent form from another site (no CSRF token of this session) is refused.
    let page = get(&browser, &authorize_url(&app.url, &base)).await;
    let request = html_unescape(&form_field(&page.html, "request"));
    let forged = post(
        &browser,
        &format!("{}/oauth/authorize/consent", app.url),
        &[("csrf", "forged"), ("request", &request), ("decision", "allow")],
    )
    .await;
    assert_eq!(forged.status, 403, "{}", forged.html);
    assert!(forged.location().is_empty());
}

async fn a_code_redeems_once_and_a_replay_revokes_what_it_issued(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("alice", false).await;
    add_web_app(&app, "web", ClientKind::Public, None).await;
    let browser = browser();
    let (challenge, verifier) = pkce();
    let code = code_for(&app, &browser, "web", &challenge).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", "web"),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier.as_str()),
        ("code", code.as_str()),
    ];
    let (status, first, _) = token_request(&app, &form).await;
    assert_eq!(status, 200, "{first}");
    let access = first["access_token"].as_str().expect("access token").to_string();
    let refresh = first["refresh_token"].as_str().expect("refresh token").to_string();
    app.client.userinfo(&access).await.expect("works before the replay");

    let (status, again, _) = token_request(&app, &form).await;
    assert_eq!((status, again["error"].as_str()), (400, Some("invalid_grant")), "{again}");
    assert!(again["error_description"].as_str().unwrap_or("").contains("already used"), "{again}");
    assert!(app.client.userinfo(&access).await.is_err(), "the replay revoked the first sign-in's access token");
    assert!(app.client.refresh(&AppCredentials::public("web"), &refresh).await.is_err(), "and its refresh token");
    assert!(app.database_text().await.contains("oauth.code_reused"));

    // Many at once: exactly one wins.
    let (challenge, verifier) = pkce();
    let code = code_for(&app, &browser, "web", &challenge).await;
    let form: Vec<(String, String)> = [
        ("grant_type", "authorization_code"),
        ("client_id", "web"),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier.as_str()),
        ("code", code.as_str()),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let racers = (0..6).map(|_| {
        let (url, form) = (app.url.clone(), form.clone());
        tokio::spawn(async move {
            rp_http().post(format!("{url}/oauth/token")).form(&form).send().await.expect("send").status().as_u16()
        })
    });
    let statuses: Vec<u16> = futures::future::join_all(racers).await.into_iter().map(|r| r.expect("join")).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 400), "{statuses:?}");
}

async fn codes_are_bound_to_their_app_redirect_uri_and_verifier(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("alice", false).await;
    add_web_app(&app, "web", ClientKind::Public, None).await;
    add_web_app(&app, "other", ClientKind::Public, None).await;
    let browser = browser();
    let (challenge, verifier) = pkce();
    let code = code_for(&app, &browser, "web", &challenge).await;
    let (_, other_verifier) = pkce();
    let refused = |form: Vec<(&'static str, String)>, says: &'static str| {
        let app_url = app.url.clone();
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let r = rp_http().post(format!("{app_url}/oauth/token")).form(&form).send().await.expect("send");
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.expect("json");
            assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{form:?}: {body}");
            assert!(body["error_description"].as_str().unwrap_or("").contains(says), "{form:?}: {body}");
        }
    };
    let form = |client: &str, redirect: &str, verifier: Option<&str>| {
        let mut f = vec![
            ("grant_type", "authorization_code".to_string()),
            ("client_id", client.to_string()),
            ("redirect_uri", redirect.to_string()),
            ("code", code.clone()),
        ];
        if let Some(v) = verifier {
            f.push(("code_verifier", v.to_string()));
        }
        f
    };
    refused(form("other", REDIRECT, Some(&verifier)), "another app").await;
    refused(form("web", "https://app.example/cb?tenant=1", Some(&verifier)), "redirect_uri").await;
    refused(form("web", REDIRECT, None), "code_verifier is required").await;
    refused(form("web", REDIRECT, Some(&other_verifier)), "does not match").await;
    refused(form("web", REDIRECT, Some("short")), "43 to 128").await;
    // None of those spent the code: the right request still redeems it.
    let ok: Vec<(&str, String)> = form("web", REDIRECT, Some(&verifier));
    let ok: Vec<(&str, &str)> = ok.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, body, _) = token_request(&app, &ok).await;
    assert_eq!(status, 200, "{body}");
    // An unknown code, and a code with a wrong grant type for the app.
    let unknown: Vec<(&str, &str)> =
        ok.iter().map(|(k, v)| if *k == "code" { (*k, "lka_nope") } else { (*k, *v) }).collect();
    let (status, body, _) = token_request(&app, &unknown).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    app.add_app("device-only", ClientKind::Public, None, &[GrantType::DeviceCode]).await;
    let device: Vec<(&str, &str)> =
        ok.iter().map(|(k, v)| if *k == "client_id" { (*k, "device-only") } else { (*k, *v) }).collect();
    let (status, body, _) = token_request(&app, &device).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("unauthorized_client")), "{body}");
}

async fn prompt_and_max_age_are_honoured(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("alice", false).await;
    add_web_app(&app, "web", ClientKind::Public, None).await;
    let browser = browser();
    let (challenge, _) = pkce();
    code_for(&app, &browser, "web", &challenge).await;
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut p = vec![
            ("client_id", "web"),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", "openid"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        p.extend_from_slice(extra);
        authorize_url(&app.url, &p)
    };
    // Signed in and consented: prompt=none answers at once.
    let page = get(&browser, &with(&[("prompt", "none")])).await;
    assert!(param(&location(&page), "code").is_some(), "{}", location(&page));
    // prompt=login asks for the password again, once; then a code, not a loop.
    let page = get(&browser, &with(&[("prompt", "login"), ("login_hint", "alice")])).await;
    assert!(page.html.contains("value=\"alice\""), "login_hint fills the username");
    let back = sign_in_on_form(&browser, &app.url, &page, "alice").await;
    assert!(param(&location(&back), "code").is_some(), "{}", back.html);
    // prompt=consent shows the consent page though consent was given.
    let page = get(&browser, &with(&[("prompt", "consent")])).await;
    assert!(page.html.contains("sign you in?"), "{}", page.html);
    // max_age=0 means: authenticate now.
    let page = get(&browser, &with(&[("max_age", "0")])).await;
    assert!(page.html.contains("Sign in to continue to"), "{}", page.html);
    // A wrong password on the form stays on the form, saying so.
    let csrf = form_field(&page.html, "csrf");
    let request = html_unescape(&form_field(&page.html, "request"));
    let wrong = post(
        &browser,
        &format!("{}/oauth/authorize/sign-in", app.url),
        &[("csrf", &csrf), ("request", &request), ("username", "alice"), ("password", "nope")],
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.html.contains("wrong username or password") && wrong.html.contains("Sign in to continue to"));
}

async fn consent_can_be_withdrawn_and_ends_the_apps_sign_ins(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("alice", false).await;
    add_web_app(&app, "web", ClientKind::Public, None).await;
    let browser = browser();
    let (challenge, verifier) = pkce();
    let code = code_for(&app, &browser, "web", &challenge).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", "web"),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier.as_str()),
        ("code", code.as_str()),
    ];
    let (_, tokens, _) = token_request(&app, &form).await;
    let access = tokens["access_token"].as_str().expect("access").to_string();

    // The Devices page lists the app under the apps alice let sign her in, and withdraws it.
    let devices = get(&browser, &format!("{}/devices", app.url)).await;
    assert!(devices.html.contains("Web web"), "{}", devices.html);
    let csrf = form_field(&devices.html, "csrf");
    let done = post(&browser, &format!("{}/consents/web/withdraw", app.url), &[("csrf", &csrf)]).await;
    assert_eq!(done.status, 303, "{}", done.html);
    assert!(app.client.userinfo(&access).await.is_err(), "its web sign-ins ended at once");
    let alice = app.store.user_by_name("alice").await.expect("read").expect("alice");
    assert_eq!(app.store.consent(UserId(&alice.id), AppId("web")).await.expect("read"), None);
    assert!(app.database_text().await.contains("consent.withdrawn"));
    // Next time, the consent page is shown again.
    let page = get(&browser, &format!("{}/oauth/authorize?{}", app.url, plain_request("web", &challenge))).await;
    assert!(page.html.contains("sign you in?"), "{}", page.html);
}

async fn an_app_can_have_rs256_id_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    app.add_user("alice", false).await;
    add_web_app(&app, "eddsa", ClientKind::Public, None).await;
    add_web_app(&app, "legacy", ClientKind::Public, None).await;
    // An admin chooses RS256 on the Apps page; the RSA key is made then, so it is
    // published before any relying party reads the key set (some read it once).
    app.add_user("root", true).await;
    let admin = browser();
    let csrf = crate::web_pages::sign_in(&app, &admin, "root").await;
    let uris = format!("{REDIRECT}\nhttps://app.example/cb?tenant=1");
    let saved = post(
        &admin,
        &format!("{}/apps/legacy/edit", app.url),
        &[
            ("csrf", csrf.as_str()),
            ("display_name", "Legacy"),
            ("grant_authorization_code", "yes"),
            ("redirect_uris", uris.as_str()),
            ("id_token_alg", "RS256"),
        ],
    )
    .await;
    assert_eq!(saved.status, 303, "{}", saved.html);
    let legacy = app.store.app(AppId("legacy")).await.expect("read").expect("legacy");
    assert_eq!(legacy.id_token_alg, latchkey_store::IdTokenAlg::RS256);
    let http = rp_http();
    let jwks = |http: reqwest::Client| {
        let url = format!("{}/oauth/jwks", app.url);
        async move { http.get(url).send().await.expect("jwks").json::<serde_json::Value>().await.expect("json") }
    };

    // A library left at its defaults (RS256 only, as OIDC Core's baseline) validates the legacy app's ID token.
    let provider = CoreProviderMetadata::discover_async(IssuerUrl::new(app.url.clone()).expect("issuer"), &http)
        .await
        .expect("discovery");
    let client = CoreClient::from_provider_metadata(provider, ClientId::new("legacy".into()), None)
        .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).expect("redirect"));
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, _, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .set_pkce_challenge(challenge)
        .url();
    let browser = browser();
    let page = get(&browser, auth_url.as_str()).await;
    let consent = sign_in_on_form(&browser, &app.url, &page, "alice").await;
    let back = decide_consent(&browser, &app.url, &consent, "allow").await;
    let code = param(&location(&back), "code").expect("code");
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .expect("token endpoint")
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("the code redeems");
    let id_token = tokens.id_token().expect("ID token");
    let claims = id_token.claims(&client.id_token_verifier(), &nonce).expect("the RS256 ID token validates");
    let alice = app.store.user_by_name("alice").await.expect("read").expect("alice");
    assert_eq!(claims.subject().as_str(), alice.id);
    let header: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            id_token.to_string().split('.').next().expect("header"),
        )
        .expect("base64"),
    )
    .expect("header json");
    assert_eq!(header["alg"], "RS256");
    let published = jwks(http.clone()).await;
    let rsa: Vec<&serde_json::Value> =
        published["keys"].as_array().expect("keys").iter().filter(|k| k["kty"] == "RSA").collect();
    assert_eq!(rsa.len(), 1, "the RSA key is published: {published}");
    assert_eq!((rsa[0]["alg"].as_str(), rsa[0]["kid"].as_str()), (Some("RS256"), header["kid"].as_str()));

    // The access token stays EdDSA, and other apps' ID tokens too.
    let access_header = tokens.access_token().secret().split('.').next().expect("header").to_string();
    assert!(String::from_utf8_lossy(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, access_header).expect("b64")
    )
    .contains("EdDSA"));
    let (challenge, verifier) = pkce();
    let code = code_for(&app, &browser, "eddsa", &challenge).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("client_id", "eddsa"),
        ("code_verifier", verifier.as_str()),
    ];
    let (_, body, _) = token_request(&app, &form).await;
    let other = body["id_token"].as_str().expect("ID token").split('.').next().expect("header").to_string();
    let other = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, other).expect("b64");
    assert!(String::from_utf8_lossy(&other).contains("EdDSA"));
}
