//! Latchkey's own JSON API (`/api/v1`): sessions, the signed-in user, device
//! logins, the device registry, enrollment, and QR sign-in.

pub mod device;
pub mod devices;
pub mod enroll;
pub mod enrollment_keys;
pub mod me;
pub mod pairings;
pub mod session;

use crate::error::ApiError;
use crate::routes::paths;
use crate::state::AppState;
use axum::routing::{any, delete, get, patch, post};
use axum::Router;

/// The `/api/v1` routes, with a JSON 404 for unknown API paths.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/session", post(session::create_session).delete(session::delete_session))
        .route("/api/v1/me", get(me::me))
        .route("/api/v1/devices", get(devices::list))
        .route("/api/v1/devices/{id}", patch(devices::update).delete(devices::revoke))
        .route("/api/v1/devices/{id}/locations", get(devices::locations))
        .route("/api/v1/enrollment-keys", get(enrollment_keys::list).post(enrollment_keys::create))
        .route("/api/v1/enrollment-keys/{id}", delete(enrollment_keys::revoke))
        .route(paths::ENROLL, post(enroll::enroll))
        .route("/api/v1/pairings", post(pairings::start_api))
        .route("/api/v1/pairings/qr", get(pairings::image))
        .route("/api/v1/pairings/wait", post(pairings::wait))
        .route("/api/v1/pairings/cancel", post(pairings::cancel))
        .route("/api/v1/pairings/decision", post(pairings::decide_api))
        .route("/api/v1/device/lookup", post(device::lookup))
        .route("/api/v1/device/decision", post(device::decide))
        .route("/api/v1/{*rest}", any(not_found))
}

/// Fallback for unknown API paths: a JSON 404, not an HTML page.
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such API endpoint")
}
