//! Limits on wrong user-code entries (RFC 8628 §5.1), per session, per IP and overall.
//!
//! Only wrong entries count, so approving many devices is never slowed down.
//! Counters live in memory; behind several replicas each enforces its own,
//! which multiplies the global budget by the replica count (documented).

use crate::config::CodeEntryLimits;
use latchkey_domain::rate_limit::{Limit, WindowCounter};
use latchkey_domain::Timestamp;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Most distinct keys tracked per map; beyond that new keys are refused until the janitor prunes.
const MAX_KEYS: usize = 100_000;

struct Counters {
    sessions: HashMap<String, WindowCounter>,
    ips: HashMap<IpAddr, WindowCounter>,
    global: WindowCounter,
}

/// Tracks wrong code entries.
pub struct CodeEntryLimiter {
    limits: CodeEntryLimits,
    counters: Mutex<Counters>,
}

impl CodeEntryLimiter {
    /// A limiter enforcing `limits`, starting at `now`.
    pub fn new(limits: CodeEntryLimits, now: Timestamp) -> Self {
        Self {
            limits,
            counters: Mutex::new(Counters {
                sessions: HashMap::new(),
                ips: HashMap::new(),
                global: WindowCounter::new(now),
            }),
        }
    }

    fn limit(&self, max: u32) -> Limit {
        Limit { max, window_secs: self.limits.window_secs }
    }

    /// Whether one more wrong guess from this session and IP would still be allowed.
    pub fn allows(&self, session: &str, ip: IpAddr, now: Timestamp) -> bool {
        let c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        let ok = |m: Option<&WindowCounter>, max: u32, full: bool| match m {
            Some(w) => w.allows(self.limit(max), now),
            None => !full,
        };
        c.global.allows(self.limit(self.limits.global), now)
            && ok(c.sessions.get(session), self.limits.per_session, c.sessions.len() >= MAX_KEYS)
            && ok(c.ips.get(&ip), self.limits.per_ip, c.ips.len() >= MAX_KEYS)
    }

    /// Counts a wrong guess.
    pub fn record_failure(&self, session: &str, ip: IpAddr, now: Timestamp) {
        let mut c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        let (sl, il, gl) =
            (self.limit(self.limits.per_session), self.limit(self.limits.per_ip), self.limit(self.limits.global));
        c.global.record(gl, now);
        if c.sessions.len() < MAX_KEYS || c.sessions.contains_key(session) {
            c.sessions.entry(session.to_string()).or_insert_with(|| WindowCounter::new(now)).record(sl, now);
        }
        if c.ips.len() < MAX_KEYS || c.ips.contains_key(&ip) {
            c.ips.entry(ip).or_insert_with(|| WindowCounter::new(now)).record(il, now);
        }
    }

    /// Forgets counters whose window is over.
    pub fn prune(&self, now: Timestamp) {
        let mut c = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        let (sl, il) = (self.limit(self.limits.per_session), self.limit(self.limits.per_ip));
        c.sessions.retain(|_, w| !w.expired(sl, now));
        c.ips.retain(|_, w| !w.expired(il, now));
    }
}
