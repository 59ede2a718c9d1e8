//! Housekeeping: remove what can no longer be used.

use crate::db::{DbResult, Tx};
use latchkey_domain::pairing;
use latchkey_domain::Timestamp;
use latchkey_store::*;

/// Finished grants are kept this long after expiry so a late poll still hears
/// `expired_token` rather than `invalid_grant`.
const GRANT_GRACE_MS: i64 = 10 * 60 * 1000;
/// A family with no tokens left is kept this long, as in the SQLite backend.
const EMPTY_FAMILY_GRACE_MS: i64 = 24 * 3600 * 1000;

pub(crate) async fn sweep(tx: &Tx<'_>, now: Timestamp) -> DbResult<SweepReport> {
    let now = now.as_millis();
    let grants = tx.execute("DELETE FROM device_grants WHERE expires_at < $1", &[&(now - GRANT_GRACE_MS)]).await?;
    // Finished pairings stay a while, so a late poll hears what happened; the report does not count them.
    tx.execute("DELETE FROM pairings WHERE expires_at < $1", &[&(now - pairing::GRACE_SECS * 1000)]).await?;
    let sessions = tx.execute("DELETE FROM sessions WHERE expires_at < $1", &[&now]).await?;
    let refresh_tokens = tx.execute("DELETE FROM refresh_tokens WHERE expires_at < $1", &[&now]).await?;
    // A family with no tokens left can mint nothing more; its access tokens are short-lived.
    tx.execute(
        "DELETE FROM token_families f WHERE f.created_at < $1
           AND NOT EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.family_id = f.id)",
        &[&(now - EMPTY_FAMILY_GRACE_MS)],
    )
    .await?;
    Ok(SweepReport { grants, sessions, refresh_tokens })
}
