//! RFC 7009 token revocation. Revoking a refresh token revokes its whole
//! family, and with it every access token of that sign-in (they carry `sid`).

use crate::client_auth::{authenticate, FormCredentials};
use crate::error::{ApiError, ApiResult};
use crate::extract::Form;
use crate::state::{now, AppState};
use crate::tokens::{AccessClaims, ACCESS_TOKEN_TYP};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use latchkey_domain::secret::SecretHash;
use serde::Deserialize;

/// The form body.
#[derive(Deserialize)]
pub struct Params {
    #[serde(flatten)]
    creds: FormCredentials,
    token: Option<String>,
    #[allow(dead_code)]
    token_type_hint: Option<String>,
}

/// `POST /oauth/revoke`: 200 whether or not the token was known (RFC 7009 §2.2).
pub async fn handle(State(state): State<AppState>, headers: HeaderMap, Form(p): Form<Params>) -> ApiResult<StatusCode> {
    let app = authenticate(&state, &headers, &p.creds).await?;
    let token = p.token.as_deref().ok_or_else(|| ApiError::invalid_request("token is required"))?;
    if state.keys.verify::<AccessClaims>(token, &state.config.public_url, ACCESS_TOKEN_TYP).is_some() {
        // Access tokens are short-lived JWTs; revoke the refresh token to end the sign-in.
        return Err(ApiError::unsupported_token_type(
            "access tokens cannot be revoked one by one; revoke the refresh token to end the whole sign-in",
        ));
    }
    if token.len() <= 128 {
        state.store.revoke_refresh_family(&SecretHash::of(token), &app.client_id, now()).await?;
    }
    Ok(StatusCode::OK)
}
