//! The Devices page: every device of the signed-in user, rename, move, revoke
//! (after a confirmation step), and one-time enrollment keys for new machines.
//!
//! The work is done by the same functions as the JSON API (`devices::change`,
//! `devices::revoke_own`, `enrollment_keys::create_for`); this file only shows forms.

use super::pages::{render, signin_redirect, PageError, PageResult, When};
use super::sign_ins::{NewsItem, SignInRow};
use crate::credential::Caller;
use crate::error::ApiError;
use crate::extract::{Form, Query};
use crate::routes::api::{devices, enrollment_keys};
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use latchkey_proto::api::{DeviceInfo, EnrollmentKeyRequest};
use latchkey_proto::trust::TrustInfo;
use latchkey_store::{DeviceId, UserId};
use serde::Deserialize;

/// A device as the page shows it.
struct DeviceRow {
    d: DeviceInfo,
    active: bool,
    created: When,
    last_seen: Option<When>,
    revoked: Option<When>,
}

impl DeviceRow {
    fn new(d: DeviceInfo) -> Self {
        DeviceRow {
            active: d.status == "active",
            created: When::from_now(d.created_at_ms),
            last_seen: d.last_seen_at_ms.map(When::from_now),
            revoked: d.revoked_at_ms.map(When::from_now),
            d,
        }
    }
}

#[derive(Template)]
#[template(path = "devices.html")]
struct DevicesPage {
    signed_in_as: Option<String>,
    csrf: String,
    is_admin: bool,
    devices: Vec<DeviceRow>,
    active_count: usize,
    sign_ins: Vec<SignInRow>,
    consents: Vec<super::consents::ConsentRow>,
    trusts: Vec<TrustInfo>,
    activity: super::activity::DeviceActivity,
    news: Vec<NewsItem>,
    notice: Option<&'static str>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "device_revoke.html")]
struct RevokePage {
    signed_in_as: Option<String>,
    csrf: String,
    is_admin: bool,
    row: DeviceRow,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "enroll_key.html")]
struct EnrollKeyPage {
    signed_in_as: Option<String>,
    csrf: String,
    is_admin: bool,
    key: String,
    command: String,
    expires: When,
}

/// `?done=` after a change: which fixed message to show (never echoed text).
#[derive(Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

fn notice(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "renamed" => Some("Device renamed. Its slug stays the same."),
        "moved" => Some("Location changed. The old one stays in the device's history."),
        "revoked" => Some("Device revoked. Its tokens stopped working at once."),
        "ended" => Some("Sign-in ended. It stopped working at once."),
        "untrusted" => Some("Trust removed. The two devices no longer open sessions together."),
        "withdrawn" => Some("Consent withdrawn. The app's web sign-ins ended; it will ask again next time."),
        _ => None,
    }
}

async fn list_page(
    state: &AppState,
    w: &Caller,
    status: StatusCode,
    notice: Option<&'static str>,
    error: Option<String>,
) -> PageResult {
    let devices: Vec<DeviceRow> = state
        .store
        .devices(UserId(&w.user.id))
        .await
        .map_err(ApiError::from)?
        .into_iter()
        .map(|d| DeviceRow::new(devices::info(d, w.device_id())))
        .collect();
    let active_count = devices.iter().filter(|r| r.active).count();
    let sign_ins = super::sign_ins::rows(state, w).await?;
    let consents = super::consents::rows(state, w).await?;
    let news = super::sign_ins::news(state, w).await?;
    let trusts = state.store.trusts(UserId(&w.user.id)).await.map_err(ApiError::from)?;
    let trusts = trusts.into_iter().map(crate::routes::api::trust::trust_info).collect();
    let names: Vec<(String, String)> = devices.iter().map(|r| (r.d.id.clone(), r.d.name.clone())).collect();
    let activity = super::activity::device_activity(state, &w.user.id, &names).await?;
    Ok(render(
        status,
        &DevicesPage {
            signed_in_as: Some(w.user.username.clone()),
            csrf: w.csrf(),
            is_admin: w.user.is_admin,
            devices,
            active_count,
            sign_ins,
            consents,
            trusts,
            activity,
            news,
            notice,
            error,
        },
    ))
}

/// `GET /devices`.
pub async fn list(State(state): State<AppState>, who: Option<Caller>, Query(q): Query<DoneQuery>) -> PageResult {
    let Some(w) = who else { return Ok(signin_redirect("/devices")) };
    list_page(&state, &w, StatusCode::OK, notice(q.done.as_deref()), None).await
}

/// Rename form body.
#[derive(Deserialize)]
pub struct RenameForm {
    csrf: String,
    name: String,
}

/// Move form body.
#[derive(Deserialize)]
pub struct MoveForm {
    csrf: String,
    location: String,
}

