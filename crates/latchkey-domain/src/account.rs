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

/// When repeated wrong passwords lock an account, and for how long.
///
/// The rule: `failures` wrong passwords, each within `window` of the first of
/// the run, lock the account for `lock_for` from the last one. Wrong passwords
/// while it is locked neither count nor lengthen the lock, so nobody can keep an
/// account locked for good by guessing; and a correct password lifts the lock
/// when it comes from a network with no wrong password for this account in the
/// last `lock_for` ([`LockPolicy::network_may_lift`]). An admin can lift it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockPolicy {
    /// Wrong passwords that lock the account; 0 never locks.
    pub failures: u32,
    /// How long a run of failures counts from its first one, in seconds.
    pub window_secs: i64,
    /// How long a lock lasts, in seconds.
    pub lock_for_secs: i64,
}

/// An account's run of wrong passwords, as stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FailureRun {
    /// Wrong passwords in the current run.
    pub count: i64,
    /// When the run's first one came.
    pub first_at: Option<Timestamp>,
}

/// What one more wrong password does to an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureOutcome {
    /// The run to store.
    pub run: FailureRun,
    /// Set when this failure locks the account: until when.
    pub locks_until: Option<Timestamp>,
}

impl LockPolicy {
    /// A policy that never locks.
    pub const NEVER: LockPolicy = LockPolicy { failures: 0, window_secs: 0, lock_for_secs: 0 };

    /// What a wrong password at `now` does, given the stored run and status.
    pub fn on_failure(&self, run: FailureRun, status: AccountStatus, now: Timestamp) -> FailureOutcome {
        // Failures during a lock change nothing: otherwise guessing could hold the lock forever.
        let locked = matches!(status.locked_until, Some(until) if now < until);
        if self.failures == 0 || locked {
            return FailureOutcome { run: FailureRun::default(), locks_until: None };
        }
        let run = match run.first_at {
            Some(first) if run.count > 0 && now.millis_since(first) < self.window_secs.saturating_mul(1000) => {
                FailureRun { count: run.count + 1, first_at: Some(first) }
            }
            _ => FailureRun { count: 1, first_at: Some(now) },
        };
        if run.count >= i64::from(self.failures) {
            // A new run starts after the lock: the count is not carried into it.
            FailureOutcome { run: FailureRun::default(), locks_until: Some(now.plus_secs(self.lock_for_secs)) }
        } else {
            FailureOutcome { run, locks_until: None }
        }
    }

    /// Whether a correct password from a network whose last wrong password for
    /// this account came at `last_failure` (if ever) may lift a lock at `now`.
    pub fn network_may_lift(&self, last_failure: Option<Timestamp>, now: Timestamp) -> bool {
        match last_failure {
            Some(at) => now.millis_since(at) >= self.lock_for_secs.saturating_mul(1000),
            None => true,
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

    const POLICY: LockPolicy = LockPolicy { failures: 3, window_secs: 100, lock_for_secs: 60 };

    #[test]
    fn the_nth_failure_within_the_window_locks_and_starts_a_new_run() {
        let open = AccountStatus::default();
        let first = POLICY.on_failure(FailureRun::default(), open, t(10));
        assert_eq!(first, FailureOutcome { run: FailureRun { count: 1, first_at: Some(t(10)) }, locks_until: None });
        let second = POLICY.on_failure(first.run, open, t(20));
        assert_eq!(second.run.count, 2);
        let third = POLICY.on_failure(second.run, open, t(30));
        assert_eq!(third, FailureOutcome { run: FailureRun::default(), locks_until: Some(t(90)) });
    }

    #[test]
    fn a_run_older_than_the_window_starts_again() {
        let run = FailureRun { count: 2, first_at: Some(t(0)) };
        let out = POLICY.on_failure(run, AccountStatus::default(), t(100));
        assert_eq!(out, FailureOutcome { run: FailureRun { count: 1, first_at: Some(t(100)) }, locks_until: None });
    }

    #[test]
    fn failures_while_locked_neither_count_nor_lengthen_the_lock() {
        let locked = AccountStatus { disabled_at: None, locked_until: Some(t(90)) };
        let run = FailureRun { count: 2, first_at: Some(t(80)) };
        assert_eq!(
            POLICY.on_failure(run, locked, t(85)),
            FailureOutcome { run: FailureRun::default(), locks_until: None }
        );
        // Once the lock has ended, failures count again.
        assert_eq!(POLICY.on_failure(FailureRun::default(), locked, t(90)).run.count, 1);
    }

    #[test]
    fn zero_failures_never_locks() {
        let run = FailureRun { count: 1_000, first_at: Some(t(0)) };
        assert_eq!(LockPolicy::NEVER.on_failure(run, AccountStatus::default(), t(1)).locks_until, None);
    }

    #[test]
    fn only_a_network_without_recent_failures_may_lift_a_lock() {
        assert!(POLICY.network_may_lift(None, t(10)));
        assert!(!POLICY.network_may_lift(Some(t(0)), t(59)));
        assert!(POLICY.network_may_lift(Some(t(0)), t(60)));
    }
}
