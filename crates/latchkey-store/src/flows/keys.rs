//! Private keys at rest: token-signing keys, sealing every key under the server
//! secret key, and rotating that secret. Audit checkpoint keys are kept by
//! [`super::audit`], through the same envelopes.

use crate::at_rest::{self, KeysSecured};
use crate::events;
use crate::records::SigningKeyRecord;
use crate::txn::Txn;
use crate::StoreError;
use latchkey_domain::at_rest::{self as envelope, SecretKey};
use latchkey_domain::audit::{AuditEvent, AuditKind};
use latchkey_domain::Timestamp;
use rand::rngs::OsRng;
use serde_json::json;

/// Refuses to write with `secret` unless the database's keys are sealed under it
/// (say, a server still running with the key that was rotated away).
pub(crate) async fn check_sealing<T: Txn>(tx: &T, secret: &SecretKey, lock: bool) -> Result<(), T::Error> {
    match tx.key_sealing(lock).await? {
        Some(id) if id == secret.id() => Ok(()),
        Some(expected) => Err(StoreError::WrongSecretKey { expected, given: secret.id() }.into()),
        None => Err(StoreError::NoSecretKey.into()),
    }
}

/// Every signing key, opened, newest first.
pub async fn signing_keys<T: Txn>(tx: &T, secret: &SecretKey) -> Result<Vec<SigningKeyRecord>, T::Error> {
    let stored = tx.signing_keys().await?;
    let mut out = Vec::with_capacity(stored.len());
    for k in stored {
        out.push(at_rest::open_signing_key(secret, k)?);
    }
    Ok(out)
}

/// Seals `key`, makes it the active signing key and records `key.rotated`.
pub async fn add_signing_key<T: Txn>(
    tx: &T,
    secret: &SecretKey,
    key: &SigningKeyRecord,
    actor: Option<&str>,
    now: Timestamp,
) -> Result<(), T::Error> {
    check_sealing(tx, secret, false).await?;
    tx.retire_signing_keys(key.alg, now).await?;
    let stored = at_rest::seal_signing_key(secret, &SigningKeyRecord { created_at: now, ..key.clone() });
    tx.insert_signing_key(&stored).await?;
    tx.append_audit(&events::key_rotated(&key.kid, actor), now).await
}

/// Checks `secret` against the key the database names and seals, in place, every
/// key still in plaintext (a database from before migration 13), recording
/// `keys.encrypted` when there were any. The first call names `secret` as the key.
pub async fn secure<T: Txn>(tx: &T, secret: &SecretKey, now: Timestamp) -> Result<KeysSecured, T::Error> {
    let key_id = secret.id();
    match tx.key_sealing(true).await? {
        Some(id) if id == key_id => return Ok(KeysSecured { key_id, sealed_now: 0 }),
        Some(expected) => return Err(StoreError::WrongSecretKey { expected, given: key_id }.into()),
        None => {}
    }
    let mut sealed = 0u64;
    for k in tx.signing_keys().await? {
        let env = secret.seal(&envelope::signing_key_aad(&k.kid), &k.sealed_private, &mut OsRng);
        tx.set_signing_key_sealed(&k.kid, &env).await?;
        sealed += 1;
    }
    for k in tx.audit_keys().await? {
        let env = secret.seal(&envelope::audit_key_aad(k.key_id), &k.sealed_seed, &mut OsRng);
        tx.set_audit_key_sealed(k.key_id, &env).await?;
        sealed += 1;
    }
    tx.set_key_sealing(&key_id, now).await?;
    if sealed > 0 {
        let event = AuditEvent::new(AuditKind::KeysEncrypted, Some("system"), Some(&key_id))
            .with_detail(json!({ "keys": sealed }).to_string());
        tx.append_audit(&event, now).await?;
    }
    Ok(KeysSecured { key_id, sealed_now: sealed })
}

/// Opens every stored key with `old` and seals it with `new`, names `new` as the
/// key, and records `secret_key.rotated`: all or nothing. How many keys moved.
pub async fn rotate<T: Txn>(
    tx: &T,
    old: &SecretKey,
    new: &SecretKey,
    actor: &str,
    now: Timestamp,
) -> Result<u64, T::Error> {
    check_sealing(tx, old, true).await?;
    let mut moved = 0u64;
    let fail = |what: String| move |e| at_rest::open_error(&what, e);
    for k in tx.signing_keys().await? {
        let aad = envelope::signing_key_aad(&k.kid);
        let env = envelope::reseal(old, new, &aad, &k.sealed_private, &mut OsRng)
            .map_err(fail(format!("signing key {}", k.kid)))?;
        tx.set_signing_key_sealed(&k.kid, &env).await?;
        moved += 1;
    }
    for k in tx.audit_keys().await? {
        let aad = envelope::audit_key_aad(k.key_id);
        let env = envelope::reseal(old, new, &aad, &k.sealed_seed, &mut OsRng)
            .map_err(fail(format!("audit key {:08x}", k.key_id)))?;
        tx.set_audit_key_sealed(k.key_id, &env).await?;
        moved += 1;
    }
    tx.set_key_sealing(&new.id(), now).await?;
    let event = AuditEvent::new(AuditKind::SecretKeyRotated, Some(actor), Some(&new.id()))
        .with_detail(json!({ "keys": moved, "from": old.id() }).to_string());
    tx.append_audit(&event, now).await?;
    Ok(moved)
}
