//! The tamper-evident audit log: an append-only hash chain.
//!
//! Each entry's hash covers its own fields and the previous entry's hash, so
//! editing, deleting or reordering any row breaks every link after it. The
//! current head (sequence number and hash) is stored separately, so cutting
//! entries off the end is caught too. An operator who records the head
//! elsewhere (`latchkey admin audit verify` prints it) can also detect a
//! rewrite of the whole chain.
//!
//! Encoding (version 1): SHA-256 over `"latchkey-audit-v1"`, then each field
//! as an 8-byte big-endian length followed by its bytes, in this order:
//! seq, at (ms), kind, actor, subject, detail, previous hash. Integers are
//! 8-byte big-endian; a missing actor or subject is the empty string.

use crate::time::Timestamp;
use sha2::{Digest, Sha256};
use thiserror::Error;

/// Hash of the entry before the first one.
pub const GENESIS_HASH: [u8; 32] = [0u8; 32];
const DOMAIN_TAG: &[u8] = b"latchkey-audit-v1";

/// Kinds of security-relevant actions. The text forms are stable: they are hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditKind {
    /// An account was created.
    UserCreated,
    /// Someone signed in with a correct password.
    SignInSucceeded,
    /// A sign-in was refused.
    SignInFailed,
    /// A session was ended (sign-out).
    SignedOut,
    /// An OAuth app was registered.
    AppCreated,
    /// A device asked to sign in (RFC 8628 device authorization).
    GrantRequested,
    /// A person approved a device sign-in.
    GrantApproved,
    /// A person denied a device sign-in.
    GrantDenied,
    /// Tokens were handed to the device for an approved grant.
    GrantConsumed,
    /// A refresh token family was revoked (logout, revocation endpoint).
    TokenFamilyRevoked,
    /// A rotated refresh token was presented again; its family was revoked.
    RefreshReuseDetected,
    /// A new signing key was made active.
    KeyRotated,
    /// A device was registered.
    DeviceRegistered,
    /// A device was renamed.
    DeviceRenamed,
    /// A device's location changed.
    DeviceRelocated,
    /// A device was revoked.
    DeviceRevoked,
    /// An enrollment key was created.
    EnrollmentKeyCreated,
    /// An enrollment key enrolled a device.
    EnrollmentKeyUsed,
    /// An enrollment key was revoked.
    EnrollmentKeyRevoked,
    /// An app's settings changed.
    AppUpdated,
    /// A desktop started a QR sign-in.
    PairingRequested,
    /// A phone approved a QR sign-in.
    PairingApproved,
    /// A phone refused a QR sign-in.
    PairingDenied,
    /// The desktop gave up a QR sign-in.
    PairingCancelled,
    /// The desktop collected its tokens.
    PairingConsumed,
    /// An admin disabled an account: it gets nothing until enabled.
    UserDisabled,
    /// An admin enabled an account again.
    UserEnabled,
    /// An account and everything it held were deleted.
    UserDeleted,
    /// An account's password was changed; its other sessions ended.
    PasswordChanged,
    /// Everything an account held was ended at once.
    UserRevokedAll,
    /// Repeated wrong passwords locked an account for a while.
    UserLocked,
    /// An app declared an event kind (or changed its retention).
    EventKindDeclared,
    /// A device signed its trust in another device's key.
    TrustAdded,
    /// A device's trust in another was removed.
    TrustRemoved,
    /// A device replaced its key (with or without a signed chain).
    DeviceKeyRotated,
    /// A device made a trusted session with other devices.
    SessionCreated,
    /// A member accepted its invitation, proving its device key.
    SessionJoined,
    /// A member left a trusted session.
    SessionLeft,
    /// A member was removed from a trusted session (revoked, trust ended, key changed).
    SessionMemberRemoved,
    /// A member issued a new session key after the members changed.
    SessionRekeyed,
    /// A trusted session was closed or expired.
    SessionClosed,
}

