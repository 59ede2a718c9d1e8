//! Token signing keys in PostgreSQL.

use crate::audit;
use crate::db::{DbResult, Tx};
use deadpool_postgres::GenericClient;
use latchkey_domain::Timestamp;
use latchkey_store::*;

pub(crate) async fn all(c: &impl GenericClient) -> DbResult<Vec<SigningKeyRecord>> {
    // Byte order on ties, as SQLite sorts, whatever the database's collation.
    let s = c
        .prepare_cached(
            "SELECT kid, private_pkcs8, public_key, created_at, retired_at FROM signing_keys
             ORDER BY created_at DESC, kid COLLATE \"C\"",
        )
        .await?;
    let mut out = Vec::new();
    for r in c.query(&s, &[]).await? {
        out.push(SigningKeyRecord {
            kid: r.try_get(0)?,
            private_pkcs8: r.try_get(1)?,
            public_key: r.try_get(2)?,
            created_at: Timestamp::from_millis(r.try_get(3)?),
            retired_at: r.try_get::<_, Option<i64>>(4)?.map(Timestamp::from_millis),
        });
    }
    Ok(out)
}

pub(crate) async fn add(tx: &Tx<'_>, k: SigningKeyRecord, actor: Option<String>, now: Timestamp) -> DbResult<()> {
    // Serialises rotations across replicas, so exactly one key is left unretired.
    tx.execute("LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE", &[]).await?;
    let s = tx.prepare_cached("UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL").await?;
    tx.execute(&s, &[&now.as_millis()]).await?;
    let s = tx
        .prepare_cached("INSERT INTO signing_keys (kid, private_pkcs8, public_key, created_at) VALUES ($1, $2, $3, $4)")
        .await?;
    tx.execute(&s, &[&k.kid, &k.private_pkcs8, &k.public_key, &now.as_millis()]).await?;
    audit::append(tx, &events::key_rotated(&k.kid, actor.as_deref()), now).await
}
