//! Web sign-in (OpenID Connect authorization code with PKCE): a code issued
//! after sign-in and consent, redeemed once by the app, and each person's
//! standing consent per app.

use crate::events;
use crate::flows::{accounts, tokens};
use crate::records::*;
use crate::txn::{NewFamily, Txn};
use latchkey_domain::account::AccountRefusal;
use latchkey_domain::authorization::{self, CodeRefusal, IssuedCode, PresentedCode};
use latchkey_domain::Timestamp;

/// Stores a code for a person who may still sign in, recording (and auditing)
/// their consent in the same transaction when they just gave it.
pub async fn issue_code<T: Txn>(
    tx: &T,
    code: &NewAuthorizationCode,
    consent: Option<&ConsentRecord>,
    now: Timestamp,
) -> Result<Result<(), AccountRefusal>, T::Error> {
    if let Err(refusal) = accounts::check(tx, &code.user_id, now).await? {
        return Ok(Err(refusal));
    }
    if let Some(c) = consent {
        tx.upsert_consent(c).await?;
        tx.append_audit(&events::consent_granted(c), now).await?;
    }
    tx.insert_authorization_code(code, now).await?;
    Ok(Ok(()))
}

/// Redeems a code: checked by the domain's rules, marked used and the sign-in
/// started together, so exactly one request wins. A code presented again
/// revokes the sign-in it started (RFC 6749 §4.1.2).
pub async fn redeem<T: Txn>(tx: &T, r: &RedeemCode, now: Timestamp) -> Result<CodeRedeemed, T::Error> {
    let Some(stored) = tx.authorization_code(&r.code_hash, true).await? else {
        return Ok(CodeRedeemed::Unknown);
    };
    let c = &stored.code;
    let issued = IssuedCode {
        client_id: c.client_id.clone(),
        redirect_uri: c.redirect_uri.clone(),
        code_challenge: c.code_challenge.clone(),
        expires_at: c.expires_at,
        used: stored.used_at.is_some(),
    };
    let presented = PresentedCode {
        client_id: &r.client_id,
        redirect_uri: r.redirect_uri.as_deref(),
        code_verifier: r.code_verifier.as_deref(),
    };
    match authorization::redeem(&issued, presented, now) {
        Ok(()) => {}
        Err(CodeRefusal::Reused) => {
            if let Some(family) = stored.family_id.as_deref() {
                if tx.set_family_revoked(family, now).await? {
                    tx.append_audit(&events::code_reused(&c.client_id, &c.user_id, family), now).await?;
                }
            }
            return Ok(CodeRedeemed::Refused(CodeRefusal::Reused));
        }
        Err(refusal) => return Ok(CodeRedeemed::Refused(refusal)),
    }
    if let Err(refusal) = accounts::check(tx, &c.user_id, now).await? {
        return Ok(CodeRedeemed::AccountStopped(refusal));
    }
    if !tx.set_code_used(&r.code_hash, &r.mint.new_family_id, now).await? {
        return Ok(CodeRedeemed::Refused(CodeRefusal::Reused));
    }
    let family = NewFamily {
        id: &r.mint.new_family_id,
        client_id: &c.client_id,
        user_id: &c.user_id,
        scope: &c.scope,
        auth_time: c.auth_time,
        device_id: None,
        jkt: r.jkt.as_deref(),
        ip: Some(&c.ip),
        user_agent: Some(&c.user_agent),
    };
    let subject = tokens::start_family(tx, &family, r.mint.refresh.as_ref(), now).await?;
    tx.append_audit(&events::code_redeemed(&c.client_id, &c.user_id, &subject.family_id), now).await?;
    Ok(CodeRedeemed::Tokens {
        subject: Box::new(subject),
        nonce: c.nonce.clone(),
        amr: c.amr.split(' ').filter(|a| !a.is_empty()).map(str::to_string).collect(),
    })
}

/// Withdraws a person's consent for an app and ends the app's web sign-ins
/// of theirs (not its devices'); `None` when there was no consent.
pub async fn withdraw_consent<T: Txn>(
    tx: &T,
    user_id: &str,
    client_id: &str,
    now: Timestamp,
) -> Result<Option<u64>, T::Error> {
    if !tx.delete_consent(user_id, client_id).await? {
        return Ok(None);
    }
    let ended = tx.revoke_app_families_of(user_id, client_id, now).await?;
    tx.append_audit(&events::consent_withdrawn(user_id, client_id, ended), now).await?;
    Ok(Some(ended))
}
