//! The OAuth / OIDC surface: the standard endpoints any OAuth library speaks,
//! plus Latchkey's instant-approval long-poll.

pub mod authorize;
pub mod device_authorization;
pub mod device_wait;
pub mod discovery;
pub mod introspect;
pub mod logout;
pub mod revoke;
pub mod token;
pub mod userinfo;

use crate::state::AppState;
use axum::routing::{get, post};
use axum::Router;
use latchkey_proto::paths;

/// The OAuth routes and the discovery documents.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(paths::AUTHORIZE, get(authorize::get).post(authorize::post))
        .route(paths::END_SESSION, get(logout::get).post(logout::post))
        .route(paths::END_SESSION_CONFIRM, post(logout::confirm))
        .route(paths::AUTHORIZE_SIGN_IN, post(authorize::sign_in))
        .route(paths::AUTHORIZE_CONSENT, post(authorize::consent))
        .route(paths::AUTHORIZE_PASSKEY, post(authorize::passkey))
        .route(paths::DEVICE_AUTHORIZATION, post(device_authorization::handle))
        .route(paths::TOKEN, post(token::handle))
        .route(paths::DEVICE_WAIT, post(device_wait::handle))
        .route(paths::INTROSPECT, post(introspect::handle))
        .route(paths::REVOKE, post(revoke::handle))
        .route(paths::USERINFO, get(userinfo::handle).post(userinfo::handle))
        .route(paths::JWKS, get(discovery::jwks))
        .route(paths::OPENID_CONFIGURATION, get(discovery::metadata))
        .route(paths::OAUTH_AUTHORIZATION_SERVER, get(discovery::metadata))
}
