//! The records storage reads and writes.

pub use latchkey_domain::app_settings::IdTokenAlg;
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
    /// Whether it is disabled or locked.
    pub status: latchkey_domain::account::AccountStatus,
}

impl UserRecord {
    /// Whether the account can sign in with a password (a passwordless account stores none).
    pub fn has_password(&self) -> bool {
        !self.password_hash.is_empty()
    }
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
    /// ID to show and end it by (the token's hash is never shown).
    pub id: String,
    /// Where it was opened: the browser's IP address.
    pub ip: String,
    /// Where it was opened: the browser's User-Agent.
    pub user_agent: String,
    /// Whose session.
    pub user_id: String,
    /// When it stops working.
    pub expires_at: Timestamp,
    /// How it signed in: RFC 8176 `amr` values, space-separated.
    pub amr: String,
    /// The `signin.succeeded` entry to record with it.
    pub audit: AuditEvent,
}

/// What the store needs to open a browser session for whoever approved a QR
/// sign-in (the rest comes from the pairing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSeed {
    /// Hash of the session token.
    pub token_hash: SecretHash,
    /// ID to show and end it by.
    pub id: String,
    /// When it stops working.
    pub expires_at: Timestamp,
}

/// A live session and its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The session's ID (see [`NewSession::id`]).
    pub id: String,
    /// The signed-in user.
    pub user: UserRecord,
    /// When the session started.
    pub created_at: Timestamp,
    /// When it stops working.
    pub expires_at: Timestamp,
    /// How it signed in: RFC 8176 `amr` values, space-separated.
    pub amr: String,
}

/// What kind of sign-in a [`SignInRecord`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInKind {
    /// A browser signed in to Latchkey's own pages (a session).
    Browser,
    /// An app signed in without a device: a web sign-in such as a QR sign-in (a token family).
    App,
}

impl SignInKind {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            SignInKind::Browser => "browser",
            SignInKind::App => "app",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "browser" => Some(SignInKind::Browser),
            "app" => Some(SignInKind::App),
            _ => None,
        }
    }
}

/// A live sign-in that is not a device: shown to its user, who can end it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInRecord {
    /// Browser session or app sign-in.
    pub kind: SignInKind,
    /// The session's ID, or the token family's (the access tokens' `sid`).
    pub id: String,
    /// The app signed in to (`None` for Latchkey's own pages).
    pub client_id: Option<String>,
    /// The app's display name, when it still exists.
    pub app_name: Option<String>,
    /// Where it started: IP address (empty when not recorded).
    pub ip: String,
    /// Where it started: User-Agent (empty when not recorded).
    pub user_agent: String,
    /// When it started.
    pub created_at: Timestamp,
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
    /// The OpenID Connect authorization code grant (web sign-in, always with PKCE).
    AuthorizationCode,
}

