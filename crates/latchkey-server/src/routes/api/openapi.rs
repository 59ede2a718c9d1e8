//! `GET /api/openapi.json`: the OpenAPI 3.1 document of the OAuth endpoints and
//! the JSON API. It is written by hand (`crates/latchkey-server/openapi.json`)
//! and kept true by the integration suite, which compares its paths and methods
//! with the routes the server answers; `scripts/schemathesis.sh` fuzzes the
//! server from it.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};

/// The document, as served.
pub const DOCUMENT: &str = include_str!("../../../openapi.json");

/// Serves the document.
pub async fn document() -> Response {
    let mut resp = DOCUMENT.into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}
