//! Housekeeping in PostgreSQL: remove what can no longer be used, by the domain's cut-offs.

use crate::db::{DbResult, Tx};
use crate::txn::exec;
use latchkey_domain::retention::Cutoffs;
use latchkey_domain::Timestamp;
use latchkey_store::flows::trusted_sessions::trusted_cutoffs;
use latchkey_store::{sql, sql_trust, SweepReport};

pub(crate) async fn sweep(tx: &Tx<'_>, now: Timestamp) -> DbResult<SweepReport> {
    let cut = Cutoffs::at(now);
    let grants = exec(tx, sql::SWEEP_GRANTS, &[&cut.grants.as_millis()]).await?;
    // Finished pairings stay a while, so a late poll hears what happened; the report does not count them.
    exec(tx, sql::SWEEP_PAIRINGS, &[&cut.pairings.as_millis()]).await?;
    let sessions = exec(tx, sql::SWEEP_SESSIONS, &[&cut.sessions.as_millis()]).await?;
    let refresh_tokens = exec(tx, sql::SWEEP_REFRESH_TOKENS, &[&cut.refresh_tokens.as_millis()]).await?;
    exec(tx, sql::SWEEP_EMPTY_FAMILIES, &[&cut.empty_families.as_millis()]).await?;
    let events = exec(tx, sql::SWEEP_EVENTS, &[&now.as_millis()]).await?;
    exec(tx, sql::SWEEP_ONCE_USED, &[&now.as_millis()]).await?;
    exec(tx, sql::SWEEP_AUTHORIZATION_CODES, &[&cut.authorization_codes.as_millis()]).await?;
    exec(tx, sql::SWEEP_CEREMONIES, &[&now.as_millis()]).await?;
    let (old, stale) = trusted_cutoffs(now);
    exec(tx, sql_trust::SWEEP_OLD_SESSIONS, &[&old.as_millis()]).await?;
    exec(tx, sql_trust::SWEEP_CHANNELS, &[&stale.as_millis()]).await?;
    Ok(SweepReport { events, grants, sessions, refresh_tokens })
}