impl GrantType {
    /// The `grant_type` value on the wire (and in storage).
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::DeviceCode => device_code_grant_type(),
            GrantType::RefreshToken => "refresh_token",
            GrantType::AuthorizationCode => "authorization_code",
        }
    }

    /// Reads back a wire `grant_type`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "refresh_token" => Some(GrantType::RefreshToken),
            "authorization_code" => Some(GrantType::AuthorizationCode),
            s if s == device_code_grant_type() => Some(GrantType::DeviceCode),
            _ => None,
        }
    }

    /// The short name people use for a grant (`device_code` for the device grant's URN).
    pub fn short_name(self) -> &'static str {
        match self {
            GrantType::DeviceCode => "device_code",
            other => other.as_str(),
        }
    }

    /// Reads a short name (or a wire `grant_type`), as an admin types it.
    pub fn parse_short(s: &str) -> Option<Self> {
        match s {
            "device_code" => Some(GrantType::DeviceCode),
            other => Self::parse(other),
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
    /// The app's own URL: the origin QR sign-in may return to.
    pub app_url: Option<String>,
    /// Whether QR cross-device sign-in is on (needs `app_url`).
    pub qr_sign_in: bool,
    /// Whether token requests must carry a DPoP proof, so every token is key-bound.
    pub require_dpop: bool,
    /// Where RP-initiated logout may send people back to, each compared exactly.
    pub post_logout_redirect_uris: Vec<String>,
    /// How its ID tokens are signed.
    pub id_token_alg: IdTokenAlg,
    /// When it was registered.
    pub created_at: Timestamp,
}

/// New settings for an app (everything but its ID, kind and secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppUpdate {
    /// Name shown to people.
    pub display_name: String,
    /// Grant types it may use.
    pub grant_types: Vec<GrantType>,
    /// The app's own URL.
    pub app_url: Option<String>,
    /// QR sign-in switch.
    pub qr_sign_in: bool,
    /// Whether token requests must carry a DPoP proof.
    pub require_dpop: bool,
    /// Registered redirect URIs (web sign-in), each compared exactly.
    pub redirect_uris: Vec<String>,
    /// Registered post-logout redirect URIs, each compared exactly.
    pub post_logout_redirect_uris: Vec<String>,
    /// How its ID tokens are signed.
    pub id_token_alg: IdTokenAlg,
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

/// What a device asked to be registered as (Latchkey extension parameters of
/// the device authorization request); used when the grant is approved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceRequest {
    /// An explicit slug (validated), instead of one derived from the name.
    pub slug: Option<String>,
    /// Location; `None` means the user chose to give it later.
    pub location: Option<String>,
    /// Operating system and architecture, e.g. `linux-x86_64`.
    pub platform: String,
    /// Version of the client software.
    pub client_version: String,
    /// The device's public key as a JWK (JSON text), for DPoP binding.
    pub public_jwk: Option<String>,
    /// RFC 7638 thumbprint of that key; tokens are bound to it.
    pub jkt: Option<String>,
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
    /// What the device wants to be registered as.
    pub device: DeviceRequest,
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
    /// What the device wants to be registered as.
    pub device: DeviceRequest,
    /// The device created when the grant was approved.
    pub device_id: Option<String>,
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
    /// ID for the device an approval creates.
    pub new_device_id: String,
    /// Most active devices the approver may have.
    pub device_cap: i64,
}

/// What [`crate::Store::revoke_everything`] ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RevokedAll {
    /// Sessions (browser and API sign-ins) ended.
    pub sessions: u64,
    /// Token families (device and app sign-ins) revoked.
    pub families: u64,
    /// Approved device grants not yet collected, now denied.
    pub grants: u64,
    /// Approved QR sign-ins not yet collected, now cancelled.
    pub pairings: u64,
    /// Enrollment keys revoked.
    pub enrollment_keys: u64,
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
    /// The approver already has the most devices allowed.
    DeviceLimit(i64),
    /// The device asked for an explicit slug another of the approver's devices has.
    SlugTaken(String),
    /// The approver's account is stopped.
    AccountStopped(latchkey_domain::account::AccountRefusal),
}

/// What to store when tokens are handed out: the family, and a refresh token
/// only when one is delivered (an app without the refresh grant, or a QR
/// sign-in, gets none, so none is stored).
#[derive(Debug, Clone)]
pub struct MintRefresh {
    /// Family ID to use when this starts a new family.
    pub new_family_id: String,
    /// The refresh token handed out with it, if any.
    pub refresh: Option<NewRefreshToken>,
}

/// A refresh token to store.
#[derive(Debug, Clone)]
pub struct NewRefreshToken {
    /// Hash of the token.
    pub token_hash: SecretHash,
    /// When it expires.
    pub expires_at: Timestamp,
}

pub use latchkey_domain::device_grant::RedeemMode;

/// A request to redeem a device code.
#[derive(Debug, Clone)]
pub struct Redeem {
    /// Hash of the presented device code.
    pub device_code_hash: SecretHash,
    /// The authenticated client presenting it.
    pub client_id: String,
    /// Poll or wait.
    pub mode: RedeemMode,
    /// Thumbprint of the key that signed the request's DPoP proof, if any.
    pub presented_jkt: Option<String>,
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
    /// The device the tokens belong to.
    pub device_id: Option<String>,
    /// Thumbprint of the key the tokens are bound to (DPoP `cnf.jkt`).
    pub jkt: Option<String>,
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
    /// The grant is bound to a device key and the request was not signed with it.
    WrongKey,
    /// The account that approved it is stopped; nothing was consumed.
    AccountStopped(latchkey_domain::account::AccountRefusal),
}