impl AuditKind {
    /// Every kind, for filters and listings.
    pub const ALL: [AuditKind; 41] = [
        AuditKind::UserCreated,
        AuditKind::SignInSucceeded,
        AuditKind::SignInFailed,
        AuditKind::SignedOut,
        AuditKind::AppCreated,
        AuditKind::GrantRequested,
        AuditKind::GrantApproved,
        AuditKind::GrantDenied,
        AuditKind::GrantConsumed,
        AuditKind::TokenFamilyRevoked,
        AuditKind::RefreshReuseDetected,
        AuditKind::KeyRotated,
        AuditKind::DeviceRegistered,
        AuditKind::DeviceRenamed,
        AuditKind::DeviceRelocated,
        AuditKind::DeviceRevoked,
        AuditKind::EnrollmentKeyCreated,
        AuditKind::EnrollmentKeyUsed,
        AuditKind::EnrollmentKeyRevoked,
        AuditKind::AppUpdated,
        AuditKind::PairingRequested,
        AuditKind::PairingApproved,
        AuditKind::PairingDenied,
        AuditKind::PairingCancelled,
        AuditKind::PairingConsumed,
        AuditKind::UserDisabled,
        AuditKind::UserEnabled,
        AuditKind::UserDeleted,
        AuditKind::PasswordChanged,
        AuditKind::UserRevokedAll,
        AuditKind::UserLocked,
        AuditKind::EventKindDeclared,
        AuditKind::TrustAdded,
        AuditKind::TrustRemoved,
        AuditKind::DeviceKeyRotated,
        AuditKind::SessionCreated,
        AuditKind::SessionJoined,
        AuditKind::SessionLeft,
        AuditKind::SessionMemberRemoved,
        AuditKind::SessionRekeyed,
        AuditKind::SessionClosed,
    ];

    /// Stable text, hashed into the chain.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::UserCreated => "user.created",
            AuditKind::SignInSucceeded => "signin.succeeded",
            AuditKind::SignInFailed => "signin.failed",
            AuditKind::SignedOut => "signin.signed_out",
            AuditKind::AppCreated => "app.created",
            AuditKind::GrantRequested => "grant.requested",
            AuditKind::GrantApproved => "grant.approved",
            AuditKind::GrantDenied => "grant.denied",
            AuditKind::GrantConsumed => "grant.consumed",
            AuditKind::TokenFamilyRevoked => "token.family_revoked",
            AuditKind::RefreshReuseDetected => "token.refresh_reused",
            AuditKind::KeyRotated => "key.rotated",
            AuditKind::DeviceRegistered => "device.registered",
            AuditKind::DeviceRenamed => "device.renamed",
            AuditKind::DeviceRelocated => "device.relocated",
            AuditKind::DeviceRevoked => "device.revoked",
            AuditKind::EnrollmentKeyCreated => "enroll_key.created",
            AuditKind::EnrollmentKeyUsed => "enroll_key.used",
            AuditKind::EnrollmentKeyRevoked => "enroll_key.revoked",
            AuditKind::AppUpdated => "app.updated",
            AuditKind::PairingRequested => "qr.requested",
            AuditKind::PairingApproved => "qr.approved",
            AuditKind::PairingDenied => "qr.denied",
            AuditKind::PairingCancelled => "qr.cancelled",
            AuditKind::PairingConsumed => "qr.consumed",
            AuditKind::UserDisabled => "user.disabled",
            AuditKind::UserEnabled => "user.enabled",
            AuditKind::UserDeleted => "user.deleted",
            AuditKind::PasswordChanged => "user.password_changed",
            AuditKind::UserRevokedAll => "user.revoked_all",
            AuditKind::UserLocked => "user.locked",
            AuditKind::EventKindDeclared => "events.kind_declared",
            AuditKind::TrustAdded => "trust.added",
            AuditKind::TrustRemoved => "trust.removed",
            AuditKind::DeviceKeyRotated => "device.key_rotated",
            AuditKind::SessionCreated => "tsession.created",
            AuditKind::SessionJoined => "tsession.joined",
            AuditKind::SessionLeft => "tsession.left",
            AuditKind::SessionMemberRemoved => "tsession.member_removed",
            AuditKind::SessionRekeyed => "tsession.rekeyed",
            AuditKind::SessionClosed => "tsession.closed",
        }
    }

    /// Reads back [`AuditKind::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// An action to record, before it has a place in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// What happened.
    pub kind: AuditKind,
    /// Who did it (a user ID, a client ID, or `system`), if anyone.
    pub actor: Option<String>,
    /// What it was done to (a grant, a user, a key), if anything.
    pub subject: Option<String>,
    /// Extra facts as a JSON object in text form; hashed exactly as stored.
    pub detail: String,
}

