//! Latchkey's own JSON API under `/api/v1`, for signed-in users (the CLI, the pages, the benchmark).

use serde::{Deserialize, Serialize};

/// Error body of the JSON API: same shape as OAuth's, so one parser serves both.
pub use crate::oauth::ErrorBody;

/// `POST /api/v1/session`: sign in with a password.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignInRequest {
    /// Sign-in name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// `POST /api/v1/password`: change your own password.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PasswordChange {
    /// The password now, proving it is you and not someone with your session.
    pub current_password: String,
    /// The new password.
    pub new_password: String,
}

/// A new session, for non-browser clients (send as `Authorization: Bearer`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SignInResponse {
    /// Bearer token for the JSON API.
    pub session_token: String,
    /// Seconds until the session expires.
    pub expires_in: i64,
    /// Who signed in.
    pub user: Me,
}

/// The signed-in user.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Me {
    /// Stable user ID.
    pub id: String,
    /// Sign-in name.
    pub username: String,
    /// Whether the user administers the server.
    pub is_admin: bool,
    /// The device making the request, when it used its own tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceInfo>,
}

/// What a person is about to approve: everything the verification page shows.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PendingDeviceLogin {
    /// The code, as `XXXX-XXXX`.
    pub user_code: String,
    /// The app's client ID.
    pub client_id: String,
    /// The app's display name.
    pub app_name: String,
    /// Requested scope (space separated).
    pub scope: String,
    /// IP address the device asked from.
    pub requester_ip: String,
    /// The device's User-Agent header.
    pub requester_user_agent: String,
    /// Name the device gave itself, if any.
    pub device_name: Option<String>,
    /// When the device asked, ms since epoch.
    pub requested_at_ms: i64,
    /// When the code expires, ms since epoch.
    pub expires_at_ms: i64,
    /// Whether the approver is on a different network than the device (a phishing sign).
    pub different_network: bool,
    /// Where the device says it is (`None`: not given yet).
    #[serde(default)]
    pub device_location: Option<String>,
    /// The device's platform, as it reports it.
    #[serde(default)]
    pub device_platform: String,
}

/// `POST /api/v1/device/decision`: approve or deny a device login.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DecisionRequest {
    /// The code shown on the device, in any case, with or without the dash.
    pub user_code: String,
    /// `approve` or `deny`.
    pub decision: String,
}

/// The recorded decision.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DecisionResponse {
    /// `approved` or `denied`.
    pub status: String,
    /// The app's client ID.
    pub client_id: String,
}

/// A device as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeviceInfo {
    /// Device ID.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Frozen slug.
    pub slug: String,
    /// Current location; `None` when deferred.
    pub location: Option<String>,
    /// Operating system and architecture.
    pub platform: String,
    /// Client software version.
    pub client_version: String,
    /// `active` or `revoked`.
    pub status: String,
    /// Registered, ms since epoch.
    pub created_at_ms: i64,
    /// Last used its tokens, ms since epoch.
    pub last_seen_at_ms: Option<i64>,
    /// Revoked, ms since epoch.
    pub revoked_at_ms: Option<i64>,
    /// Whether the device has a key its tokens are bound to (DPoP).
    pub key_bound: bool,
    /// Whether this is the device making the request.
    pub current: bool,
}

/// How long a new sign-in or device counts as new: announced on the user's other
/// browsers, and marked in `latchkey devices list` and `latchkey sessions list` (7 days).
pub const NEW_FOR_SECS: i64 = 7 * 24 * 3600;

/// A sign-in that is not a device, as the API shows it: a browser signed in to
/// Latchkey, or an app signed in on the web (a QR sign-in).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SignInInfo {
    /// ID to end it by.
    pub id: String,
    /// `browser` (Latchkey's own pages) or `app`.
    pub kind: String,
    /// The app's client ID (`None` for Latchkey's own pages).
    pub client_id: Option<String>,
    /// What to call it: the app's name, or "Latchkey".
    pub app: String,
    /// The browser's User-Agent where it started (empty when unknown).
    pub user_agent: String,
    /// The IP address it started from (empty when unknown).
    pub ip: String,
    /// When it started, ms since epoch.
    pub created_at_ms: i64,
    /// Whether this is the sign-in making the request.
    pub current: bool,
}

/// `PATCH /api/v1/devices/{id}`: rename and/or move a device.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DeviceUpdate {
    /// New display name (the slug stays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// New location, from now on (`later` to defer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// One entry of a device's location history.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LocationEntry {
    /// The location (`None`: deferred).
    pub location: Option<String>,
    /// When it took effect, ms since epoch.
    pub effective_at_ms: i64,
}

/// `POST /api/v1/enrollment-keys`: a key for a machine that cannot open a browser.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EnrollmentKeyRequest {
    /// Lifetime in seconds (users: at most an hour).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<i64>,
    /// Whether it may enroll more than one machine (admins only).
    #[serde(default)]
    pub reusable: bool,
    /// Free-form label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// An enrollment key without its secret.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EnrollmentKeyInfo {
    /// Key ID.
    pub id: String,
    /// Owner of the devices it enrolls.
    pub owner: String,
    /// Whether it works more than once.
    pub reusable: bool,
    /// Expiry, ms since epoch.
    pub expires_at_ms: i64,
    /// Label.
    pub tag: Option<String>,
    /// How often it was used.
    pub uses: i64,
    /// Whether it was revoked.
    pub revoked: bool,
}

/// A newly created enrollment key: the secret is shown this once.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EnrollmentKeyCreated {
    /// The secret, for `latchkey login --enroll-key`.
    pub key: String,
    /// What was stored.
    pub info: EnrollmentKeyInfo,
}

