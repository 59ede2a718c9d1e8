//! QR cross-device sign-in: request, decide, cancel, collect.

use crate::flows::{accounts, tokens};
use crate::records::*;
use crate::txn::{NewFamily, PairingCode, Txn};
use crate::{events, StoreError};
use latchkey_domain::pairing::{PairingAction, PairingError, SIGN_IN_SCOPE};
use latchkey_domain::secret::SecretHash;
use latchkey_domain::Timestamp;

/// Stores a new pairing. Its `qr.requested` entry is written when the phone
/// decides it ([`decide`]): any desktop may start one, so starting alone is no entry.
pub async fn create<T: Txn>(tx: &T, p: &NewPairing, now: Timestamp) -> Result<(), T::Error> {
    tx.insert_pairing(p, now).await
}

/// Applies `action` to the pairing behind `code`, on the status it was loaded with.
async fn transition<T: Txn>(
    tx: &T,
    code: PairingCode,
    hash: &SecretHash,
    action: PairingAction,
    decided_by: Option<&str>,
    now: Timestamp,
) -> Result<PairingResult, T::Error> {
    let Some(mut p) = tx.pairing(code, hash, true).await? else {
        return Ok(PairingResult::NotFound);
    };
    let next = match p.state.apply(action, now) {
        Ok(s) => s,
        Err(e) => return Ok(PairingResult::Refused(e)),
    };
    if !tx.set_pairing_status(&p.id, p.state.status, next, decided_by, now).await? {
        return Ok(PairingResult::Refused(PairingError::Finished));
    }
    p.state.status = next;
    if let Some(user) = decided_by {
        p.user_id = Some(user.to_string());
        p.decided_at = Some(now);
    }
    Ok(PairingResult::Done(Box::new(p)))
}

/// The phone approves or denies, as `user_id`; records it and announces it.
pub async fn decide<T: Txn>(
    tx: &T,
    phone: &SecretHash,
    user_id: &str,
    approve: bool,
    now: Timestamp,
) -> Result<PairingResult, T::Error> {
    if let Err(refusal) = accounts::check(tx, user_id, now).await? {
        return Ok(PairingResult::AccountStopped(refusal));
    }
    let action = if approve { PairingAction::Approve } else { PairingAction::Deny };
    let result = transition(tx, PairingCode::Phone, phone, action, Some(user_id), now).await?;
    if let PairingResult::Done(p) = &result {
        tx.append_audit(&events::pairing_requested(p), now).await?;
        tx.append_audit(&events::pairing_decided(&p.id, user_id, approve), now).await?;
        tx.announce_decided(&p.id).await?;
    }
    Ok(result)
}

/// The desktop gives up; records it and announces it.
pub async fn cancel<T: Txn>(tx: &T, desktop: &SecretHash, now: Timestamp) -> Result<PairingResult, T::Error> {
    let result = transition(tx, PairingCode::Desktop, desktop, PairingAction::Cancel, None, now).await?;
    if let PairingResult::Done(p) = &result {
        tx.append_audit(&events::pairing_cancelled(&p.client_id, &p.id), now).await?;
        tx.announce_decided(&p.id).await?;
    }
    Ok(result)
}

/// The desktop collects an approved pairing: consumed and the sign-in started
/// together, so exactly one caller wins.
pub async fn collect<T: Txn>(
    tx: &T,
    desktop: &SecretHash,
    mint: &MintRefresh,
    now: Timestamp,
) -> Result<Collected, T::Error> {
    let p = match consume(tx, desktop, false, now).await? {
        Ok(p) => p,
        Err(refused) => return Ok(refused),
    };
    let Some(user_id) = p.user_id.as_deref() else {
        return Err(StoreError::Corrupt(format!("approved pairing {} has no user", p.id)).into());
    };
    let family = NewFamily {
        id: &mint.new_family_id,
        client_id: &p.client_id,
        user_id,
        scope: SIGN_IN_SCOPE,
        auth_time: p.decided_at.unwrap_or(now),
        device_id: None,
        jkt: None,
        ip: Some(&p.requester.ip),
        user_agent: Some(&p.requester.user_agent),
    };
    let subject = tokens::start_family(tx, &family, mint.refresh.as_ref(), now).await?;
    tx.append_audit(&events::pairing_consumed(&p.client_id, &p.id, &subject.family_id), now).await?;
    Ok(Collected::Tokens(subject, p))
}

/// The desktop's browser collects an approved QR sign-in that continues a web
/// sign-in: consumed, and a Latchkey session opened for whoever approved it
/// (with the desktop's address), recorded together.
pub async fn collect_session<T: Txn>(
    tx: &T,
    desktop: &SecretHash,
    seed: &SessionSeed,
    now: Timestamp,
) -> Result<Collected, T::Error> {
    let p = match consume(tx, desktop, true, now).await? {
        Ok(p) => p,
        Err(refused) => return Ok(refused),
    };
    let Some(user_id) = p.user_id.clone() else {
        return Err(StoreError::Corrupt(format!("approved pairing {} has no user", p.id)).into());
    };
    let session = NewSession {
        token_hash: seed.token_hash.clone(),
        id: seed.id.clone(),
        ip: p.requester.ip.clone(),
        user_agent: p.requester.user_agent.clone(),
        user_id: user_id.clone(),
        expires_at: seed.expires_at,
        amr: latchkey_domain::passkey::SignInMethod::Phone.amr().into(),
        audit: events::signed_in_by_qr(&user_id, &p.requester.ip, &p.id),
    };
    tx.insert_web_session(&session, now).await?;
    tx.append_audit(&session.audit, now).await?;
    tx.append_audit(&events::pairing_consumed_by_browser(&p.client_id, &p.id, &session.id), now).await?;
    Ok(Collected::Session(p))
}

/// Consumes an approved pairing collected the way it was made for
/// (`session`: a web sign-in's; otherwise a native one's); the refusal otherwise.
async fn consume<T: Txn>(
    tx: &T,
    desktop: &SecretHash,
    session: bool,
    now: Timestamp,
) -> Result<Result<Box<PairingRecord>, Collected>, T::Error> {
    // Checked before anything is consumed: a stopped account's sign-in stays uncollected.
    if let Some(p) = tx.pairing(PairingCode::Desktop, desktop, true).await? {
        if let Err(e) = latchkey_domain::pairing::check_channel(p.continues.is_some(), session) {
            return Ok(Err(Collected::Refused(e)));
        }
        if let Some(approver) = &p.user_id {
            if let Err(refusal) = accounts::check(tx, approver, now).await? {
                return Ok(Err(Collected::AccountStopped(refusal)));
            }
        }
    }
    Ok(match transition(tx, PairingCode::Desktop, desktop, PairingAction::Consume, None, now).await? {
        PairingResult::Done(p) => Ok(p),
        PairingResult::NotFound => Err(Collected::NotFound),
        PairingResult::Refused(e) => Err(Collected::Refused(e)),
        PairingResult::AccountStopped(r) => Err(Collected::AccountStopped(r)),
    })
}
