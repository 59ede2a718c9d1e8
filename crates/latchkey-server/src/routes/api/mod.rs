//! Latchkey's own JSON API (`/api/v1`): sessions, the signed-in user, device
//! logins, the device registry, enrollment, and QR sign-in.

pub mod audit;
pub mod channel;
pub mod device;
pub mod devices;
pub mod enroll;
pub mod enrollment_keys;
pub mod events;
pub mod me;
pub mod openapi;
pub mod pairings;
pub mod password;
pub mod session;
pub mod sign_ins;
pub mod trust;
pub mod trusted_sessions;

use crate::error::ApiError;
use crate::state::AppState;
use axum::routing::{any, delete, get, patch, post, put};
use axum::Router;
use latchkey_proto::paths;

/// The `/api/v1` routes, with a JSON 404 for unknown API paths.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::AUDIT_CHECKPOINT, get(audit::checkpoint))
        .route(paths::AUDIT_KEYS, get(audit::keys))
        .route(paths::AUDIT_CONSISTENCY, get(audit::consistency))
        .route(paths::AUDIT_INCLUSION, get(audit::inclusion))
        .route(paths::SESSION, post(session::create_session).delete(session::delete_session))
        .route(paths::ME, get(me::me))
        .route(paths::PASSWORD, post(password::change))
        .route(paths::DEVICES, get(devices::list))
        .route(paths::DEVICE, patch(devices::update).delete(devices::revoke))
        .route(paths::DEVICE_LOCATIONS, get(devices::locations))
        .route(paths::EVENTS, get(events::pull).post(events::ingest))
        .route(paths::EVENT_KINDS, get(events::kinds))
        .route(paths::EVENT_KIND, put(events::declare))
        .route(paths::SIGN_INS, get(sign_ins::list))
        .route(paths::SIGN_IN, delete(sign_ins::end))
        .route(paths::ENROLLMENT_KEYS, get(enrollment_keys::list).post(enrollment_keys::create))
        .route(paths::ENROLLMENT_KEY, delete(enrollment_keys::revoke))
        .route(paths::ENROLL, post(enroll::enroll))
        .route(paths::PAIRINGS, post(pairings::start_api))
        .route(paths::PAIRING_QR, get(pairings::image))
        .route(paths::PAIRING_WAIT, post(pairings::wait))
        .route(paths::PAIRING_CANCEL, post(pairings::cancel))
        .route(paths::PAIRING_DECISION, post(pairings::decide_api))
        .route(paths::DEVICE_LOOKUP, post(device::lookup))
        .route(paths::DEVICE_DECISION, post(device::decide))
        .route(paths::TRUSTS, get(trust::list).post(trust::add))
        .route(paths::TRUST, delete(trust::remove))
        .route(paths::DEVICE_KEYS, get(trust::device_keys))
        .route(paths::DEVICE_KEY, post(trust::rotate))
        .route(paths::DEVICE_SESSION_KEY, put(trust::publish_session_key))
        .route(paths::TRUSTED_SESSIONS, get(trusted_sessions::list).post(trusted_sessions::create))
        .route(paths::TRUSTED_SESSION_PLAN, post(trusted_sessions::plan))
        .route(paths::TRUSTED_SESSION, get(trusted_sessions::show).delete(trusted_sessions::close))
        .route(paths::TRUSTED_SESSION_INVITATIONS, post(trusted_sessions::issue))
        .route(paths::TRUSTED_SESSION_JOIN, post(trusted_sessions::join))
        .route(paths::TRUSTED_SESSION_LEAVE, post(trusted_sessions::leave))
        .route(paths::TRUSTED_SESSION_MESSAGES, post(trusted_sessions::send))
        .route(paths::CHANNEL, get(channel::channel))
        .route(paths::OPENAPI, get(openapi::document))
        .route(paths::API_OTHER, any(not_found))
}

/// Fallback for unknown API paths: a JSON 404, not an HTML page.
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such API endpoint")
}
