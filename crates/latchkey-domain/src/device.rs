//! Devices: the machines a user has let in, each with its own key and tokens.

use crate::names::{DisplayName, NameError};
use crate::time::Timestamp;
use thiserror::Error;

/// Default cap on active devices per user.
pub const DEFAULT_DEVICE_CAP: i64 = 50;

/// Whether a device may still act.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStatus {
    /// In use.
    Active,
    /// Revoked: its tokens are dead and it cannot refresh.
    Revoked,
}

impl DeviceStatus {
    /// Stable text for storage.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceStatus::Active => "active",
            DeviceStatus::Revoked => "revoked",
        }
    }

    /// Reads back [`DeviceStatus::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(DeviceStatus::Active),
            "revoked" => Some(DeviceStatus::Revoked),
            _ => None,
        }
    }
}

/// Where a device is. Required; "later" is a deliberate, recorded choice, never a silent blank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A place the user named.
    Named(DisplayName),
    /// The user chose to say later.
    Deferred,
}

/// The word that defers a location.
pub const LOCATION_LATER: &str = "later";

/// Why a location was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum LocationError {
    /// Nothing given.
    #[error("a location is required; give one, or \"{LOCATION_LATER}\" to set it later")]
    Missing,
    /// Not a valid name.
    #[error("location: {0}")]
    Invalid(NameError),
}

impl Location {
    /// Parses what a user typed; `later` (any case) defers.
    pub fn parse(input: &str) -> Result<Self, LocationError> {
        let t = input.trim();
        if t.is_empty() {
            return Err(LocationError::Missing);
        }
        if t.eq_ignore_ascii_case(LOCATION_LATER) {
            return Ok(Location::Deferred);
        }
        DisplayName::parse(t).map(Location::Named).map_err(LocationError::Invalid)
    }

    /// Storage form: the name, or `None` when deferred.
    pub fn name(&self) -> Option<&str> {
        match self {
            Location::Named(n) => Some(n.as_str()),
            Location::Deferred => None,
        }
    }

    /// Rebuilds from storage.
    pub fn from_stored(name: Option<String>) -> Self {
        match name.and_then(|n| DisplayName::parse(&n).ok()) {
            Some(n) => Location::Named(n),
            None => Location::Deferred,
        }
    }
}

/// A short free-text field (platform, client version): printable, at most 64 characters.
pub fn parse_tag(what: &'static str, input: &str) -> Result<String, NameError> {
    let t = input.trim();
    if t.chars().count() > 64 {
        return Err(NameError::TooLong { what, max: 64 });
    }
    crate::names::check_visible(what, t)?;
    Ok(t.to_string())
}

/// Enrollment keys: for machines that can never open a browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnrollmentKeyState {
    /// Whether it may be used more than once.
    pub reusable: bool,
    /// How often it was used.
    pub uses: i64,
    /// When it stops working.
    pub expires_at: Timestamp,
    /// Whether an admin or its owner revoked it.
    pub revoked: bool,
}

/// Why an enrollment key cannot be used.
#[derive(Debug, Clone, Copy, Error, PartialEq, Eq)]
pub enum EnrollError {
    /// Past its expiry.
    #[error("this enrollment key has expired; create a new one")]
    Expired,
    /// Single-use and already used.
    #[error("this enrollment key was already used; it works once")]
    Used,
    /// Revoked.
    #[error("this enrollment key was revoked")]
    Revoked,
}

impl EnrollmentKeyState {
    /// Whether the key may enroll a device at `now`.
    pub fn check(&self, now: Timestamp) -> Result<(), EnrollError> {
        if self.revoked {
            Err(EnrollError::Revoked)
        } else if now >= self.expires_at {
            Err(EnrollError::Expired)
        } else if !self.reusable && self.uses > 0 {
            Err(EnrollError::Used)
        } else {
            Ok(())
        }
    }
}

/// How a device came to be registered, as the audit log says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisteredVia {
    /// A device login (RFC 8628) approved by its owner.
    DeviceLogin,
    /// An enrollment key, without a browser.
    EnrollmentKey,
}

impl RegisteredVia {
    /// Stable text for the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DeviceLogin => "device_login",
            Self::EnrollmentKey => "enrollment_key",
        }
    }
}

