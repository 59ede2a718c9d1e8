//! QR cross-device sign-in: a desktop shows a code, a signed-in phone approves it.
//!
//! ```text
//! pending ──approve──▶ approved ──consume──▶ consumed
//!    ├──deny────▶ denied
//!    ├──cancel──▶ cancelled        (the desktop gave up)
//!    └──(90 s)──▶ expired          (derived from `expires_at`)
//! ```
//! Every transition is one conditional update in storage, so concurrent
//! callers race to exactly one winner; tokens are minted only at consumption.

use crate::time::Timestamp;
use thiserror::Error;

/// Seconds a pairing lives.
pub const LIFETIME_SECS: i64 = 90;
/// Seconds finished pairings are kept before the sweep (so late pollers hear what happened).
pub const GRACE_SECS: i64 = 300;

/// Where a pairing stands, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairingStatus {
    /// Waiting for the phone.
    Pending,
    /// Approved on the phone; the desktop has not collected yet.
    Approved,
    /// Refused on the phone.
    Denied,
    /// Abandoned by the desktop.
    Cancelled,
    /// Collected: tokens were minted.
    Consumed,
}

impl PairingStatus {
    /// Stable text for storage and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            PairingStatus::Pending => "pending",
            PairingStatus::Approved => "approved",
            PairingStatus::Denied => "denied",
            PairingStatus::Cancelled => "cancelled",
            PairingStatus::Consumed => "consumed",
        }
    }

    /// Reads back [`PairingStatus::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => PairingStatus::Pending,
            "approved" => PairingStatus::Approved,
            "denied" => PairingStatus::Denied,
            "cancelled" => PairingStatus::Cancelled,
            "consumed" => PairingStatus::Consumed,
            _ => return None,
        })
    }
}

/// The scope a QR sign-in grants: it signs a person in to the app, nothing more.
pub const SIGN_IN_SCOPE: &str = "openid";

/// What can happen to a pairing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairingAction {
    /// The phone approves.
    Approve,
    /// The phone refuses.
    Deny,
    /// The desktop gives up.
    Cancel,
    /// The desktop collects its tokens.
    Consume,
}

/// Why a transition is refused.
#[derive(Debug, Clone, Copy, Error, PartialEq, Eq)]
pub enum PairingError {
    /// The 90 seconds are over.
    #[error("this QR code has expired; show a new one")]
    Expired,
    /// Already decided, cancelled or collected.
    #[error("this QR code was already used")]
    Finished,
    /// Collecting before approval.
    #[error("not approved yet")]
    NotApproved,
    /// Collected the other way: a web sign-in's QR opens a browser session, a native pairing gives tokens.
    #[error("this QR sign-in is collected another way")]
    WrongChannel,
}

/// Whether a pairing may be collected this way: one that continues a web
/// sign-in only as the browser's session, a native one only as tokens (a
/// web sign-in's desktop must never get tokens it would put in a page).
pub fn check_channel(continues_web_sign_in: bool, as_session: bool) -> Result<(), PairingError> {
    if continues_web_sign_in == as_session {
        Ok(())
    } else {
        Err(PairingError::WrongChannel)
    }
}

/// A pairing's status and expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PairingState {
    /// Stored status.
    pub status: PairingStatus,
    /// When it expires.
    pub expires_at: Timestamp,
}

impl PairingState {
    /// A new pairing at `now`.
    pub fn new(now: Timestamp) -> Self {
        Self { status: PairingStatus::Pending, expires_at: now.plus_secs(LIFETIME_SECS) }
    }

    /// The status as the desktop should see it at `now` (expiry folded in).
    pub fn seen_at(&self, now: Timestamp) -> PairingView {
        match self.status {
            PairingStatus::Pending | PairingStatus::Approved if now >= self.expires_at => PairingView::Expired,
            s => PairingView::Stored(s),
        }
    }

