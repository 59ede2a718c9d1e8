//! Device listings in PostgreSQL. Registration, rename, relocation and
//! revocation are `latchkey_store::flows::devices`.

use crate::db::DbResult;
use crate::txn::all;
use deadpool_postgres::GenericClient;
use latchkey_store::rows::{self, DEVICE_COLUMNS};
use latchkey_store::*;

/// The owner's devices, newest first.
pub(crate) async fn list(c: &impl GenericClient, owner_id: &str) -> DbResult<Vec<DeviceRecord>> {
    let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE owner_id = $1 ORDER BY created_at DESC, id");
    all(c, &sql, &[&owner_id], |r| rows::device(r)).await
}

/// A device's locations, oldest first.
pub(crate) async fn history(c: &impl GenericClient, id: &str) -> DbResult<Vec<LocationChange>> {
    let sql = "SELECT location, effective_at FROM device_locations WHERE device_id = $1 ORDER BY effective_at, seq";
    all(c, sql, &[&id], |r| rows::location_change(r)).await
}