/// `POST /api/v1/enroll`: provision a device with an enrollment key (with a DPoP proof to bind its key).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnrollRequest {
    /// The enrollment key.
    pub enrollment_key: String,
    /// Display name.
    pub name: String,
    /// Explicit slug.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
    /// Location (`later` to defer; required).
    pub location: String,
    /// Operating system and architecture.
    #[serde(default)]
    pub platform: String,
    /// Client software version.
    #[serde(default)]
    pub client_version: String,
    /// Scope for the tokens.
    #[serde(default)]
    pub scope: String,
}

/// Tokens and the device an enrollment created.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EnrollResponse {
    /// Tokens for the built-in CLI app, bound to the device's key when a proof was sent.
    pub tokens: crate::oauth::TokenResponse,
    /// The new device.
    pub device: DeviceInfo,
}

/// `POST /api/v1/device/lookup`: what approving a user code would let in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LookupRequest {
    /// The code, as the device shows it.
    pub user_code: String,
}

// ---- multi-machine sync: events ----

/// `PUT /api/v1/events/kinds/{name}`: declare one of the calling app's event kinds.
/// Declaring the same kind again is safe; its identity cannot change once declared.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KindDeclaration {
    /// The identity fields, in order: `{"name": "title", "type": "string"|"integer"|"timestamp"}`.
    pub identity: Vec<IdentityField>,
    /// How precisely times are compared: `minute`, `second` (the default) or `millisecond`.
    #[serde(default = "default_precision")]
    pub precision: String,
    /// `exact` (the default) or `interval`.
    #[serde(default = "default_merge")]
    pub merge: String,
    /// Delete events this many days after they were first seen (`None`: keep them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<i64>,
}

fn default_precision() -> String {
    "second".into()
}

fn default_merge() -> String {
    "exact".into()
}

/// One identity field of a kind.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IdentityField {
    /// The field's name in captures.
    pub name: String,
    /// `string`, `integer` or `timestamp`.
    #[serde(rename = "type")]
    pub ty: String,
}

/// A kind as the server has it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct KindInfo {
    /// Its name.
    pub name: String,
    /// The declaration.
    #[serde(flatten)]
    pub declaration: KindDeclaration,
}

/// One captured event, as a device sends it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Capture {
    /// The event kind (declared by the app).
    pub kind: String,
    /// The identity fields.
    pub identity: serde_json::Map<String, serde_json::Value>,
    /// Start of the interval (interval kinds), RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// End of the interval (interval kinds), RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// The ID the client computed; the server recomputes it and says when they differ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// `POST /api/v1/events`: a batch of captures (at most 1,000).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IngestRequest {
    /// The captures, each taken on its own.
    pub events: Vec<Capture>,
}

/// What became of one capture.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IngestResult {
    /// `created`, `duplicate`, `merged` or `rejected`.
    pub status: String,
    /// The stored event it is now part of (absent when rejected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Why it was rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The answer to a batch: one result per capture, in order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IngestResponse {
    /// Results, in the order of the captures.
    pub results: Vec<IngestResult>,
}

/// A device that observed an event.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Observer {
    /// The device.
    pub device_id: String,
    /// When it first sent the event, ms since epoch.
    pub first_seen_at_ms: i64,
}

/// A part of an interval event, as one device captured it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Part {
    /// The device.
    pub device_id: String,
    /// RFC 3339 start.
    pub start: String,
    /// RFC 3339 end.
    pub end: String,
}

/// An event as a pull returns it: its state after its latest change.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SyncedEvent {
    /// Canonical event ID.
    pub id: String,
    /// Position in the user's stream; pull with `after` set to the last one seen.
    pub seq: i64,
    /// The app whose event it is.
    pub client_id: String,
    /// The kind.
    pub kind: String,
    /// The identity fields, canonical.
    pub identity: serde_json::Value,
    /// Interval start (interval kinds), RFC 3339 UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// Interval end (interval kinds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// Set when the event was merged into a larger one: drop it, keep that one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<String>,
    /// The devices that observed it, each with when it first did.
    pub observers: Vec<Observer>,
    /// For interval events: which device captured which part.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<Part>,
}

/// `GET /api/v1/events?after=N&limit=M&wait=S`: changes after a cursor.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PullResponse {
    /// Events changed after the cursor, in stream order.
    pub events: Vec<SyncedEvent>,
    /// The cursor to pull after next time.
    pub cursor: i64,
}

/// `GET /api/v1/audit/keys`: who signs audit checkpoints.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditKeys {
    /// The log's name (the checkpoints' origin line).
    pub origin: String,
    /// Signed-note verifier keys (`name+keyid+base64`), newest first; retired keys
    /// stay listed while they still co-sign.
    pub keys: Vec<String>,
}

/// `GET /api/v1/audit/consistency?old=N&new=M`: the tree of `new` leaves extends that of `old`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditConsistency {
    /// The smaller size.
    pub old_size: u64,
    /// The larger size (the latest checkpoint's when `new` was not given).
    pub new_size: u64,
    /// The proof (RFC 9162 §2.1.4), base64.
    pub hashes: Vec<String>,
    /// The latest signed checkpoint, so one call is enough to move forward.
    pub checkpoint: String,
}

/// `GET /api/v1/audit/inclusion?seq=S&size=N`: an entry is a leaf of the signed tree.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditInclusion {
    /// The entry.
    pub seq: i64,
    /// Its position in the tree.
    pub leaf: u64,
    /// The tree size the proof is for.
    pub tree_size: u64,
    /// The leaf hash, base64.
    pub leaf_hash: String,
    /// The audit path (RFC 9162 §2.1.3), base64.
    pub hashes: Vec<String>,
    /// The latest signed checkpoint.
    pub checkpoint: String,
}
