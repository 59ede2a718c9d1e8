//! Passkeys: registering and removing them, giving up the password once a
//! passkey can take its place, and signing in with one. The WebAuthn checks
//! are the server's (webauthn-rs); here each verified outcome is executed in
//! one transaction with its audit entry, under the owner's row lock, after
//! asking `latchkey_domain::passkey` whether the account may change that way.

use crate::events;
use crate::flows::accounts;
use crate::passkey_records::*;
use crate::records::UserRecord;
use crate::txn::Txn;
use latchkey_domain::audit::{AuditEvent, AuditKind};
use latchkey_domain::passkey::SignInMethods;
use latchkey_domain::Timestamp;

/// What a refusal-or-done passkey operation returns.
pub type Outcome = Result<(), PasskeyRefusal>;

/// The account's sign-in methods, read with its row held.
async fn methods<T: Txn>(tx: &T, user_id: &str) -> Result<Option<SignInMethods>, T::Error> {
    tx.lock_owner(user_id).await?;
    let Some(user) = tx.user(user_id).await? else { return Ok(None) };
    let passkeys = usize::try_from(tx.count_passkeys(user_id).await?).unwrap_or(usize::MAX);
    Ok(Some(SignInMethods { password: user.has_password(), passkeys }))
}

/// Registers a verified passkey for an account that may still act.
pub async fn add<T: Txn>(tx: &T, p: &NewPasskey, now: Timestamp) -> Result<Outcome, T::Error> {
    let Some(m) = methods(tx, &p.user_id).await? else { return Ok(Err(PasskeyRefusal::Unknown)) };
    if let Err(r) = accounts::check(tx, &p.user_id, now).await? {
        return Ok(Err(r.into()));
    }
    if let Err(r) = m.may_add_passkey() {
        return Ok(Err(r.into()));
    }
    tx.insert_passkey(p, now).await?;
    tx.append_audit(&events::passkey_added(&p.user_id, &p.id, &p.name), now).await?;
    Ok(Ok(()))
}

/// Removes one of a person's passkeys, unless it is their last way to sign in.
pub async fn remove<T: Txn>(tx: &T, user_id: &str, passkey_id: &str, now: Timestamp) -> Result<Outcome, T::Error> {
    let Some(m) = methods(tx, user_id).await? else { return Ok(Err(PasskeyRefusal::Unknown)) };
    if let Err(r) = m.may_remove_passkey() {
        return Ok(Err(r.into()));
    }
    let Some(name) = tx.delete_passkey(passkey_id, user_id).await? else {
        return Ok(Err(PasskeyRefusal::Unknown));
    };
    tx.append_audit(&events::passkey_removed(user_id, passkey_id, &name), now).await?;
    Ok(Ok(()))
}

/// Removes a person's password once they hold a passkey; their sessions stay.
/// The passkey that confirmed it, if one did, keeps its new counter.
pub async fn remove_password<T: Txn>(
    tx: &T,
    user_id: &str,
    confirmed_with: Option<&PasskeyUse>,
    now: Timestamp,
) -> Result<Outcome, T::Error> {
    let Some(m) = methods(tx, user_id).await? else { return Ok(Err(PasskeyRefusal::Unknown)) };
    if let Err(r) = m.may_remove_password() {
        return Ok(Err(r.into()));
    }
    if let Some(u) = confirmed_with {
        if !tx.set_passkey_used(&u.passkey_id, user_id, &u.passkey, now).await? {
            return Ok(Err(PasskeyRefusal::Unknown));
        }
    }
    tx.set_password(user_id, "").await?;
    tx.append_audit(&events::password_removed(user_id), now).await?;
    Ok(Ok(()))
}

/// Records a verified passkey sign-in: the account must still be allowed in
/// and the passkey still its owner's (not removed since the browser was asked);
/// the passkey's new state is stored and the session opened together.
pub async fn sign_in<T: Txn>(
    tx: &T,
    s: &PasskeySignIn,
    now: Timestamp,
) -> Result<Result<UserRecord, PasskeyRefusal>, T::Error> {
    let user_id = &s.session.user_id;
    if let Err(r) = accounts::check(tx, user_id, now).await? {
        let detail = serde_json::json!({"ip": s.session.ip, "method": "passkey", "refused": r.to_string()});
        let who = Some(user_id.as_str());
        tx.append_audit(&AuditEvent::new(AuditKind::SignInFailed, who, who).with_detail(detail.to_string()), now)
            .await?;
        return Ok(Err(r.into()));
    }
    let user = match tx.user(user_id).await? {
        Some(u) if tx.set_passkey_used(&s.passkey_id, user_id, &s.passkey, now).await? => u,
        _ => return Ok(Err(PasskeyRefusal::Unknown)),
    };
    tx.insert_web_session(&s.session, now).await?;
    tx.append_audit(&s.session.audit, now).await?;
    Ok(Ok(user))
}
