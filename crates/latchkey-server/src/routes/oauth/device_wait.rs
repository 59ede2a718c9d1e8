//! Instant approval (Latchkey extension): a device waits here instead of
//! polling, and gets its tokens the moment the user approves.
//!
//! The request is held until the grant is decided, it expires, the server
//! shuts down, or `wait_timeout` passes; then it answers exactly like the
//! token endpoint (tokens, or `authorization_pending` to call again). Waiting
//! does not count as polling, so it never earns `slow_down`.

use super::token::{admit, checked_proof, redeem_once, Step};
use crate::client_auth::{authenticate, FormCredentials};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ClientIp, Form};
use crate::state::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use latchkey_domain::secret::SecretHash;
use latchkey_store::{GrantType, PresentedCredential, RedeemMode};
use serde::Deserialize;

/// The form body.
#[derive(Deserialize)]
pub struct Params {
    #[serde(flatten)]
    creds: FormCredentials,
    device_code: Option<String>,
}

/// `POST /oauth/device/wait`.
pub async fn handle(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Form(p): Form<Params>,
) -> ApiResult<Response> {
    let app = authenticate(&state, &headers, &p.creds).await?;
    if !app.allows(GrantType::DeviceCode) {
        return Err(ApiError::unauthorized_client(format!("the app {:?} may not use device login", app.client_id)));
    }
    let code = p.device_code.as_deref().ok_or_else(|| ApiError::invalid_request("device_code is required"))?;
    let proof = checked_proof(&state, &headers, latchkey_proto::paths::DEVICE_WAIT)?;
    let jkt = admit(&state, &app, PresentedCredential::DeviceCode(SecretHash::of(code)), proof).await?;
    let (grant_id, expires_at) = match redeem_once(&state, &app, code, RedeemMode::Wait, jkt.clone()).await? {
        Step::Tokens(resp) => return Ok(resp),
        Step::Pending { grant_id, expires_at } => (grant_id, expires_at),
    };
    let cap = Some(usize::try_from(state.config.waiters_per_code).unwrap_or(1));
    let answer = crate::long_poll::wait_for(&state, ip, &grant_id, expires_at, cap, || async {
        Ok(match redeem_once(&state, &app, code, RedeemMode::Wait, jkt.clone()).await? {
            Step::Tokens(resp) => Some(resp),
            Step::Pending { .. } => None,
        })
    })
    .await?;
    answer.ok_or_else(|| ApiError::authorization_pending("not approved yet; call again to keep waiting"))
}
