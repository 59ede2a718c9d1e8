//! Keys at rest: what the database holds of private keys (sealed envelopes,
//! [`latchkey_domain::at_rest`]) and the server secret key a store was unlocked with.
//!
//! A store opens with no secret key. [`Store::secure_keys`](crate::Store::secure_keys)
//! checks the key against the one the database names, seals any key an older
//! Latchkey left in plaintext, and keeps the key in the store's [`KeyVault`];
//! every operation that reads or writes a private key goes through it after that.

use crate::audit_records::AuditKeyRecord;
use crate::records::{IdTokenAlg, SigningKeyRecord};
use crate::StoreError;
use latchkey_domain::at_rest::{self, AtRestError, SecretKey};
use latchkey_domain::Timestamp;
use std::sync::{Arc, RwLock};

/// A token-signing key as stored: its private key sealed.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredSigningKey {
    /// Key ID (`kid`).
    pub kid: String,
    /// The private key's PKCS#8 document, in an envelope (plaintext only before migration 13 was secured).
    pub sealed_private: Vec<u8>,
    /// The public key: raw 32 bytes (Ed25519), or PKCS#1 DER (RSA).
    pub public_key: Vec<u8>,
    /// When it was made.
    pub created_at: Timestamp,
    /// When a newer key replaced it for signing.
    pub retired_at: Option<Timestamp>,
    /// What it signs with.
    pub alg: IdTokenAlg,
}

impl std::fmt::Debug for StoredSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredSigningKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

/// An audit checkpoint key as stored: its seed sealed.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredAuditKey {
    /// The signed-note key ID.
    pub key_id: u32,
    /// The key name (the log's origin).
    pub name: String,
    /// The Ed25519 seed, in an envelope (plaintext only before migration 13 was secured).
    pub sealed_seed: Vec<u8>,
    /// When it was added.
    pub created_at: Timestamp,
    /// From when it no longer signs.
    pub retired_at: Option<Timestamp>,
}

impl std::fmt::Debug for StoredAuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredAuditKey").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

/// What [`Store::secure_keys`](crate::Store::secure_keys) found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeysSecured {
    /// The ID of the secret key the database's keys are sealed under (the one given).
    pub key_id: String,
    /// Keys that were in plaintext and are sealed now (0 once a database is secured).
    pub sealed_now: u64,
}

/// The server secret key a store was unlocked with; empty until then.
#[derive(Default)]
pub struct KeyVault(RwLock<Option<Arc<SecretKey>>>);

impl KeyVault {
    /// The key, or [`StoreError::NoSecretKey`] before the store was unlocked.
    pub fn current(&self) -> Result<Arc<SecretKey>, StoreError> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone().ok_or(StoreError::NoSecretKey)
    }

    /// Keeps `key` for every later operation.
    pub fn set(&self, key: Arc<SecretKey>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Some(key);
    }
}

/// A sealed key that would not open, as a store error.
pub fn open_error(what: &str, e: AtRestError) -> StoreError {
    match e {
        AtRestError::WrongKey { expected, given } => StoreError::WrongSecretKey { expected, given },
        other => StoreError::Corrupt(format!("{what}: {other}")),
    }
}

/// Seals a signing key for storing.
pub fn seal_signing_key(secret: &SecretKey, k: &SigningKeyRecord) -> StoredSigningKey {
    StoredSigningKey {
        kid: k.kid.clone(),
        sealed_private: secret.seal(&at_rest::signing_key_aad(&k.kid), &k.private_pkcs8, &mut rand::rngs::OsRng),
        public_key: k.public_key.clone(),
        created_at: k.created_at,
        retired_at: k.retired_at,
        alg: k.alg,
    }
}

/// Opens a stored signing key.
pub fn open_signing_key(secret: &SecretKey, k: StoredSigningKey) -> Result<SigningKeyRecord, StoreError> {
    let what = format!("signing key {}", k.kid);
    let plain = secret.open(&at_rest::signing_key_aad(&k.kid), &k.sealed_private).map_err(|e| open_error(&what, e))?;
    Ok(SigningKeyRecord {
        kid: k.kid,
        private_pkcs8: plain.to_vec(),
        public_key: k.public_key,
        created_at: k.created_at,
        retired_at: k.retired_at,
        alg: k.alg,
    })
}

/// Seals an audit key for storing.
pub fn seal_audit_key(secret: &SecretKey, k: &AuditKeyRecord) -> StoredAuditKey {
    StoredAuditKey {
        key_id: k.key_id,
        name: k.name.clone(),
        sealed_seed: secret.seal(&at_rest::audit_key_aad(k.key_id), &k.seed, &mut rand::rngs::OsRng),
        created_at: k.created_at,
        retired_at: k.retired_at,
    }
}

/// Opens a stored audit key.
pub fn open_audit_key(secret: &SecretKey, k: StoredAuditKey) -> Result<AuditKeyRecord, StoreError> {
    let what = format!("audit key {:08x}", k.key_id);
    let plain = secret.open(&at_rest::audit_key_aad(k.key_id), &k.sealed_seed).map_err(|e| open_error(&what, e))?;
    let seed: [u8; 32] =
        plain.as_slice().try_into().map_err(|_| StoreError::Corrupt(format!("{what}: the seed is not 32 bytes")))?;
    Ok(AuditKeyRecord { key_id: k.key_id, name: k.name, seed, created_at: k.created_at, retired_at: k.retired_at })
}
