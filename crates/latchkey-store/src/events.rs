//! The audit entries storage operations record, built once for every backend.

use crate::records::{AppRecord, DeviceGrantRecord, GrantDecision, NewUser, RefreshTokenRecord, RevokedAll};
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

/// `user.disabled` or `user.enabled` by `actor`.
pub fn user_disabled(actor: &str, user_id: &str, disabled: bool) -> AuditEvent {
    let kind = if disabled { AuditKind::UserDisabled } else { AuditKind::UserEnabled };
    AuditEvent::new(kind, Some(actor), Some(user_id))
}

/// `user.locked` by the system: repeated wrong passwords locked the account until `until`.
pub fn user_locked(user_id: &str, until: latchkey_domain::Timestamp, failures: u32) -> AuditEvent {
    AuditEvent::new(AuditKind::UserLocked, Some("system"), Some(user_id))
        .with_detail(json!({"until": until.as_millis(), "failures": failures}).to_string())
}

/// `user.deleted` by `actor`; the name is kept, as the account is gone.
pub fn user_deleted(actor: &str, user_id: &str, username: &str) -> AuditEvent {
    AuditEvent::new(AuditKind::UserDeleted, Some(actor), Some(user_id))
        .with_detail(json!({"username": username}).to_string())
}

/// `user.password_changed` by `actor`, with how many other sessions it ended.
pub fn password_changed(actor: &str, user_id: &str, sessions_ended: u64) -> AuditEvent {
    AuditEvent::new(AuditKind::PasswordChanged, Some(actor), Some(user_id))
        .with_detail(json!({"sessions_ended": sessions_ended}).to_string())
}

/// `events.kind_declared` by `actor`: an app's event kind and its retention.
pub fn event_kind_declared(k: &crate::records::EventKindRecord, actor: &str) -> AuditEvent {
    AuditEvent::new(AuditKind::EventKindDeclared, Some(actor), Some(&k.client_id)).with_detail(
        json!({"kind": k.spec.name.as_str(), "spec": k.spec, "retention_secs": k.retention_secs}).to_string(),
    )
}

/// `user.revoked_all` by `actor`, with what was ended.
pub fn revoked_all(actor: &str, user_id: &str, r: &RevokedAll) -> AuditEvent {
    AuditEvent::new(AuditKind::UserRevokedAll, Some(actor), Some(user_id)).with_detail(
        json!({
            "sessions": r.sessions,
            "families": r.families,
            "grants": r.grants,
            "pairings": r.pairings,
            "enrollment_keys": r.enrollment_keys,
        })
        .to_string(),
    )
}

/// `signin.signed_out`.
pub fn signed_out(user_id: &str) -> AuditEvent {
    AuditEvent::new(AuditKind::SignedOut, Some(user_id), Some(user_id))
}

/// `signin.signed_out`: `actor` ended the user's session `session_id` from elsewhere.
pub fn session_ended(user_id: &str, session_id: &str, actor: &str) -> AuditEvent {
    AuditEvent::new(AuditKind::SignedOut, Some(actor), Some(user_id))
        .with_detail(json!({"session": session_id}).to_string())
}

/// `token.family_revoked`: `actor` ended the user's web sign-in `family_id` to `client_id`.
pub fn sign_in_ended(user_id: &str, family_id: &str, client_id: &str, actor: &str) -> AuditEvent {
    AuditEvent::new(AuditKind::TokenFamilyRevoked, Some(actor), Some(family_id))
        .with_detail(json!({"user_id": user_id, "client_id": client_id}).to_string())
}

