//! Latchkey's JSON API for signed-in users (`/api/v1`): sign-in, and the
//! device-login decision the page, the CLI and the benchmark share.

use super::no_store;
use crate::credential::{csrf_header, Caller};
use crate::device_flow;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ClientIp, Json};
use crate::sign_in;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use latchkey_proto::api::{DecisionRequest, Me, SignInRequest, SignInResponse};
use serde::Deserialize;

/// `POST /api/v1/session`: password sign-in for non-browser clients.
pub async fn create_session(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(req): Json<SignInRequest>,
) -> ApiResult<Response> {
    let (user, token) = sign_in::with_password(&state, &req.username, &req.password, ip).await?;
    Ok(no_store(SignInResponse {
        session_token: token.expose().to_string(),
        expires_in: state.config.session_lifetime_secs,
        user: Me { id: user.id, username: user.username, is_admin: user.is_admin, device: None },
    }))
}

/// `DELETE /api/v1/session`: sign out; a device using its own token ends its sign-in.
pub async fn delete_session(State(state): State<AppState>, who: Caller, headers: HeaderMap) -> ApiResult<StatusCode> {
    who.check_csrf(csrf_header(&headers))?;
    who.sign_out(&state).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of a lookup.
#[derive(Deserialize)]
pub struct LookupRequest {
    user_code: String,
}

/// `POST /api/v1/device/lookup`: what approving this code would let in.
pub async fn lookup(
    State(state): State<AppState>,
    who: Caller,
    ClientIp(ip): ClientIp,
    Json(req): Json<LookupRequest>,
) -> ApiResult<Response> {
    Ok(no_store(device_flow::lookup(&state, &who, ip, &req.user_code).await?))
}

/// `POST /api/v1/device/decision`: approve or deny a device login.
pub async fn decide(
    State(state): State<AppState>,
    who: Caller,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Json(req): Json<DecisionRequest>,
) -> ApiResult<Response> {
    who.check_csrf(csrf_header(&headers))?;
    let decision = device_flow::parse_decision(&req.decision)?;
    Ok(no_store(device_flow::decide(&state, &who, ip, &req.user_code, decision).await?))
}

/// Fallback for unknown API paths: a JSON 404, not an HTML page.
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such API endpoint")
}
