//! Token families in PostgreSQL: the liveness check every access token's use makes.
//! Issuing, rotating and revoking are `latchkey_store::flows::tokens`.

use crate::db::DbResult;
use crate::txn::one;
use deadpool_postgres::GenericClient;
use latchkey_store::rows::Columns;
use latchkey_store::sql;

/// Whether a token family is still alive (access tokens carry their family's ID).
pub(crate) async fn family_active(c: &impl GenericClient, id: &str) -> DbResult<bool> {
    Ok(one(c, sql::FAMILY_ACTIVE, &[&id], |r| r.flag(0)).await?.unwrap_or(false))
}
