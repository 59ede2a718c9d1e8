//! The web pages: sign-in (password or passkey), device approval, Devices (with other sign-ins), Security (passkeys), Apps, Users, Audit, password, and QR sign-in.

pub mod activity;
pub mod admin;
pub mod apps;
pub mod audit;
pub mod consents;
pub mod devices;
pub mod pages;
pub mod passkey_sign_in;
pub mod password;
pub mod qr;
pub mod security;
pub mod sign_ins;
pub mod users;

use crate::state::AppState;
use axum::routing::{get, post};
use axum::Router;
use latchkey_proto::paths;

/// The page routes and their static assets.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::home))
        .route("/signin", get(pages::signin_form).post(pages::signin_submit))
        .route("/signout", post(pages::signout))
        .route(paths::VERIFICATION, get(pages::device_form).post(pages::device_lookup))
        .route("/device/decision", post(pages::device_decide))
        .route("/static/latchkey.css", get(pages::stylesheet))
        .route("/healthz", get(|| async { "ok" }))
        .route(paths::QR_DESKTOP_PAGE, get(qr::retired_desktop_page))
        .route(paths::PHONE_PAGE, get(qr::phone_page))
        .route("/pair/decision", post(qr::phone_decide))
        .route("/static/qr-sign-in.js", get(qr::script))
        .route(paths::AUTHORIZE_PHONE, get(qr::web_page))
        .route(paths::AUTHORIZE_PHONE_FRESH, post(qr::web_fresh))
        .route(paths::AUTHORIZE_PHONE_DONE, get(qr::web_done))
        .route("/signin/passkey", post(passkey_sign_in::submit))
        .route("/signin/passkey/options", post(passkey_sign_in::options))
        .route("/static/passkeys.js", get(passkey_sign_in::script))
        .route("/security", get(security::show))
        .route("/security/passkeys", post(security::register))
        .route("/security/passkeys/options", post(security::register_options))
        .route("/security/passkeys/{id}/remove", post(security::remove))
        .route("/security/reauth/options", post(security::reauth_options))
        .route("/security/password/remove", post(security::remove_password))
        .route("/password", get(password::form).post(password::submit))
        .route("/devices", get(devices::list))
        .route("/devices/enrollment-key", post(devices::enrollment_key))
        .route("/devices/{id}/rename", post(devices::rename))
        .route("/devices/{id}/move", post(devices::relocate))
        .route("/devices/{id}/revoke", get(devices::revoke_form).post(devices::revoke))
        .route("/devices/{id}/untrust/{trustee}", post(devices::untrust))
        .route("/sign-ins/{id}/end", post(sign_ins::end))
        .route("/consents/{client_id}/withdraw", post(consents::withdraw))
        .route("/apps", get(apps::list).post(apps::create))
        .route("/apps/{client_id}/edit", get(apps::edit_form).post(apps::edit))
        .route("/users", get(users::list))
        .route("/users/{id}/disable", post(users::disable))
        .route("/users/{id}/enable", post(users::enable))
        .route("/users/{id}/password", get(users::password_form).post(users::password))
        .route("/users/{id}/revoke-all", get(users::revoke_all_form).post(users::revoke_all))
        .route("/users/{id}/delete", get(users::delete_form).post(users::delete))
        .route("/audit", get(audit::page))
        .route("/overview", get(activity::overview))
        .route("/audit/export", get(audit::export))
}
