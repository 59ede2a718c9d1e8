//! Records of trusted devices and automatic sessions: what the store takes and returns.

use latchkey_domain::trusted_session::{Descriptor, SessionOptions, SignedInvitation, TargetOutcome};
use latchkey_domain::Timestamp;

/// A key replacement as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationRecord {
    /// Key replaced, base64url.
    pub old_key: String,
    /// Key that replaced it, base64url.
    pub new_key: String,
    /// The old key's signature over the rotation statement, if chained.
    pub signature: Option<String>,
}

/// A device's published session key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionKeyRecord {
    /// Protocol version.
    pub protocol: u32,
    /// X25519 public key, base64url.
    pub key: String,
    /// The device key that signed it, base64url.
    pub signed_by: String,
    /// The signature, base64url.
    pub signature: String,
}

/// Everything another device needs to trust a device or seal to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceKeysRecord {
    /// The device.
    pub device: crate::DeviceRecord,
    /// Its current Ed25519 key, base64url (`None` for a device without a key).
    pub public_key: Option<String>,
    /// Its session key, if published for its current key.
    pub session_key: Option<SessionKeyRecord>,
    /// Its key replacements, oldest first.
    pub rotations: Vec<RotationRecord>,
}

/// A trust statement to store, as the calling device sent it.
#[derive(Debug, Clone)]
pub struct NewTrust {
    /// Whose devices.
    pub user_id: String,
    /// The device that signed.
    pub truster: String,
    /// The device trusted.
    pub trustee: String,
    /// The trustee key named, base64url.
    pub trustee_key: String,
    /// Signing time (part of the signed bytes).
    pub issued_at: Timestamp,
    /// Signature, base64url.
    pub signature: String,
}

/// A stored trust statement, with names and whether it holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustRecord {
    /// The device that trusts.
    pub truster: String,
    /// Its name.
    pub truster_name: String,
    /// The device trusted.
    pub trustee: String,
    /// Its name.
    pub trustee_name: String,
    /// The truster's key when it signed.
    pub truster_key: String,
    /// The trustee key it names.
    pub trustee_key: String,
    /// When it was stored.
    pub created_at: Timestamp,
    /// Whether it holds now.
    pub holds: bool,
}

/// Why a trust or key operation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustRefusal {
    /// No such device of this user (or the caller is not a device with a key).
    UnknownDevice,
    /// A device cannot trust itself.
    SelfTrust,
    /// One of the devices is revoked.
    Revoked,
    /// The key named is not the device's current key.
    WrongKey,
    /// The signature does not match.
    BadSignature,
    /// Something malformed (key, ID).
    Invalid(String),
}

/// A key replacement asked for by a device.
#[derive(Debug, Clone)]
pub struct RotateKey {
    /// Whose device.
    pub user_id: String,
    /// The device.
    pub device_id: String,
    /// The new key as a JWK (JSON text).
    pub new_jwk: String,
    /// The new key's thumbprint.
    pub new_jkt: String,
    /// The new key, base64url.
    pub new_key: String,
    /// The old key's signature over the rotation statement, if any.
    pub chain_signature: Option<String>,
    /// The app the new tokens are for.
    pub client_id: String,
    /// Their scope.
    pub scope: String,
    /// The new family (bound to the new key).
    pub mint: crate::MintRefresh,
}

/// A session the calling device asks for.
#[derive(Debug, Clone)]
pub struct SessionAsk {
    /// Whose devices.
    pub user_id: String,
    /// The calling device.
    pub creator: String,
    /// Targets by ID or slug.
    pub targets: Vec<String>,
    /// How.
    pub options: SessionOptions,
    /// The new session's ID (used if it is made).
    pub session_id: String,
    /// Its lifetime.
    pub ttl_secs: i64,
}

/// One target's answer with the device it resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetAnswer {
    /// As named.
    pub target: String,
    /// Resolved device.
    pub device_id: Option<String>,
    /// Answer.
    pub outcome: TargetOutcome,
}

/// The answer to a session plan.
#[derive(Debug, Clone)]
pub struct SessionPlanned {
    /// One per target.
    pub targets: Vec<TargetAnswer>,
    /// What to sign, if the session can be made.
    pub descriptor: Option<Descriptor>,
    /// Each member's keys, the creator's included.
    pub members: Vec<DeviceKeysRecord>,
}

