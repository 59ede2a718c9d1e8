//! The records storage reads and writes.

use latchkey_domain::audit::AuditEvent;
use latchkey_domain::device_grant::{DecideError, Decision, GrantState};
use latchkey_domain::secret::SecretHash;
use latchkey_domain::Timestamp;

/// An account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Stable ID (UUID).
    pub id: String,
    /// Normalised sign-in name.
    pub username: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Whether the user administers the server.
    pub is_admin: bool,
    /// When the account was made.
    pub created_at: Timestamp,
}

/// An account to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Stable ID (UUID).
    pub id: String,
    /// Normalised sign-in name.
    pub username: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Whether the user administers the server.
    pub is_admin: bool,
}

/// A session to store, with the sign-in event that created it.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// Hash of the session token.
    pub token_hash: SecretHash,
    /// Whose session.
    pub user_id: String,
    /// When it stops working.
    pub expires_at: Timestamp,
    /// The `signin.succeeded` entry to record with it.
    pub audit: AuditEvent,
}

/// A live session and its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The signed-in user.
    pub user: UserRecord,
    /// When the session started.
    pub created_at: Timestamp,
    /// When it stops working.
    pub expires_at: Timestamp,
}

/// Public apps hold no secret; confidential apps authenticate with one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// A CLI, desktop or mobile app that cannot keep a secret.
    Public,
    /// A server-side app with a client secret.
    Confidential,
}

impl ClientKind {
    /// Stable text for storage.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientKind::Public => "public",
            ClientKind::Confidential => "confidential",
        }
    }

    /// Reads back [`ClientKind::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "public" => Some(ClientKind::Public),
            "confidential" => Some(ClientKind::Confidential),
            _ => None,
        }
    }
}

/// Grant types an app may be allowed to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantType {
    /// RFC 8628 device authorization grant.
    DeviceCode,
    /// Refresh tokens.
    RefreshToken,
}

impl GrantType {
    /// The `grant_type` value on the wire (and in storage).
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::DeviceCode => device_code_grant_type(),
            GrantType::RefreshToken => "refresh_token",
        }
    }

    /// Reads back a wire `grant_type`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "refresh_token" => Some(GrantType::RefreshToken),
            s if s == device_code_grant_type() => Some(GrantType::DeviceCode),
            _ => None,
        }
    }
}

const fn device_code_grant_type() -> &'static str {
    "urn:ietf:params:oauth:grant-type:device_code"
}

/// A registered OAuth client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRecord {
    /// The `client_id`.
    pub client_id: String,
    /// Name shown to people approving it.
    pub display_name: String,
    /// Public or confidential.
    pub kind: ClientKind,
    /// Hash of the client secret (confidential apps only).
    pub secret_hash: Option<SecretHash>,
    /// Grant types it may use.
    pub grant_types: Vec<GrantType>,
    /// Allowed redirect / return URLs.
    pub redirect_uris: Vec<String>,
    /// When it was registered.
    pub created_at: Timestamp,
}

impl AppRecord {
    /// Whether the app may use `grant`.
    pub fn allows(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }
}

/// Where a device login request came from, as shown to the approver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester {
    /// The device's IP address.
    pub ip: String,
    /// The device's User-Agent.
    pub user_agent: String,
    /// Name the device gave itself.
    pub device_name: Option<String>,
}

/// A device grant to create.
#[derive(Debug, Clone)]
pub struct NewDeviceGrant {
    /// Grant ID (UUID), used for wake-ups and audit.
    pub id: String,
    /// The app asking.
    pub client_id: String,
    /// Requested scope.
    pub scope: String,
    /// Hash of the device code.
    pub device_code_hash: SecretHash,
    /// Hash of the canonical user code.
    pub user_code_hash: SecretHash,
    /// Initial state (pending, expiry, interval).
    pub state: GrantState,
    /// Where it came from.
    pub requester: Requester,
}

/// A stored device grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceGrantRecord {
    /// Grant ID.
    pub id: String,
    /// The app asking.
    pub client_id: String,
    /// Requested scope.
    pub scope: String,
    /// Status, expiry, interval, last poll.
    pub state: GrantState,
    /// When the device asked.
    pub created_at: Timestamp,
    /// Where it came from.
    pub requester: Requester,
    /// Who decided, once decided.
    pub user_id: Option<String>,
    /// When it was decided.
    pub decided_at: Option<Timestamp>,
}

