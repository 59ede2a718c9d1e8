//! RFC 7009 token revocation. Revoking either token of a sign-in revokes the
//! whole family: the refresh token and every access token (they carry `sid`).

use crate::client_auth::authenticate;
use crate::error::{ApiError, ApiResult};
use crate::extract::Form;
use crate::state::{now, AppState};
use crate::tokens::{AccessClaims, ACCESS_TOKEN_TYP};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use latchkey_domain::secret::SecretHash;
use latchkey_store::{AppId, FamilyId};

/// The form body (RFC 7662 §2.1 and RFC 7009 §2.1 take the same one).
pub use crate::routes::TokenParams as Params;

/// `POST /oauth/revoke`: 200 whether or not the token was known (RFC 7009 §2.2).
pub async fn handle(State(state): State<AppState>, headers: HeaderMap, Form(p): Form<Params>) -> ApiResult<StatusCode> {
    let app = authenticate(&state, &headers, &p.creds).await?;
    let token = p.token.as_deref().ok_or_else(|| ApiError::invalid_request("token is required"))?;
    if let Some(claims) = state.keys.verify::<AccessClaims>(token, &state.config.public_url, ACCESS_TOKEN_TYP) {
        // An access token names its sign-in (`sid`): revoking it ends that sign-in,
        // refresh token included (RFC 7009 §2.1 allows this), if it is the caller's.
        state.store.revoke_family(FamilyId(&claims.sid), AppId(&app.client_id), now()).await?;
        return Ok(StatusCode::OK);
    }
    if token.len() <= 128 {
        state.store.revoke_refresh_family(&SecretHash::of(token), AppId(&app.client_id), now()).await?;
    }
    Ok(StatusCode::OK)
}
