//! The one long-poll behind both waits (a device waiting for its login, a
//! desktop waiting for its QR sign-in): held until the subject is decided, it
//! expires, the server shuts down, or `wait_timeout` passes.

use crate::error::{ApiError, ApiResult};
use crate::state::{now, AppState};
use latchkey_domain::Timestamp;
use std::future::Future;
use std::time::Duration;

/// Waits for `check` to find an answer about `subject_id`.
///
/// Subscribes to the decision notifier before the first check, so a decision
/// landing in between is not lost; re-checks on every wake-up and once at
/// expiry (so an expired subject is reported at once, not at the timeout).
/// `Ok(None)` means "nothing yet, call again": the timeout passed or the
/// server is shutting down.
pub async fn wait_for<T, F, Fut>(
    state: &AppState,
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
