//! Periodic housekeeping: sweep expired rows, prune rate-limit counters,
//! pick up signing keys rotated by another process.

use crate::state::{now, AppState};

/// Runs until the task is aborted.
pub async fn run(state: AppState) {
    let mut sweep = tokio::time::interval(state.config.sweep_every);
    let mut keys = tokio::time::interval(state.config.key_refresh_every);
    loop {
        tokio::select! {
            _ = sweep.tick() => {
                match state.store.sweep(now()).await {
                    Ok(r) if r.grants + r.sessions + r.refresh_tokens > 0 => {
                        tracing::info!(grants = r.grants, sessions = r.sessions, refresh_tokens = r.refresh_tokens, "swept expired rows");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "sweep failed; will retry"),
                }
                state.limits.prune(now());
                state.dpop_replay.lock().unwrap_or_else(|p| p.into_inner()).prune(now());
            }
            _ = keys.tick() => {
                if let Err(e) = state.keys.refresh(state.store.as_ref()).await {
                    tracing::warn!(error = %e, "could not refresh signing keys; keeping the current ones");
                }
            }
        }
    }
}
