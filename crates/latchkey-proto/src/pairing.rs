//! QR sign-in (pairing) through the JSON API: a native desktop app starts,
//! waits and cancels with `Authorization: Pairing <secret>`; a phone app decides.

use serde::{Deserialize, Serialize};

/// The `Authorization` scheme that carries the desktop's pairing secret.
pub const AUTH_SCHEME: &str = "Pairing";

/// `POST /api/v1/pairings`: start a QR sign-in for an app.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StartPairing {
    /// The app to sign in to (its QR sign-in must be switched on).
    pub client_id: String,
    /// Retired: earlier versions sent the desktop here with tokens in the URL
    /// fragment. Kept only so a request that still sends it is refused with a
    /// pointer to web sign-in, rather than silently ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_to: Option<String>,
}

/// A started pairing, for native desktop apps.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PairingStarted {
    /// Keep this secret: wait, collect and cancel with it (`Authorization: Pairing <secret>`).
    pub pairing_secret: String,
    /// The URL the QR must carry (or fetch the image from `/api/v1/pairings/qr`).
    pub phone_url: String,
    /// Seconds until it expires.
    pub expires_in: i64,
}

/// Query of `GET /api/v1/pairings/qr`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PairingQrQuery {
    /// `svg` (default) or `png`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Width and height in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u32>,
}

/// What the desktop learns from `POST /api/v1/pairings/wait`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PairingWait {
    /// `pending`, `approved`, `denied`, `cancelled`, `expired` or `consumed`.
    pub status: String,
    /// Where the hosted page goes next (return URL with tokens in the fragment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_to: Option<String>,
    /// The tokens, for native apps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<crate::oauth::TokenResponse>,
}

/// `POST /api/v1/pairings/decision`: a phone app approves or denies.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PairingDecision {
    /// The one-time code the QR carried (the last segment of its URL).
    pub phone_code: String,
    /// `approve` or `deny`.
    pub decision: String,
}

/// The answer to a phone app's decision.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PairingDecided {
    /// `approved` or `denied`.
    pub status: String,
}
