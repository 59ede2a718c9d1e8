//! HTTP routes, grouped by surface: `oauth` (the standards), `api` (Latchkey's
//! JSON API), `web` (pages). Each surface builds its own router; this merges them.

pub mod api;
pub mod oauth;
pub mod web;

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Router;

/// Every route of every surface (state and layers are added by the server).
pub fn router() -> Router<crate::state::AppState> {
    oauth::router().merge(api::router()).merge(web::router())
}

/// Paths of the OAuth endpoints, in one place for the router and discovery.
pub mod paths {
    /// RFC 8628 device authorization.
    pub const DEVICE_AUTHORIZATION: &str = "/oauth/device_authorization";
    /// Token endpoint.
    pub const TOKEN: &str = "/oauth/token";
    /// Latchkey's instant-approval long-poll.
    pub const DEVICE_WAIT: &str = "/oauth/device/wait";
    /// RFC 7662.
    pub const INTROSPECT: &str = "/oauth/introspect";
    /// RFC 7009.
    pub const REVOKE: &str = "/oauth/revoke";
    /// OIDC userinfo.
    pub const USERINFO: &str = "/oauth/userinfo";
    /// JWK Set.
    pub const JWKS: &str = "/oauth/jwks";
    /// Latchkey: enroll a device with an enrollment key.
    pub const ENROLL: &str = "/api/v1/enroll";
}

/// Wraps a JSON body with `Cache-Control: no-store` (for anything carrying codes or tokens).
pub fn no_store<T: serde::Serialize>(body: T) -> Response {
    let mut resp = axum::Json(body).into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

/// The form of the introspection and revocation endpoints: a token, an optional
/// hint (which we need not follow, RFC 7009 §2.1), and client credentials.
#[derive(serde::Deserialize)]
pub struct TokenParams {
    #[serde(flatten)]
    pub(crate) creds: crate::client_auth::FormCredentials,
    pub(crate) token: Option<String>,
    #[allow(dead_code)]
    pub(crate) token_type_hint: Option<String>,
}