/// A person's decision on the grant behind a user code.
#[derive(Debug, Clone)]
pub struct GrantDecision {
    /// Hash of the canonical user code.
    pub user_code_hash: SecretHash,
    /// Who decides.
    pub user_id: String,
    /// Approve or deny.
    pub decision: Decision,
    /// Approver's IP, for the audit entry.
    pub ip: String,
}

/// Outcome of [`crate::Store::decide_device_grant`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecideResult {
    /// Recorded; the grant as it now stands.
    Decided(Box<DeviceGrantRecord>),
    /// No grant has this code.
    NotFound,
    /// The state machine refused (expired, already decided).
    Refused(DecideError),
}

/// A refresh token to store when tokens are handed out.
#[derive(Debug, Clone)]
pub struct MintRefresh {
    /// Hash of the new refresh token.
    pub token_hash: SecretHash,
    /// Family ID to use when this starts a new family.
    pub new_family_id: String,
    /// When the new token expires.
    pub expires_at: Timestamp,
}

/// Whether a device code is being polled (RFC 8628) or waited on (instant endpoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedeemMode {
    /// RFC 8628 §3.4 poll: counts for `slow_down`.
    Poll,
    /// Instant endpoint check: does not count as a poll.
    Wait,
}

/// A request to redeem a device code.
#[derive(Debug, Clone)]
pub struct Redeem {
    /// Hash of the presented device code.
    pub device_code_hash: SecretHash,
    /// The authenticated client presenting it.
    pub client_id: String,
    /// Poll or wait.
    pub mode: RedeemMode,
    /// What to store if tokens are handed out now.
    pub mint: MintRefresh,
}

/// What tokens are minted for: the facts an access token and ID token carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSubject {
    /// User ID (`sub`).
    pub user_id: String,
    /// Sign-in name.
    pub username: String,
    /// The app (`aud`, `client_id`).
    pub client_id: String,
    /// Granted scope.
    pub scope: String,
    /// The refresh token family (`sid` in the access token), revocable as a whole.
    pub family_id: String,
    /// When the user approved (OIDC `auth_time`).
    pub auth_time: Timestamp,
}

/// Outcome of [`crate::Store::redeem_device_grant`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    /// Consumed now: mint tokens for this subject.
    Tokens(TokenSubject),
    /// Not decided yet.
    Pending {
        /// Grant ID to wait on.
        grant_id: String,
        /// When the grant expires.
        expires_at: Timestamp,
    },
    /// Polled too fast; the new interval.
    SlowDown {
        /// Seconds to wait between polls from now on.
        interval_secs: i64,
    },
    /// The person denied it.
    Denied,
    /// It expired.
    Expired,
    /// Tokens were already handed out.
    Spent,
    /// No such device code for this client.
    Unknown,
}

/// A refresh-token exchange.
#[derive(Debug, Clone)]
pub struct RotateRefresh {
    /// Hash of the presented refresh token.
    pub token_hash: SecretHash,
    /// The authenticated client presenting it.
    pub client_id: String,
    /// The replacement (its `new_family_id` is ignored: the family carries over).
    pub mint: MintRefresh,
}

/// Outcome of [`crate::Store::rotate_refresh_token`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotated {
    /// Rotated: mint an access token for this subject.
    Tokens(TokenSubject),
    /// A rotated token was replayed; the family is now revoked.
    ReuseDetected,
    /// Unknown, expired, revoked, or issued to another client.
    Invalid,
}

/// A stored refresh token, for introspection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenRecord {
    /// Its family.
    pub family_id: String,
    /// The app it was issued to.
    pub client_id: String,
    /// Whose it is.
    pub user_id: String,
    /// Sign-in name of the user.
    pub username: String,
    /// Granted scope.
    pub scope: String,
    /// When it was issued.
    pub created_at: Timestamp,
    /// When it expires.
    pub expires_at: Timestamp,
    /// Whether it was already exchanged.
    pub rotated: bool,
    /// Whether its family was revoked.
    pub family_revoked: bool,
}

/// An Ed25519 signing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// Key ID (`kid`).
    pub kid: String,
    /// PKCS#8 v2 document of the private key.
    pub private_pkcs8: Vec<u8>,
    /// Raw 32-byte public key.
    pub public_key: Vec<u8>,
    /// When it was made.
    pub created_at: Timestamp,
    /// When a newer key replaced it for signing (it stays published until its tokens expire).
    pub retired_at: Option<Timestamp>,
}

/// What a sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Device grants deleted.
    pub grants: u64,
    /// Sessions deleted.
    pub sessions: u64,
    /// Refresh tokens deleted.
    pub refresh_tokens: u64,
}