/// A trusted session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedSessionRecord {
    /// ID.
    pub id: String,
    /// Whose.
    pub user_id: String,
    /// The device that made it.
    pub creator: String,
    /// Current key generation.
    pub epoch: u32,
    /// Protocol version.
    pub protocol: u32,
    /// Whether members changed since the current key was issued.
    pub rekey_needed: bool,
    /// Made.
    pub created_at: Timestamp,
    /// Ends.
    pub expires_at: Timestamp,
    /// Closed, if it was.
    pub closed_at: Option<Timestamp>,
    /// Members and their status, by device ID.
    pub members: Vec<(String, String)>,
}

impl TrustedSessionRecord {
    /// `open`, `closed` or `expired` at `now`.
    pub fn status(&self, now: Timestamp) -> &'static str {
        self.state().status(now)
    }

    /// The session as its rules see it.
    pub fn state(&self) -> latchkey_domain::trusted_session::SessionState {
        latchkey_domain::trusted_session::SessionState {
            closed: self.closed_at.is_some(),
            expires_at: self.expires_at,
            epoch: self.epoch,
            rekey_needed: self.rekey_needed,
        }
    }

    /// A device's standing in the session, if it ever was a member.
    pub fn member(&self, device: &str) -> Option<latchkey_domain::trusted_session::MemberStatus> {
        self.members
            .iter()
            .find(|(d, _)| d == device)
            .and_then(|(_, s)| latchkey_domain::trusted_session::MemberStatus::parse(s))
    }

    /// The members that count (invited or joined), sorted.
    pub fn current_members(&self) -> Vec<String> {
        let current =
            |s: &str| latchkey_domain::trusted_session::MemberStatus::parse(s).is_some_and(|m| m.is_current());
        let mut m: Vec<String> = self.members.iter().filter(|(_, s)| current(s)).map(|(d, _)| d.clone()).collect();
        m.sort();
        m
    }

    /// The descriptor every current member signs and checks.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor {
            session_id: self.id.clone(),
            creator: self.creator.clone(),
            members: self.current_members(),
            epoch: self.epoch,
            protocol: self.protocol,
            expires_at: self.expires_at.as_millis(),
        }
    }
}

/// A made session, or why not.
#[derive(Debug, Clone)]
pub enum SessionMade {
    /// Made; the answers and the session.
    Made(Vec<TargetAnswer>, Box<TrustedSessionRecord>),
    /// Some target does not pass any more (answers say which).
    Refused(Vec<TargetAnswer>),
}

pub use latchkey_domain::trusted_session::SessionRefusal;

/// Invitations to store (a create, a rekey or a re-issue).
#[derive(Debug, Clone)]
pub struct Issue {
    /// The session.
    pub session_id: String,
    /// The calling device.
    pub sender: String,
    /// What the sender signed.
    pub descriptor: Descriptor,
    /// The invitations.
    pub invitations: Vec<SignedInvitation>,
}

/// A join: the calling device accepts the invitation with `nonce`.
#[derive(Debug, Clone)]
pub struct Join {
    /// The session.
    pub session_id: String,
    /// The calling device.
    pub device_id: String,
    /// The invitation's nonce.
    pub nonce: String,
    /// Signature over the join statement, base64url.
    pub signature: String,
}

/// A message to relay.
#[derive(Debug, Clone)]
pub struct Relay {
    /// The session.
    pub session_id: String,
    /// The sending device.
    pub sender: String,
    /// Key generation.
    pub epoch: u32,
    /// Sender's counter.
    pub seq: i64,
    /// Ciphertext, base64url.
    pub body: String,
}

/// One entry of a user's relay log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Position.
    pub pos: i64,
    /// Session.
    pub session_id: String,
    /// Key generation.
    pub epoch: u32,
    /// For messages: sender, its counter and the ciphertext.
    pub message: Option<(String, i64, String)>,
    /// For session events: what happened and to which device.
    pub event: Option<(String, Option<String>)>,
}

/// What a device's channel has to deliver after a position.
#[derive(Debug, Clone, Default)]
pub struct ChannelBatch {
    /// Invitations for the device, not yet used, at their session's current key.
    pub invitations: Vec<SignedInvitation>,
    /// Log entries after the cursor the device may see.
    pub entries: Vec<LogEntry>,
    /// The oldest position still kept, if entries before the cursor were dropped.
    pub gap: Option<i64>,
    /// How far the device has now seen the log, counting entries it may not see:
    /// where its next read starts.
    pub seen_up_to: i64,
}

/// An invitation's state in the replay store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationState {
    /// Its session.
    pub session_id: String,
    /// Its recipient.
    pub recipient: String,
    /// The key generation it carries.
    pub epoch: u32,
    /// When it stops being accepted.
    pub expires_at: Timestamp,
    /// When it was used, if it was.
    pub used_at: Option<Timestamp>,
}
