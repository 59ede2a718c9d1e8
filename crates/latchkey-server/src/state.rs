//! What every request handler shares.

use crate::config::ServerConfig;
use crate::keys::KeyRing;
use crate::rate_limit::CodeEntryLimiter;
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
    /// Wrong-code limits for the verification page and API.
    pub code_limiter: Arc<CodeEntryLimiter>,
    /// DPoP proof IDs seen recently (per replica: a replayed proof must also
    /// match method, URL and a 60-second window, which bounds what a replica miss allows).
    pub dpop_replay: Arc<std::sync::Mutex<latchkey_domain::dpop::ReplayWindow>>,
    /// Flips to true when the server starts shutting down, so long-polls let go.
    pub shutting_down: watch::Receiver<bool>,
}

/// The current time, read once per request step.
pub fn now() -> Timestamp {
    let ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    Timestamp::from_millis(ms)
}
