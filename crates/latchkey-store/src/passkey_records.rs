//! Passkeys and their WebAuthn ceremonies, as stored. The credential itself is
//! webauthn-rs's serialised `Passkey`, opaque here: the store keeps it, the
//! server reads it.

use crate::records::NewSession;
use latchkey_domain::account::AccountRefusal;
use latchkey_domain::passkey::{CeremonyKind, MethodRefusal};
use latchkey_domain::secret::SecretHash;
use latchkey_domain::Timestamp;
use thiserror::Error;

/// A stored passkey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyRecord {
    /// ID to show and remove it by.
    pub id: String,
    /// Whose it is.
    pub user_id: String,
    /// The WebAuthn credential ID, base64url without padding.
    pub credential_id: String,
    /// webauthn-rs's serialised `Passkey` (public key, counter, backup state).
    pub passkey: String,
    /// The name its owner gave it.
    pub name: String,
    /// When it was registered.
    pub created_at: Timestamp,
    /// When it last signed in, if ever.
    pub last_used_at: Option<Timestamp>,
}

/// A passkey to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPasskey {
    /// ID to show and remove it by.
    pub id: String,
    /// Whose it is.
    pub user_id: String,
    /// The WebAuthn credential ID, base64url without padding.
    pub credential_id: String,
    /// webauthn-rs's serialised `Passkey`.
    pub passkey: String,
    /// The name its owner gave it.
    pub name: String,
}

/// A ceremony's challenge state to keep until it is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCeremony {
    /// Hash of the ceremony's ID (the ID itself is only in the browser's cookie).
    pub id_hash: SecretHash,
    /// What it is for.
    pub kind: CeremonyKind,
    /// webauthn-rs's serialised ceremony state.
    pub state: String,
    /// Whom it is bound to (registration, re-confirmation); `None` for a sign-in.
    pub user_id: Option<String>,
    /// When it can no longer be answered.
    pub expires_at: Timestamp,
}

/// A ceremony taken for answering (it is gone from the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CeremonyRecord {
    /// webauthn-rs's serialised ceremony state.
    pub state: String,
    /// Whom it is bound to, if anyone.
    pub user_id: Option<String>,
}

/// A verified passkey sign-in to record: the passkey's new state and the session it opens.
#[derive(Debug, Clone)]
pub struct PasskeySignIn {
    /// The passkey that signed in.
    pub passkey_id: String,
    /// Its state after the sign-in (counter, backup state).
    pub passkey: String,
    /// The session to open (its `user_id` is the passkey's owner).
    pub session: NewSession,
}

/// A passkey that just answered a re-confirmation, with its new state (counter,
/// backup state), to store with the change it confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyUse {
    /// The passkey that answered.
    pub passkey_id: String,
    /// Its state after answering.
    pub passkey: String,
}

/// Why a passkey operation changed nothing.
#[derive(Debug, Clone, Copy, Error, PartialEq, Eq)]
pub enum PasskeyRefusal {
    /// The account is stopped.
    #[error(transparent)]
    Account(#[from] AccountRefusal),
    /// The account's sign-in methods forbid it.
    #[error(transparent)]
    Method(#[from] MethodRefusal),
    /// No such passkey of this person (never was, or removed meanwhile).
    #[error("no such passkey")]
    Unknown,
}
