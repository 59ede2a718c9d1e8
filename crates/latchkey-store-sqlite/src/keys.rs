//! Token signing keys in SQLite.

use crate::{audit, db_err};
use latchkey_domain::Timestamp;
use latchkey_store::*;
use rusqlite::{params, Connection};

pub(crate) fn all(c: &Connection) -> StoreResult<Vec<SigningKeyRecord>> {
    let mut s = c
        .prepare_cached("SELECT kid, private_pkcs8, public_key, created_at, retired_at FROM signing_keys ORDER BY created_at DESC, kid")
        .map_err(db_err)?;
    let rows = s
        .query_map([], |r| {
            Ok(SigningKeyRecord {
                kid: r.get(0)?,
                private_pkcs8: r.get(1)?,
                public_key: r.get(2)?,
                created_at: Timestamp::from_millis(r.get(3)?),
                retired_at: r.get::<_, Option<i64>>(4)?.map(Timestamp::from_millis),
            })
        })
        .map_err(db_err)?;
    rows.map(|r| r.map_err(db_err)).collect()
}

pub(crate) fn add(c: &Connection, k: SigningKeyRecord, actor: Option<String>, now: Timestamp) -> StoreResult<()> {
    c.execute("UPDATE signing_keys SET retired_at = ?1 WHERE retired_at IS NULL", [now.as_millis()]).map_err(db_err)?;
    c.execute(
        "INSERT INTO signing_keys (kid, private_pkcs8, public_key, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![k.kid, k.private_pkcs8, k.public_key, now.as_millis()],
    )
    .map_err(db_err)?;
    audit::append(c, &events::key_rotated(&k.kid, actor.as_deref()), now)
}
