//! Fixed-window counters for rate limits, with time passed in, and the rule that
//! keeps a shared budget (server-wide, or one app's) from turning into a
//! lockout of everyone.
//!
//! A budget shared by every caller can be spent by a few of them. So a shared
//! budget never refuses anyone by itself: while it is spent, each caller's own
//! limits tighten to a small allowance ([`Share::Own`]'s `while_spent`). Those
//! who spent it are refused; a user or network that has used less than that
//! allowance (someone who has not been guessing) goes on as before. Spending
//! the budget again in the same window then takes fresh users *and* fresh
//! networks for every few attempts.

use crate::time::Timestamp;
use std::collections::HashMap;

/// Most distinct keys tracked per limiter. When full, counters whose window is
/// over go first, then the oldest: a flood of new keys can never turn into a
/// refusal of everyone (a limit that locks everyone out is worse than none).
pub const MAX_KEYS: usize = 100_000;

/// Counts events in the current window of `window_ms`; refuses past `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowCounter {
    window_start: Timestamp,
    count: u32,
}

/// A limit: at most `max` events per `window_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Events allowed per window.
    pub max: u32,
    /// Window length in seconds.
    pub window_secs: i64,
}

impl WindowCounter {
    /// A counter whose first window starts at `now`.
    pub fn new(now: Timestamp) -> Self {
        Self { window_start: now, count: 0 }
    }

    /// Whether another event would still be within `limit` at `now` (without counting it).
    pub fn allows(&self, limit: Limit, now: Timestamp) -> bool {
        self.count(limit, now) < limit.max
    }

    /// Counts one event at `now`.
    pub fn record(&mut self, limit: Limit, now: Timestamp) {
        if self.expired(limit, now) {
            self.window_start = now;
            self.count = 0;
        }
        self.count = self.count.saturating_add(1);
    }

    /// Takes back one event counted in the current window (a reservation that turned out fine).
    pub fn refund(&mut self, limit: Limit, now: Timestamp) {
        if !self.expired(limit, now) {
            self.count = self.count.saturating_sub(1);
        }
    }

    /// When the current window started (the oldest counters go first when a limiter is full).
    pub fn started(&self) -> Timestamp {
        self.window_start
    }

    /// Whether this counter's window is over at `now` (so it can be forgotten).
    pub fn expired(&self, limit: Limit, now: Timestamp) -> bool {
        now.millis_since(self.window_start) >= limit.window_secs * 1000
    }

    /// Events counted in the window that is current at `now`.
    pub fn count(&self, limit: Limit, now: Timestamp) -> u32 {
        if self.expired(limit, now) {
            0
        } else {
            self.count
        }
    }
}

/// How a limiter takes part in a [`LimitSet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Share {
    /// Each key's own limit (one user, one network). While a shared budget of
    /// the same set is spent, a key may only go on while it has counted fewer
    /// than `while_spent` events in its window.
    Own {
        /// The allowance left to each key while a shared budget is spent.
        while_spent: u32,
    },
    /// A budget shared by the keys of the other limiters (the whole server, one
    /// app). It refuses nobody by itself; when spent, it tightens the others.
    Shared,
}

/// Per-key fixed-window counters for one limit.
#[derive(Debug, Clone)]
pub struct KeyedLimiter {
    limit: Limit,
    share: Share,
    counters: HashMap<String, WindowCounter>,
}

impl KeyedLimiter {
    /// `max` events per `window_secs` for each key, whatever others spend; `max == 0` disables it.
    pub fn own(max: u32, window_secs: i64) -> Self {
        Self::own_tightening(max, max, window_secs)
    }

    /// `max` events per `window_secs` for each key, and only `while_spent` while a shared budget of its set is spent.
    pub fn own_tightening(max: u32, while_spent: u32, window_secs: i64) -> Self {
        Self::with(Limit { max, window_secs }, Share::Own { while_spent: while_spent.min(max) })
    }

    /// A budget of `max` per `window_secs` per key, shared by the other limiters' keys; `max == 0` disables it.
    pub fn shared(max: u32, window_secs: i64) -> Self {
        Self::with(Limit { max, window_secs }, Share::Shared)
    }

    fn with(limit: Limit, share: Share) -> Self {
        Self { limit, share, counters: HashMap::new() }
    }

