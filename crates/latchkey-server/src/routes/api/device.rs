//! Device-login lookup and decision (`/api/v1/device/*`), which the CLI and the benchmark share with the page.

use crate::credential::{csrf_header, Caller};
use crate::device_flow;
use crate::error::ApiResult;
use crate::extract::{ClientIp, Json};
use crate::routes::no_store;
use crate::state::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use latchkey_proto::api::{DecisionRequest, LookupRequest};

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
