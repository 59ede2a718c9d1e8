//! Enrollment-key listings in PostgreSQL. Creating, revoking and using keys
//! are `latchkey_store::flows::enrollment`.

use crate::db::DbResult;
use crate::txn::all;
use deadpool_postgres::GenericClient;
use latchkey_store::*;
use latchkey_store::{rows, sql};

/// Keys, newest first; only `owner_id`'s when given.
pub(crate) async fn list(c: &impl GenericClient, owner_id: Option<&str>) -> DbResult<Vec<EnrollmentKeyRecord>> {
    all(c, sql::ENROLLMENT_KEYS, &[&owner_id], |r| rows::enrollment_key(r)).await
}
