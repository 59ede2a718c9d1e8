//! Token families and refresh tokens: start, rotate with reuse detection, revoke.

use crate::events;
use crate::flows::accounts;
use crate::records::*;
use crate::txn::{GrantCode, NewFamily, Txn};
use latchkey_domain::dpop::{self, Binding};
use latchkey_domain::refresh::{RefreshOutcome, RefreshState};
use latchkey_domain::secret::SecretHash;
use latchkey_domain::Timestamp;

/// Starts a token family, with its first refresh token when one is delivered;
/// returns what to mint.
pub async fn start_family<T: Txn>(
    tx: &T,
    f: &NewFamily<'_>,
    refresh: Option<&NewRefreshToken>,
    now: Timestamp,
) -> Result<TokenSubject, T::Error> {
    tx.insert_family(f, now).await?;
    if let Some(token) = refresh {
        tx.insert_refresh_token(token, f.id, now).await?;
    }
    if let Some(device_id) = f.device_id {
        tx.touch_device(device_id, now).await?;
    }
    Ok(TokenSubject {
        user_id: f.user_id.to_string(),
        username: tx.username(f.user_id).await?,
        client_id: f.client_id.to_string(),
        scope: f.scope.to_string(),
        family_id: f.id.to_string(),
        auth_time: f.auth_time,
        device_id: f.device_id.map(str::to_string),
        jkt: f.jkt.map(str::to_string),
    })
}

/// Exchanges a refresh token for its replacement; a rotated token presented
/// again revokes its whole family.
pub async fn rotate<T: Txn>(tx: &T, r: RotateRefresh, now: Timestamp) -> Result<Rotated, T::Error> {
    let Some((t, auth_time)) = tx.refresh_token(&r.token_hash, true).await? else {
        return Ok(Rotated::Invalid);
    };
    if t.client_id != r.client_id {
        return Ok(Rotated::Invalid);
    }
    let binding = dpop::binding(t.jkt.as_deref(), r.presented_jkt.as_deref());
    if binding == Binding::WrongKey {
        // A refresh token bound to a device key is useless without that key (RFC 9449 §5).
        return Ok(Rotated::WrongKey);
    }
    if let Err(refusal) = accounts::check(tx, &t.user_id, now).await? {
        return Ok(Rotated::AccountStopped(refusal));
    }
    let state = RefreshState {
        rotated_at: t.rotated_at,
        key_proven: t.jkt.is_some() && binding == Binding::Holds,
        family_revoked: t.family_revoked,
        expires_at: t.expires_at,
    };
    match state.use_at(now) {
        RefreshOutcome::Refuse => Ok(Rotated::Invalid),
        RefreshOutcome::ReuseDetected => {
            tx.set_family_revoked(&t.family_id, now).await?;
            tx.append_audit(&events::refresh_reused(&t), now).await?;
            Ok(Rotated::ReuseDetected)
        }
        // Only a live token is refused for an unneeded proof, changing nothing; a replayed
        // one still revokes its family above.
        RefreshOutcome::Rotate if binding == Binding::ProofWithoutBinding => Ok(Rotated::NotKeyBound),
        RefreshOutcome::Rotate | RefreshOutcome::RotateAgain => {
            if state.rotated_at.is_some() {
                // A retry: the pair the lost answer carried stops working. The presented
                // token keeps its first rotation time, so retries cannot stretch the grace.
                tx.set_family_tokens_rotated(&t.family_id, now).await?;
            } else {
                tx.set_refresh_rotated(&r.token_hash, now).await?;
            }
            tx.insert_refresh_token(&r.replacement, &t.family_id, now).await?;
            if let Some(device_id) = &t.device_id {
                tx.touch_device(device_id, now).await?;
            }
            Ok(Rotated::Tokens(TokenSubject {
                user_id: t.user_id,
                username: t.username,
                client_id: t.client_id,
                scope: t.scope,
                family_id: t.family_id,
                auth_time,
                device_id: t.device_id,
                jkt: t.jkt,
            }))
        }
    }
}

/// Revokes the family of a refresh token issued to `client_id` (RFC 7009).
pub async fn revoke_by_token<T: Txn>(
    tx: &T,
    hash: &SecretHash,
    client_id: &str,
    now: Timestamp,
) -> Result<bool, T::Error> {
    let Some((t, _)) = tx.refresh_token(hash, true).await? else {
        return Ok(false);
    };
    if t.client_id != client_id || !tx.set_family_revoked(&t.family_id, now).await? {
        return Ok(false);
    }
    tx.append_audit(&events::family_revoked(&t.family_id, &t.user_id, client_id), now).await?;
    Ok(true)
}

/// Revokes a family by ID (an access token's `sid`) if it was issued to `client_id`.
pub async fn revoke_by_id<T: Txn>(tx: &T, family_id: &str, client_id: &str, now: Timestamp) -> Result<bool, T::Error> {
    let Some(user) = tx.live_family_owner(family_id, client_id).await? else {
        return Ok(false);
    };
    tx.set_family_revoked(family_id, now).await?;
    tx.append_audit(&events::family_revoked(family_id, &user, client_id), now).await?;
    Ok(true)
}

/// The app `credential` was issued to, if it exists: a read, so looking it up changes nothing.
pub async fn issued_to<T: Txn>(tx: &T, credential: &PresentedCredential) -> Result<Option<String>, T::Error> {
    Ok(match credential {
        PresentedCredential::DeviceCode(h) => tx.grant(GrantCode::Device, h, false).await?.map(|g| g.client_id),
        PresentedCredential::RefreshToken(h) => tx.refresh_token(h, false).await?.map(|(t, _)| t.client_id),
        PresentedCredential::AuthorizationCode(h) => tx.authorization_code(h, false).await?.map(|c| c.code.client_id),
    })
}