impl AuditEvent {
    /// An event with no detail.
    pub fn new(kind: AuditKind, actor: Option<&str>, subject: Option<&str>) -> Self {
        Self { kind, actor: actor.map(str::to_string), subject: subject.map(str::to_string), detail: "{}".to_string() }
    }

    /// The same event with `detail` (JSON object text).
    pub fn with_detail(mut self, detail: String) -> Self {
        self.detail = detail;
        self
    }
}

/// An entry as stored: the event, its place and its links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// When it was recorded.
    pub at: Timestamp,
    /// Text of the kind (kept as text so entries from newer versions still verify).
    pub kind: String,
    /// Who did it.
    pub actor: Option<String>,
    /// What it was done to.
    pub subject: Option<String>,
    /// JSON object text.
    pub detail: String,
    /// Hash of the previous entry.
    pub prev_hash: [u8; 32],
    /// Hash of this entry.
    pub hash: [u8; 32],
}

/// The end of the chain: where the next entry attaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHead {
    /// Sequence number of the last entry (0 for an empty chain).
    pub seq: i64,
    /// Hash of the last entry ([`GENESIS_HASH`] for an empty chain).
    pub hash: [u8; 32],
}

impl ChainHead {
    /// The head of an empty chain.
    pub const EMPTY: ChainHead = ChainHead { seq: 0, hash: GENESIS_HASH };

    /// Seals `event` at `at` onto this head, returning the entry and the new head.
    pub fn append(&self, event: &AuditEvent, at: Timestamp) -> (AuditEntry, ChainHead) {
        let seq = self.seq + 1;
        let hash = entry_hash(
            seq,
            at,
            event.kind.as_str(),
            event.actor.as_deref(),
            event.subject.as_deref(),
            &event.detail,
            &self.hash,
        );
        let entry = AuditEntry {
            seq,
            at,
            kind: event.kind.as_str().to_string(),
            actor: event.actor.clone(),
            subject: event.subject.clone(),
            detail: event.detail.clone(),
            prev_hash: self.hash,
            hash,
        };
        (entry, ChainHead { seq, hash })
    }
}

fn entry_hash(
    seq: i64,
    at: Timestamp,
    kind: &str,
    actor: Option<&str>,
    subject: Option<&str>,
    detail: &str,
    prev: &[u8; 32],
) -> [u8; 32] {
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    };
    field(DOMAIN_TAG);
    field(&seq.to_be_bytes());
    field(&at.as_millis().to_be_bytes());
    field(kind.as_bytes());
    field(actor.unwrap_or("").as_bytes());
    field(subject.unwrap_or("").as_bytes());
    field(detail.as_bytes());
    field(prev);
    h.finalize().into()
}

/// The first place where the chain does not hold.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ChainBreak {
    /// A sequence number is missing or out of order (a row deleted or inserted).
    #[error("entry {found} follows entry {after}: entries are missing or out of order")]
    Gap {
        /// The last good sequence number.
        after: i64,
        /// The sequence number found next.
        found: i64,
    },
    /// An entry does not point at its predecessor's hash.
    #[error("entry {seq} does not link to the entry before it")]
    BrokenLink {
        /// The offending entry.
        seq: i64,
    },
    /// An entry's content does not match its hash (it was edited).
    #[error("entry {seq} was altered: its content does not match its hash")]
    Altered {
        /// The offending entry.
        seq: i64,
    },
    /// The stored head does not match the last entry (entries cut off the end, or the head edited).
    #[error("the chain ends at entry {last_seq} but its recorded head is entry {head_seq}")]
    HeadMismatch {
        /// Last entry found.
        last_seq: i64,
        /// Head recorded.
        head_seq: i64,
    },
}

/// Incremental verifier: feed entries in order, then [`ChainVerifier::finish`] with the stored head.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    head: ChainHead,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self { head: ChainHead::EMPTY }
    }
}

