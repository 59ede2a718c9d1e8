//! Sessions for non-browser clients (`/api/v1/session`): password sign-in and sign-out.

use crate::credential::{csrf_header, Caller};
use crate::error::ApiResult;
use crate::extract::{ClientIp, Json, UserAgent};
use crate::routes::no_store;
use crate::sign_in;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use latchkey_proto::api::{Me, SignInRequest, SignInResponse};

/// `POST /api/v1/session`: password sign-in for non-browser clients.
pub async fn create_session(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    UserAgent(ua): UserAgent,
    Json(req): Json<SignInRequest>,
) -> ApiResult<Response> {
    let (user, token) = sign_in::with_password(&state, &req.username, &req.password, ip, &ua).await?;
    Ok(no_store(SignInResponse {
        session_token: token.expose().to_string(),
        expires_in: state.config.session_lifetime_secs(),
        user: Me { id: user.id, username: user.username, is_admin: user.is_admin, device: None },
    }))
}

/// `DELETE /api/v1/session`: sign out; a device using its own token ends its sign-in.
pub async fn delete_session(State(state): State<AppState>, who: Caller, headers: HeaderMap) -> ApiResult<StatusCode> {
    who.check_csrf(csrf_header(&headers))?;
    who.sign_out(&state).await?;
    Ok(StatusCode::NO_CONTENT)
}
