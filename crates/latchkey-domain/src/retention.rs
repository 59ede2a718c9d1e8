//! How long finished things are kept before housekeeping removes them.

use crate::time::Timestamp;

/// Finished grants are kept this long after expiry, so a late poll still hears
/// `expired_token` rather than `invalid_grant`.
pub const GRANT_GRACE_SECS: i64 = 10 * 60;
/// A token family with no refresh token left can mint nothing more; it is kept
/// this long after it started, past the life of any access token it signed.
pub const EMPTY_FAMILY_KEEP_SECS: i64 = 24 * 3600;

/// What housekeeping at one moment removes: everything that ended before each cut-off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutoffs {
    /// Grants that expired before this.
    pub grants: Timestamp,
    /// QR pairings that expired before this.
    pub pairings: Timestamp,
    /// Sessions that expired before this.
    pub sessions: Timestamp,
    /// Refresh tokens that expired before this.
    pub refresh_tokens: Timestamp,
    /// Families with no refresh token left that started before this.
    pub empty_families: Timestamp,
    /// Authorization codes that expired before this (kept a while so a replay is still recognised).
    pub authorization_codes: Timestamp,
}

impl Cutoffs {
    /// The cut-offs for housekeeping at `now`.
    pub fn at(now: Timestamp) -> Self {
        Self {
            grants: now.plus_secs(-GRANT_GRACE_SECS),
            pairings: now.plus_secs(-crate::pairing::GRACE_SECS),
            sessions: now,
            refresh_tokens: now,
            empty_families: now.plus_secs(-EMPTY_FAMILY_KEEP_SECS),
            authorization_codes: Timestamp::from_millis(now.as_millis() - crate::authorization::CODE_KEPT_MS),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_things_get_their_grace() {
        let now = Timestamp::from_millis(100_000_000);
        let c = Cutoffs::at(now);
        assert_eq!(c.grants, Timestamp::from_millis(100_000_000 - 600_000));
        assert_eq!(c.pairings, Timestamp::from_millis(100_000_000 - crate::pairing::GRACE_SECS * 1000));
        assert_eq!(c.sessions, now);
        assert_eq!(c.refresh_tokens, now);
        assert_eq!(c.empty_families, Timestamp::from_millis(100_000_000 - 86_400_000));
        assert_eq!(c.authorization_codes, Timestamp::from_millis(100_000_000 - 3_600_000));
    }
}
