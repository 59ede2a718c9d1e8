//! Trusted devices and automatic sessions on the wire: trust statements,
//! device keys, session plans, joins, relayed messages and channel events.
//!
//! The signed structures themselves ([`SignedInvitation`], [`Descriptor`])
//! and the bytes each signature covers live in `latchkey_domain`; they are
//! re-exported here so clients need only this crate for the wire.

pub use latchkey_domain::trusted_session::{Descriptor, Invitation, SignedInvitation};
use serde::{Deserialize, Serialize};

/// `POST /api/v1/trusts`: the calling device trusts `trustee`'s key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrustRequest {
    /// The trusted device's ID.
    pub trustee: String,
    /// The key the caller checked the fingerprint of (base64url Ed25519).
    pub trustee_key: String,
    /// When the statement was signed, ms since epoch (part of the signed bytes).
    pub issued_at_ms: i64,
    /// The caller's Ed25519 signature over the trust statement, base64url.
    pub signature: String,
}

/// One trust statement of the user's devices.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TrustInfo {
    /// The device that trusts.
    pub truster: String,
    /// Its display name.
    pub truster_name: String,
    /// The device trusted.
    pub trustee: String,
    /// Its display name.
    pub trustee_name: String,
    /// Fingerprint of the key the statement names.
    pub trustee_fingerprint: String,
    /// Signed, ms since epoch.
    pub created_at_ms: i64,
    /// Whether it holds now: both devices active and both keys the ones signed (or reached by signed rotation).
    pub holds: bool,
}

/// `GET /api/v1/trusts`: every trust statement between the user's devices.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrustList {
    /// Statements, oldest first.
    pub trusts: Vec<TrustInfo>,
}

/// A device's published session key (X25519), signed by its device key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SessionKey {
    /// Protocol version it is for.
    pub protocol: u32,
    /// X25519 public key, base64url.
    pub key: String,
    /// Ed25519 signature over the session-key statement, base64url.
    pub signature: String,
}

/// One replacement of a device's key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyRotation {
    /// Key replaced, base64url.
    pub old: String,
    /// Key that replaced it, base64url.
    pub new: String,
    /// The old key's signature over the rotation statement, when there is a chain.
    pub signature: Option<String>,
}

/// `GET /api/v1/devices/{id}/keys`: what another device needs to trust this one or seal to it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeviceKeys {
    /// Device ID.
    pub device_id: String,
    /// Display name.
    pub name: String,
    /// Slug.
    pub slug: String,
    /// `active` or `revoked`.
    pub status: String,
    /// Current Ed25519 key, base64url.
    pub public_key: String,
    /// Its fingerprint, grouped hex.
    pub fingerprint: String,
    /// Its session key, if published.
    pub session_key: Option<SessionKey>,
    /// Its key replacements, oldest first (clients check chains themselves).
    pub rotations: Vec<KeyRotation>,
}

/// `POST /api/v1/device/key`: replace the calling device's key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RotateKeyRequest {
    /// The new Ed25519 public key as a JWK.
    pub public_jwk: serde_json::Value,
    /// The old key's signature over the rotation statement; without it, trust does not carry over.
    #[serde(default)]
    pub chain_signature: Option<String>,
}

/// `POST /api/v1/trusted-sessions/plan` and `POST /api/v1/trusted-sessions`: who to invite, and how.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct SessionRequest {
    /// Targets by device ID or slug.
    pub targets: Vec<String>,
    /// Make the session with the targets that pass (default: all or nothing).
    #[serde(default)]
    pub partial: bool,
    /// Refuse targets that are offline.
    #[serde(default)]
    pub online_only: bool,
    /// Session lifetime in seconds (default one hour, at most a day).
    #[serde(default)]
    pub ttl_secs: Option<i64>,
}

/// One target's answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TargetResult {
    /// The target as named.
    pub target: String,
    /// The device it resolved to, if any.
    pub device_id: Option<String>,
    /// `invited`, `invited_offline`, `unknown_device`, `ambiguous_name`, `creator_itself`,
    /// `revoked`, `incompatible`, `not_trusted`, `ambiguous`, `offline` or `over_limit`.
    pub outcome: String,
    /// For `not_trusted`: `creator`, `target` or `both` (whose statement is missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<String>,
}

