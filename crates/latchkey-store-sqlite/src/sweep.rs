//! Housekeeping: remove what can no longer be used.

use crate::db_err;
use latchkey_domain::Timestamp;
use latchkey_store::*;
use rusqlite::{params, Connection};

/// Finished grants are kept this long after expiry so a late poll still hears
/// `expired_token` rather than `invalid_grant`.
const GRANT_GRACE_MS: i64 = 10 * 60 * 1000;

pub(crate) fn sweep(c: &Connection, now: Timestamp) -> StoreResult<SweepReport> {
    let now = now.as_millis();
    let grants =
        c.execute("DELETE FROM device_grants WHERE expires_at < ?1", [now - GRANT_GRACE_MS]).map_err(db_err)?;
    c.execute("DELETE FROM pairings WHERE expires_at < ?1", [now - latchkey_domain::pairing::GRACE_SECS * 1000])
        .map_err(db_err)?;
    let sessions = c.execute("DELETE FROM sessions WHERE expires_at < ?1", [now]).map_err(db_err)?;
    let refresh_tokens = c.execute("DELETE FROM refresh_tokens WHERE expires_at < ?1", [now]).map_err(db_err)?;
    // A family with no tokens left can mint nothing more; its access tokens are short-lived.
    c.execute(
        "DELETE FROM token_families WHERE created_at < ?1
           AND NOT EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.family_id = token_families.id)",
        params![now - 24 * 3600 * 1000],
    )
    .map_err(db_err)?;
    Ok(SweepReport { grants: grants as u64, sessions: sessions as u64, refresh_tokens: refresh_tokens as u64 })
}
