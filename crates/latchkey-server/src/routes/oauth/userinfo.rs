//! OIDC userinfo: who the bearer of an access token is.

use crate::error::ApiResult;
use crate::state::AppState;
use crate::tokens::authenticate;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, Method};
use axum::Json;
use latchkey_proto::oauth::UserInfo;

/// `GET|POST /oauth/userinfo` with `Authorization: Bearer <access token>`.
pub async fn handle(
    State(state): State<AppState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> ApiResult<Json<UserInfo>> {
    let claims = authenticate(&state, &headers, &method, uri.path()).await?;
    Ok(Json(UserInfo { sub: claims.sub, preferred_username: claims.preferred_username }))
}