/// `grant.requested`: what the device asked for and from where. Written in the
/// decision's transaction, just before `grant.approved` or `grant.denied`:
/// a request nobody decides changes nothing, and anonymous requests must not
/// grow a log that is never pruned (a start is still counted in metrics).
pub fn grant_requested(g: &DeviceGrantRecord) -> AuditEvent {
    AuditEvent::new(AuditKind::GrantRequested, Some(&g.client_id), Some(&g.id)).with_detail(
        json!({
            "scope": g.scope,
            "ip": g.requester.ip,
            "user_agent": g.requester.user_agent,
            "device_name": g.requester.device_name,
            "requested_at_ms": g.created_at.as_millis(),
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
    AuditEvent::new(kind, Some(&d.user_id), Some(grant_id)).with_detail(json!({"ip": d.ip}).to_string())
}

/// `grant.consumed`: tokens handed out, starting `family_id`.
pub fn grant_consumed(client_id: &str, grant_id: &str, family_id: &str) -> AuditEvent {
    AuditEvent::new(AuditKind::GrantConsumed, Some(client_id), Some(grant_id))
        .with_detail(json!({"family_id": family_id}).to_string())
}

/// `token.refresh_reused`: a rotated token came back; its family is revoked.
pub fn refresh_reused(t: &RefreshTokenRecord) -> AuditEvent {
    AuditEvent::new(AuditKind::RefreshReuseDetected, Some(&t.client_id), Some(&t.family_id))
        .with_detail(json!({"user_id": t.user_id}).to_string())
}

/// `token.family_revoked` by `client_id`.
pub fn family_revoked(family_id: &str, user_id: &str, client_id: &str) -> AuditEvent {
    AuditEvent::new(AuditKind::TokenFamilyRevoked, Some(client_id), Some(family_id))
        .with_detail(json!({"user_id": user_id}).to_string())
}

/// `key.rotated`: `kid` is now the signing key.
pub fn key_rotated(kid: &str, actor: Option<&str>) -> AuditEvent {
    AuditEvent::new(AuditKind::KeyRotated, actor.or(Some("system")), Some(kid))
}

/// `device.registered`: a device was created (by approval or enrollment key).
pub fn device_registered(d: &crate::records::DeviceRecord, via: &str) -> AuditEvent {
    AuditEvent::new(AuditKind::DeviceRegistered, Some(&d.owner_id), Some(&d.id)).with_detail(
        json!({"name": d.display_name, "slug": d.slug, "location": d.location, "platform": d.platform, "via": via})
            .to_string(),
    )
}

/// `device.renamed`.
pub fn device_renamed(owner_id: &str, device_id: &str, name: &str) -> AuditEvent {
    AuditEvent::new(AuditKind::DeviceRenamed, Some(owner_id), Some(device_id))
        .with_detail(json!({"name": name}).to_string())
}

/// `device.relocated`.
pub fn device_relocated(owner_id: &str, device_id: &str, location: Option<&str>) -> AuditEvent {
    AuditEvent::new(AuditKind::DeviceRelocated, Some(owner_id), Some(device_id))
        .with_detail(json!({"location": location}).to_string())
}

/// `device.revoked` by `actor`, with how many token families died with it.
pub fn device_revoked(actor: &str, device_id: &str, families: u64) -> AuditEvent {
    AuditEvent::new(AuditKind::DeviceRevoked, Some(actor), Some(device_id))
        .with_detail(json!({"families_revoked": families}).to_string())
}

/// `enroll_key.created`.
pub fn enrollment_key_created(k: &crate::records::NewEnrollmentKey) -> AuditEvent {
    AuditEvent::new(AuditKind::EnrollmentKeyCreated, Some(&k.created_by), Some(&k.id)).with_detail(
        json!({"owner_id": k.owner_id, "reusable": k.reusable, "expires_at_ms": k.expires_at.as_millis(), "tag": k.tag}).to_string(),
    )
}

/// `enroll_key.used`: a device was enrolled with key `key_id`.
pub fn enrollment_key_used(key_id: &str, device_id: &str) -> AuditEvent {
    AuditEvent::new(AuditKind::EnrollmentKeyUsed, Some(key_id), Some(device_id))
}

/// `enroll_key.revoked`.
pub fn enrollment_key_revoked(actor: &str, key_id: &str) -> AuditEvent {
    AuditEvent::new(AuditKind::EnrollmentKeyRevoked, Some(actor), Some(key_id))
}

/// `app.updated`.
pub fn app_updated(client_id: &str, u: &crate::records::AppUpdate, actor: &str) -> AuditEvent {
    AuditEvent::new(AuditKind::AppUpdated, Some(actor), Some(client_id)).with_detail(
        json!({
            "name": u.display_name,
            "app_url": u.app_url,
            "qr_sign_in": u.qr_sign_in,
            "require_dpop": u.require_dpop,
            "grant_types": u.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
            "redirect_uris": u.redirect_uris,
            "post_logout_redirect_uris": u.post_logout_redirect_uris,
            "id_token_alg": u.id_token_alg.as_str(),
        })
        .to_string(),
    )
}

/// `qr.requested`: the desktop that showed the QR code. Written in the phone's
/// decision's transaction, just before `qr.approved` or `qr.denied`, for the
/// reason given at [`grant_requested`].
pub fn pairing_requested(p: &crate::records::PairingRecord) -> AuditEvent {
    AuditEvent::new(AuditKind::PairingRequested, Some(&p.client_id), Some(&p.id)).with_detail(
        json!({"ip": p.requester.ip, "user_agent": p.requester.user_agent, "requested_at_ms": p.created_at.as_millis()})
            .to_string(),
    )
}

/// `qr.approved` / `qr.denied` by the phone's user.
pub fn pairing_decided(pairing_id: &str, user_id: &str, approve: bool) -> AuditEvent {
    let kind = if approve { AuditKind::PairingApproved } else { AuditKind::PairingDenied };
    AuditEvent::new(kind, Some(user_id), Some(pairing_id))
}

/// `qr.cancelled` by the desktop.
pub fn pairing_cancelled(client_id: &str, pairing_id: &str) -> AuditEvent {
    AuditEvent::new(AuditKind::PairingCancelled, Some(client_id), Some(pairing_id))
}

/// `qr.consumed`: tokens minted for the desktop, starting `family_id`.
pub fn pairing_consumed(client_id: &str, pairing_id: &str, family_id: &str) -> AuditEvent {
    AuditEvent::new(AuditKind::PairingConsumed, Some(client_id), Some(pairing_id))
        .with_detail(json!({"family_id": family_id}).to_string())
}

/// `qr.consumed` by a web sign-in: the desktop's browser opened session `session_id`.
pub fn pairing_consumed_by_browser(client_id: &str, pairing_id: &str, session_id: &str) -> AuditEvent {
    AuditEvent::new(AuditKind::PairingConsumed, Some(client_id), Some(pairing_id))
        .with_detail(json!({"session_id": session_id}).to_string())
}

/// `signin.succeeded` through a QR sign-in approved on a phone, from the desktop at `ip`.
pub fn signed_in_by_qr(user_id: &str, ip: &str, pairing_id: &str) -> AuditEvent {
    AuditEvent::new(AuditKind::SignInSucceeded, Some(user_id), Some(user_id)).with_detail(
        json!({"ip": ip, "method": latchkey_domain::passkey::SignInMethod::Phone.as_str(), "pairing_id": pairing_id})
            .to_string(),
    )
}

/// `trust.added`: device `truster` signed its trust in `trustee`'s key.
pub fn trust_added(user_id: &str, truster: &str, trustee: &str, key: &latchkey_domain::trust::PublicKey) -> AuditEvent {
    AuditEvent::new(AuditKind::TrustAdded, Some(user_id), Some(trustee))
        .with_detail(json!({"truster": truster, "fingerprint": key.fingerprint().to_string()}).to_string())
}

/// `trust.removed` by `actor`.
pub fn trust_removed(actor: &str, truster: &str, trustee: &str) -> AuditEvent {
    AuditEvent::new(AuditKind::TrustRemoved, Some(actor), Some(trustee))
        .with_detail(json!({"truster": truster}).to_string())
}

/// `device.key_rotated`: with or without the old key's signature, and how many token families ended.
pub fn device_key_rotated(actor: &str, device_id: &str, chained: bool, families: u64) -> AuditEvent {
    AuditEvent::new(AuditKind::DeviceKeyRotated, Some(actor), Some(device_id))
        .with_detail(json!({"chained": chained, "families_revoked": families}).to_string())
}

/// `tsession.created` by the creator device, with its members.
pub fn session_created(user_id: &str, session_id: &str, creator: &str, members: &[String]) -> AuditEvent {
    AuditEvent::new(AuditKind::SessionCreated, Some(user_id), Some(session_id))
        .with_detail(json!({"creator": creator, "members": members}).to_string())
}

/// `tsession.joined`: a member proved its key and accepted.
pub fn session_joined(user_id: &str, session_id: &str, device_id: &str, epoch: u32) -> AuditEvent {
    AuditEvent::new(AuditKind::SessionJoined, Some(user_id), Some(session_id))
        .with_detail(json!({"device": device_id, "epoch": epoch}).to_string())
}

/// `tsession.left` or `tsession.member_removed`.
pub fn session_member_removed(actor: &str, session_id: &str, device_id: &str, status: &str) -> AuditEvent {
    let kind = if status == "left" { AuditKind::SessionLeft } else { AuditKind::SessionMemberRemoved };
    AuditEvent::new(kind, Some(actor), Some(session_id)).with_detail(json!({"device": device_id}).to_string())
}

/// `tsession.rekeyed`: `device_id` issued the key of generation `epoch`.
pub fn session_rekeyed(user_id: &str, session_id: &str, device_id: &str, epoch: u32) -> AuditEvent {
    AuditEvent::new(AuditKind::SessionRekeyed, Some(user_id), Some(session_id))
        .with_detail(json!({"device": device_id, "epoch": epoch}).to_string())
}

/// `tsession.closed` by `actor` (`system` when it expired).
pub fn session_closed(actor: &str, session_id: &str) -> AuditEvent {
    AuditEvent::new(AuditKind::SessionClosed, Some(actor), Some(session_id))
}

/// `consent.granted`: a person let an app sign them in, with these scopes.
pub fn consent_granted(c: &crate::records::ConsentRecord) -> AuditEvent {
    AuditEvent::new(AuditKind::ConsentGranted, Some(&c.user_id), Some(&c.client_id))
        .with_detail(json!({"scope": c.scope}).to_string())
}

/// `consent.withdrawn`: a person withdrew an app's consent, ending `families_revoked` web sign-ins.
pub fn consent_withdrawn(user_id: &str, client_id: &str, families_revoked: u64) -> AuditEvent {
    AuditEvent::new(AuditKind::ConsentWithdrawn, Some(user_id), Some(client_id))
        .with_detail(json!({"families_revoked": families_revoked}).to_string())
}

/// `oauth.code_redeemed`: an app redeemed a code, starting a web sign-in (family) of `user_id`.
pub fn code_redeemed(client_id: &str, user_id: &str, family_id: &str) -> AuditEvent {
    AuditEvent::new(AuditKind::CodeRedeemed, Some(client_id), Some(user_id))
        .with_detail(json!({"family_id": family_id}).to_string())
}

/// `oauth.code_reused`: a redeemed code came back; the family it started was revoked.
pub fn code_reused(client_id: &str, user_id: &str, family_id: &str) -> AuditEvent {
    AuditEvent::new(AuditKind::CodeReused, Some(client_id), Some(user_id))
        .with_detail(json!({"family_id": family_id}).to_string())
}

/// `passkey.added` by its owner.
pub fn passkey_added(user_id: &str, passkey_id: &str, name: &str) -> AuditEvent {
    AuditEvent::new(AuditKind::PasskeyAdded, Some(user_id), Some(user_id))
        .with_detail(json!({"passkey": passkey_id, "name": name}).to_string())
}

/// `passkey.removed` by its owner.
pub fn passkey_removed(user_id: &str, passkey_id: &str, name: &str) -> AuditEvent {
    AuditEvent::new(AuditKind::PasskeyRemoved, Some(user_id), Some(user_id))
        .with_detail(json!({"passkey": passkey_id, "name": name}).to_string())
}

/// `user.password_removed` by its owner: passkeys only from now on.
pub fn password_removed(user_id: &str) -> AuditEvent {
    AuditEvent::new(AuditKind::PasswordRemoved, Some(user_id), Some(user_id))
}