/// Runs a change; a refusal the person can fix is shown on the list, with the form.
async fn changed(state: &AppState, w: &Caller, result: Result<(), ApiError>, done: &str) -> PageResult {
    match result {
        Ok(()) => Ok(Redirect::to(&format!("/devices?done={done}")).into_response()),
        Err(e @ ApiError::Protocol { .. }) => {
            let (status, _, msg) = e.parts();
            list_page(state, w, status, None, Some(msg)).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /devices/{id}/rename`.
pub async fn rename(
    State(state): State<AppState>,
    who: Option<Caller>,
    Path(id): Path<String>,
    Form(f): Form<RenameForm>,
) -> PageResult {
    let Some(w) = who else { return Ok(signin_redirect("/devices")) };
    w.check_csrf(Some(&f.csrf))?;
    let result = devices::change(&state, &w, &id, Some(&f.name), None).await.map(drop);
    changed(&state, &w, result, "renamed").await
}

/// `POST /devices/{id}/move`.
pub async fn relocate(
    State(state): State<AppState>,
    who: Option<Caller>,
    Path(id): Path<String>,
    Form(f): Form<MoveForm>,
) -> PageResult {
    let Some(w) = who else { return Ok(signin_redirect("/devices")) };
    w.check_csrf(Some(&f.csrf))?;
    let result = devices::change(&state, &w, &id, None, Some(&f.location)).await.map(drop);
    changed(&state, &w, result, "moved").await
}

/// One of the user's own active devices, for the confirmation page.
async fn own_active(state: &AppState, w: &Caller, id: &str) -> Result<DeviceRow, PageError> {
    let gone = || ApiError::not_found("you have no such device");
    if !devices::is_id(id) {
        return Err(gone().into());
    }
    let d = state.store.device(DeviceId(id)).await.map_err(ApiError::from)?.filter(|d| d.owner_id == w.user.id);
    let row = DeviceRow::new(devices::info(d.ok_or_else(gone)?, w.device_id()));
    if !row.active {
        return Err(ApiError::conflict("this device is already revoked").into());
    }
    Ok(row)
}

fn revoke_page(w: &Caller, status: StatusCode, row: DeviceRow, error: Option<String>) -> Response {
    render(
        status,
        &RevokePage {
            signed_in_as: Some(w.user.username.clone()),
            csrf: w.csrf(),
            is_admin: w.user.is_admin,
            row,
            error,
        },
    )
}

/// `GET /devices/{id}/revoke`: what revoking means, and a confirmation form.
pub async fn revoke_form(State(state): State<AppState>, who: Option<Caller>, Path(id): Path<String>) -> PageResult {
    let Some(w) = who else { return Ok(signin_redirect("/devices")) };
    let row = own_active(&state, &w, &id).await?;
    Ok(revoke_page(&w, StatusCode::OK, row, None))
}

/// Revoke form body.
#[derive(Deserialize)]
pub struct RevokeForm {
    csrf: String,
    confirm: Option<String>,
}

/// `POST /devices/{id}/revoke`: needs the confirmation box ticked.
pub async fn revoke(
    State(state): State<AppState>,
    who: Option<Caller>,
    Path(id): Path<String>,
    Form(f): Form<RevokeForm>,
) -> PageResult {
    let Some(w) = who else { return Ok(signin_redirect("/devices")) };
    w.check_csrf(Some(&f.csrf))?;
    if f.confirm.as_deref() != Some("yes") {
        let row = own_active(&state, &w, &id).await?;
        let msg = "Tick the box to confirm, or go back to keep the device.".to_string();
        return Ok(revoke_page(&w, StatusCode::BAD_REQUEST, row, Some(msg)));
    }
    devices::revoke_own(&state, &w, &id).await?;
    Ok(Redirect::to("/devices?done=revoked").into_response())
}

/// `POST /devices/{id}/untrust/{trustee}`: device `id` no longer trusts `trustee`.
/// Trust is added only on a device (it signs with its own key); it can be removed here.
pub async fn untrust(
    State(state): State<AppState>,
    who: Option<Caller>,
    Path((id, trustee)): Path<(String, String)>,
    Form(f): Form<CsrfForm>,
) -> PageResult {
    let Some(w) = who else { return Ok(signin_redirect("/devices")) };
    w.check_csrf(Some(&f.csrf))?;
    let result = crate::routes::api::trust::remove_statement(&state, &w.user.id, &id, &trustee).await.map(drop);
    changed(&state, &w, result, "untrusted").await
}

/// A form with only a CSRF token.
#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// `POST /devices/enrollment-key`: a one-time key for a new machine, shown once.
pub async fn enrollment_key(State(state): State<AppState>, who: Option<Caller>, Form(f): Form<CsrfForm>) -> PageResult {
    let Some(w) = who else { return Ok(signin_redirect("/devices")) };
    w.check_csrf(Some(&f.csrf))?;
    let (secret, info) = enrollment_keys::create_for(&state, &w, &EnrollmentKeyRequest::default()).await?;
    let key = secret.expose().to_string();
    Ok(render(
        StatusCode::OK,
        &EnrollKeyPage {
            signed_in_as: Some(w.user.username.clone()),
            csrf: w.csrf(),
            is_admin: w.user.is_admin,
            command: format!("latchkey login --server {} --enroll-key {key}", state.config.public_url),
            key,
            expires: When::from_now(info.expires_at_ms),
        },
    ))
}
