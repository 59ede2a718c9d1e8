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
