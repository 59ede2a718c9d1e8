//! Automatic sessions between trusted devices (`/api/v1/trusted-sessions`):
//! plan, make, join, relay, leave and close. The server checks trust and
//! signatures and relays; it never holds a session key.

use super::trust::{calling_device, keys_info};
use crate::credential::{AnyApp, Caller};
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::state::{now, AppState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use latchkey_domain::trusted_session::{
    SessionOptions, TargetOutcome, DEFAULT_MEMBER_LIMIT, DEFAULT_SESSION_SECS, MAX_MESSAGE_BYTES, MAX_SESSION_SECS,
};
use latchkey_domain::Timestamp;
use latchkey_proto::trust::{
    CreateSession, IssueInvitations, JoinRequest, MemberInfo, SendMessage, Sent, SessionCreated, SessionInfo,
    SessionPlan, SessionRequest, TargetResult,
};
use latchkey_store::{
    DeviceId, Issue, Join, Relay, SessionAsk, SessionMade, TargetAnswer, TrustedSessionRecord, UserId,
};

/// The shortest session one may ask for (the creation itself may take a while).
const MIN_SESSION_SECS: i64 = 60;
/// Most targets one request may name.
const MAX_TARGETS: usize = 64;
/// The largest request body: a full set of invitations, or one message (base64 grows it by a third).
pub const BODY_LIMIT: usize = MAX_MESSAGE_BYTES * 4 / 3 + 4096;

/// How the API shows one target's answer.
pub fn target_result(a: TargetAnswer) -> TargetResult {
    let missing = match a.outcome {
        TargetOutcome::NotTrusted(m) => Some(m.as_str().to_string()),
        _ => None,
    };
    TargetResult { target: a.target, device_id: a.device_id, outcome: a.outcome.as_str().into(), missing }
}

/// How the API shows a session.
pub fn session_info(s: TrustedSessionRecord, now: Timestamp) -> SessionInfo {
    SessionInfo {
        status: s.status(now).into(),
        id: s.id,
        creator: s.creator,
        epoch: s.epoch,
        rekey_needed: s.rekey_needed,
        expires_at_ms: s.expires_at.as_millis(),
        members: s.members.into_iter().map(|(device_id, status)| MemberInfo { device_id, status }).collect(),
    }
}

fn ask(state: &AppState, who: &Caller<AnyApp>, device: &str, req: SessionRequest) -> ApiResult<SessionAsk> {
    if req.targets.is_empty() {
        return Err(ApiError::invalid_request("name at least one device to invite (targets)"));
    }
    if req.targets.len() > MAX_TARGETS || req.targets.iter().any(|t| t.is_empty() || t.len() > 128) {
        return Err(ApiError::invalid_request(format!(
            "targets: at most {MAX_TARGETS} device IDs or slugs of at most 128 characters"
        )));
    }
    let ttl_secs = req.ttl_secs.unwrap_or(DEFAULT_SESSION_SECS);
    if !(MIN_SESSION_SECS..=MAX_SESSION_SECS).contains(&ttl_secs) {
        return Err(ApiError::invalid_request(format!(
            "ttl_secs must be between {MIN_SESSION_SECS} and {MAX_SESSION_SECS}"
        )));
    }
    Ok(SessionAsk {
        user_id: who.user.id.clone(),
        creator: device.to_string(),
        targets: req.targets,
        options: SessionOptions {
            partial: req.partial,
            online_only: req.online_only,
            member_limit: usize::try_from(state.config.session_member_limit).unwrap_or(DEFAULT_MEMBER_LIMIT),
        },
        session_id: uuid::Uuid::new_v4().to_string(),
        ttl_secs,
    })
}

/// `POST /api/v1/trusted-sessions/plan`: one answer per target and, if the
/// session can be made, the descriptor to sign and the members' keys.
pub async fn plan(
    State(state): State<AppState>,
    who: Caller<AnyApp>,
    Json(req): Json<SessionRequest>,
) -> ApiResult<axum::Json<SessionPlan>> {
    let device = calling_device(&who)?;
    let ask = ask(&state, &who, device, req)?;
    let planned = state.store.plan_trusted_session(ask, now()).await?;
    let members = planned.members.into_iter().map(keys_info).collect::<ApiResult<Vec<_>>>()?;
    Ok(axum::Json(SessionPlan {
        create: planned.descriptor.is_some(),
        targets: planned.targets.into_iter().map(target_result).collect(),
        descriptor: planned.descriptor,
        members,
    }))
}

/// `POST /api/v1/trusted-sessions`: makes a planned session with its signed
/// invitations, or answers why not (per target) and makes nothing.
pub async fn create(
    State(state): State<AppState>,
    who: Caller<AnyApp>,
    Json(req): Json<CreateSession, BODY_LIMIT>,
) -> ApiResult<axum::Json<SessionCreated>> {
    let device = calling_device(&who)?;
    let t = now();
    // The ID goes into signed text: only the UUIDs the plan hands out.
    if uuid::Uuid::parse_str(&req.descriptor.session_id).is_err() || req.descriptor.session_id.len() != 36 {
        return Err(ApiError::invalid_request("descriptor.session_id must be the ID the plan gave"));
    }
    if req.descriptor.expires_at < t.plus_secs(MIN_SESSION_SECS).as_millis() {
        return Err(ApiError::invalid_request(format!("a session must live at least {MIN_SESSION_SECS} seconds")));
    }
    let limit = usize::try_from(state.config.session_member_limit).unwrap_or(DEFAULT_MEMBER_LIMIT);
    let made = state
        .store
        .create_trusted_session(UserId(&who.user.id), DeviceId(device), req.descriptor, req.invitations, limit, t)
        .await??;
    Ok(axum::Json(match made {
        SessionMade::Made(targets, s) => SessionCreated {
            targets: targets.into_iter().map(target_result).collect(),
            session: Some(session_info(*s, t)),
        },
        SessionMade::Refused(targets) => {
            SessionCreated { targets: targets.into_iter().map(target_result).collect(), session: None }
        }
    }))
}

/// `GET /api/v1/trusted-sessions`: the calling device's open sessions.
pub async fn list(State(state): State<AppState>, who: Caller<AnyApp>) -> ApiResult<axum::Json<Vec<SessionInfo>>> {
    let device = calling_device(&who)?;
    let t = now();
    let all = state.store.trusted_sessions(DeviceId(device), t).await?;
    Ok(axum::Json(all.into_iter().map(|s| session_info(s, t)).collect()))
}

async fn found(state: &AppState, device: &str, id: &str) -> ApiResult<TrustedSessionRecord> {
    state.store.trusted_session(id, DeviceId(device)).await?.ok_or_else(|| {
        ApiError::not_found(format!("no trusted session {id:?} of this device; `latchkey session list` shows them"))
    })
}

/// `GET /api/v1/trusted-sessions/{id}`.
pub async fn show(
    State(state): State<AppState>,
    who: Caller<AnyApp>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<SessionInfo>> {
    let device = calling_device(&who)?;
    Ok(axum::Json(session_info(found(&state, device, &id).await?, now())))
}

/// `DELETE /api/v1/trusted-sessions/{id}`: the creator closes it.
pub async fn close(
    State(state): State<AppState>,
    who: Caller<AnyApp>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let device = calling_device(&who)?;
    state.store.close_trusted_session(UserId(&who.user.id), &id, DeviceId(device), now()).await??;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/trusted-sessions/{id}/leave`.
pub async fn leave(
    State(state): State<AppState>,
    who: Caller<AnyApp>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let device = calling_device(&who)?;
    state.store.leave_trusted_session(UserId(&who.user.id), &id, DeviceId(device), now()).await??;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/trusted-sessions/{id}/invitations`: a new key after members
/// changed, or a fresh invitation for a member whose earlier one lapsed.
pub async fn issue(
    State(state): State<AppState>,
    who: Caller<AnyApp>,
    Path(id): Path<String>,
    Json(req): Json<IssueInvitations, BODY_LIMIT>,
) -> ApiResult<StatusCode> {
    let device = calling_device(&who)?;
    if req.descriptor.session_id != id {
        return Err(ApiError::invalid_request("the descriptor is for another session"));
    }
    let issue =
        Issue { session_id: id, sender: device.to_string(), descriptor: req.descriptor, invitations: req.invitations };
    state.store.issue_invitations(UserId(&who.user.id), issue, now()).await??;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/trusted-sessions/{id}/join`: accept an invitation, proving the device key.
pub async fn join(
    State(state): State<AppState>,
    who: Caller<AnyApp>,
    Path(id): Path<String>,
    Json(req): Json<JoinRequest>,
) -> ApiResult<axum::Json<SessionInfo>> {
    let device = calling_device(&who)?;
    let t = now();
    let join = Join { session_id: id, device_id: device.to_string(), nonce: req.nonce, signature: req.signature };
    let s = state.store.join_trusted_session(UserId(&who.user.id), join, t).await??;
    Ok(axum::Json(session_info(s, t)))
}

/// `POST /api/v1/trusted-sessions/{id}/messages`: relay ciphertext to the other members.
pub async fn send(
    State(state): State<AppState>,
    who: Caller<AnyApp>,
    Path(id): Path<String>,
    Json(req): Json<SendMessage, BODY_LIMIT>,
) -> ApiResult<axum::Json<Sent>> {
    let device = calling_device(&who)?;
    // Base64url without padding: n characters carry floor(3n/4) bytes.
    if req.body.len() * 3 / 4 > MAX_MESSAGE_BYTES {
        return Err(ApiError::too_large(format!(
            "a relayed message may carry at most {MAX_MESSAGE_BYTES} bytes of ciphertext"
        )));
    }
    if req.body.is_empty() || !req.body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(ApiError::invalid_request("body must be base64url ciphertext"));
    }
    let relay = Relay { session_id: id, sender: device.to_string(), epoch: req.epoch, seq: req.seq, body: req.body };
    let pos = state.store.relay_message(UserId(&who.user.id), relay, now()).await??;
    Ok(axum::Json(Sent { id: pos }))
}
