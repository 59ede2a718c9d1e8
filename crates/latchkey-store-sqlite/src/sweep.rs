//! Housekeeping in SQLite: remove what can no longer be used, by the domain's cut-offs.

use crate::txn::exec;
use latchkey_domain::retention::Cutoffs;
use latchkey_domain::Timestamp;
use latchkey_store::flows::trusted_sessions::trusted_cutoffs;
use latchkey_store::{sql, sql_trust, StoreResult, SweepReport};
use rusqlite::Connection;

pub(crate) fn sweep(c: &Connection, now: Timestamp) -> StoreResult<SweepReport> {
    let cut = Cutoffs::at(now);
    let grants = exec(c, sql::SWEEP_GRANTS, [cut.grants.as_millis()])?;
    // Finished pairings stay a while, so a late poll hears what happened; the report does not count them.
    exec(c, sql::SWEEP_PAIRINGS, [cut.pairings.as_millis()])?;
    let sessions = exec(c, sql::SWEEP_SESSIONS, [cut.sessions.as_millis()])?;
    let refresh_tokens = exec(c, sql::SWEEP_REFRESH_TOKENS, [cut.refresh_tokens.as_millis()])?;
    exec(c, sql::SWEEP_EMPTY_FAMILIES, [cut.empty_families.as_millis()])?;
    let events = exec(c, sql::SWEEP_EVENTS, [now.as_millis()])?;
    exec(c, sql::SWEEP_ONCE_USED, [now.as_millis()])?;
    exec(c, sql::SWEEP_AUTHORIZATION_CODES, [cut.authorization_codes.as_millis()])?;
    exec(c, sql::SWEEP_CEREMONIES, [now.as_millis()])?;
    let (old, stale) = trusted_cutoffs(now);
    exec(c, sql_trust::SWEEP_OLD_SESSIONS, [old.as_millis()])?;
    exec(c, sql_trust::SWEEP_CHANNELS, [stale.as_millis()])?;
    Ok(SweepReport {
        events: events as u64,
        grants: grants as u64,
        sessions: sessions as u64,
        refresh_tokens: refresh_tokens as u64,
    })
}