/// A refresh-token exchange.
#[derive(Debug, Clone)]
pub struct RotateRefresh {
    /// Hash of the presented refresh token.
    pub token_hash: SecretHash,
    /// The authenticated client presenting it.
    pub client_id: String,
    /// The replacement, in the same family.
    pub replacement: NewRefreshToken,
    /// Thumbprint of the key that signed the request's DPoP proof, if any.
    pub presented_jkt: Option<String>,
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
    /// The family is bound to a device key and the request was not signed with it.
    WrongKey,
    /// A DPoP proof came with a token bound to no key; nothing changed.
    NotKeyBound,
    /// The family's account is stopped; nothing changed.
    AccountStopped(latchkey_domain::account::AccountRefusal),
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
    /// When it was exchanged for a newer one, if it was.
    pub rotated_at: Option<Timestamp>,
    /// Whether its family was revoked.
    pub family_revoked: bool,
    /// The device it belongs to.
    pub device_id: Option<String>,
    /// Thumbprint of the key it is bound to.
    pub jkt: Option<String>,
}

/// An Ed25519 signing key, opened (`Debug` leaves the private key out).
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// Key ID (`kid`).
    pub kid: String,
    /// PKCS#8 document of the private key.
    pub private_pkcs8: Vec<u8>,
    /// The public key: raw 32 bytes (Ed25519), or PKCS#1 DER (RSA).
    pub public_key: Vec<u8>,
    /// When it was made.
    pub created_at: Timestamp,
    /// When a newer key of its algorithm replaced it for signing (it stays published until its tokens expire).
    pub retired_at: Option<Timestamp>,
    /// What it signs with: EdDSA (Ed25519; every access token) or RS256 (ID tokens of apps that ask).
    pub alg: IdTokenAlg,
}

impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

/// What a sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Events past their kind's retention deleted.
    pub events: u64,
    /// Device grants deleted.
    pub grants: u64,
    /// Sessions deleted.
    pub sessions: u64,
    /// Refresh tokens deleted.
    pub refresh_tokens: u64,
}

/// What a backend reports about its own load, for metrics (sampled at scrape time).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BackendStats {
    /// SQLite: operations waiting for the writer thread.
    pub writer_queue: Option<u64>,
    /// SQLite: transactions the writer committed, and the seconds they took in all.
    pub commits: Option<(u64, f64)>,
    /// PostgreSQL: connections the pool holds, those idle, and its maximum.
    pub pool: Option<(u64, u64, u64)>,
}

/// An app's declared event kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventKindRecord {
    /// The app that declared it.
    pub client_id: String,
    /// Its name, identity fields, precision and merge policy.
    pub spec: latchkey_domain::events::KindSpec,
    /// Events are deleted this long after they were first stored (`None`: kept).
    pub retention_secs: Option<i64>,
    /// When it was declared.
    pub created_at: Timestamp,
}

/// Outcome of [`crate::Store::declare_event_kind`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeclaredKind {
    /// A new kind.
    Created(EventKindRecord),
    /// Already declared just so.
    Unchanged(EventKindRecord),
    /// Already declared; its retention changed.
    Updated(EventKindRecord),
    /// Declared with another identity, which cannot change: the kind as it is.
    Conflict(EventKindRecord),
}

/// A capture the server checked and made canonical, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedCapture {
    /// The kind's name.
    pub kind: String,
    /// The identity's hash: an exact event's ID, or an interval series'.
    pub series: String,
    /// The canonical identity, as JSON text.
    pub identity: String,
    /// The captured interval (interval kinds).
    pub interval: Option<latchkey_domain::events::Interval>,
    /// The kind's precision (an interval event's ID names its start at it).
    pub precision: latchkey_domain::events::Precision,
    /// How it combines with stored events.
    pub merge: latchkey_domain::events::MergePolicy,
}

/// A device's batch of captures for its user's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestBatch {
    /// Whose stream.
    pub user_id: String,
    /// The app sending them.
    pub client_id: String,
    /// The device that captured them.
    pub device_id: String,
    /// The captures, each taken on its own.
    pub captures: Vec<PreparedCapture>,
}

