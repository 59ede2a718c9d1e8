//! Enrollment-key listings in PostgreSQL. Creating, revoking and using keys
//! are `latchkey_store::flows::enrollment`.

use crate::db::DbResult;
use crate::txn::all;
use deadpool_postgres::GenericClient;
use latchkey_store::rows::{self, ENROLLMENT_KEY_COLUMNS};
use latchkey_store::*;

/// Keys, newest first; only `owner_id`'s when given.
pub(crate) async fn list(c: &impl GenericClient, owner_id: Option<&str>) -> DbResult<Vec<EnrollmentKeyRecord>> {
    let sql = format!(
        "SELECT {ENROLLMENT_KEY_COLUMNS} FROM enrollment_keys k JOIN users u ON u.id = k.owner_id
         WHERE $1::TEXT IS NULL OR k.owner_id = $1 ORDER BY k.created_at DESC, k.id"
    );
    all(c, &sql, &[&owner_id], |r| rows::enrollment_key(r)).await
}
