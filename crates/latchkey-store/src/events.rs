//! The audit entries storage operations record, built once for every backend.

use crate::records::{AppRecord, GrantDecision, NewDeviceGrant, NewUser, RefreshTokenRecord};
use latchkey_domain::audit::{AuditEvent, AuditKind};
use latchkey_domain::device_grant::Decision;
use serde_json::json;

/// `user.created`.
pub fn user_created(u: &NewUser, actor: Option<&str>) -> AuditEvent {
    AuditEvent::new(AuditKind::UserCreated, actor, Some(&u.id))
        .with_detail(json!({"username": u.username, "is_admin": u.is_admin}).to_string())
}

/// `app.created`.
pub fn app_created(a: &AppRecord, actor: Option<&str>) -> AuditEvent {
    AuditEvent::new(AuditKind::AppCreated, actor, Some(&a.client_id))
        .with_detail(json!({"kind": a.kind.as_str()}).to_string())
}

/// `signin.signed_out`.
pub fn signed_out(user_id: &str) -> AuditEvent {
    AuditEvent::new(AuditKind::SignedOut, Some(user_id), Some(user_id))
}

/// `grant.requested`.
pub fn grant_requested(g: &NewDeviceGrant) -> AuditEvent {
    AuditEvent::new(AuditKind::GrantRequested, Some(&g.client_id), Some(&g.id)).with_detail(
        json!({
            "scope": g.scope,
            "ip": g.requester.ip,
            "user_agent": g.requester.user_agent,
            "device_name": g.requester.device_name,
        })
        .to_string(),
    )
}

/// `grant.approved` or `grant.denied`.
pub fn grant_decided(d: &GrantDecision, grant_id: &str) -> AuditEvent {
    let kind = match d.decision {
        Decision::Approve => AuditKind::GrantApproved,
        Decision::Deny => AuditKind::GrantDenied,
    };
    AuditEvent::new(kind, Some(&d.user_id), Some(grant_id))
        .with_detail(json!({"ip": d.ip}).to_string())
}

/// `grant.consumed`: tokens handed out, starting `family_id`.
pub fn grant_consumed(client_id: &str, grant_id: &str, family_id: &str) -> AuditEvent {
    AuditEvent::new(AuditKind::GrantConsumed, Some(client_id), Some(grant_id))
        .with_detail(json!({"family_id": family_id}).to_string())
}

/// `token.refresh_reused`: a rotated token came back; its family is revoked.
pub fn refresh_reused(t: &RefreshTokenRecord) -> AuditEvent {
    AuditEvent::new(
        AuditKind::RefreshReuseDetected,
        Some(&t.client_id),
        Some(&t.family_id),
    )
    .with_detail(json!({"user_id": t.user_id}).to_string())
}

/// `token.family_revoked` by `client_id`.
pub fn family_revoked(t: &RefreshTokenRecord, client_id: &str) -> AuditEvent {
    AuditEvent::new(
        AuditKind::TokenFamilyRevoked,
        Some(client_id),
        Some(&t.family_id),
    )
    .with_detail(json!({"user_id": t.user_id}).to_string())
}

/// `key.rotated`: `kid` is now the signing key.
pub fn key_rotated(kid: &str, actor: Option<&str>) -> AuditEvent {
    AuditEvent::new(AuditKind::KeyRotated, actor.or(Some("system")), Some(kid))
}
