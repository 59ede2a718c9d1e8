//! `POST /api/v1/password`: a signed-in user changes their own password.

use crate::credential::{csrf_header, Caller, Credential};
use crate::error::ApiResult;
use crate::extract::{ClientIp, Json};
use crate::sign_in;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use latchkey_domain::secret::SecretHash;
use latchkey_proto::api::PasswordChange;

/// `POST /api/v1/password`: checks the current password, stores the new one and
/// ends the caller's other sessions (this session stays; a device token keeps none).
pub async fn change(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    who: Caller,
    headers: HeaderMap,
    Json(req): Json<PasswordChange>,
) -> ApiResult<StatusCode> {
    who.check_csrf(csrf_header(&headers))?;
    let keep = match &who.credential {
        Credential::Cookie { session_token, .. } | Credential::SessionToken { session_token, .. } => {
            Some(SecretHash::of(session_token))
        }
        Credential::Device { .. } => None,
    };
    sign_in::change_password(&state, &who.user, keep.as_ref(), &req.current_password, &req.new_password, ip).await?;
    Ok(StatusCode::NO_CONTENT)
}
