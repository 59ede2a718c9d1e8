//! The RFC 8628 device grant as a state machine.
//!
//! ```text
//! pending ──approve──▶ approved ──consume──▶ consumed
//!    │ └────deny────▶ denied
//!    └──(time passes)──▶ expired   (derived from `expires_at`, never stored)
//! ```
//!
//! Storage loads a grant, asks this module what the transition is, and writes
//! it back conditionally, so the rules live here once for every backend.

use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Seconds a device must wait between polls unless told otherwise (RFC 8628 §3.2).
pub const DEFAULT_INTERVAL_SECS: i64 = 5;
/// Seconds added to the interval on every `slow_down` (RFC 8628 §3.5).
pub const SLOW_DOWN_STEP_SECS: i64 = 5;
/// Milliseconds of network jitter forgiven before a poll counts as too fast:
/// a client that waits exactly `interval` must never be told to slow down.
pub const POLL_SLACK_MS: i64 = 250;
/// Seconds a grant lives by default.
pub const DEFAULT_LIFETIME_SECS: i64 = 600;

/// Where a grant stands, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantStatus {
    /// Waiting for a person to approve or deny.
    Pending,
    /// Approved; tokens not yet handed out.
    Approved,
    /// Denied by the person.
    Denied,
    /// Tokens were handed out; the device code is spent.
    Consumed,
}

impl GrantStatus {
    /// Stable text for storage.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantStatus::Pending => "pending",
            GrantStatus::Approved => "approved",
            GrantStatus::Denied => "denied",
            GrantStatus::Consumed => "consumed",
        }
    }

    /// Reads back [`GrantStatus::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => GrantStatus::Pending,
            "approved" => GrantStatus::Approved,
            "denied" => GrantStatus::Denied,
            "consumed" => GrantStatus::Consumed,
            _ => return None,
        })
    }
}

/// What the person decided on the verification page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Let the device in.
    Approve,
    /// Refuse the device.
    Deny,
}

/// The parts of a grant that decide its transitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantState {
    /// Stored status.
    pub status: GrantStatus,
    /// When the codes stop working.
    pub expires_at: Timestamp,
    /// Current polling interval in seconds (grows with `slow_down`).
    pub interval_secs: i64,
    /// When the device last polled the token endpoint.
    pub last_polled_at: Option<Timestamp>,
}

/// Why a decision could not be recorded.
#[derive(Debug, Clone, Copy, Error, PartialEq, Eq)]
pub enum DecideError {
    /// The code's lifetime is over.
    #[error("this code has expired; start the sign-in again on your device")]
    Expired,
    /// Someone already approved or denied this code.
    #[error("this code was already used")]
    AlreadyDecided,
}

/// The answer to one RFC 8628 poll of the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollOutcome {
    /// Keep polling; remember this poll's time.
    Pending,
    /// Polled too fast: keep polling at the new, longer interval.
    SlowDown {
        /// The interval the device must now respect, in seconds.
        new_interval_secs: i64,
    },
    /// Approved: hand out tokens and mark the grant consumed.
    Ready,
    /// The person said no.
    Denied,
    /// The code ran out before a decision.
    Expired,
    /// Tokens were already handed out for this code.
    Spent,
}

/// What a waiting device learns without affecting poll accounting (instant approval).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitOutcome {
    /// Nothing decided yet; wait for a change.
    Pending,
    /// Approved: hand out tokens and mark the grant consumed.
    Ready,
    /// The person said no.
    Denied,
    /// The code ran out before a decision.
    Expired,
    /// Tokens were already handed out for this code.
    Spent,
}

impl GrantState {
    /// A fresh grant created at `now` that lives `lifetime_secs`.
    pub fn new(now: Timestamp, lifetime_secs: i64, interval_secs: i64) -> Self {
        Self {
            status: GrantStatus::Pending,
            expires_at: now.plus_secs(lifetime_secs),
            interval_secs,
            last_polled_at: None,
        }
    }

