//! Web sign-in: the steps of the authorization endpoint (sign in, consent,
//! code) that its routes share. The rules live in
//! `latchkey_domain::authorization`; this module looks the app and the person
//! up, stores codes and consent, and answers the browser.
//!
//! The authorization request travels through our own sign-in and consent
//! forms as a hidden field and is checked again on every step, so no server
//! state exists before a code is issued, and nothing a form carries is trusted
//! more than the original link.

use crate::credential::{Caller, Credential};
use crate::error::ApiError;
use crate::routes::web::pages::{render, PageError};
use crate::state::{now, AppState};
use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use latchkey_domain::authorization::{
    self, check_request, consent_covers, consent_union, next_step, redirect_with, AuthorizationRequest, AuthorizeError,
    ErrorCode, NextStep, RegisteredApp, CODE_LIFETIME_MS,
};
use latchkey_domain::secret::{Secret, SecretKind};
use latchkey_domain::Timestamp;
use latchkey_proto::paths;
use latchkey_store::{AppId, AppRecord, ConsentRecord, GrantType, NewAuthorizationCode, UserId, UserRecord};
use std::net::IpAddr;

/// Why the authorization endpoint stops: on Latchkey's own page (the app or
/// its redirect URI is not established), or back at the app with `error=…`.
pub enum Stop {
    /// An error page.
    Page(PageError),
    /// A redirect to the app.
    App(Response),
}

impl IntoResponse for Stop {
    fn into_response(self) -> Response {
        match self {
            Stop::Page(p) => p.into_response(),
            Stop::App(r) => r,
        }
    }
}

impl<E: Into<ApiError>> From<E> for Stop {
    fn from(e: E) -> Self {
        Stop::Page(PageError::from(e.into()))
    }
}

/// What an authorization route returns.
pub type StepResult = Result<Response, Stop>;

/// A checked authorization request and the app it names.
pub struct Request {
    /// The app.
    pub app: AppRecord,
    /// The request.
    pub req: AuthorizationRequest,
    /// The request as a query string, for the hidden field of our forms.
    pub raw: String,
}

/// Who the browser is signed in as (a cookie session only: nothing else
/// travels with a top-level navigation).
pub struct Browser {
    /// The person.
    pub user: UserRecord,
    /// When they authenticated.
    pub signed_in_at: Timestamp,
    /// The CSRF token of their session, for the consent form.
    pub csrf: String,
    /// How the session signed in (RFC 8176 `amr`, space-separated): `pwd`, or `hwk user` for a passkey.
    pub amr: String,
}

impl Browser {
    /// The browser session behind `caller`, if it is one.
    pub fn of<A>(caller: Option<&Caller<A>>) -> Option<Self> {
        let c = caller?;
        match &c.credential {
            Credential::Cookie { signed_in_at, amr, .. } => {
                Some(Browser { user: c.user.clone(), signed_in_at: *signed_in_at, csrf: c.csrf(), amr: amr.clone() })
            }
            _ => None,
        }
    }
}

/// Parses the hidden `request` field of our forms back into parameters.
pub fn pairs_of(raw: &str) -> Vec<(String, String)> {
    serde_urlencoded::from_str(raw).unwrap_or_default()
}

/// Reads and checks an authorization request.
pub async fn read(state: &AppState, pairs: Vec<(String, String)>) -> Result<Request, Stop> {
    let page = |e: authorization::PageRefusal| Stop::Page(PageError::from(ApiError::invalid_request(e.to_string())));
    let client = authorization::identify(&pairs).map_err(page)?;
    let unknown = || page(authorization::PageRefusal::UnknownClient(client.client_id.clone()));
    if latchkey_domain::names::ClientId::parse(&client.client_id).is_err() {
        return Err(unknown());
    }
    let app = state.store.app(AppId(&client.client_id)).await?.ok_or_else(unknown)?;
    let registered = RegisteredApp {
        redirect_uris: &app.redirect_uris,
        may_use_code: app.allows(GrantType::AuthorizationCode),
        may_refresh: app.allows(GrantType::RefreshToken),
    };
    match check_request(&pairs, registered) {
        Ok(req) => {
            let raw = serde_urlencoded::to_string(&pairs).unwrap_or_default();
            Ok(Request { app, req, raw })
        }
        Err(AuthorizeError::Page(e)) => Err(page(e)),
        Err(AuthorizeError::Redirect { redirect_uri, state: s, refusal }) => {
            Err(Stop::App(back_to_app(state, &redirect_uri, s.as_deref(), refusal.code, &refusal.description)))
        }
    }
}

