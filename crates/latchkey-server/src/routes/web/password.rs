//! The password page: a signed-in user changes their own password. The work is
//! done by [`sign_in::change_password`], as for `POST /api/v1/password`.

use super::pages::{render, signin_redirect, PageResult};
use crate::credential::{Caller, Credential};
use crate::error::ApiError;
use crate::extract::{ClientIp, Form, Query};
use crate::sign_in;
use crate::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use latchkey_domain::secret::SecretHash;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage {
    signed_in_as: Option<String>,
    csrf: String,
    is_admin: bool,
    done: bool,
    error: Option<String>,
}

fn page(w: &Caller, status: StatusCode, done: bool, error: Option<String>) -> axum::response::Response {
    render(
        status,
        &PasswordPage {
            signed_in_as: Some(w.user.username.clone()),
            csrf: w.csrf(),
            is_admin: w.user.is_admin,
            done,
            error,
        },
    )
}

/// `?done=1` after a change (a fixed message, never echoed text).
#[derive(Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

/// `GET /password`.
pub async fn form(who: Option<Caller>, Query(q): Query<DoneQuery>) -> PageResult {
    let Some(w) = who else { return Ok(signin_redirect("/password")) };
    Ok(page(&w, StatusCode::OK, q.done.is_some(), None))
}

/// The password form's body.
#[derive(Deserialize)]
pub struct PasswordForm {
    csrf: String,
    current_password: String,
    new_password: String,
}

/// `POST /password`: changes it and keeps this browser's session; a refusal is shown with the form.
pub async fn submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    who: Option<Caller>,
    Form(f): Form<PasswordForm>,
) -> PageResult {
    let Some(w) = who else { return Ok(signin_redirect("/password")) };
    w.check_csrf(Some(&f.csrf))?;
    let keep = match &w.credential {
        Credential::Cookie { session_token, .. } | Credential::SessionToken { session_token, .. } => {
            Some(SecretHash::of(session_token))
        }
        Credential::Device { .. } => None,
    };
    match sign_in::change_password(&state, &w.user, keep.as_ref(), &f.current_password, &f.new_password, ip).await {
        Ok(()) => Ok(Redirect::to("/password?done=1").into_response()),
        Err(e @ ApiError::Protocol { .. }) => {
            let (status, _, msg) = e.parts();
            Ok(page(&w, status, false, Some(msg)))
        }
        Err(e) => Err(e.into()),
    }
}
