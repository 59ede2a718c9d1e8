//! Device listings in PostgreSQL. Registration, rename, relocation and
//! revocation are `latchkey_store::flows::devices`.

use crate::db::DbResult;
use crate::txn::all;
use deadpool_postgres::GenericClient;
use latchkey_store::*;
use latchkey_store::{rows, sql};

/// The owner's devices, newest first.
pub(crate) async fn list(c: &impl GenericClient, owner_id: &str) -> DbResult<Vec<DeviceRecord>> {
    all(c, sql::DEVICES_OF_OWNER, &[&owner_id], |r| rows::device(r)).await
}

/// A device's locations, oldest first.
pub(crate) async fn history(c: &impl GenericClient, id: &str) -> DbResult<Vec<LocationChange>> {
    let sql = "SELECT location, effective_at FROM device_locations WHERE device_id = $1 ORDER BY effective_at, seq";
    all(c, sql, &[&id], |r| rows::location_change(r)).await
}