    fn disabled(&self) -> bool {
        self.limit.max == 0
    }

    /// Events counted for `key` in its current window.
    pub fn count(&self, key: &str, now: Timestamp) -> u32 {
        self.counters.get(key).map_or(0, |c| c.count(self.limit, now))
    }

    /// Whether `key`'s shared budget is spent (never true for a limiter of [`Share::Own`]).
    fn spent(&self, key: &str, now: Timestamp) -> bool {
        self.share == Share::Shared && !self.disabled() && self.count(key, now) >= self.limit.max
    }

    /// Whether `key` may have one more event, given whether a shared budget is spent.
    fn allows(&self, key: &str, spent: bool, now: Timestamp) -> bool {
        match self.share {
            _ if self.disabled() => true,
            Share::Shared => true,
            Share::Own { while_spent } => {
                let used = self.count(key, now);
                used < self.limit.max && (!spent || used < while_spent)
            }
        }
    }

    fn take(&mut self, key: &str, now: Timestamp) {
        if self.disabled() {
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

    /// Forgets counters whose window is over.
    pub fn prune(&mut self, now: Timestamp) {
        let limit = self.limit;
        self.counters.retain(|_, c| !c.expired(limit, now));
    }

    /// How many keys are tracked.
    pub fn len(&self) -> usize {
        self.counters.len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.counters.is_empty()
    }
}

/// Several limiters that must all allow an event; taken and refunded together.
/// Callers hold it under one lock, so a check and its take cannot be split.
#[derive(Debug, Clone)]
pub struct LimitSet {
    limiters: Vec<KeyedLimiter>,
}

impl LimitSet {
    /// A set of limiters; keys are later given one per limiter, in this order.
    pub fn new(limiters: Vec<KeyedLimiter>) -> Self {
        Self { limiters }
    }

    /// Takes a slot from every limiter if all allow it; `false` (nothing taken) otherwise.
    pub fn try_take(&mut self, keys: &[&str], now: Timestamp) -> bool {
        let spent = self.limiters.iter().zip(keys).any(|(l, k)| l.spent(k, now));
        if !self.limiters.iter().zip(keys).all(|(l, k)| l.allows(k, spent, now)) {
            return false;
        }
        for (l, k) in self.limiters.iter_mut().zip(keys) {
            l.take(k, now);
        }
        true
    }

    /// Gives back slots taken by [`LimitSet::try_take`] for an event that turned out fine.
    pub fn refund(&mut self, keys: &[&str], now: Timestamp) {
        for (l, k) in self.limiters.iter_mut().zip(keys) {
            l.refund(k, now);
        }
    }

    /// Forgets counters whose window is over.
    pub fn prune(&mut self, now: Timestamp) {
        for l in &mut self.limiters {
            l.prune(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_past_limit_until_window_ends() {
        let limit = Limit { max: 3, window_secs: 60 };
        let t0 = Timestamp::from_millis(0);
        let mut c = WindowCounter::new(t0);
        for _ in 0..3 {
            assert!(c.allows(limit, t0));
            c.record(limit, t0);
        }
        assert!(!c.allows(limit, t0.plus_secs(59)));
        assert!(c.allows(limit, t0.plus_secs(60)));
        c.record(limit, t0.plus_secs(60));
        assert!(c.allows(limit, t0.plus_secs(60)));
        c.record(limit, t0.plus_secs(61));
        c.record(limit, t0.plus_secs(61));
        assert!(!c.allows(limit, t0.plus_secs(61)));
        c.refund(limit, t0.plus_secs(61));
        assert!(c.allows(limit, t0.plus_secs(61)));
        assert!(!c.expired(limit, t0.plus_secs(61)));
    }

    #[test]
    fn takes_atomically_and_refunds() {
        let mut set = LimitSet::new(vec![KeyedLimiter::own(2, 60), KeyedLimiter::own(3, 60)]);
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
    fn a_full_limiter_evicts_the_oldest_and_still_limits_new_keys() {
        let mut l = KeyedLimiter::own(1, 3600);
        let t = Timestamp::from_millis(0);
        for i in 0..MAX_KEYS {
            l.take(&format!("k{i}"), t.plus_millis(i as i64));
        }
        let later = t.plus_secs(200);
        assert!(!l.allows("k99999", false, later), "a tracked key is still limited");
        assert!(l.allows("someone-new", false, later), "a new key is never refused for lack of room");
        l.take("someone-new", later);
        assert!(l.len() <= MAX_KEYS);
        assert_eq!(l.count("k0", later), 0, "the oldest went first");
        assert!(!l.allows("someone-new", false, later), "and the new key is limited like any other");
    }

    #[test]
    fn zero_disables() {
        let mut set = LimitSet::new(vec![KeyedLimiter::own(0, 60), KeyedLimiter::shared(0, 60)]);
        for _ in 0..1000 {
            assert!(set.try_take(&["k", "*"], Timestamp::from_millis(0)));
        }
    }

    /// The default wrong-code limits: 5 per user, 20 per network, 200 server-wide,
    /// and 2 each while the server-wide budget is spent.
    fn code_entry() -> LimitSet {
        LimitSet::new(vec![
            KeyedLimiter::own_tightening(5, 2, 600),
            KeyedLimiter::own_tightening(20, 2, 600),
            KeyedLimiter::shared(200, 600),
        ])
    }

    #[test]
    fn forty_accounts_on_ten_networks_cannot_lock_out_a_forty_first() {
        let mut set = code_entry();
        let t = Timestamp::from_millis(0);
        let mut taken = 0;
        for account in 0..40 {
            let (user, net) = (format!("mallory-{account}"), format!("net-{}", account % 10));
            while set.try_take(&[&user, &net, "*"], t.plus_secs(account)) {
                taken += 1;
            }
        }
        assert_eq!(taken, 200, "the attackers spent the whole server-wide budget");
        let later = t.plus_secs(300);
        // Those who spent it get nothing more, however they combine accounts and networks.
        assert!(!set.try_take(&["mallory-0", "net-0", "*"], later));
        assert!(!set.try_take(&["mallory-0", "fresh-net", "*"], later), "a spent account on a new network");
        assert!(!set.try_take(&["fresh-account", "net-3", "*"], later), "a new account on a spent network");
        // Someone else, who has not been guessing, still may: a typo and a retry.
        assert!(set.try_take(&["alice", "home", "*"], later));
        assert!(set.try_take(&["alice", "home", "*"], later));
        assert!(!set.try_take(&["alice", "home", "*"], later), "but not a third guess while the budget is spent");
        // A success gives its slot back, so a correct code never uses up the allowance.
        set.refund(&["alice", "home", "*"], later);
        assert!(set.try_take(&["alice", "home", "*"], later));
        // The next window starts afresh for everyone.
        assert!(set.try_take(&["mallory-0", "net-0", "*"], t.plus_secs(640)));
    }

    #[test]
    fn before_the_budget_is_spent_the_own_limits_are_the_usual_ones() {
        let mut set = code_entry();
        let t = Timestamp::from_millis(0);
        for _ in 0..5 {
            assert!(set.try_take(&["bob", "office", "*"], t));
        }
        assert!(!set.try_take(&["bob", "office", "*"], t), "5 per user");
        for i in 0..15 {
            assert!(set.try_take(&[&format!("colleague-{i}"), "office", "*"], t));
        }
        assert!(!set.try_take(&["carol", "office", "*"], t), "20 per network");
    }

    #[test]
    fn twenty_networks_cannot_spend_an_apps_qr_budget_for_everyone() {
        // 30 per network per minute, 600 per app, 3 per network while the app's budget is spent.
        let mut set = LimitSet::new(vec![KeyedLimiter::own_tightening(30, 3, 60), KeyedLimiter::shared(600, 60)]);
        let t = Timestamp::from_millis(0);
        let mut taken = 0;
        for n in 0..40 {
            while set.try_take(&[&format!("bot-{n}"), "app"], t) {
                taken += 1;
            }
        }
        assert_eq!(taken, 600 + 20 * 3, "20 networks spent the app's budget; 20 more got 3 each");
        assert!(!set.try_take(&["bot-0", "app"], t));
        for _ in 0..3 {
            assert!(set.try_take(&["a-real-desktop", "app"], t), "another network still starts its sign-ins");
        }
        assert!(set.try_take(&["bot-20", "another-app"], t), "other apps keep the usual per-network limit");
    }
}