/// What the owner already has, as loaded for one registration.
#[derive(Debug, Clone, Copy)]
pub struct Registry<'a> {
    /// Whether an active device of the owner already holds the presented key.
    pub same_key_device: bool,
    /// How many active devices the owner has.
    pub active: i64,
    /// Every slug the owner's devices have ever had (revoked ones keep theirs).
    pub taken_slugs: &'a std::collections::HashSet<String>,
}

/// What to do with one registration request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationPlan {
    /// The same machine (same key) logging in again: reuse its device, create nothing.
    Reuse,
    /// Create the device with this slug.
    Create {
        /// The device's slug, unique among the owner's.
        slug: String,
    },
    /// The owner is at the device cap (the cap given): change nothing.
    AtCap(i64),
    /// The explicit slug asked for is in use: change nothing.
    SlugTaken(String),
}

/// Decides a device registration: the same key is the same device; the cap
/// counts active devices; a slug names one device ever, so an explicit slug
/// that was ever used is refused and a derived one gets a numeric suffix.
pub fn plan_registration(
    registry: Registry<'_>,
    cap: i64,
    explicit_slug: Option<&str>,
    name: &str,
    device_id: &str,
) -> RegistrationPlan {
    if registry.same_key_device {
        return RegistrationPlan::Reuse;
    }
    if registry.active >= cap {
        return RegistrationPlan::AtCap(cap);
    }
    match explicit_slug {
        Some(slug) if registry.taken_slugs.contains(slug) => RegistrationPlan::SlugTaken(slug.to_string()),
        Some(slug) => RegistrationPlan::Create { slug: slug.to_string() },
        None => RegistrationPlan::Create {
            slug: crate::slug::Slug::for_new_device(name, device_id, registry.taken_slugs).to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        assert_eq!(Location::parse(""), Err(LocationError::Missing));
        assert_eq!(Location::parse("   "), Err(LocationError::Missing));
        assert_eq!(Location::parse("Later"), Ok(Location::Deferred));
        assert_eq!(
            Location::parse(" Berlin office ").map(|l| l.name().map(str::to_string)),
            Ok(Some("Berlin office".into()))
        );
        assert!(matches!(Location::parse(&"x".repeat(10_000)), Err(LocationError::Invalid(_))));
        assert_eq!(Location::from_stored(None), Location::Deferred);
    }

    #[test]
    fn enrollment_keys() {
        let t = Timestamp::from_millis(1000);
        let k = EnrollmentKeyState { reusable: false, uses: 0, expires_at: t, revoked: false };
        assert_eq!(k.check(Timestamp::from_millis(999)), Ok(()));
        assert_eq!(k.check(t), Err(EnrollError::Expired));
        assert_eq!(EnrollmentKeyState { uses: 1, ..k }.check(Timestamp::from_millis(1)), Err(EnrollError::Used));
        assert_eq!(EnrollmentKeyState { uses: 5, reusable: true, ..k }.check(Timestamp::from_millis(1)), Ok(()));
        assert_eq!(
            EnrollmentKeyState { revoked: true, ..k }.check(Timestamp::from_millis(1)),
            Err(EnrollError::Revoked)
        );
    }

    #[test]
    fn tags() {
        assert_eq!(parse_tag("platform", " linux-x86_64 "), Ok("linux-x86_64".into()));
        assert!(parse_tag("platform", &"x".repeat(65)).is_err());
        assert!(parse_tag("platform", "a\nb").is_err());
    }

    #[test]
    fn registration_reuses_caps_and_keeps_slugs_unique() {
        let taken: std::collections::HashSet<String> = ["laptop".to_string()].into();
        let reg = |same_key_device, active| Registry { same_key_device, active, taken_slugs: &taken };
        assert_eq!(plan_registration(reg(true, 50), 50, None, "Laptop", "d1"), RegistrationPlan::Reuse);
        assert_eq!(plan_registration(reg(false, 50), 50, None, "Laptop", "d1"), RegistrationPlan::AtCap(50));
        assert_eq!(
            plan_registration(reg(false, 1), 50, Some("laptop"), "Laptop", "d1"),
            RegistrationPlan::SlugTaken("laptop".into())
        );
        assert_eq!(
            plan_registration(reg(false, 1), 50, None, "Laptop", "d1"),
            RegistrationPlan::Create { slug: "laptop-2".into() }
        );
        assert_eq!(
            plan_registration(reg(false, 1), 50, Some("desk"), "Laptop", "d1"),
            RegistrationPlan::Create { slug: "desk".into() }
        );
    }
}
