//! Sign-ins that are not devices (`/api/v1/sign-ins`): a user's browser
//! sessions and app web sign-ins (QR sign-ins), listed and ended one by one.
//! Devices have their own registry (`/api/v1/devices`).

use crate::credential::{csrf_header, Caller};
use crate::error::{ApiError, ApiResult};
use crate::state::{now, AppState};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use latchkey_domain::Timestamp;
use latchkey_proto::api::SignInInfo;
use latchkey_store::{Actor, SignInKind, SignInRecord, UserId};

pub use latchkey_proto::api::NEW_FOR_SECS;

/// What the API calls Latchkey's own pages, where an app name would go.
pub const LATCHKEY: &str = "Latchkey";

/// How the API shows a sign-in; `current` marks the one asking.
pub fn info(r: SignInRecord, current: &str) -> SignInInfo {
    SignInInfo {
        current: r.id == current,
        kind: r.kind.as_str().into(),
        app: match r.kind {
            SignInKind::Browser => LATCHKEY.into(),
            SignInKind::App => r.app_name.or_else(|| r.client_id.clone()).unwrap_or_default(),
        },
        id: r.id,
        client_id: r.client_id,
        user_agent: r.user_agent,
        ip: r.ip,
        created_at_ms: r.created_at.as_millis(),
    }
}

/// The user's live sign-ins that are not devices, newest first. An app sign-in
/// with no refresh token is live while its access tokens may be: one access-token
/// lifetime. `since`, when given, keeps only those started from then on.
pub async fn of(state: &AppState, who: &Caller, since: Option<Timestamp>) -> ApiResult<Vec<SignInInfo>> {
    let t = now();
    let live_since = t.plus_secs(-state.config.access_token_lifetime_secs());
    let from = since.map_or(live_since, |s| s.min(live_since));
    let all = state.store.sign_ins(UserId(&who.user.id), from, t).await?;
    let keep = |r: &SignInRecord| match since {
        Some(s) => r.created_at >= s,
        None => true,
    };
    Ok(all.into_iter().filter(keep).map(|r| info(r, who.sign_in_id())).collect())
}

/// IDs are UUIDs (with or without dashes) or 32 hex digits; anything else names nothing.
fn is_sign_in_id(id: &str) -> bool {
    (32..=36).contains(&id.len()) && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

fn no_such_sign_in(id: &str) -> ApiError {
    ApiError::not_found(format!("you have no live sign-in {id:?}; `latchkey sessions list` shows their IDs"))
}

/// Ends one of the signed-in user's sign-ins at once (shared by the API and the
/// pages; the caller checks CSRF). Ending the caller's own is signing out.
pub async fn end_own(state: &AppState, who: &Caller, id: &str) -> ApiResult<SignInInfo> {
    if !is_sign_in_id(id) {
        return Err(no_such_sign_in(id));
    }
    let t = now();
    // Back as far as new sign-ins are announced, so "Not you? Revoke" works for all of them.
    let since = t.plus_secs(-NEW_FOR_SECS.max(state.config.access_token_lifetime_secs()));
    let found = state.store.sign_ins(UserId(&who.user.id), since, t).await?.into_iter().find(|r| r.id == id);
    let Some(found) = found else { return Err(no_such_sign_in(id)) };
    match state.store.end_sign_in(UserId(&who.user.id), id, Actor(&who.user.id), t).await? {
        Some(_) => Ok(info(found, who.sign_in_id())),
        None => Err(no_such_sign_in(id)),
    }
}

/// `GET /api/v1/sign-ins`.
pub async fn list(State(state): State<AppState>, who: Caller) -> ApiResult<axum::Json<Vec<SignInInfo>>> {
    Ok(axum::Json(of(&state, &who, None).await?))
}

/// `DELETE /api/v1/sign-ins/{id}`: its tokens (or session) stop working at once.
pub async fn end(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<axum::Json<SignInInfo>> {
    who.check_csrf(csrf_header(&headers))?;
    Ok(axum::Json(end_own(&state, &who, &id).await?))
}