/// An `error=…` redirect to the app (RFC 6749 §4.1.2.1, with RFC 9207's `iss`).
pub fn back_to_app(
    state: &AppState,
    redirect_uri: &str,
    app_state: Option<&str>,
    code: ErrorCode,
    description: &str,
) -> Response {
    let mut params = vec![("error", code.as_str()), ("error_description", description)];
    if let Some(s) = app_state {
        params.push(("state", s));
    }
    params.push(("iss", state.config.public_url.as_str()));
    Redirect::to(&redirect_with(redirect_uri, &params)).into_response()
}

/// What the browser sees next, given who it is signed in as;
/// `just_signed_in` when this very request's sign-in form was just submitted.
pub async fn proceed(
    state: &AppState,
    r: &Request,
    browser: Option<&Browser>,
    just_signed_in: bool,
    ip: IpAddr,
    user_agent: &str,
) -> StepResult {
    let consented = match browser {
        Some(b) => state
            .store
            .consent(UserId(&b.user.id), AppId(&r.app.client_id))
            .await?
            .is_some_and(|c| consent_covers(&c.scope, &r.req.scopes)),
        None => false,
    };
    let step = next_step(&r.req, browser.map(|b| b.signed_in_at), just_signed_in, consented, now());
    match (step, browser) {
        (NextStep::Consent, Some(b)) => Ok(consent_page(r, b)),
        (NextStep::IssueCode, Some(b)) => issue(state, r, b, None, ip, user_agent).await,
        (NextStep::Refuse(code), _) => {
            let why = match code {
                ErrorCode::LoginRequired => "prompt=none, and nobody is signed in (recently enough)",
                ErrorCode::ConsentRequired => "prompt=none, and the person has not consented to this app",
                _ => "refused",
            };
            Err(Stop::App(back_to_app(state, &r.req.redirect_uri, r.req.state.as_deref(), code, why)))
        }
        _ => Ok(sign_in_page(state, r, StatusCode::OK, r.req.login_hint.clone().unwrap_or_default(), None)),
    }
}

/// The sign-in form that continues `r`.
pub fn sign_in_page(
    state: &AppState,
    r: &Request,
    status: StatusCode,
    username: String,
    error: Option<String>,
) -> Response {
    let target = crate::routes::web::pages::SignInTarget {
        action: paths::AUTHORIZE_SIGN_IN,
        passkey_action: paths::AUTHORIZE_PASSKEY,
        next: String::new(),
        request: Some(r.raw.clone()),
        app_name: Some(r.app.display_name.clone()),
        // Offered only while the app's QR switch allows it.
        phone_url: crate::qr_flow::offers_phone(&r.app).then(|| {
            format!(
                "{}?{}",
                paths::AUTHORIZE_PHONE,
                serde_urlencoded::to_string([("request", r.raw.as_str())]).unwrap_or_default()
            )
        }),
    };
    let resp = crate::routes::web::pages::signin_page_for(state, status, target, username, error);
    allow_form_to(resp, &r.req.redirect_uri)
}

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage {
    signed_in_as: Option<String>,
    csrf: String,
    is_admin: bool,
    action: &'static str,
    request: String,
    app_name: String,
    client_id: String,
    username: String,
    scopes: Vec<&'static str>,
    return_to: String,
}

/// What a scope lets the app do, in words.
fn scope_words(scope: &str) -> &'static str {
    match scope {
        "openid" => "know who you are (your Latchkey user ID)",
        "profile" => "see your username",
        "offline_access" => "stay signed in while you are away (a refresh token)",
        _ => "use a permission Latchkey does not describe",
    }
}

