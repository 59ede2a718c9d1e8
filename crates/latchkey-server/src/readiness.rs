//! `GET /readyz`: whether this replica can serve, asked afresh on every call.
//!
//! `/healthz` says the process answers; `/readyz` says its database does too.
//! The probe is one cheap read that goes through the store's normal read path
//! and touches the `users` table, which the first migration creates: it fails
//! while the database is unreachable or its schema is not there, and succeeds
//! again as soon as it is back (nothing is cached). Migrations themselves run
//! when the store is opened, before the server starts, and a running server
//! never undoes them, so a schema that answers is the one this binary migrated.

use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use latchkey_proto::oauth::ErrorBody;

/// How long the probe may take before the replica counts as not ready.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// `200 ready`, or `503` with the usual JSON error body.
pub async fn readyz(State(state): State<AppState>) -> Response {
    match tokio::time::timeout(PROBE_TIMEOUT, state.store.count_users()).await {
        Ok(Ok(_)) => (StatusCode::OK, "ready").into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready: the database does not answer");
            not_ready("the database does not answer; see the server's log")
        }
        Err(_) => {
            tracing::warn!("not ready: the database took over 5 s to answer");
            not_ready("the database is too slow to answer")
        }
    }
}

/// The usual error body, built here rather than through `ApiError`, which would
/// log every failed probe a second time, at error level.
fn not_ready(why: &str) -> Response {
    let body = ErrorBody { error: "not_ready".into(), error_description: Some(why.to_string()) };
    (StatusCode::SERVICE_UNAVAILABLE, [(header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response()
}
