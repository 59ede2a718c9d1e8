//! The OpenID Connect authorization endpoint (code flow with PKCE, `GET` and
//! `POST` as OIDC Core §3.1.2.1 requires) and the two forms it shows: its own
//! sign-in, and consent. Each step re-checks the whole request; the steps
//! themselves are in `web_sign_in.rs`.

use crate::credential::Caller;
use crate::extract::{ClientIp, Form, UserAgent};
use crate::routes::web::pages::{signin_csrf_ok, with_new_session};
use crate::sign_in;
use crate::state::{now, AppState};
use crate::web_sign_in::{self as web, Browser, StepResult, Stop};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use latchkey_domain::authorization::ErrorCode;
use latchkey_domain::passkey::SignInMethod;
use serde::Deserialize;

/// `GET /oauth/authorize`.
pub async fn get(
    State(state): State<AppState>,
    who: Option<Caller>,
    ClientIp(ip): ClientIp,
    UserAgent(ua): UserAgent,
    RawQuery(query): RawQuery,
) -> StepResult {
    let pairs = web::pairs_of(query.as_deref().unwrap_or(""));
    start(&state, who, ip, &ua, pairs).await
}

/// `POST /oauth/authorize` (form-encoded parameters).
pub async fn post(
    State(state): State<AppState>,
    who: Option<Caller>,
    ClientIp(ip): ClientIp,
    UserAgent(ua): UserAgent,
    Form(pairs): Form<Vec<(String, String)>>,
) -> StepResult {
    start(&state, who, ip, &ua, pairs).await
}

async fn start(
    state: &AppState,
    who: Option<Caller>,
    ip: std::net::IpAddr,
    ua: &str,
    pairs: Vec<(String, String)>,
) -> StepResult {
    let r = web::read(state, pairs).await?;
    let browser = Browser::of(who.as_ref());
    web::proceed(state, &r, browser.as_ref(), false, ip, ua).await
}

/// The authorization endpoint's sign-in form.
#[derive(Deserialize)]
pub struct SignInForm {
    csrf: String,
    request: String,
    username: String,
    password: String,
}

/// `POST /oauth/authorize/sign-in`: checks the password, opens a session, and
/// goes on with the request as freshly signed in (so `prompt=login` and
/// `max_age` are met rather than asked again).
pub async fn sign_in(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    UserAgent(ua): UserAgent,
    headers: HeaderMap,
    Form(f): Form<SignInForm>,
) -> StepResult {
    let r = web::read(&state, web::pairs_of(&f.request)).await?;
    if !signin_csrf_ok(&state, &headers, &f.csrf) {
        let msg = "The form expired. Please sign in again.".to_string();
        return Ok(web::sign_in_page(&state, &r, StatusCode::FORBIDDEN, f.username, Some(msg)));
    }
    let (user, token) = match sign_in::with_password(&state, &f.username, &f.password, ip, &ua).await {
        Ok(ok) => ok,
        Err(e @ crate::error::ApiError::Protocol { .. }) => {
            let (status, _, msg) = e.parts();
            return Ok(web::sign_in_page(&state, &r, status, f.username, Some(msg)));
        }
        Err(e) => return Err(e.into()),
    };
    signed_in(&state, &r, user, &token, SignInMethod::Password, ip, &ua).await
}

/// Goes on with `r` for someone who just signed in, opening their session.
async fn signed_in(
    state: &AppState,
    r: &web::Request,
    user: latchkey_store::UserRecord,
    token: &latchkey_domain::secret::Secret,
    method: SignInMethod,
    ip: std::net::IpAddr,
    ua: &str,
) -> StepResult {
    let csrf = crate::session::csrf_for(token.expose());
    let browser = Browser { user, signed_in_at: now(), csrf, amr: method.amr().into() };
    let resp = match web::proceed(state, r, Some(&browser), true, ip, ua).await {
        Ok(resp) => resp,
        Err(Stop::App(resp)) => resp,
        Err(stop) => return Err(stop),
    };
    Ok(with_new_session(state, resp, token))
}

/// The authorization endpoint's passkey sign-in form (the browser filled in `credential`).
#[derive(Deserialize)]
pub struct PasskeyForm {
    csrf: String,
    request: String,
    credential: String,
}

/// `POST /oauth/authorize/passkey`: checks the passkey's answer, opens a
/// session that signed in with it, and goes on with the request exactly as
/// after a password (so the ID token's `amr` says `hwk`, `user`).
pub async fn passkey(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    UserAgent(ua): UserAgent,
    headers: HeaderMap,
    Form(f): Form<PasskeyForm>,
) -> StepResult {
    let r = web::read(&state, web::pairs_of(&f.request)).await?;
    if !signin_csrf_ok(&state, &headers, &f.csrf) {
        let msg = "The form expired. Please sign in again.".to_string();
        return Ok(web::sign_in_page(&state, &r, StatusCode::FORBIDDEN, String::new(), Some(msg)));
    }
    let (user, token) =
        match crate::routes::web::passkey_sign_in::verify(&state, &headers, &f.credential, ip, &ua).await {
            Ok(ok) => ok,
            Err(e @ crate::error::ApiError::Protocol { .. }) => {
                let (status, _, msg) = e.parts();
                return Ok(web::sign_in_page(&state, &r, status, String::new(), Some(msg)));
            }
            Err(e) => return Err(e.into()),
        };
    signed_in(&state, &r, user, &token, SignInMethod::Passkey, ip, &ua).await
}

/// The consent form.
#[derive(Deserialize)]
pub struct ConsentForm {
    csrf: String,
    request: String,
    decision: String,
}

/// `POST /oauth/authorize/consent`: allow (remembered, audited, and a code
/// issued in one transaction) or deny (`access_denied` back to the app).
pub async fn consent(
    State(state): State<AppState>,
    who: Option<Caller>,
    ClientIp(ip): ClientIp,
    UserAgent(ua): UserAgent,
    Form(f): Form<ConsentForm>,
) -> StepResult {
    let r = web::read(&state, web::pairs_of(&f.request)).await?;
    let Some(browser) = Browser::of(who.as_ref()) else {
        // Signed out in between: sign in again, then this request goes on.
        return Ok(web::sign_in_page(&state, &r, StatusCode::OK, String::new(), None));
    };
    if let Some(w) = &who {
        w.check_csrf(Some(&f.csrf))?;
    }
    match f.decision.as_str() {
        "allow" => {
            let given = web::consent_given(&state, &r, &browser).await?;
            web::issue(&state, &r, &browser, Some(given), ip, &ua).await
        }
        "deny" => Err(Stop::App(web::back_to_app(
            &state,
            &r.req.redirect_uri,
            r.req.state.as_deref(),
            ErrorCode::AccessDenied,
            "the person did not allow this app to sign them in",
        ))),
        _ => Err(crate::error::ApiError::invalid_request("decision must be allow or deny").into()),
    }
}
