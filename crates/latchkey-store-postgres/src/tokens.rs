//! Token families in PostgreSQL: the liveness check every access token's use makes.
//! Issuing, rotating and revoking are `latchkey_store::flows::tokens`.

use crate::db::DbResult;
use crate::txn::one;
use deadpool_postgres::GenericClient;
use latchkey_store::rows::Columns;

/// Whether a token family is still alive (access tokens carry their family's ID).
pub(crate) async fn family_active(c: &impl GenericClient, id: &str) -> DbResult<bool> {
    let sql = "SELECT revoked_at IS NULL FROM token_families WHERE id = $1";
    Ok(one(c, sql, &[&id], |r| r.flag(0)).await?.unwrap_or(false))
}
