//! OIDC userinfo: who the bearer of an access token is.

use crate::error::ApiResult;
use crate::state::AppState;
use crate::tokens::{bearer, require, verify_access};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use latchkey_proto::oauth::UserInfo;

/// `GET|POST /oauth/userinfo` with `Authorization: Bearer <access token>`.
pub async fn handle(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Json<UserInfo>> {
    let token = require(bearer(&headers))?;
    let claims = require(verify_access(&state, token).await?)?;
    Ok(Json(UserInfo {
        sub: claims.sub,
        preferred_username: claims.preferred_username,
    }))
}