    /// The status `action` moves the pairing to at `now`.
    pub fn apply(&self, action: PairingAction, now: Timestamp) -> Result<PairingStatus, PairingError> {
        if now >= self.expires_at && matches!(self.status, PairingStatus::Pending | PairingStatus::Approved) {
            return Err(PairingError::Expired);
        }
        match (self.status, action) {
            (PairingStatus::Pending, PairingAction::Approve) => Ok(PairingStatus::Approved),
            (PairingStatus::Pending, PairingAction::Deny) => Ok(PairingStatus::Denied),
            (PairingStatus::Pending | PairingStatus::Approved, PairingAction::Cancel) => Ok(PairingStatus::Cancelled),
            (PairingStatus::Approved, PairingAction::Consume) => Ok(PairingStatus::Consumed),
            (PairingStatus::Pending, PairingAction::Consume) => Err(PairingError::NotApproved),
            _ => Err(PairingError::Finished),
        }
    }
}

/// What a desktop sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairingView {
    /// The stored status.
    Stored(PairingStatus),
    /// Its time ran out before it was collected.
    Expired,
}

/// The phone's one-time code for a desktop secret: derived one way, so the desktop
/// (which holds the secret) can always redraw its QR, the phone code reveals
/// nothing about the secret, and storage holds only hashes of both.
pub fn phone_code(desktop_secret: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("latchkey-pairing-phone-v1:{desktop_secret}").as_bytes());
    format!("lkp_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest))
}

/// The origin (`scheme://host[:port]`, lowercased) of an http(s) URL, or `None`.
pub fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.is_empty() || authority.contains(['@', '\\', ' ']) || !authority.is_ascii() {
        return None;
    }
    let authority = authority.to_ascii_lowercase();
    let default = if scheme == "https" { ":443" } else { ":80" };
    let authority = authority.strip_suffix(default).unwrap_or(&authority).to_string();
    Some(format!("{scheme}://{authority}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_pairing_is_collected_only_its_own_way() {
        assert_eq!(check_channel(true, true), Ok(()));
        assert_eq!(check_channel(false, false), Ok(()));
        assert_eq!(check_channel(true, false), Err(PairingError::WrongChannel));
        assert_eq!(check_channel(false, true), Err(PairingError::WrongChannel));
    }

    fn t(s: i64) -> Timestamp {
        Timestamp::from_millis(s * 1000)
    }

    #[test]
    fn lifecycle() {
        let p = PairingState::new(t(0));
        assert_eq!(p.apply(PairingAction::Consume, t(1)), Err(PairingError::NotApproved));
        assert_eq!(p.apply(PairingAction::Approve, t(1)), Ok(PairingStatus::Approved));
        let approved = PairingState { status: PairingStatus::Approved, ..p };
        assert_eq!(approved.apply(PairingAction::Consume, t(2)), Ok(PairingStatus::Consumed));
        assert_eq!(approved.apply(PairingAction::Approve, t(2)), Err(PairingError::Finished));
        let consumed = PairingState { status: PairingStatus::Consumed, ..p };
        assert_eq!(consumed.apply(PairingAction::Consume, t(3)), Err(PairingError::Finished));
        assert_eq!(p.apply(PairingAction::Deny, t(1)), Ok(PairingStatus::Denied));
        assert_eq!(p.apply(PairingAction::Cancel, t(1)), Ok(PairingStatus::Cancelled));
        let cancelled = PairingState { status: PairingStatus::Cancelled, ..p };
        assert_eq!(cancelled.apply(PairingAction::Approve, t(1)), Err(PairingError::Finished));
    }

    #[test]
    fn expiry() {
        let p = PairingState::new(t(0));
        assert_eq!(p.apply(PairingAction::Approve, t(LIFETIME_SECS)), Err(PairingError::Expired));
        assert_eq!(p.seen_at(t(LIFETIME_SECS)), PairingView::Expired);
        assert_eq!(p.seen_at(t(1)), PairingView::Stored(PairingStatus::Pending));
        let approved = PairingState { status: PairingStatus::Approved, ..p };
        assert_eq!(approved.apply(PairingAction::Consume, t(LIFETIME_SECS)), Err(PairingError::Expired));
    }

    #[test]
    fn phone_codes_are_derived_and_distinct() {
        assert_eq!(phone_code("lkq_a"), phone_code("lkq_a"));
        assert_ne!(phone_code("lkq_a"), phone_code("lkq_b"));
        assert!(phone_code("lkq_a").starts_with("lkp_") && phone_code("lkq_a").len() == 47);
    }
}
