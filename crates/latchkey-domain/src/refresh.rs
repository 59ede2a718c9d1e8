//! Refresh-token rotation: every use replaces the token; a replayed old token
//! means it was stolen, so the whole family dies (OAuth 2.1 §4.3.1, BCP 212 §4.14).
//!
//! One exception, for a device that lost the answer to its refresh: the same
//! token presented again within [`RETRY_GRACE_SECS`], with a proof from the key
//! the family is bound to, is a retry, not a theft (a thief holds no key). It
//! gets a new pair, and whatever the lost answer carried stops working.

use crate::time::Timestamp;

/// How long after a rotation a key-bound device may present the same token again.
pub const RETRY_GRACE_SECS: i64 = 10;

/// A stored refresh token's state as seen at use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshState {
    /// When this token was exchanged for a newer one, if it was.
    pub rotated_at: Option<Timestamp>,
    /// Whether the request proved the key the family is bound to (false for bearer families).
    pub key_proven: bool,
    /// Whether its family was revoked (logout, reuse, device revoked).
    pub family_revoked: bool,
    /// When the token stops working.
    pub expires_at: Timestamp,
}

/// What to do with a presented refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// Issue a new pair and mark this token rotated.
    Rotate,
    /// A rotated token came back: revoke the family and refuse.
    ReuseDetected,
    /// A key-bound device retried within the grace: end the pair the lost answer
    /// carried, and issue a new one.
    RotateAgain,
    /// Refuse; nothing to change.
    Refuse,
}

impl RefreshState {
    /// Decides a use at `now`.
    pub fn use_at(&self, now: Timestamp) -> RefreshOutcome {
        if self.family_revoked {
            RefreshOutcome::Refuse
        } else if let Some(at) = self.rotated_at {
            let retry = self.key_proven && now.millis_since(at) <= RETRY_GRACE_SECS * 1000 && now < self.expires_at;
            if retry {
                RefreshOutcome::RotateAgain
            } else {
                RefreshOutcome::ReuseDetected
            }
        } else if now >= self.expires_at {
            RefreshOutcome::Refuse
        } else {
            RefreshOutcome::Rotate
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(rotated: bool, family_revoked: bool) -> RefreshState {
        RefreshState {
            rotated_at: rotated.then(|| Timestamp::from_millis(5)),
            key_proven: false,
            family_revoked,
            expires_at: Timestamp::from_millis(1000),
        }
    }

    #[test]
    fn a_key_bound_retry_within_the_grace_rotates_again() {
        let bound = RefreshState { key_proven: true, ..state(true, false) };
        let rotated = Timestamp::from_millis(5);
        let mut long = bound;
        long.expires_at = Timestamp::from_millis(1_000_000);
        assert_eq!(long.use_at(rotated.plus_secs(RETRY_GRACE_SECS)), RefreshOutcome::RotateAgain);
        assert_eq!(long.use_at(rotated.plus_secs(RETRY_GRACE_SECS).plus_millis(1)), RefreshOutcome::ReuseDetected);
        assert_eq!(
            state(true, false).use_at(Timestamp::from_millis(10)),
            RefreshOutcome::ReuseDetected,
            "bearer: never"
        );
        assert_eq!(RefreshState { family_revoked: true, ..long }.use_at(rotated), RefreshOutcome::Refuse);
    }

    #[test]
    fn decisions() {
        let now = Timestamp::from_millis(10);
        assert_eq!(state(false, false).use_at(now), RefreshOutcome::Rotate);
        assert_eq!(state(true, false).use_at(now), RefreshOutcome::ReuseDetected);
        assert_eq!(state(true, true).use_at(now), RefreshOutcome::Refuse);
        assert_eq!(state(false, true).use_at(now), RefreshOutcome::Refuse);
        assert_eq!(state(false, false).use_at(Timestamp::from_millis(1000)), RefreshOutcome::Refuse);
    }
}