impl ChainVerifier {
    /// Checks the next entry against everything seen so far.
    pub fn push(&mut self, e: &AuditEntry) -> Result<(), ChainBreak> {
        if e.seq != self.head.seq + 1 {
            return Err(ChainBreak::Gap { after: self.head.seq, found: e.seq });
        }
        if e.prev_hash != self.head.hash {
            return Err(ChainBreak::BrokenLink { seq: e.seq });
        }
        let want = entry_hash(e.seq, e.at, &e.kind, e.actor.as_deref(), e.subject.as_deref(), &e.detail, &e.prev_hash);
        if want != e.hash {
            return Err(ChainBreak::Altered { seq: e.seq });
        }
        self.head = ChainHead { seq: e.seq, hash: e.hash };
        Ok(())
    }

    /// Compares the end of the chain with the recorded head; returns the verified head.
    pub fn finish(self, recorded: ChainHead) -> Result<ChainHead, ChainBreak> {
        if recorded != self.head {
            return Err(ChainBreak::HeadMismatch { last_seq: self.head.seq, head_seq: recorded.seq });
        }
        Ok(self.head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Edit = Box<dyn Fn(&mut AuditEntry)>;

    fn chain(n: usize) -> (Vec<AuditEntry>, ChainHead) {
        let mut head = ChainHead::EMPTY;
        let mut out = Vec::new();
        for i in 0..n {
            let ev = AuditEvent::new(AuditKind::ALL[i % AuditKind::ALL.len()], Some("u1"), Some("g1"))
                .with_detail(format!("{{\"i\":{i}}}"));
            let (e, h) = head.append(&ev, Timestamp::from_millis(i as i64));
            out.push(e);
            head = h;
        }
        (out, head)
    }

    fn verify(entries: &[AuditEntry], head: ChainHead) -> Result<ChainHead, ChainBreak> {
        let mut v = ChainVerifier::default();
        for e in entries {
            v.push(e)?;
        }
        v.finish(head)
    }

    #[test]
    fn intact_chain_verifies() {
        let (entries, head) = chain(20);
        assert_eq!(verify(&entries, head), Ok(head));
        assert_eq!(verify(&[], ChainHead::EMPTY), Ok(ChainHead::EMPTY));
    }

    #[test]
    fn any_edit_of_any_field_is_detected() {
        let (entries, head) = chain(10);
        for i in 0..entries.len() {
            let edits: Vec<Edit> = vec![
                Box::new(|e| e.kind = "user.created.x".into()),
                Box::new(|e| e.actor = Some("mallory".into())),
                Box::new(|e| e.subject = None),
                Box::new(|e| e.detail = "{}".into()),
                Box::new(|e| e.at = e.at.plus_millis(1)),
                Box::new(|e| e.hash[0] ^= 1),
                Box::new(|e| e.prev_hash[31] ^= 1),
            ];
            for edit in edits {
                let mut tampered = entries.clone();
                edit(&mut tampered[i]);
                assert!(verify(&tampered, head).is_err(), "edit at {i} not detected");
            }
        }
    }

    #[test]
    fn deleting_any_entry_is_detected() {
        let (entries, head) = chain(10);
        for i in 0..entries.len() {
            let mut tampered = entries.clone();
            tampered.remove(i);
            assert!(verify(&tampered, head).is_err(), "delete at {i} not detected");
        }
    }

    #[test]
    fn break_names_the_first_bad_entry() {
        let (mut entries, head) = chain(5);
        entries[2].detail = "{\"i\":99}".into();
        assert_eq!(verify(&entries, head), Err(ChainBreak::Altered { seq: 3 }));
        let (mut entries, head) = chain(5);
        entries.remove(1);
        assert_eq!(verify(&entries, head), Err(ChainBreak::Gap { after: 1, found: 3 }));
        let (mut entries, head) = chain(5);
        entries.pop();
        assert_eq!(verify(&entries, head), Err(ChainBreak::HeadMismatch { last_seq: 4, head_seq: 5 }));
    }

    #[test]
    fn kinds_round_trip() {
        for k in AuditKind::ALL {
            assert_eq!(AuditKind::parse(k.as_str()), Some(k));
        }
    }
}
