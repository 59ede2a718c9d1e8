//! The device registry API: list, rename, move, revoke (`/api/v1/devices`).

use crate::credential::{csrf_header, Caller};
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::routes::no_store;
use crate::state::{now, AppState};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use latchkey_domain::device::{DeviceStatus, Location};
use latchkey_domain::names::DisplayName;
use latchkey_proto::api::{DeviceInfo, DeviceUpdate, LocationEntry};
use latchkey_store::{Actor, DeviceId, UserId};
use latchkey_store::{DeviceRecord, RevokeDevice};

/// How the API shows a device; `current` marks the one asking.
pub fn info(d: DeviceRecord, current: Option<&str>) -> DeviceInfo {
    DeviceInfo {
        current: current == Some(d.id.as_str()),
        key_bound: d.jkt.is_some(),
        status: d.status.as_str().into(),
        id: d.id,
        name: d.display_name,
        slug: d.slug,
        location: d.location,
        platform: d.platform,
        client_version: d.client_version,
        created_at_ms: d.created_at.as_millis(),
        last_seen_at_ms: d.last_seen_at.map(|t| t.as_millis()),
        revoked_at_ms: d.revoked_at.map(|t| t.as_millis()),
    }
}

/// Whether a path ID can name anything: IDs are UUIDs, so anything else (a NUL
/// byte, 10 KB of text) is answered 404 without touching the database.
pub fn is_id(id: &str) -> bool {
    uuid::Uuid::parse_str(id).is_ok()
}

fn no_such_device(id: &str) -> ApiError {
    ApiError::not_found(format!("you have no device {id:?}; `latchkey devices list` shows their IDs"))
}

/// `GET /api/v1/devices`: the signed-in user's devices, newest first.
pub async fn list(State(state): State<AppState>, who: Caller) -> ApiResult<axum::Json<Vec<DeviceInfo>>> {
    let devices = state.store.devices(UserId(&who.user.id)).await?;
    Ok(axum::Json(devices.into_iter().map(|d| info(d, who.device_id())).collect()))
}

/// `GET /api/v1/devices/{id}/locations`: where a device has been, oldest first.
pub async fn locations(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<LocationEntry>>> {
    if !is_id(&id) {
        return Err(no_such_device(&id));
    }
    let owned = state.store.device(DeviceId(&id)).await?.filter(|d| d.owner_id == who.user.id);
    if owned.is_none() {
        return Err(no_such_device(&id));
    }
    let history = state.store.location_history(DeviceId(&id)).await?;
    Ok(axum::Json(
        history
            .into_iter()
            .map(|h| LocationEntry { location: h.location, effective_at_ms: h.effective_at.as_millis() })
            .collect(),
    ))
}

/// `PATCH /api/v1/devices/{id}`: rename (the slug stays) and/or move from now on.
pub async fn update(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(req): Json<DeviceUpdate>,
) -> ApiResult<axum::Json<DeviceInfo>> {
    who.check_csrf(csrf_header(&headers))?;
    let changed = change(&state, &who, &id, req.name.as_deref(), req.location.as_deref()).await?;
    Ok(axum::Json(info(changed, who.device_id())))
}

/// Renames (the slug stays) and/or moves one of the signed-in user's devices
/// (shared by the API and the Devices page; the caller checks CSRF).
pub async fn change(
    state: &AppState,
    who: &Caller,
    id: &str,
    name: Option<&str>,
    location: Option<&str>,
) -> ApiResult<DeviceRecord> {
    if !is_id(id) {
        return Err(no_such_device(id));
    }
    if name.is_none() && location.is_none() {
        return Err(ApiError::invalid_request("send a new name, a new location, or both"));
    }
    let name = name.map(DisplayName::parse).transpose().map_err(|e| ApiError::invalid_request(e.to_string()))?;
    let location = location.map(Location::parse).transpose().map_err(|e| ApiError::invalid_request(e.to_string()))?;
    let mut current = state
        .store
        .device(DeviceId(id))
        .await?
        .filter(|d| d.owner_id == who.user.id)
        .ok_or_else(|| no_such_device(id))?;
    if current.status == DeviceStatus::Revoked {
        return Err(ApiError::conflict("this device is revoked; it cannot be changed"));
    }
    if let Some(n) = name {
        current = state
            .store
            .rename_device(DeviceId(id), UserId(&who.user.id), n.as_str(), now())
            .await?
            .ok_or_else(|| no_such_device(id))?;
    }
    if let Some(l) = location {
        let l = l.name().map(str::to_string);
        current = state
            .store
            .relocate_device(DeviceId(id), UserId(&who.user.id), l, now())
            .await?
            .ok_or_else(|| no_such_device(id))?;
    }
    Ok(current)
}

/// `DELETE /api/v1/devices/{id}`: revoke a device; its tokens stop working at once.
pub async fn revoke(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    who.check_csrf(csrf_header(&headers))?;
    let revoked = revoke_own(&state, &who, &id).await?;
    Ok(no_store(info(revoked, who.device_id())))
}

/// Revokes one of the signed-in user's devices and all its tokens at once
/// (shared by the API and the Devices page; the caller checks CSRF).
pub async fn revoke_own(state: &AppState, who: &Caller, id: &str) -> ApiResult<DeviceRecord> {
    if !is_id(id) {
        return Err(no_such_device(id));
    }
    match state.store.revoke_device(DeviceId(id), Some(UserId(&who.user.id)), Actor(&who.user.id), now()).await? {
        RevokeDevice::Revoked(d) => Ok(*d),
        RevokeDevice::AlreadyRevoked => Err(ApiError::conflict("this device is already revoked")),
        RevokeDevice::NotFound => Err(no_such_device(id)),
    }
}
