//! The audit chain in PostgreSQL. Appends lock the single `audit_head` row, so
//! appends from every replica queue up behind one another and the chain stays linear.

use crate::db::{DbResult, Tx};
use deadpool_postgres::GenericClient;
use latchkey_domain::audit::{AuditEntry, AuditEvent, ChainHead};
use latchkey_domain::Timestamp;
use latchkey_store::StoreError;
use tokio_postgres::Row;

fn hash32(v: Vec<u8>) -> DbResult<[u8; 32]> {
    v.try_into().map_err(|_| StoreError::Corrupt("an audit hash is not 32 bytes".into()).into())
}

fn head_row(row: &Row) -> DbResult<ChainHead> {
    Ok(ChainHead { seq: row.try_get(0)?, hash: hash32(row.try_get(1)?)? })
}

/// Appends `event` to the chain inside the caller's transaction.
pub(crate) async fn append(tx: &Tx<'_>, event: &AuditEvent, now: Timestamp) -> DbResult<()> {
    let lock = tx.prepare_cached("SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE").await?;
    let head = head_row(&tx.query_one(&lock, &[]).await?)?;
    let (e, new_head) = head.append(event, now);
    let insert = tx
        .prepare_cached(
            "INSERT INTO audit_log (seq, at, kind, actor, subject, detail, prev_hash, hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .await?;
    tx.execute(
        &insert,
        &[&e.seq, &e.at.as_millis(), &e.kind, &e.actor, &e.subject, &e.detail, &&e.prev_hash[..], &&e.hash[..]],
    )
    .await?;
    let update = tx.prepare_cached("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1").await?;
    tx.execute(&update, &[&new_head.seq, &&new_head.hash[..]]).await?;
    Ok(())
}

/// The recorded head of the chain.
pub(crate) async fn head(c: &impl GenericClient) -> DbResult<ChainHead> {
    let s = c.prepare_cached("SELECT seq, hash FROM audit_head WHERE id = 1").await?;
    head_row(&c.query_one(&s, &[]).await?)
}

/// Entries after `after`, oldest first. A negative `limit` means no limit, as in SQLite.
pub(crate) async fn entries(c: &impl GenericClient, after: i64, limit: i64) -> DbResult<Vec<AuditEntry>> {
    let s = c
        .prepare_cached(
            "SELECT seq, at, kind, actor, subject, detail, prev_hash, hash FROM audit_log
             WHERE seq > $1 ORDER BY seq LIMIT CASE WHEN $2::BIGINT < 0 THEN NULL ELSE $2::BIGINT END",
        )
        .await?;
    let mut out = Vec::new();
    for r in c.query(&s, &[&after, &limit]).await? {
        out.push(AuditEntry {
            seq: r.try_get(0)?,
            at: Timestamp::from_millis(r.try_get(1)?),
            kind: r.try_get(2)?,
            actor: r.try_get(3)?,
            subject: r.try_get(4)?,
            detail: r.try_get(5)?,
            prev_hash: hash32(r.try_get(6)?)?,
            hash: hash32(r.try_get(7)?)?,
        });
    }
    Ok(out)
}