/// What became of one stored capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ingested {
    /// A new event, with this ID.
    Created(String),
    /// Already stored as this event (this device may now be one of its observers).
    Duplicate(String),
    /// Merged with interval events into this one.
    Merged(String),
}

impl Ingested {
    /// The event the capture is now part of.
    pub fn id(&self) -> &str {
        match self {
            Ingested::Created(id) | Ingested::Duplicate(id) | Ingested::Merged(id) => id,
        }
    }
}

/// A device that observed an event, and when it first did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventObserver {
    /// The device.
    pub device_id: String,
    /// When its first capture of the event was stored.
    pub first_seen_at: Timestamp,
}

/// The part of an interval event one device captured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPart {
    /// The device.
    pub device_id: String,
    /// What it captured.
    pub interval: latchkey_domain::events::Interval,
}

/// An event as stored, after its latest change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Canonical ID.
    pub id: String,
    /// Position of its latest change in the user's stream.
    pub seq: i64,
    /// The app.
    pub client_id: String,
    /// The kind.
    pub kind: String,
    /// Canonical identity (JSON text).
    pub identity: String,
    /// Its interval (interval kinds).
    pub interval: Option<latchkey_domain::events::Interval>,
    /// Set when merged into a larger interval event: a tombstone.
    pub merged_into: Option<String>,
    /// Devices that observed it.
    pub observers: Vec<EventObserver>,
    /// Which device captured which part (interval kinds).
    pub parts: Vec<EventPart>,
}

/// A page of a user's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    /// Changed events in stream order.
    pub events: Vec<StoredEvent>,
    /// Where to pull from next.
    pub cursor: i64,
}

/// A registered device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    /// Device ID (UUID).
    pub id: String,
    /// Owner's user ID.
    pub owner_id: String,
    /// Name shown to people (renamable).
    pub display_name: String,
    /// Frozen slug, unique within the owner.
    pub slug: String,
    /// Current location; `None` when the user deferred it.
    pub location: Option<String>,
    /// Operating system and architecture.
    pub platform: String,
    /// Client software version.
    pub client_version: String,
    /// When it was registered.
    pub created_at: Timestamp,
    /// When it last used its tokens.
    pub last_seen_at: Option<Timestamp>,
    /// Active or revoked.
    pub status: latchkey_domain::device::DeviceStatus,
    /// When it was revoked.
    pub revoked_at: Option<Timestamp>,
    /// Public key (JWK JSON), if the device has one.
    pub public_jwk: Option<String>,
    /// Thumbprint of that key.
    pub jkt: Option<String>,
}

/// One entry of a device's location history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationChange {
    /// The location from then on (`None`: deferred).
    pub location: Option<String>,
    /// When it took effect.
    pub effective_at: Timestamp,
}

/// Outcome of revoking a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeDevice {
    /// Revoked now; its token families are revoked too.
    Revoked(Box<DeviceRecord>),
    /// It was already revoked.
    AlreadyRevoked,
    /// No such device (for this owner).
    NotFound,
}

/// An enrollment key to store.
#[derive(Debug, Clone)]
pub struct NewEnrollmentKey {
    /// Key ID (UUID), shown in listings.
    pub id: String,
    /// Hash of the secret.
    pub key_hash: SecretHash,
    /// The user devices enrolled with it will belong to.
    pub owner_id: String,
    /// Whether it works more than once.
    pub reusable: bool,
    /// When it stops working.
    pub expires_at: Timestamp,
    /// Free-form label (e.g. `ci`).
    pub tag: Option<String>,
    /// Who created it (user ID or `admin-cli`).
    pub created_by: String,
}

/// A stored enrollment key (never with its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentKeyRecord {
    /// Key ID.
    pub id: String,
    /// Owner of the devices it enrolls.
    pub owner_id: String,
    /// Owner's sign-in name.
    pub owner_name: String,
    /// Whether it works more than once.
    pub reusable: bool,
    /// When it stops working.
    pub expires_at: Timestamp,
    /// Label.
    pub tag: Option<String>,
    /// Who created it.
    pub created_by: String,
    /// When.
    pub created_at: Timestamp,
    /// When it was revoked.
    pub revoked_at: Option<Timestamp>,
    /// How often it was used.
    pub uses: i64,
}

