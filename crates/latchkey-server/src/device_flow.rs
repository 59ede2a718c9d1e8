//! Looking up and deciding a device login: the one implementation behind the
//! verification page, the JSON API and (later) `latchkey approve`.

use crate::credential::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::same_network;
use crate::metrics::{Limit, Outcome};
use crate::rate_limit::{network_key, GLOBAL};
use crate::state::{now, AppState};
use latchkey_domain::device_grant::{DecideError, Decision};
use latchkey_domain::user_code::UserCode;
use latchkey_proto::api::{DecisionResponse, PendingDeviceLogin};
use latchkey_store::AppId;
use latchkey_store::{DecideResult, DeviceGrantRecord, GrantDecision};
use std::net::IpAddr;

/// Runs `attempt` on the typed code while holding a wrong-code reservation
/// (taken atomically before the lookup). The reservation is given back unless
/// the code was malformed or matched no sign-in: only wrong guesses count.
async fn guarded<T, F, Fut>(state: &AppState, who: &Caller, ip: IpAddr, typed: &str, attempt: F) -> ApiResult<T>
where
    F: FnOnce(UserCode) -> Fut,
    Fut: std::future::Future<Output = Result<T, Attempt>>,
{
    let net = network_key(ip);
    let keys = [who.user.id.as_str(), net.as_str(), GLOBAL];
    if !state.limits.code_entry.try_take(&keys, now()) {
        state.metrics.rate_limited(Limit::CodeEntry);
        return Err(ApiError::too_many_requests(
            "too many wrong codes; wait a few minutes, then type the code exactly as your device shows it",
        ));
    }
    let result = match UserCode::parse(typed) {
        Ok(code) => attempt(code).await,
        Err(e) => Err(Attempt::Wrong(ApiError::invalid_request(format!("that is not a valid code: {e}")))),
    };
    match result {
        Ok(v) => {
            state.limits.code_entry.refund(&keys, now());
            Ok(v)
        }
        Err(Attempt::Wrong(e)) => Err(e),
        Err(Attempt::Failed(e)) => {
            state.limits.code_entry.refund(&keys, now());
            Err(e)
        }
    }
}

/// How an attempt with a well-formed code failed.
enum Attempt {
    /// A wrong guess: it counts against the limits.
    Wrong(ApiError),
    /// Any other failure (the code exists but is spent, the database is down).
    Failed(ApiError),
}

impl From<ApiError> for Attempt {
    fn from(e: ApiError) -> Self {
        Attempt::Failed(e)
    }
}

impl From<latchkey_store::StoreError> for Attempt {
    fn from(e: latchkey_store::StoreError) -> Self {
        Attempt::Failed(e.into())
    }
}

fn not_found() -> Attempt {
    Attempt::Wrong(ApiError::not_found("no sign-in is waiting for this code; check it against your device"))
}

/// What the approver must see before deciding.
pub async fn lookup(state: &AppState, who: &Caller, ip: IpAddr, typed: &str) -> ApiResult<PendingDeviceLogin> {
    guarded(state, who, ip, typed, |code| async move {
        let hash = code.stored_hash(&*state.store.secret_key()?);
        let grant = state.store.device_grant_by_user_code(&hash).await?.ok_or_else(not_found)?;
        if grant.state.status != latchkey_domain::device_grant::GrantStatus::Pending {
            return Err(ApiError::conflict("this code was already used; start the sign-in again on your device").into());
        }
        if grant.state.is_expired(now()) {
            return Err(ApiError::gone("this code has expired; start the sign-in again on your device").into());
        }
        Ok(describe(state, &grant, &code, ip).await?)
    })
    .await
}

async fn describe(
    state: &AppState,
    g: &DeviceGrantRecord,
    code: &UserCode,
    approver: IpAddr,
) -> ApiResult<PendingDeviceLogin> {
    let app_name =
        state.store.app(AppId(&g.client_id)).await?.map(|a| a.display_name).unwrap_or_else(|| g.client_id.clone());
    let different_network = match g.requester.ip.parse::<IpAddr>() {
        Ok(requester) => !same_network(requester, approver),
        Err(_) => true,
    };
    Ok(PendingDeviceLogin {
        user_code: code.to_string(),
        client_id: g.client_id.clone(),
        app_name,
        scope: g.scope.clone(),
        requester_ip: g.requester.ip.clone(),
        requester_user_agent: g.requester.user_agent.clone(),
        device_name: g.requester.device_name.clone(),
        requested_at_ms: g.created_at.as_millis(),
        expires_at_ms: g.state.expires_at.as_millis(),
        different_network,
        device_location: g.device.location.clone(),
        device_platform: g.device.platform.clone(),
    })
}

/// Parses `approve` / `deny`.
pub fn parse_decision(s: &str) -> ApiResult<Decision> {
    match s {
        "approve" => Ok(Decision::Approve),
        "deny" => Ok(Decision::Deny),
        other => Err(ApiError::invalid_request(format!("decision must be \"approve\" or \"deny\", not {other:?}"))),
    }
}

/// Records the signed-in user's decision on the code.
pub async fn decide(
    state: &AppState,
    who: &Caller,
    ip: IpAddr,
    typed: &str,
    decision: Decision,
) -> ApiResult<DecisionResponse> {
    guarded(state, who, ip, typed, |code| async move {
        let d = GrantDecision {
            user_code_hash: code.stored_hash(&*state.store.secret_key()?),
            user_id: who.user.id.clone(),
            decision,
            ip: ip.to_string(),
            new_device_id: uuid::Uuid::now_v7().to_string(),
            device_cap: state.config.device_cap,
        };
        match state.store.decide_device_grant(d, now()).await? {
            DecideResult::Decided(g) => {
                let (status, outcome) = match decision {
                    Decision::Approve => ("approved", Outcome::Approved),
                    Decision::Deny => ("denied", Outcome::Denied),
                };
                state.metrics.device_login(outcome);
                Ok(DecisionResponse { status: status.into(), client_id: g.client_id })
            }
            DecideResult::NotFound => Err(not_found()),
            DecideResult::AccountStopped(r) => Err(ApiError::from(r).into()),
            DecideResult::Refused(DecideError::Expired) => {
                Err(ApiError::gone("this code has expired; start the sign-in again on your device").into())
            }
            DecideResult::Refused(DecideError::AlreadyDecided) => {
                Err(ApiError::conflict("this code was already approved or denied").into())
            }
            DecideResult::DeviceLimit(cap) => Err(ApiError::conflict(format!(
                "you already have {cap} active devices, the most allowed; revoke one you no longer use, then approve again"
            ))
            .into()),
            DecideResult::SlugTaken(slug) => Err(ApiError::conflict(format!(
                "the device asks to be called {slug:?}, which another of your devices is already called; \
                 restart the sign-in on the device with another --slug (or none)"
            ))
            .into()),
        }
    })
    .await
}