    /// Whether the codes no longer work at `now`.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.expires_at
    }

    /// The status a decision moves the grant to.
    pub fn decide(&self, decision: Decision, now: Timestamp) -> Result<GrantStatus, DecideError> {
        if self.status != GrantStatus::Pending {
            return Err(DecideError::AlreadyDecided);
        }
        if self.is_expired(now) {
            return Err(DecideError::Expired);
        }
        Ok(match decision {
            Decision::Approve => GrantStatus::Approved,
            Decision::Deny => GrantStatus::Denied,
        })
    }

    /// An RFC 8628 poll at `now`. The caller stores `now` as the last poll
    /// time and, on `SlowDown`, the new interval.
    pub fn poll(&self, now: Timestamp) -> PollOutcome {
        match self.wait_check(now) {
            WaitOutcome::Ready => PollOutcome::Ready,
            WaitOutcome::Denied => PollOutcome::Denied,
            WaitOutcome::Expired => PollOutcome::Expired,
            WaitOutcome::Spent => PollOutcome::Spent,
            WaitOutcome::Pending => match self.last_polled_at {
                Some(last) if now.millis_since(last) < self.interval_secs * 1000 - POLL_SLACK_MS => {
                    PollOutcome::SlowDown { new_interval_secs: self.interval_secs + SLOW_DOWN_STEP_SECS }
                }
                _ => PollOutcome::Pending,
            },
        }
    }

    /// Where the grant stands for a device waiting on the instant endpoint.
    pub fn wait_check(&self, now: Timestamp) -> WaitOutcome {
        match self.status {
            // Spent wins over expiry: the code was used, say so.
            GrantStatus::Consumed => WaitOutcome::Spent,
            _ if self.is_expired(now) => WaitOutcome::Expired,
            GrantStatus::Approved => WaitOutcome::Ready,
            GrantStatus::Denied => WaitOutcome::Denied,
            GrantStatus::Pending => WaitOutcome::Pending,
        }
    }
}

/// Whether a device code is being polled (RFC 8628) or waited on (instant endpoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedeemMode {
    /// RFC 8628 §3.4 poll: counts for `slow_down`.
    Poll,
    /// Instant endpoint check: does not count as a poll.
    Wait,
}

/// What the presenter of a device code brings: who it is and which key signed.
#[derive(Debug, Clone, Copy)]
pub struct Presenter<'a> {
    /// The authenticated client presenting the code.
    pub client_id: &'a str,
    /// Thumbprint of the key that signed the request's DPoP proof, if any.
    pub jkt: Option<&'a str>,
    /// Poll or wait.
    pub mode: RedeemMode,
}

/// A stored grant, as much of it as redeeming needs.
#[derive(Debug, Clone, Copy)]
pub struct Redeemable<'a> {
    /// The client the code was issued to.
    pub client_id: &'a str,
    /// The device key the grant is bound to, if any.
    pub jkt: Option<&'a str>,
    /// Status, expiry, interval, last poll.
    pub state: &'a GrantState,
    /// Whether the device registered on approval has since been revoked.
    pub device_revoked: bool,
}

/// What to do with one redemption: the store executes it in one transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedeemPlan {
    /// The code is unknown to this client (RFC 6749 §5.2 `invalid_grant`): change nothing.
    Unknown,
    /// The grant is bound to a device key the request was not signed with: change nothing.
    WrongKey,
    /// Not decided yet; on a poll, record the poll's time.
    Pending {
        /// Whether to store `now` as the last poll time.
        record_poll: bool,
    },
    /// Polled too fast: record the poll and the longer interval.
    SlowDown {
        /// The interval the device must now respect, in seconds.
        new_interval_secs: i64,
    },
    /// Mark the grant consumed (only if still approved) and start the token family.
    Consume,
    /// The person denied it, or the approved device was revoked before collection.
    Denied,
    /// The code ran out.
    Expired,
    /// Tokens were already handed out.
    Spent,
}

