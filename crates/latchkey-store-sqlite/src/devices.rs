//! Device listings in SQLite. Registration, rename, relocation and revocation
//! are `latchkey_store::flows::devices`.

use crate::txn::all;
use latchkey_store::rows::{self, DEVICE_COLUMNS};
use latchkey_store::*;
use rusqlite::Connection;

/// The owner's devices, newest first.
pub(crate) fn list(c: &Connection, owner_id: &str) -> StoreResult<Vec<DeviceRecord>> {
    let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE owner_id = ?1 ORDER BY created_at DESC, id");
    all(c, &sql, [owner_id], |r| rows::device(r))
}

/// A device's locations, oldest first.
pub(crate) fn history(c: &Connection, id: &str) -> StoreResult<Vec<LocationChange>> {
    let sql = "SELECT location, effective_at FROM device_locations WHERE device_id = ?1 ORDER BY effective_at, rowid";
    all(c, sql, [id], |r| rows::location_change(r))
}
