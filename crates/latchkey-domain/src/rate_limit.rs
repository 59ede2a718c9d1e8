//! Fixed-window counters for rate limits, with time passed in.

use crate::time::Timestamp;

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
        self.current(limit, now) < limit.max
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

    fn current(&self, limit: Limit, now: Timestamp) -> u32 {
        if self.expired(limit, now) {
            0
        } else {
            self.count
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
}
