//! Rate limits, all built on one keyed limiter that reserves atomically.
//!
//! A request that might fail (a typed code, a password) takes a slot from
//! every counter under one lock *before* the work, and gives it back if it
//! succeeded: concurrent attempts cannot slip past the limit between a check
//! and a record. Counters live in memory per replica (documented).

use crate::config::{CodeEntryLimits, SignInLimits};
use latchkey_domain::rate_limit::{Limit, WindowCounter};
use latchkey_domain::Timestamp;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Most distinct keys tracked per limiter. When full, counters whose window is
/// over go first, then the oldest: a flood of new keys can never turn into a
/// refusal of everyone (a limit that locks everyone out is worse than none).
const MAX_KEYS: usize = 100_000;

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

/// Per-key fixed-window counters for one limit.
pub struct KeyedLimiter {
    limit: Limit,
    counters: HashMap<String, WindowCounter>,
}

impl KeyedLimiter {
    /// A limiter allowing `max` events per `window_secs` per key; `max == 0` disables it.
    pub fn new(max: u32, window_secs: i64) -> Self {
        Self { limit: Limit { max, window_secs }, counters: HashMap::new() }
    }

    fn allows(&self, key: &str, now: Timestamp) -> bool {
        if self.limit.max == 0 {
            return true;
        }
        match self.counters.get(key) {
            Some(c) => c.allows(self.limit, now),
            None => true,
        }
    }

    fn take(&mut self, key: &str, now: Timestamp) {
        if self.limit.max == 0 {
            return;
        }
        if !self.counters.contains_key(key) && self.counters.len() >= MAX_KEYS {
            self.make_room(now);
        }
        self.counters.entry(key.to_string()).or_insert_with(|| WindowCounter::new(now)).record(self.limit, now);
    }

    /// Frees room for new keys: expired counters, then the oldest 1% (so a flood
    /// pays for this scan once per thousand new keys, not on every one).
    fn make_room(&mut self, now: Timestamp) {
        self.prune(now);
        if self.counters.len() < MAX_KEYS {
            return;
        }
        let mut starts: Vec<i64> = self.counters.values().map(|c| c.started().as_millis()).collect();
        let cut = starts.len() / 100;
        let (_, threshold, _) = starts.select_nth_unstable(cut);
        let threshold = *threshold;
        self.counters.retain(|_, c| c.started().as_millis() > threshold);
    }

    fn refund(&mut self, key: &str, now: Timestamp) {
        if let Some(c) = self.counters.get_mut(key) {
            c.refund(self.limit, now);
        }
    }

    fn prune(&mut self, now: Timestamp) {
        let limit = self.limit;
        self.counters.retain(|_, c| !c.expired(limit, now));
    }
}

/// Several limiters that must all allow an attempt; taken and refunded together.
pub struct LimiterSet {
    limiters: Mutex<Vec<KeyedLimiter>>,
}

/// Keys to charge, one per limiter in the set, in order.
pub type Keys<'a> = &'a [&'a str];

impl LimiterSet {
    /// A set of limiters.
    pub fn new(limiters: Vec<KeyedLimiter>) -> Self {
        Self { limiters: Mutex::new(limiters) }
    }

    /// Takes a slot from every limiter if all allow it; `false` (nothing taken) otherwise.
    pub fn try_take(&self, keys: Keys<'_>, now: Timestamp) -> bool {
        let mut ls = self.limiters.lock().unwrap_or_else(|p| p.into_inner());
        if !ls.iter().zip(keys).all(|(l, k)| l.allows(k, now)) {
            return false;
        }
        for (l, k) in ls.iter_mut().zip(keys) {
            l.take(k, now);
        }
        true
    }

    /// Gives back slots taken by [`LimiterSet::try_take`] for an attempt that succeeded.
    pub fn refund(&self, keys: Keys<'_>, now: Timestamp) {
        let mut ls = self.limiters.lock().unwrap_or_else(|p| p.into_inner());
        for (l, k) in ls.iter_mut().zip(keys) {
            l.refund(k, now);
        }
    }

    /// Forgets counters whose window is over.
    pub fn prune(&self, now: Timestamp) {
        for l in self.limiters.lock().unwrap_or_else(|p| p.into_inner()).iter_mut() {
            l.prune(now);
        }
    }
}

/// Wrong user-code entries (RFC 8628 §5.1): per user, per network, server-wide.
pub fn code_entry(l: &CodeEntryLimits) -> LimiterSet {
    LimiterSet::new(vec![
        KeyedLimiter::new(l.per_user, l.window_secs),
        KeyedLimiter::new(l.per_network, l.window_secs),
        KeyedLimiter::new(l.global, l.window_secs),
    ])
}

/// Failed password sign-ins: per username, per network.
pub fn sign_in(l: &SignInLimits) -> LimiterSet {
    LimiterSet::new(vec![
        KeyedLimiter::new(l.per_username, l.window_secs),
        KeyedLimiter::new(l.per_network, l.window_secs),
    ])
}

/// Device authorization requests per network per minute (each one writes a grant and an audit entry).
pub fn device_authorization(per_minute: u32) -> LimiterSet {
    LimiterSet::new(vec![KeyedLimiter::new(per_minute, 60)])
}

/// QR sign-ins started per minute: per client network, and 20 times that per app.
pub fn pairing(per_minute: u32) -> LimiterSet {
    LimiterSet::new(vec![KeyedLimiter::new(per_minute, 60), KeyedLimiter::new(per_minute.saturating_mul(20), 60)])
}

/// The single key of a server-wide limit.
pub const GLOBAL: &str = "*";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_atomically_and_refunds() {
        let set = LimiterSet::new(vec![KeyedLimiter::new(2, 60), KeyedLimiter::new(3, 60)]);
        let t = Timestamp::from_millis(0);
        assert!(set.try_take(&["u", "n"], t));
        assert!(set.try_take(&["u", "n"], t));
        assert!(!set.try_take(&["u", "n"], t), "first limiter full");
        assert!(set.try_take(&["v", "n"], t));
        assert!(!set.try_take(&["w", "n"], t), "second limiter full, nothing taken from the first");
        set.refund(&["v", "n"], t);
        assert!(set.try_take(&["w", "n"], t));
        assert!(set.try_take(&["x", "n"], t.plus_secs(60)), "new window");
    }

    #[test]
    fn ipv6_hosts_share_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
        assert_eq!(network_key(a), network_key(b));
        assert_eq!(network_key("::ffff:10.0.0.1".parse().unwrap_or(a)), "10.0.0.1");
    }

    #[test]
    fn a_full_limiter_evicts_the_oldest_and_still_limits_new_keys() {
        let mut l = KeyedLimiter::new(1, 3600);
        let t = Timestamp::from_millis(0);
        for i in 0..MAX_KEYS {
            l.take(&format!("k{i}"), t.plus_millis(i as i64));
        }
        assert!(!l.allows("k99999", t.plus_secs(200)), "a tracked key is still limited");
        assert!(l.allows("someone-new", t.plus_secs(200)), "a new key is never refused for lack of room");
        l.take("someone-new", t.plus_secs(200));
        assert!(l.counters.len() <= MAX_KEYS);
        assert!(!l.counters.contains_key("k0"), "the oldest went first");
        assert!(!l.allows("someone-new", t.plus_secs(200)), "and the new key is limited like any other");
    }

    #[test]
    fn zero_disables() {
        let set = LimiterSet::new(vec![KeyedLimiter::new(0, 60)]);
        for _ in 0..1000 {
            assert!(set.try_take(&["k"], Timestamp::from_millis(0)));
        }
    }
}