/// The answer to a session plan: per-target results and, when the session
/// can be made, the descriptor to sign and each member's keys to seal to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionPlan {
    /// Whether a session would be made.
    pub create: bool,
    /// One result per target, in order.
    pub targets: Vec<TargetResult>,
    /// What to sign, when `create`.
    pub descriptor: Option<Descriptor>,
    /// Each member's keys (the creator's included), when `create`.
    pub members: Vec<DeviceKeys>,
}

/// `POST /api/v1/trusted-sessions`: make the planned session with these invitations.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateSession {
    /// The descriptor from the plan, as signed.
    pub descriptor: Descriptor,
    /// One signed invitation per member but the creator.
    pub invitations: Vec<SignedInvitation>,
}

/// `POST /api/v1/trusted-sessions/{id}/invitations`: invitations at the session's
/// current key generation (a rekey after a member left, or a fresh invitation
/// for a member whose earlier one expired).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IssueInvitations {
    /// The current descriptor.
    pub descriptor: Descriptor,
    /// The invitations.
    pub invitations: Vec<SignedInvitation>,
}

/// A trusted session as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SessionInfo {
    /// Session ID.
    pub id: String,
    /// The device that made it.
    pub creator: String,
    /// `open`, `closed` or `expired`.
    pub status: String,
    /// Current key generation.
    pub epoch: u32,
    /// Whether a new key must be issued before messages flow again.
    pub rekey_needed: bool,
    /// Ends, ms since epoch.
    pub expires_at_ms: i64,
    /// Members and their state.
    pub members: Vec<MemberInfo>,
}

/// One member.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MemberInfo {
    /// Device ID.
    pub device_id: String,
    /// `invited`, `joined`, `left` or `removed`.
    pub status: String,
}

/// The answer to a create: results and, when made, the session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionCreated {
    /// One result per member named in the descriptor.
    pub targets: Vec<TargetResult>,
    /// The session, when made.
    pub session: Option<SessionInfo>,
}

/// `POST /api/v1/trusted-sessions/{id}/join`: accept an invitation, proving the device key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinRequest {
    /// The invitation's nonce.
    pub nonce: String,
    /// Ed25519 signature over the join statement, base64url.
    pub signature: String,
}

/// `POST /api/v1/trusted-sessions/{id}/messages`: relay an end-to-end encrypted message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SendMessage {
    /// Key generation it is encrypted under.
    pub epoch: u32,
    /// The sender's own counter: 1, 2, 3, … with no gaps.
    pub seq: i64,
    /// Ciphertext, base64url.
    pub body: String,
}

/// The relay's answer: where the message sits in the session's log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sent {
    /// Position in the channel's log.
    pub id: i64,
}

/// One event on a device's channel (`GET /api/v1/channel`, Server-Sent Events,
/// the JSON of one of these in each `data:` line).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ChannelEvent {
    /// The channel is open; the device counts as online.
    Ready {
        /// This connection's ID.
        connection: String,
    },
    /// An invitation for this device.
    Invitation {
        /// The invitation.
        invitation: Box<SignedInvitation>,
    },
    /// A relayed message.
    Message {
        /// Position in the log (resume after it with `?after=`).
        id: i64,
        /// Session ID.
        session_id: String,
        /// Sending device.
        sender: String,
        /// The sender's counter.
        seq: i64,
        /// Key generation.
        epoch: u32,
        /// Ciphertext, base64url.
        body: String,
    },
    /// Something happened to a session: `member_joined`, `member_left`,
    /// `member_removed`, `rekey_needed`, `rekeyed`, `invitation_needed` or `closed`.
    Session {
        /// Position in the log.
        id: i64,
        /// Session ID.
        session_id: String,
        /// What happened.
        event: String,
        /// The device it concerns, if any.
        device: Option<String>,
        /// The session's key generation after it.
        epoch: u32,
    },
    /// Messages before this point were dropped from the backlog.
    Gap {
        /// The oldest position still kept.
        oldest: i64,
    },
}
