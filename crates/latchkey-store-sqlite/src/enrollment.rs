//! Enrollment-key listings in SQLite. Creating, revoking and using keys are
//! `latchkey_store::flows::enrollment`.

use crate::txn::all;
use latchkey_store::*;
use latchkey_store::{rows, sql};
use rusqlite::Connection;

/// Keys, newest first; only `owner_id`'s when given.
pub(crate) fn list(c: &Connection, owner_id: Option<&str>) -> StoreResult<Vec<EnrollmentKeyRecord>> {
    all(c, sql::ENROLLMENT_KEYS, [owner_id], |r| rows::enrollment_key(r))
}
