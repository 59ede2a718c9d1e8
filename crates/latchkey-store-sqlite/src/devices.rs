//! Device listings in SQLite. Registration, rename, relocation and revocation
//! are `latchkey_store::flows::devices`.

use crate::txn::all;
use latchkey_store::*;
use latchkey_store::{rows, sql};
use rusqlite::Connection;

/// The owner's devices, newest first.
pub(crate) fn list(c: &Connection, owner_id: &str) -> StoreResult<Vec<DeviceRecord>> {
    all(c, sql::DEVICES_OF_OWNER, [owner_id], |r| rows::device(r))
}

/// A device's locations, oldest first.
pub(crate) fn history(c: &Connection, id: &str) -> StoreResult<Vec<LocationChange>> {
    let sql = "SELECT location, effective_at FROM device_locations WHERE device_id = ?1 ORDER BY effective_at, rowid";
    all(c, sql, [id], |r| rows::location_change(r))
}