/// Enrolling a device with a key, without a browser.
#[derive(Debug, Clone)]
pub struct Enroll {
    /// Hash of the presented key.
    pub key_hash: SecretHash,
    /// ID for the new device.
    pub device_id: String,
    /// Display name.
    pub name: String,
    /// What else the device says about itself (slug, location, platform, key).
    pub device: DeviceRequest,
    /// The app the tokens are for.
    pub client_id: String,
    /// Granted scope.
    pub scope: String,
    /// The first refresh token.
    pub mint: MintRefresh,
    /// Most active devices the owner may have.
    pub device_cap: i64,
}

/// An enrollment key as using it needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsableKey {
    /// Key ID.
    pub id: String,
    /// Whose devices it enrolls.
    pub owner_id: String,
    /// Whether it may be used now.
    pub state: latchkey_domain::device::EnrollmentKeyState,
}

/// Outcome of [`crate::Store::enroll_device`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enrolled {
    /// The device exists and its tokens may be minted.
    Tokens {
        /// What to mint.
        subject: TokenSubject,
        /// The new device.
        device: Box<DeviceRecord>,
    },
    /// No such key.
    Unknown,
    /// Expired, used or revoked.
    Refused(latchkey_domain::device::EnrollError),
    /// The owner has the most devices allowed.
    DeviceLimit(i64),
    /// The explicit slug is taken.
    SlugTaken(String),
    /// The key's owner is stopped; nothing changed.
    AccountStopped(latchkey_domain::account::AccountRefusal),
}

/// A QR sign-in to create.
#[derive(Debug, Clone)]
pub struct NewPairing {
    /// Pairing ID (UUID), for wake-ups and audit.
    pub id: String,
    /// The app being signed in to.
    pub client_id: String,
    /// Hash of the desktop's secret (it waits and collects with it).
    pub desktop_secret_hash: SecretHash,
    /// Hash of the one-time code in the QR's phone URL.
    pub phone_code_hash: SecretHash,
    /// Initial state.
    pub state: latchkey_domain::pairing::PairingState,
    /// The desktop's IP and browser.
    pub requester: Requester,
    /// The web sign-in (authorization request, as its query) this QR sign-in
    /// continues in the desktop's browser; `None` for the native pairing API,
    /// whose desktop collects tokens.
    pub continues: Option<String>,
}

/// A stored QR sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairingRecord {
    /// Pairing ID.
    pub id: String,
    /// The app.
    pub client_id: String,
    /// Status and expiry.
    pub state: latchkey_domain::pairing::PairingState,
    /// When the desktop asked.
    pub created_at: Timestamp,
    /// The desktop's IP and browser.
    pub requester: Requester,
    /// The web sign-in it continues (see [`NewPairing::continues`]).
    pub continues: Option<String>,
    /// Who decided, once decided.
    pub user_id: Option<String>,
    /// When it was decided.
    pub decided_at: Option<Timestamp>,
}

/// Outcome of a pairing transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairingResult {
    /// Done; the pairing as it now stands.
    Done(Box<PairingRecord>),
    /// No such pairing.
    NotFound,
    /// The state machine refused.
    Refused(latchkey_domain::pairing::PairingError),
    /// The deciding account is stopped; nothing changed.
    AccountStopped(latchkey_domain::account::AccountRefusal),
}

/// Outcome of collecting an approved pairing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Collected {
    /// Consumed now: mint tokens for this subject; the pairing as it was.
    Tokens(TokenSubject, Box<PairingRecord>),
    /// Consumed now: the desktop's browser session is open; the pairing as it was.
    Session(Box<PairingRecord>),
    /// No such pairing.
    NotFound,
    /// Not approved, already collected, expired.
    Refused(latchkey_domain::pairing::PairingError),
    /// The approving account is stopped; nothing was consumed.
    AccountStopped(latchkey_domain::account::AccountRefusal),
}

