//! Enrollment keys (`/api/v1/enrollment-keys`): one-time or reusable keys that
//! provision machines which can never open a browser.

use crate::credential::{csrf_header, Caller};
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::routes::no_store;
use crate::state::{now, AppState};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use latchkey_domain::device::parse_tag;
use latchkey_domain::secret::{Secret, SecretKind};
use latchkey_proto::api::{EnrollmentKeyCreated, EnrollmentKeyInfo, EnrollmentKeyRequest};
use latchkey_store::{Actor, EnrollmentKeyId, UserId};
use latchkey_store::{EnrollmentKeyRecord, NewEnrollmentKey};

/// Longest lifetime of a key a user makes for their own machine.
pub const USER_KEY_MAX_SECS: i64 = 3600;
/// Lifetime when none is asked for.
pub const DEFAULT_KEY_SECS: i64 = 900;

/// How the API shows a key (never its secret).
pub fn key_info(k: EnrollmentKeyRecord) -> EnrollmentKeyInfo {
    EnrollmentKeyInfo {
        id: k.id,
        owner: k.owner_name,
        reusable: k.reusable,
        expires_at_ms: k.expires_at.as_millis(),
        tag: k.tag,
        uses: k.uses,
        revoked: k.revoked_at.is_some(),
    }
}

/// Makes a new key secret and the record to store (shared with `latchkey admin enroll-key create`).
pub fn new_key(
    owner_id: &str,
    reusable: bool,
    lifetime_secs: i64,
    tag: Option<String>,
    created_by: &str,
) -> (Secret, NewEnrollmentKey) {
    let secret = Secret::generate(SecretKind::EnrollmentKey, &mut rand::rngs::OsRng);
    let key = NewEnrollmentKey {
        id: uuid::Uuid::now_v7().to_string(),
        key_hash: secret.hash(),
        owner_id: owner_id.to_string(),
        reusable,
        expires_at: now().plus_secs(lifetime_secs),
        tag,
        created_by: created_by.to_string(),
    };
    (secret, key)
}

/// `POST /api/v1/enrollment-keys`: a key for one of the caller's own new machines.
pub async fn create(
    State(state): State<AppState>,
    who: Caller,
    headers: HeaderMap,
    Json(req): Json<EnrollmentKeyRequest>,
) -> ApiResult<Response> {
    who.check_csrf(csrf_header(&headers))?;
    let (secret, info) = create_for(&state, &who, &req).await?;
    Ok(no_store(EnrollmentKeyCreated { key: secret.expose().to_string(), info }))
}

/// Makes and stores a key owned by the signed-in user (shared by the API and the
/// Devices page; the caller checks CSRF). Users get short-lived single-use keys;
/// admins may make reusable, longer ones. The secret is returned once, here.
pub async fn create_for(
    state: &AppState,
    who: &Caller,
    req: &EnrollmentKeyRequest,
) -> ApiResult<(Secret, EnrollmentKeyInfo)> {
    let lifetime = req.expires_in.unwrap_or(DEFAULT_KEY_SECS);
    if lifetime <= 0 {
        return Err(ApiError::invalid_request("expires_in must be a positive number of seconds"));
    }
    if !who.user.is_admin && (req.reusable || lifetime > USER_KEY_MAX_SECS) {
        return Err(ApiError::forbidden(format!(
            "only admins can make reusable keys or keys that live longer than {USER_KEY_MAX_SECS} seconds"
        )));
    }
    let tag = req
        .tag
        .as_deref()
        .map(|t| parse_tag("tag", t))
        .transpose()
        .map_err(|e| ApiError::invalid_request(e.to_string()))?;
    let (secret, key) = new_key(&who.user.id, req.reusable, lifetime, tag, &who.user.id);
    let id = key.id.clone();
    state.store.create_enrollment_key(key, now()).await?;
    let stored = state
        .store
        .enrollment_keys(Some(UserId(&who.user.id)))
        .await?
        .into_iter()
        .find(|k| k.id == id)
        .ok_or_else(|| ApiError::Internal("the new enrollment key was not found".into()))?;
    Ok((secret, key_info(stored)))
}

/// `GET /api/v1/enrollment-keys`: the caller's keys (admins: everyone's), without secrets.
pub async fn list(State(state): State<AppState>, who: Caller) -> ApiResult<axum::Json<Vec<EnrollmentKeyInfo>>> {
    let owner = (!who.user.is_admin).then_some(who.user.id.as_str());
    let keys = state.store.enrollment_keys(owner.map(UserId)).await?;
    Ok(axum::Json(keys.into_iter().map(key_info).collect()))
}

/// `DELETE /api/v1/enrollment-keys/{id}`.
pub async fn revoke(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    who.check_csrf(csrf_header(&headers))?;
    let owner = (!who.user.is_admin).then_some(who.user.id.as_str());
    if super::devices::is_id(&id)
        && state
            .store
            .revoke_enrollment_key(EnrollmentKeyId(&id), owner.map(UserId), Actor(&who.user.id), now())
            .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("no live enrollment key with this ID"))
    }
}
