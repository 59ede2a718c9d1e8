//! Token signing keys in PostgreSQL.

use crate::audit;
use crate::db::{DbResult, Tx};
use crate::txn::exec;
use deadpool_postgres::GenericClient;
use latchkey_domain::Timestamp;
use latchkey_store::{rows, sql, *};

pub(crate) async fn all(c: &impl GenericClient) -> DbResult<Vec<SigningKeyRecord>> {
    // Byte order on ties, as SQLite sorts, whatever the database's collation.
    let sql = "SELECT kid, private_pkcs8, public_key, created_at, retired_at FROM signing_keys
               ORDER BY created_at DESC, kid COLLATE \"C\"";
    crate::txn::all(c, sql, &[], |r| rows::signing_key(r)).await
}

pub(crate) async fn add(tx: &Tx<'_>, k: SigningKeyRecord, actor: Option<String>, now: Timestamp) -> DbResult<()> {
    // Serialises rotations across replicas, so exactly one key is left unretired.
    tx.execute("LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE", &[]).await?;
    exec(tx, sql::RETIRE_SIGNING_KEYS, &[&now.as_millis()]).await?;
    exec(tx, sql::INSERT_SIGNING_KEY, &[&k.kid, &k.private_pkcs8, &k.public_key, &now.as_millis()]).await?;
    audit::append(tx, &events::key_rotated(&k.kid, actor.as_deref()), now).await
}