/// Which audit entries a listing wants.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only entries whose actor or subject is this (a user's own events).
    pub involving: Option<String>,
    /// Only this kind (text form).
    pub kind: Option<String>,
    /// Only entries before this sequence number (paging, newest first).
    pub before_seq: Option<i64>,
    /// Only entries about this device: its ID is the actor or subject, or a value in the detail.
    pub device: Option<String>,
    /// Only entries recorded at or after this time.
    pub since: Option<Timestamp>,
    /// Only entries recorded before this time.
    pub until: Option<Timestamp>,
    /// At most this many.
    pub limit: i64,
}

/// What an ID in the audit log names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// A user: the name is the username.
    User,
    /// A device: the name is its display name.
    Device,
    /// An app: the name is its display name.
    App,
}

/// A name found for an ID, to tell audit entries in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedId {
    /// The ID looked up.
    pub id: String,
    /// What it is.
    pub kind: NameKind,
    /// Its name now.
    pub name: String,
    /// Where it is (devices only, when known).
    pub location: Option<String>,
}

impl NameKind {
    /// Reads the tag the name lookups return ("user", "device", "app").
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(Self::User),
            "device" => Some(Self::Device),
            "app" => Some(Self::App),
            _ => None,
        }
    }
}

/// An authorization code to store: only its hash, with everything the token
/// request needs to check and to mint from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuthorizationCode {
    /// Hash of the code.
    pub code_hash: SecretHash,
    /// The app it is for.
    pub client_id: String,
    /// Who signed in.
    pub user_id: String,
    /// Where it was sent (the token request must name the same).
    pub redirect_uri: String,
    /// Granted scope, space-separated.
    pub scope: String,
    /// The request's `nonce`, for the ID token.
    pub nonce: Option<String>,
    /// The PKCE S256 challenge.
    pub code_challenge: String,
    /// When the person authenticated (OIDC `auth_time`).
    pub auth_time: Timestamp,
    /// How they authenticated (OIDC `amr` values, space-separated).
    pub amr: String,
    /// When it stops working.
    pub expires_at: Timestamp,
    /// Where the browser was: IP address (shown in sign-in lists).
    pub ip: String,
    /// Where the browser was: User-Agent.
    pub user_agent: String,
}

/// A stored authorization code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationCodeRecord {
    /// What was stored.
    pub code: NewAuthorizationCode,
    /// When it was redeemed, if it was.
    pub used_at: Option<Timestamp>,
    /// The token family it started, once redeemed.
    pub family_id: Option<String>,
}

/// A person's standing consent for an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRecord {
    /// Whose.
    pub user_id: String,
    /// For which app.
    pub client_id: String,
    /// The scopes granted, space-separated.
    pub scope: String,
    /// When last granted.
    pub granted_at: Timestamp,
}

/// A token request's authorization code, as presented.
#[derive(Debug, Clone)]
pub struct RedeemCode {
    /// Hash of the presented code.
    pub code_hash: SecretHash,
    /// The authenticated app.
    pub client_id: String,
    /// `redirect_uri`, as presented.
    pub redirect_uri: Option<String>,
    /// `code_verifier`, as presented.
    pub code_verifier: Option<String>,
    /// Thumbprint of the DPoP key the request proved, which the tokens are bound to (RFC 9449 §5).
    pub jkt: Option<String>,
    /// The family (and refresh token) to start if it redeems.
    pub mint: MintRefresh,
}

/// Outcome of [`crate::Store::redeem_authorization_code`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeRedeemed {
    /// Redeemed now: mint tokens for this subject; the ID token carries `nonce` and `amr`.
    Tokens {
        /// Who and what for (boxed: the other outcomes are small).
        subject: Box<TokenSubject>,
        /// The authorization request's `nonce`.
        nonce: Option<String>,
        /// How the person authenticated.
        amr: Vec<String>,
    },
    /// No such code.
    Unknown,
    /// Refused (a reuse has revoked what the code issued).
    Refused(latchkey_domain::authorization::CodeRefusal),
    /// The account is stopped; nothing was issued.
    AccountStopped(latchkey_domain::account::AccountRefusal),
}

/// A credential a client presents at the token endpoint, by its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresentedCredential {
    /// An RFC 8628 device code.
    DeviceCode(SecretHash),
    /// A refresh token.
    RefreshToken(SecretHash),
    /// An authorization code.
    AuthorizationCode(SecretHash),
}
