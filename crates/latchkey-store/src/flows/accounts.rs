//! Accounts that can be stopped: the check every minting or accepting
//! operation makes in its own transaction, and the admin's actions.

use crate::events;
use crate::records::*;
use crate::txn::Txn;
use latchkey_domain::account::{AccountRefusal, FailureRun, LockPolicy};
use latchkey_domain::audit::AuditEvent;
use latchkey_domain::secret::SecretHash;
use latchkey_domain::Timestamp;

/// Whether `user_id` may act at `now`, read (and held) inside the caller's
/// transaction: a disable that commits while this runs either waits for it or
/// is seen by it. An account that no longer exists may do nothing.
pub async fn check<T: Txn>(tx: &T, user_id: &str, now: Timestamp) -> Result<Result<(), AccountRefusal>, T::Error> {
    Ok(match tx.account(user_id, true).await? {
        Some(status) => status.check(now),
        None => Err(AccountRefusal::Disabled),
    })
}

/// [`check`] for an operation that goes on to register a device: the owner's
/// row is taken for registration first (registration would take it anyway),
/// so two such operations never both hold it shared and then both wait to
/// take it alone.
pub async fn check_to_register<T: Txn>(
    tx: &T,
    user_id: &str,
    now: Timestamp,
) -> Result<Result<(), AccountRefusal>, T::Error> {
    tx.lock_owner(user_id).await?;
    check(tx, user_id, now).await
}

/// Whether a token family still works: unrevoked, and its account may act.
pub async fn family_active<T: Txn>(tx: &T, family_id: &str, now: Timestamp) -> Result<bool, T::Error> {
    Ok(match tx.family_liveness(family_id).await? {
        Some((unrevoked, status)) => unrevoked && status.check(now).is_ok(),
        None => false,
    })
}

/// Disables or enables an account and records it; `None` when there is no such account.
pub async fn set_disabled<T: Txn>(
    tx: &T,
    user_id: &str,
    disabled: bool,
    actor: &str,
    now: Timestamp,
) -> Result<Option<UserRecord>, T::Error> {
    if !tx.set_user_disabled(user_id, disabled.then_some(now)).await? {
        return Ok(None);
    }
    if !disabled {
        // Enabling is the admin's one "let this account in again": it lifts a lock too.
        clear_failures(tx, user_id).await?;
    }
    tx.append_audit(&events::user_disabled(actor, user_id, disabled), now).await?;
    tx.user(user_id).await
}

/// Records a wrong password for an existing account from `network` (see
/// [`LockPolicy`] for the rule); returns until when it locked the account, if
/// this failure locked it. Recorded as `user.locked` when it does.
pub async fn record_sign_in_failure<T: Txn>(
    tx: &T,
    user_id: &str,
    network: &str,
    failure: &AuditEvent,
    policy: LockPolicy,
    now: Timestamp,
) -> Result<Option<Timestamp>, T::Error> {
    // The failure's own entry goes in with the count it changes.
    tx.append_audit(failure, now).await?;
    if policy.failures == 0 {
        return Ok(None);
    }
    // Concurrent failures for one account take turns, so none is lost from the count.
    tx.lock_owner(user_id).await?;
    let Some(status) = tx.account(user_id, false).await? else {
        return Ok(None);
    };
    let run = tx.failure_run(user_id).await?.unwrap_or_default();
    let outcome = policy.on_failure(run, status, now);
    tx.set_failure_run(user_id, outcome.run).await?;
    // Older entries can no longer keep a network from lifting a lock; forgetting
    // them bounds what an attacker cycling through networks leaves behind.
    tx.prune_network_failures(user_id, now.plus_secs(-policy.lock_for_secs)).await?;
    tx.add_network_failure(user_id, network, now).await?;
    if let Some(until) = outcome.locks_until {
        tx.set_locked_until(user_id, Some(until)).await?;
        tx.append_audit(&events::user_locked(user_id, until, policy.failures), now).await?;
    }
    Ok(outcome.locks_until)
}

/// Records a correct password for an account from `network`: clears its run of
/// failures and lifts a lock if `network` may lift it ([`LockPolicy::network_may_lift`]).
/// `Ok(true)` when a lock was lifted; the refusal when the account may not act.
pub async fn record_sign_in_success<T: Txn>(
    tx: &T,
    user_id: &str,
    network: &str,
    policy: LockPolicy,
    now: Timestamp,
) -> Result<Result<bool, AccountRefusal>, T::Error> {
    tx.lock_owner(user_id).await?;
    let Some(status) = tx.account(user_id, false).await? else {
        return Ok(Err(AccountRefusal::Disabled));
    };
    let lifted = match status.check(now) {
        Ok(()) => false,
        Err(AccountRefusal::Disabled) => return Ok(Err(AccountRefusal::Disabled)),
        Err(locked) => {
            if !policy.network_may_lift(tx.network_failed_at(user_id, network).await?, now) {
                return Ok(Err(locked));
            }
            true
        }
    };
    clear_failures(tx, user_id).await?;
    Ok(Ok(lifted))
}

/// Forgets an account's failures and lifts its lock.
async fn clear_failures<T: Txn>(tx: &T, user_id: &str) -> Result<(), T::Error> {
    tx.set_failure_run(user_id, FailureRun::default()).await?;
    tx.set_locked_until(user_id, None).await?;
    tx.clear_network_failures(user_id).await
}

/// Deletes an account and everything it held, and records it.
pub async fn delete<T: Txn>(tx: &T, user_id: &str, actor: &str, now: Timestamp) -> Result<bool, T::Error> {
    let Some(user) = tx.user(user_id).await? else {
        return Ok(false);
    };
    if !tx.delete_user(user_id).await? {
        return Ok(false);
    }
    tx.append_audit(&events::user_deleted(actor, user_id, &user.username), now).await?;
    Ok(true)
}

/// Stores a new password and ends every other session (all of them when
/// `keep` is `None`); records it. False when there is no such account.
pub async fn change_password<T: Txn>(
    tx: &T,
    user_id: &str,
    password_hash: &str,
    keep: Option<&SecretHash>,
    actor: &str,
    now: Timestamp,
) -> Result<bool, T::Error> {
    if !tx.set_password(user_id, password_hash).await? {
        return Ok(false);
    }
    let ended = tx.delete_sessions_of(user_id, keep).await?;
    tx.append_audit(&events::password_changed(actor, user_id, ended), now).await?;
    Ok(true)
}

/// Ends everything an account holds: sessions, token families, approved but
/// uncollected grants and QR sign-ins, enrollment keys. Records what it ended.
pub async fn revoke_everything<T: Txn>(
    tx: &T,
    user_id: &str,
    actor: &str,
    now: Timestamp,
) -> Result<Option<RevokedAll>, T::Error> {
    if tx.user(user_id).await?.is_none() {
        return Ok(None);
    }
    let ended = RevokedAll {
        sessions: tx.delete_sessions_of(user_id, None).await?,
        families: tx.revoke_families_of(user_id, now).await?,
        grants: tx.deny_approved_grants_of(user_id).await?,
        pairings: tx.cancel_approved_pairings_of(user_id).await?,
        enrollment_keys: tx.revoke_enrollment_keys_of(user_id, now).await?,
    };
    tx.append_audit(&events::revoked_all(actor, user_id, &ended), now).await?;
    Ok(Some(ended))
}
