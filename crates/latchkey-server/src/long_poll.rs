//! The one long-poll behind both waits (a device waiting for its login, a
//! desktop waiting for its QR sign-in): held until the subject is decided, it
//! expires, the server shuts down, or `wait_timeout` passes.

use crate::error::{ApiError, ApiResult};
use crate::metrics::Limit;
use crate::state::{now, AppState};
use latchkey_domain::Timestamp;
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Long-polls and channels held open at once, per client network (`--waiters-per-network`):
/// one network cannot park thousands of requests across many codes. Counted per replica.
///
/// Only networks holding at least one request have an entry, so the map never
/// outgrows the requests in flight (which `--max-connections` bounds).
#[derive(Debug)]
pub struct NetworkWaiters {
    /// Most held at once per network; 0: no cap (nothing is counted).
    cap: usize,
    /// Requests held now, by [`crate::rate_limit::network_key`].
    held: Mutex<HashMap<String, usize>>,
}

impl NetworkWaiters {
    /// At most `cap` requests held at once per network; 0 turns the cap off.
    pub fn new(cap: u32) -> Self {
        Self { cap: usize::try_from(cap).unwrap_or(usize::MAX), held: Mutex::default() }
    }

    /// Takes a place for a request from `ip`, kept until the returned slot is
    /// dropped (answer, timeout, disconnect, shutdown); `None` when its network is full.
    pub fn try_hold(self: &Arc<Self>, ip: IpAddr) -> Option<WaiterSlot> {
        if self.cap == 0 {
            return Some(WaiterSlot { waiters: None, net: String::new() });
        }
        let net = crate::rate_limit::network_key(ip);
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let count = held.entry(net.clone()).or_insert(0);
        if *count >= self.cap {
            return None;
        }
        *count += 1;
        Some(WaiterSlot { waiters: Some(Arc::clone(self)), net })
    }

    /// Requests held now from `ip`'s network.
    pub fn held_by(&self, ip: IpAddr) -> usize {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.get(&crate::rate_limit::network_key(ip)).copied().unwrap_or(0)
    }

    /// Networks holding at least one request now.
    pub fn networks(&self) -> usize {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    fn release(&self, net: &str) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = held.get_mut(net) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.remove(net);
            }
        }
    }
}

/// One request's place in [`NetworkWaiters`]; gives it back when dropped.
#[derive(Debug)]
pub struct WaiterSlot {
    /// The counter to give the place back to (`None` when the cap is off).
    waiters: Option<Arc<NetworkWaiters>>,
    /// The network holding the place.
    net: String,
}

impl Drop for WaiterSlot {
    fn drop(&mut self) {
        if let Some(w) = self.waiters.take() {
            w.release(&self.net);
        }
    }
}

/// Holds a place for a long-poll or channel from `ip`: 429 at once when its
/// network already holds `--waiters-per-network`.
pub fn hold(state: &AppState, ip: IpAddr) -> ApiResult<WaiterSlot> {
    state.waiters.try_hold(ip).ok_or_else(|| {
        state.metrics.rate_limited(Limit::WaitersPerNetwork);
        ApiError::too_many_requests(format!(
            "your network already holds {} waiting requests (long-polls and device channels), \
             the most this server allows; close one you no longer need, or retry in a few seconds",
            state.config.waiters_per_network
        ))
    })
}

/// Waits for `check` to find an answer about `subject_id`.
///
/// Subscribes to the decision notifier before the first check, so a decision
/// landing in between is not lost; re-checks on every wake-up and once at
/// expiry (so an expired subject is reported at once, not at the timeout).
/// `Ok(None)` means "nothing yet, call again": the timeout passed or the
/// server is shutting down. The wait holds one of `ip`'s network's places
/// (see [`hold`]) until it returns or is dropped.
pub async fn wait_for<T, F, Fut>(
    state: &AppState,
    ip: IpAddr,
    subject_id: &str,
    expires_at: Timestamp,
    cap: Option<usize>,
    mut check: F,
) -> ApiResult<Option<T>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ApiResult<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + state.config.wait_timeout;
    let until_expiry = u64::try_from(expires_at.millis_since(now()).max(0)).unwrap_or(0);
    let expiry = tokio::time::Instant::now() + Duration::from_millis(until_expiry + 5);
    let mut shutdown = state.shutting_down.clone();
    // Before the per-code cap: a full network is refused without touching the notifier.
    let _slot = hold(state, ip)?;
    // A device code or a QR code has one device waiting on it (a few, with retries);
    // more are refused here, so nobody parks thousands of requests on one code.
    let mut wait = match cap {
        Some(cap) => state.store.notifier().subscribe_capped(subject_id, cap).ok_or_else(|| {
            ApiError::too_many_requests(format!(
                "{cap} requests already wait on this code; wait for one of them to answer"
            ))
        })?,
        None => state.store.notifier().subscribe(subject_id),
    };
    loop {
        if let Some(answer) = check().await? {
            return Ok(Some(answer));
        }
        tokio::select! {
            _ = wait.changed() => {}
            _ = tokio::time::sleep_until(deadline.min(expiry)) => break,
            _ = shutdown.wait_for(|s| *s) => break,
        }
    }
    // One last look: the timeout, the expiry or the shutdown may have raced a decision.
    check().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    #[test]
    fn caps_per_network_and_forgets_empty_networks() {
        let w = Arc::new(NetworkWaiters::new(2));
        let a = w.try_hold(ip("10.0.0.1"));
        let b = w.try_hold(ip("10.0.0.1"));
        assert!(a.is_some() && b.is_some());
        assert!(w.try_hold(ip("10.0.0.1")).is_none(), "a third from the same network");
        assert!(w.try_hold(ip("2001:db8::1")).is_some(), "another network is not affected (and released at once)");
        let c = w.try_hold(ip("2001:db8::1"));
        assert!(w.try_hold(ip("2001:db8::2")).is_some(), "the same /64, one of two places");
        assert!(c.is_some() && w.networks() == 2);
        drop(a);
        assert_eq!(w.held_by(ip("10.0.0.1")), 1);
        assert!(w.try_hold(ip("10.0.0.1")).is_some(), "a released place is free again");
        drop((b, c));
        assert_eq!(w.networks(), 0, "networks holding nothing have no entry");
    }

    #[test]
    fn zero_counts_nothing() {
        let w = Arc::new(NetworkWaiters::new(0));
        let slots: Vec<_> = (0..1000).filter_map(|_| w.try_hold(ip("10.0.0.1"))).collect();
        assert_eq!((slots.len(), w.networks()), (1000, 0));
    }
}
