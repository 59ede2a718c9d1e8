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
