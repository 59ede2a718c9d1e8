//! Signing in with a passkey on the sign-in page: the options a browser asks
//! for (double-submit CSRF, like the password form), the form the script
//! submits with the passkey's answer, and the script itself. The WebAuthn work
//! is in [`crate::passkeys`]; the authorization endpoint's own passkey form is
//! `routes/oauth/authorize.rs`, which continues its request the same way.

use super::pages::{safe_next, signin_csrf_ok, signin_page, with_new_session, PageResult};
use crate::credential::csrf_header;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ClientIp, Form, UserAgent};
use crate::passkeys::{self, Started};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use latchkey_domain::secret::Secret;
use latchkey_store::UserRecord;
use serde::Deserialize;
use std::net::IpAddr;

/// Most bytes of a passkey's answer a form may carry.
const MAX_CREDENTIAL_BYTES: usize = 16 * 1024;

/// A ceremony's options as JSON, setting the cookie that names it; never cached.
pub(crate) fn options_response(started: Started) -> Response {
    let mut resp = axum::Json(started.options).into_response();
    if let Ok(v) = HeaderValue::from_str(&started.cookie) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// `POST /signin/passkey/options`: a discoverable sign-in challenge; the
/// sign-in page's CSRF token comes as `X-CSRF-Token`.
pub async fn options(State(state): State<AppState>, ClientIp(ip): ClientIp, headers: HeaderMap) -> ApiResult<Response> {
    if !signin_csrf_ok(&state, &headers, csrf_header(&headers).unwrap_or("")) {
        return Err(ApiError::forbidden("the sign-in form expired; reload the page"));
    }
    Ok(options_response(passkeys::start_sign_in(&state, ip).await?))
}

/// Reads the passkey's answer a form carried and signs in with it.
pub(crate) async fn verify(
    state: &AppState,
    headers: &HeaderMap,
    credential: &str,
    ip: IpAddr,
    ua: &str,
) -> ApiResult<(UserRecord, Secret)> {
    if credential.len() > MAX_CREDENTIAL_BYTES {
        return Err(ApiError::invalid_request("the passkey's answer is too large"));
    }
    let answer = serde_json::from_str(credential)
        .map_err(|_| ApiError::invalid_request("the passkey's answer could not be read; try again"))?;
    passkeys::finish_sign_in(state, headers, &answer, ip, ua).await
}

/// The passkey form's body.
#[derive(Deserialize)]
pub struct PasskeyForm {
    csrf: String,
    next: Option<String>,
    credential: String,
}

/// `POST /signin/passkey`: signs in with the passkey's answer and returns to `next`.
pub async fn submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    UserAgent(ua): UserAgent,
    headers: HeaderMap,
    Form(f): Form<PasskeyForm>,
) -> PageResult {
    let next = safe_next(f.next.as_deref());
    if !signin_csrf_ok(&state, &headers, &f.csrf) {
        let msg = "The form expired. Please sign in again.".to_string();
        return Ok(signin_page(&state, StatusCode::FORBIDDEN, next, String::new(), Some(msg)));
    }
    match verify(&state, &headers, &f.credential, ip, &ua).await {
        Ok((_, token)) => Ok(with_new_session(&state, Redirect::to(&next).into_response(), &token)),
        Err(e @ ApiError::Protocol { .. }) => {
            let (status, _, msg) = e.parts();
            Ok(signin_page(&state, status, next, String::new(), Some(msg)))
        }
        Err(e) => Err(e.into()),
    }
}

/// `GET /static/passkeys.js`: the one script behind every passkey button (no inline scripts).
pub async fn script() -> Response {
    let mut resp = include_str!("../../../static/passkeys.js").into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    resp
}