fn consent_page(r: &Request, b: &Browser) -> Response {
    let mut scopes: Vec<&'static str> = r.req.scopes.iter().map(|s| scope_words(s)).collect();
    if scopes.is_empty() {
        scopes.push("sign you in");
    }
    let page = ConsentPage {
        signed_in_as: Some(b.user.username.clone()),
        csrf: b.csrf.clone(),
        is_admin: b.user.is_admin,
        action: paths::AUTHORIZE_CONSENT,
        request: r.raw.clone(),
        app_name: r.app.display_name.clone(),
        client_id: r.app.client_id.clone(),
        username: b.user.username.clone(),
        scopes,
        return_to: form_action_source(&r.req.redirect_uri).unwrap_or_else(|| r.req.redirect_uri.clone()),
    };
    allow_form_to(render(StatusCode::OK, &page), &r.req.redirect_uri)
}

/// Issues a code to the app for `b`, storing `consent` with it when just given.
pub async fn issue(
    state: &AppState,
    r: &Request,
    b: &Browser,
    consent: Option<ConsentRecord>,
    ip: IpAddr,
    user_agent: &str,
) -> StepResult {
    let code = Secret::generate(SecretKind::AuthorizationCode, &mut rand::rngs::OsRng);
    let t = now();
    let new = NewAuthorizationCode {
        code_hash: code.hash(),
        client_id: r.app.client_id.clone(),
        user_id: b.user.id.clone(),
        redirect_uri: r.req.redirect_uri.clone(),
        scope: r.req.scope(),
        nonce: r.req.nonce.clone(),
        code_challenge: r.req.code_challenge.clone(),
        auth_time: b.signed_in_at,
        amr: b.amr.clone(),
        expires_at: Timestamp::from_millis(t.as_millis() + CODE_LIFETIME_MS),
        ip: ip.to_string(),
        user_agent: user_agent.chars().take(512).collect(),
    };
    let (uri, s) = (&r.req.redirect_uri, r.req.state.as_deref());
    if let Err(refusal) = state.store.issue_authorization_code(new, consent, t).await? {
        return Err(Stop::App(back_to_app(state, uri, s, ErrorCode::ServerRefused, &refusal.to_string())));
    }
    let mut params = vec![("code", code.expose())];
    if let Some(s) = s {
        params.push(("state", s));
    }
    params.push(("iss", state.config.public_url.as_str()));
    Ok(Redirect::to(&redirect_with(uri, &params)).into_response())
}

/// The consent the person gives now: what they granted before, and these scopes.
pub async fn consent_given(state: &AppState, r: &Request, b: &Browser) -> Result<ConsentRecord, Stop> {
    let before = state.store.consent(UserId(&b.user.id), AppId(&r.app.client_id)).await?;
    Ok(ConsentRecord {
        user_id: b.user.id.clone(),
        client_id: r.app.client_id.clone(),
        scope: consent_union(before.as_ref().map_or("", |c| c.scope.as_str()), &r.req.scopes),
        granted_at: now(),
    })
}

/// The CSP source that lets a form on our page end at `redirect_uri`: browsers
/// check `form-action` against the redirect that follows a form submission.
fn form_action_source(redirect_uri: &str) -> Option<String> {
    let u = url::Url::parse(redirect_uri).ok()?;
    match u.scheme() {
        "http" | "https" => {
            let host = u.host_str()?;
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            Some(format!("{}://{host}{port}", u.scheme()))
        }
        scheme => Some(format!("{scheme}:")),
    }
}

/// `resp` with a CSP whose `form-action` also admits the app's redirect URI.
pub(crate) fn allow_form_to(mut resp: Response, redirect_uri: &str) -> Response {
    let Some(source) = form_action_source(redirect_uri) else { return resp };
    let csp = crate::CSP.replace("form-action 'self'", &format!("form-action 'self' {source}"));
    if let Ok(v) = HeaderValue::from_str(&csp) {
        resp.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    resp
}
