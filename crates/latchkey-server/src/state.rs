//! What every request handler shares.

use crate::config::ServerConfig;
use crate::keys::KeyRing;
use crate::rate_limit::LimiterSet;
use latchkey_domain::Timestamp;
use latchkey_store::Store;
use std::sync::Arc;
use tokio::sync::watch;

/// Shared state behind every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The storage backend.
    pub store: Arc<dyn Store>,
    /// Settings.
    pub config: Arc<ServerConfig>,
    /// Signing keys.
    pub keys: Arc<KeyRing>,
    /// Rate limits.
    pub limits: Arc<Limits>,
    /// Bounds concurrent argon2 hashing (memory-hard: ~19 MiB each).
    pub password_checks: Arc<tokio::sync::Semaphore>,
    /// DPoP proof IDs seen recently by this process: the first check. When the
    /// store is shared by several replicas, each proof is also recorded there
    /// (`Store::first_use`), so a replay to another replica is refused too.
    pub dpop_replay: Arc<std::sync::Mutex<latchkey_domain::dpop::ReplayWindow>>,
    /// Flips to true when the server starts shutting down, so long-polls let go.
    pub shutting_down: watch::Receiver<bool>,
    /// Prometheus metrics (recording nothing unless `--metrics-listen` is set).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Long-polls and channels held per client network (`--waiters-per-network`).
    pub waiters: Arc<crate::long_poll::NetworkWaiters>,
    /// The WebAuthn relying party (passkeys); `None` when the public URL's host is an IP address.
    pub webauthn: Option<Arc<webauthn_rs::Webauthn>>,
}

/// The current time, read once per request step.
pub fn now() -> Timestamp {
    let ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    Timestamp::from_millis(ms)
}

/// Every rate limit of a server.
pub struct Limits {
    /// Wrong user codes: per user, per network, global.
    pub code_entry: LimiterSet,
    /// Failed sign-ins: per username, per network.
    pub sign_in: LimiterSet,
    /// Device authorizations: per network.
    pub device_authorization: LimiterSet,
    /// QR sign-ins started: per network, per app.
    pub pairing: LimiterSet,
    /// Passkey sign-ins started: per network.
    pub passkey_start: LimiterSet,
}

impl Limits {
    /// The limits a configuration asks for.
    pub fn new(c: &ServerConfig) -> Self {
        Self {
            code_entry: crate::rate_limit::code_entry(&c.code_entry_limits),
            sign_in: crate::rate_limit::sign_in(&c.sign_in_limits),
            device_authorization: crate::rate_limit::device_authorization(c.device_auth_per_minute),
            pairing: crate::rate_limit::pairing(c.pairings_per_minute),
            passkey_start: crate::rate_limit::passkey_start(),
        }
    }

    /// Forgets finished windows.
    pub fn prune(&self, now: Timestamp) {
        self.code_entry.prune(now);
        self.sign_in.prune(now);
        self.device_authorization.prune(now);
        self.pairing.prune(now);
        self.passkey_start.prune(now);
    }
}
