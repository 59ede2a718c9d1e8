//! Token families in SQLite: the liveness check every access token's use makes.
//! Issuing, rotating and revoking are `latchkey_store::flows::tokens`.

use crate::txn::one;
use latchkey_store::rows::Columns;
use latchkey_store::sql;
use latchkey_store::StoreResult;
use rusqlite::Connection;

/// Whether a token family is still alive (access tokens carry their family's ID).
pub(crate) fn family_active(c: &Connection, id: &str) -> StoreResult<bool> {
    Ok(one(c, sql::FAMILY_ACTIVE, [id], |r| r.flag(0))?.unwrap_or(false))
}
