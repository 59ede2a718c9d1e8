//! Enrollment-key listings in SQLite. Creating, revoking and using keys are
//! `latchkey_store::flows::enrollment`.

use crate::txn::all;
use latchkey_store::rows::{self, ENROLLMENT_KEY_COLUMNS};
use latchkey_store::*;
use rusqlite::Connection;

/// Keys, newest first; only `owner_id`'s when given.
pub(crate) fn list(c: &Connection, owner_id: Option<&str>) -> StoreResult<Vec<EnrollmentKeyRecord>> {
    let sql = format!(
        "SELECT {ENROLLMENT_KEY_COLUMNS} FROM enrollment_keys k JOIN users u ON u.id = k.owner_id
         WHERE ?1 IS NULL OR k.owner_id = ?1 ORDER BY k.created_at DESC, k.id"
    );
    all(c, &sql, [owner_id], |r| rows::enrollment_key(r))
}