/// Decides one redemption of a device code at `now`.
///
/// A code works only for the client it was issued to; a grant bound to a
/// device key works only with a proof from that key, so a stolen device code
/// alone is worth nothing; a device revoked between approval and collection
/// gets nothing.
pub fn plan_redeem(grant: Redeemable<'_>, by: Presenter<'_>, now: Timestamp) -> RedeemPlan {
    if grant.client_id != by.client_id {
        return RedeemPlan::Unknown;
    }
    if crate::dpop::binding(grant.jkt, by.jkt) == crate::dpop::Binding::WrongKey {
        return RedeemPlan::WrongKey;
    }
    let outcome = match by.mode {
        RedeemMode::Poll => grant.state.poll(now),
        RedeemMode::Wait => match grant.state.wait_check(now) {
            WaitOutcome::Pending => PollOutcome::Pending,
            WaitOutcome::Ready => PollOutcome::Ready,
            WaitOutcome::Denied => PollOutcome::Denied,
            WaitOutcome::Expired => PollOutcome::Expired,
            WaitOutcome::Spent => PollOutcome::Spent,
        },
    };
    match outcome {
        PollOutcome::Pending => RedeemPlan::Pending { record_poll: by.mode == RedeemMode::Poll },
        PollOutcome::SlowDown { new_interval_secs } => RedeemPlan::SlowDown { new_interval_secs },
        PollOutcome::Ready if grant.device_revoked => RedeemPlan::Denied,
        PollOutcome::Ready => RedeemPlan::Consume,
        PollOutcome::Denied => RedeemPlan::Denied,
        PollOutcome::Expired => RedeemPlan::Expired,
        PollOutcome::Spent => RedeemPlan::Spent,
    }
}

