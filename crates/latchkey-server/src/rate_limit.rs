//! Rate limits, all built on one keyed limiter that reserves atomically.
//!
//! A request that might fail (a typed code, a password) takes a slot from
//! every counter under one lock *before* the work, and gives it back if it
//! succeeded: concurrent attempts cannot slip past the limit between a check
//! and a record. Counters live in memory per replica (documented).

use crate::config::{CodeEntryLimits, SignInLimits};
use latchkey_domain::rate_limit::{KeyedLimiter, LimitSet};
use latchkey_domain::Timestamp;
use std::net::IpAddr;
use std::sync::Mutex;

/// The key of a client network: the IPv4 address, or the IPv6 /64 (one host owns a whole /64).
pub fn network_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// A [`LimitSet`] shared by every request handler: one lock around the check and the take.
pub struct LimiterSet {
    limiters: Mutex<LimitSet>,
}

/// Keys to charge, one per limiter in the set, in order.
pub type Keys<'a> = &'a [&'a str];

impl LimiterSet {
    /// A set of limiters (see [`LimitSet`] for how a shared budget tightens the others).
    pub fn new(limiters: Vec<KeyedLimiter>) -> Self {
        Self { limiters: Mutex::new(LimitSet::new(limiters)) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LimitSet> {
        self.limiters.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes a slot from every limiter if all allow it; `false` (nothing taken) otherwise.
    pub fn try_take(&self, keys: Keys<'_>, now: Timestamp) -> bool {
        self.lock().try_take(keys, now)
    }

    /// Gives back slots taken by [`LimiterSet::try_take`] for an attempt that succeeded.
    pub fn refund(&self, keys: Keys<'_>, now: Timestamp) {
        self.lock().refund(keys, now)
    }

    /// Forgets counters whose window is over.
    pub fn prune(&self, now: Timestamp) {
        self.lock().prune(now)
    }
}

/// Wrong user-code entries (RFC 8628 §5.1): per user, per network, and a
/// server-wide budget that, once spent, only refuses those who spent it.
pub fn code_entry(l: &CodeEntryLimits) -> LimiterSet {
    LimiterSet::new(vec![
        KeyedLimiter::own_tightening(l.per_user, l.per_user_while_spent, l.window_secs),
        KeyedLimiter::own_tightening(l.per_network, l.per_network_while_spent, l.window_secs),
        KeyedLimiter::shared(l.global, l.window_secs),
    ])
}

/// Failed password sign-ins: per username, per network.
pub fn sign_in(l: &SignInLimits) -> LimiterSet {
    LimiterSet::new(vec![
        KeyedLimiter::own(l.per_username, l.window_secs),
        KeyedLimiter::own(l.per_network, l.window_secs),
    ])
}

/// Device authorization requests per network per minute (each one writes a grant row).
pub fn device_authorization(per_minute: u32) -> LimiterSet {
    LimiterSet::new(vec![KeyedLimiter::own(per_minute, 60)])
}

/// Passkey sign-ins started per network per minute (each one stores a
/// challenge). A person needs one or two; the rows live 5 minutes.
pub fn passkey_start() -> LimiterSet {
    LimiterSet::new(vec![KeyedLimiter::own(PASSKEY_STARTS_PER_MINUTE, 60)])
}

/// Passkey sign-ins one network may start in a minute.
pub const PASSKEY_STARTS_PER_MINUTE: u32 = 30;

/// QR sign-ins started per minute: per client network, and a budget of 20 times
/// that per app. While an app's budget is spent, each network may start a tenth
/// of its usual share (rounded up): a few busy networks slow themselves down,
/// never everyone else.
pub fn pairing(per_minute: u32) -> LimiterSet {
    LimiterSet::new(vec![
        KeyedLimiter::own_tightening(per_minute, per_minute.div_ceil(10), 60),
        KeyedLimiter::shared(per_minute.saturating_mul(20), 60),
    ])
}

/// The single key of a server-wide limit.
pub const GLOBAL: &str = "*";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_hosts_share_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        assert_eq!(network_key(a), network_key(b));
        assert_eq!(network_key("::ffff:10.0.0.1".parse().unwrap_or(a)), "10.0.0.1");
    }

    #[test]
    fn sets_take_atomically_under_their_lock() {
        let set = LimiterSet::new(vec![KeyedLimiter::own(1, 60)]);
        let t = Timestamp::from_millis(0);
        assert!(set.try_take(&["k"], t));
        assert!(!set.try_take(&["k"], t));
        set.refund(&["k"], t);
        assert!(set.try_take(&["k"], t));
    }
}
