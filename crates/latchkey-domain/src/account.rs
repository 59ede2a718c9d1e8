//! Accounts that can be stopped: disabled by an admin until enabled again, or
//! locked until a moment. A stopped account gets nothing by any path: every
//! operation that would sign it in, mint for it or accept its tokens asks
//! [`AccountStatus::check`] inside the same transaction.

use crate::time::Timestamp;
use thiserror::Error;

/// Whether an account may act, as stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccountStatus {
    /// When an admin disabled it, if it is disabled.
    pub disabled_at: Option<Timestamp>,
    /// Until when it is locked, if it was locked.
    pub locked_until: Option<Timestamp>,
}

/// Why a stopped account gets nothing.
#[derive(Debug, Clone, Copy, Error, PartialEq, Eq)]
pub enum AccountRefusal {
    /// An admin disabled the account.
    #[error("this account is disabled; ask an administrator to enable it")]
    Disabled,
    /// The account is locked for a while.
    #[error("this account is locked for now; try again later or ask an administrator")]
    Locked {
        /// When the lock ends.
        until: Timestamp,
    },
}

impl AccountStatus {
    /// Whether the account may act at `now`.
    pub fn check(&self, now: Timestamp) -> Result<(), AccountRefusal> {
        if self.disabled_at.is_some() {
            return Err(AccountRefusal::Disabled);
        }
        match self.locked_until {
            Some(until) if now < until => Err(AccountRefusal::Locked { until }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_millis(secs * 1000)
    }

    #[test]
    fn disabled_is_refused_until_enabled_and_a_lock_ends_by_itself() {
        assert_eq!(AccountStatus::default().check(t(1)), Ok(()));
        let disabled = AccountStatus { disabled_at: Some(t(0)), locked_until: None };
        assert_eq!(disabled.check(t(1_000_000)), Err(AccountRefusal::Disabled));
        let locked = AccountStatus { disabled_at: None, locked_until: Some(t(60)) };
        assert_eq!(locked.check(t(59)), Err(AccountRefusal::Locked { until: t(60) }));
        assert_eq!(locked.check(t(60)), Ok(()));
        // Disabled wins over an ended lock.
        let both = AccountStatus { disabled_at: Some(t(0)), locked_until: Some(t(1)) };
        assert_eq!(both.check(t(2)), Err(AccountRefusal::Disabled));
    }
}
