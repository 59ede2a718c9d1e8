//! Token signing keys in SQLite.

use crate::audit;
use crate::txn::exec;
use latchkey_domain::Timestamp;
use latchkey_store::rows;
use latchkey_store::{sql, *};
use rusqlite::{params, Connection};

pub(crate) fn all(c: &Connection) -> StoreResult<Vec<SigningKeyRecord>> {
    let sql = "SELECT kid, private_pkcs8, public_key, created_at, retired_at FROM signing_keys
               ORDER BY created_at DESC, kid";
    crate::txn::all(c, sql, [], |r| rows::signing_key(r))
}

pub(crate) fn add(c: &Connection, k: SigningKeyRecord, actor: Option<String>, now: Timestamp) -> StoreResult<()> {
    exec(c, sql::RETIRE_SIGNING_KEYS, [now.as_millis()])?;
    exec(c, sql::INSERT_SIGNING_KEY, params![k.kid, k.private_pkcs8, k.public_key, now.as_millis()])?;
    audit::append(c, &events::key_rotated(&k.kid, actor.as_deref()), now)
}
