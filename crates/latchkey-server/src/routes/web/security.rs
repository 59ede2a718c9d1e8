//! The Security page: a person's passkeys (listed with when they were added
//! and last used, added, removed) and their password, which they may remove
//! once a passkey can take its place. Removing the last way to sign in is
//! refused by `latchkey_domain::passkey`; the WebAuthn work is in [`crate::passkeys`].

use super::pages::{render, signin_redirect, PageResult, When};
use super::passkey_sign_in::options_response;
use crate::credential::{csrf_header, Caller};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ClientIp, Form, Json, Query};
use crate::passkeys;
use crate::state::{now, AppState};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use latchkey_store::UserId;
use serde::Deserialize;

/// One passkey as the page lists it.
struct Row {
    id: String,
    name: String,
    created: When,
    last_used: Option<When>,
}

#[derive(Template)]
#[template(path = "security.html")]
struct SecurityPage {
    signed_in_as: Option<String>,
    csrf: String,
    is_admin: bool,
    available: bool,
    passkeys: Vec<Row>,
    has_password: bool,
    notice: Option<&'static str>,
    error: Option<String>,
}

async fn page(
    state: &AppState,
    w: &Caller,
    status: StatusCode,
    notice: Option<&'static str>,
    error: Option<String>,
) -> PageResult {
    let t = now();
    let passkeys = state
        .store
        .passkeys(UserId(&w.user.id))
        .await?
        .into_iter()
        .map(|p| Row {
            id: p.id,
            name: p.name,
            created: When::at(p.created_at.as_millis(), t),
            last_used: p.last_used_at.map(|u| When::at(u.as_millis(), t)),
        })
        .collect();
    Ok(render(
        status,
        &SecurityPage {
            signed_in_as: Some(w.user.username.clone()),
            csrf: w.csrf(),
            is_admin: w.user.is_admin,
            available: state.webauthn.is_some(),
            passkeys,
            has_password: w.user.has_password(),
            notice,
            error,
        },
    ))
}

/// `?done=…` after a change (a fixed message per value, never echoed text).
#[derive(Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

/// `GET /security`.
pub async fn show(State(state): State<AppState>, who: Option<Caller>, Query(q): Query<DoneQuery>) -> PageResult {
    let Some(w) = who else { return Ok(signin_redirect("/security")) };
    let notice = match q.done.as_deref() {
        Some("added") => Some("Passkey added. You can sign in with it from now on."),
        Some("removed") => Some("Passkey removed. It can no longer sign in."),
        Some("password") => Some("Password removed. You sign in with your passkeys only."),
        _ => None,
    };
    page(&state, &w, StatusCode::OK, notice, None).await
}

/// A signed-in browser's JSON request, with the session's CSRF token as `X-CSRF-Token`.
fn checked(who: Option<Caller>, headers: &HeaderMap) -> ApiResult<Caller> {
    let w = who.ok_or_else(|| ApiError::forbidden("sign in first"))?;
    w.check_csrf(csrf_header(headers))?;
    Ok(w)
}

/// `POST /security/passkeys/options`: a registration challenge for the signed-in person.
pub async fn register_options(
    State(state): State<AppState>,
    who: Option<Caller>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let w = checked(who, &headers)?;
    Ok(options_response(passkeys::start_registration(&state, &w.user).await?))
}

/// A new passkey: its name and the browser's answer.
#[derive(Deserialize)]
pub struct NewPasskeyBody {
    name: String,
    credential: webauthn_rs::prelude::RegisterPublicKeyCredential,
}

/// `POST /security/passkeys`: stores the passkey the browser just made.
pub async fn register(
    State(state): State<AppState>,
    who: Option<Caller>,
    headers: HeaderMap,
    Json(body): Json<NewPasskeyBody>,
) -> ApiResult<Response> {
    let w = checked(who, &headers)?;
    passkeys::finish_registration(&state, &headers, &w.user, &body.credential, &body.name).await?;
    Ok(axum::Json(serde_json::json!({"added": true})).into_response())
}

/// A form with only a CSRF token.
#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// Shows a refusal on the page, or fails the request for anything else.
async fn refused(state: &AppState, w: &Caller, e: ApiError) -> PageResult {
    match e {
        e @ ApiError::Protocol { .. } => {
            let (status, _, msg) = e.parts();
            page(state, w, status, None, Some(msg)).await
        }
        e => Err(e.into()),
    }
}

/// `POST /security/passkeys/{id}/remove`.
pub async fn remove(
    State(state): State<AppState>,
    who: Option<Caller>,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> PageResult {
    let Some(w) = who else { return Ok(signin_redirect("/security")) };
    w.check_csrf(Some(&f.csrf))?;
    match state.store.remove_passkey(UserId(&w.user.id), &id, now()).await? {
        Ok(()) => Ok(Redirect::to("/security?done=removed").into_response()),
        Err(r) => refused(&state, &w, r.into()).await,
    }
}

/// `POST /security/reauth/options`: a challenge only the person's own passkeys can answer.
pub async fn reauth_options(
    State(state): State<AppState>,
    who: Option<Caller>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let w = checked(who, &headers)?;
    Ok(options_response(passkeys::start_reauth(&state, &w.user).await?))
}

/// Removing the password: confirmed by the current password or a passkey's answer.
#[derive(Deserialize)]
pub struct RemovePasswordForm {
    csrf: String,
    current_password: Option<String>,
    credential: Option<String>,
}

/// `POST /security/password/remove`.
pub async fn remove_password(
    State(state): State<AppState>,
    who: Option<Caller>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(f): Form<RemovePasswordForm>,
) -> PageResult {
    let Some(w) = who else { return Ok(signin_redirect("/security")) };
    w.check_csrf(Some(&f.csrf))?;
    let confirmed = match (&f.credential, &f.current_password) {
        (Some(c), _) if !c.is_empty() => match serde_json::from_str(c) {
            Ok(answer) => passkeys::finish_reauth(&state, &headers, &w.user, &answer).await.map(Some),
            Err(_) => Err(ApiError::invalid_request("the passkey's answer could not be read; try again")),
        },
        (_, Some(p)) => crate::sign_in::confirm_password(&state, &w.user, p, ip).await.map(|()| None),
        _ => Err(ApiError::invalid_request("confirm with your current password or a passkey")),
    };
    let confirmed_with = match confirmed {
        Ok(used) => used,
        Err(e) => return refused(&state, &w, e).await,
    };
    match state.store.remove_password(UserId(&w.user.id), confirmed_with, now()).await? {
        Ok(()) => Ok(Redirect::to("/security?done=password").into_response()),
        Err(r) => refused(&state, &w, r.into()).await,
    }
}
