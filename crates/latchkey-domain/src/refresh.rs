//! Refresh-token rotation: every use replaces the token; a replayed old token
//! means it was stolen, so the whole family dies (OAuth 2.1 §4.3.1, BCP 212 §4.14).

use crate::time::Timestamp;

/// A stored refresh token's state as seen at use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshState {
    /// Whether this token was already exchanged for a newer one.
    pub rotated: bool,
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
    /// Refuse; nothing to change.
    Refuse,
}

impl RefreshState {
    /// Decides a use at `now`.
    pub fn use_at(&self, now: Timestamp) -> RefreshOutcome {
        if self.family_revoked {
            RefreshOutcome::Refuse
        } else if self.rotated {
            RefreshOutcome::ReuseDetected
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
        RefreshState { rotated, family_revoked, expires_at: Timestamp::from_millis(1000) }
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
