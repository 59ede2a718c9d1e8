//! Instant approval (Latchkey extension): a device waits here instead of
//! polling, and gets its tokens the moment the user approves.
//!
//! The request is held until the grant is decided, it expires, the server
//! shuts down, or `wait_timeout` passes; then it answers exactly like the
//! token endpoint (tokens, or `authorization_pending` to call again). Waiting
//! does not count as polling, so it never earns `slow_down`.

use super::token::{proof_key, redeem_once, Step};
use crate::client_auth::{authenticate, FormCredentials};
use crate::error::{ApiError, ApiResult};
use crate::extract::Form;
use crate::state::{now, AppState};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use latchkey_store::{GrantType, RedeemMode};
use serde::Deserialize;

/// The form body.
#[derive(Deserialize)]
pub struct Params {
    #[serde(flatten)]
    creds: FormCredentials,
    device_code: Option<String>,
}

/// `POST /oauth/device/wait`.
pub async fn handle(State(state): State<AppState>, headers: HeaderMap, Form(p): Form<Params>) -> ApiResult<Response> {
    let app = authenticate(&state, &headers, &p.creds).await?;
    if !app.allows(GrantType::DeviceCode) {
        return Err(ApiError::unauthorized_client(format!("the app {:?} may not use device login", app.client_id)));
    }
    let code = p.device_code.as_deref().ok_or_else(|| ApiError::invalid_request("device_code is required"))?;
    let jkt = proof_key(&state, &headers, super::paths::DEVICE_WAIT)?;
    let deadline = tokio::time::Instant::now() + state.config.wait_timeout;
    let mut shutdown = state.shutting_down.clone();

    let (grant_id, expires_at) = match redeem_once(&state, &app, code, RedeemMode::Wait, jkt.clone()).await? {
        Step::Tokens(resp) => return Ok(resp),
        Step::Pending { grant_id, expires_at } => (grant_id, expires_at),
    };
    // Wake at expiry too, so an expired code is reported at once, not at the timeout.
    let until_expiry = u64::try_from(expires_at.millis_since(now()).max(0)).unwrap_or(0);
    let expiry = tokio::time::Instant::now() + std::time::Duration::from_millis(until_expiry + 5);
    // Subscribe first, then look again: a decision landing in between is not lost.
    let mut wait = state.store.notifier().subscribe(&grant_id);
    loop {
        if let Step::Tokens(resp) = redeem_once(&state, &app, code, RedeemMode::Wait, jkt.clone()).await? {
            return Ok(resp);
        }
        tokio::select! {
            _ = wait.changed() => {}
            _ = tokio::time::sleep_until(deadline.min(expiry)) => break,
            _ = shutdown.wait_for(|s| *s) => break,
        }
    }
    match redeem_once(&state, &app, code, RedeemMode::Wait, jkt).await? {
        Step::Tokens(resp) => Ok(resp),
        Step::Pending { .. } => Err(ApiError::authorization_pending("not approved yet; call again to keep waiting")),
    }
}
