//! What the activity charts read: counts over time, never single entries.

use latchkey_domain::audit::AuditKind;

/// Device sign-ins (token families started for a device) on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaySignIns {
    /// The device.
    pub device_id: String,
    /// Days since the Unix epoch (UTC).
    pub day: i64,
    /// How many sign-ins started that day.
    pub count: i64,
}

/// What became of device logins (RFC 8628 grants), as the overview charts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LoginOutcome {
    /// A device asked to sign in (`grant.requested`).
    Started,
    /// A person approved it (`grant.approved`).
    Approved,
    /// A person denied it (`grant.denied`).
    Denied,
    /// Nobody decided before the code expired.
    Expired,
}

impl LoginOutcome {
    /// Every outcome, in chart order.
    pub const ALL: [LoginOutcome; 4] =
        [LoginOutcome::Started, LoginOutcome::Approved, LoginOutcome::Denied, LoginOutcome::Expired];

    /// The outcome an audit kind records, if it is one the overview counts.
    pub fn from_audit_kind(kind: &str) -> Option<Self> {
        [
            (AuditKind::GrantRequested, LoginOutcome::Started),
            (AuditKind::GrantApproved, LoginOutcome::Approved),
            (AuditKind::GrantDenied, LoginOutcome::Denied),
        ]
        .into_iter()
        .find(|(k, _)| k.as_str() == kind)
        .map(|(_, outcome)| outcome)
    }

    /// A word for people.
    pub fn label(self) -> &'static str {
        match self {
            LoginOutcome::Started => "Started",
            LoginOutcome::Approved => "Approved",
            LoginOutcome::Denied => "Denied",
            LoginOutcome::Expired => "Expired",
        }
    }
}

/// How many device logins had one outcome in one hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HourCount {
    /// What happened.
    pub outcome: LoginOutcome,
    /// Hours since the Unix epoch (UTC).
    pub hour: i64,
    /// How many.
    pub count: i64,
}

/// The server-wide activity an admin sees at a glance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoginOverview {
    /// Device logins per outcome and hour (hours with none are absent).
    pub hours: Vec<HourCount>,
    /// Devices that are active (not revoked).
    pub active_devices: i64,
    /// Accounts that are enabled.
    pub active_users: i64,
}