/// The name a device gets when its login request gave none.
pub fn default_device_name(requested: Option<&str>, client_id: &str) -> String {
    match requested {
        Some(name) => name.to_string(),
        None => format!("{client_id} device"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_millis(s * 1000)
    }

    fn fresh() -> GrantState {
        GrantState::new(t(0), 600, 5)
    }

    #[test]
    fn approve_then_poll_is_ready_once_stored_as_consumed() {
        let mut g = fresh();
        assert_eq!(g.decide(Decision::Approve, t(10)), Ok(GrantStatus::Approved));
        g.status = GrantStatus::Approved;
        assert_eq!(g.poll(t(20)), PollOutcome::Ready);
        g.status = GrantStatus::Consumed;
        assert_eq!(g.poll(t(30)), PollOutcome::Spent);
        assert_eq!(g.wait_check(t(30)), WaitOutcome::Spent);
    }

    #[test]
    fn second_decision_is_refused() {
        let mut g = fresh();
        g.status = GrantStatus::Denied;
        assert_eq!(g.decide(Decision::Approve, t(1)), Err(DecideError::AlreadyDecided));
        g.status = GrantStatus::Approved;
        assert_eq!(g.decide(Decision::Deny, t(1)), Err(DecideError::AlreadyDecided));
    }

    #[test]
    fn expiry_blocks_decisions_and_polls() {
        let g = fresh();
        assert_eq!(g.decide(Decision::Approve, t(600)), Err(DecideError::Expired));
        assert_eq!(g.poll(t(601)), PollOutcome::Expired);
        let mut approved = fresh();
        approved.status = GrantStatus::Approved;
        // Approved but never collected before expiry: the tokens are not handed out late.
        assert_eq!(approved.poll(t(600)), PollOutcome::Expired);
    }

    #[test]
    fn denied_is_reported() {
        let mut g = fresh();
        g.status = GrantStatus::Denied;
        assert_eq!(g.poll(t(1)), PollOutcome::Denied);
        assert_eq!(g.wait_check(t(1)), WaitOutcome::Denied);
    }

    #[test]
    fn polling_faster_than_interval_slows_down_by_five_seconds() {
        let mut g = fresh();
        assert_eq!(g.poll(t(1)), PollOutcome::Pending);
        g.last_polled_at = Some(t(1));
        assert_eq!(g.poll(t(5)), PollOutcome::SlowDown { new_interval_secs: 10 });
        g.last_polled_at = Some(t(5));
        g.interval_secs = 10;
        assert_eq!(g.poll(t(14)), PollOutcome::SlowDown { new_interval_secs: 15 });
        g.last_polled_at = Some(t(14));
        g.interval_secs = 15;
        assert_eq!(g.poll(t(29)), PollOutcome::Pending);
        // Jitter: a poll that arrives a little early, after waiting the interval, is fine.
        g.last_polled_at = Some(t(29));
        assert_eq!(g.poll(t(29).plus_secs(15).plus_millis(-200)), PollOutcome::Pending);
        assert_eq!(g.poll(t(29).plus_secs(15).plus_millis(-300)), PollOutcome::SlowDown { new_interval_secs: 20 });
    }

    #[test]
    fn ready_is_not_delayed_by_slow_down() {
        let mut g = fresh();
        g.status = GrantStatus::Approved;
        g.last_polled_at = Some(t(1));
        assert_eq!(g.poll(t(2)), PollOutcome::Ready);
    }

    #[test]
    fn status_text_round_trips() {
        for s in [GrantStatus::Pending, GrantStatus::Approved, GrantStatus::Denied, GrantStatus::Consumed] {
            assert_eq!(GrantStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(GrantStatus::parse("bogus"), None);
    }

    fn redeemable(state: &GrantState) -> Redeemable<'_> {
        Redeemable { client_id: "cli", jkt: Some("key-a"), state, device_revoked: false }
    }

    fn by(client_id: &'static str, jkt: Option<&'static str>, mode: RedeemMode) -> Presenter<'static> {
        Presenter { client_id, jkt, mode }
    }

    #[test]
    fn redeem_is_bound_to_the_client_and_the_key() {
        let mut g = fresh();
        g.status = GrantStatus::Approved;
        let r = redeemable(&g);
        assert_eq!(plan_redeem(r, by("other", Some("key-a"), RedeemMode::Poll), t(1)), RedeemPlan::Unknown);
        assert_eq!(plan_redeem(r, by("cli", None, RedeemMode::Poll), t(1)), RedeemPlan::WrongKey);
        assert_eq!(plan_redeem(r, by("cli", Some("key-b"), RedeemMode::Wait), t(1)), RedeemPlan::WrongKey);
        assert_eq!(plan_redeem(r, by("cli", Some("key-a"), RedeemMode::Poll), t(1)), RedeemPlan::Consume);
        // An unbound grant takes any (or no) key.
        let unbound = Redeemable { jkt: None, ..r };
        assert_eq!(plan_redeem(unbound, by("cli", Some("key-z"), RedeemMode::Wait), t(1)), RedeemPlan::Consume);
    }

    #[test]
    fn only_polls_are_recorded_and_slowed_down() {
        let mut g = fresh();
        g.last_polled_at = Some(t(1));
        let r = redeemable(&g);
        assert_eq!(
            plan_redeem(r, by("cli", Some("key-a"), RedeemMode::Poll), t(2)),
            RedeemPlan::SlowDown { new_interval_secs: 10 }
        );
        assert_eq!(
            plan_redeem(r, by("cli", Some("key-a"), RedeemMode::Wait), t(2)),
            RedeemPlan::Pending { record_poll: false }
        );
        assert_eq!(
            plan_redeem(r, by("cli", Some("key-a"), RedeemMode::Poll), t(7)),
            RedeemPlan::Pending { record_poll: true }
        );
    }

    #[test]
    fn a_revoked_device_collects_nothing_and_outcomes_map_one_to_one() {
        let mut g = fresh();
        g.status = GrantStatus::Approved;
        let revoked = Redeemable { device_revoked: true, ..redeemable(&g) };
        assert_eq!(plan_redeem(revoked, by("cli", Some("key-a"), RedeemMode::Wait), t(1)), RedeemPlan::Denied);
        for (status, plan) in [(GrantStatus::Denied, RedeemPlan::Denied), (GrantStatus::Consumed, RedeemPlan::Spent)] {
            g.status = status;
            assert_eq!(plan_redeem(redeemable(&g), by("cli", Some("key-a"), RedeemMode::Poll), t(1)), plan);
        }
        g.status = GrantStatus::Approved;
        assert_eq!(
            plan_redeem(redeemable(&g), by("cli", Some("key-a"), RedeemMode::Poll), t(601)),
            RedeemPlan::Expired
        );
    }

    #[test]
    fn default_device_name_names_the_app() {
        assert_eq!(default_device_name(None, "tray"), "tray device");
        assert_eq!(default_device_name(Some("Laptop"), "tray"), "Laptop");
    }
}
