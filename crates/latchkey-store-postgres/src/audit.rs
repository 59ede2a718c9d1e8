//! The audit chain in PostgreSQL. Appends lock the single `audit_head` row, so
//! appends from every replica queue up behind one another and the chain stays linear.

use crate::db::DbResult;
use deadpool_postgres::GenericClient;
use latchkey_domain::audit::{AuditEntry, AuditEvent, ChainHead};
use latchkey_domain::Timestamp;
use latchkey_store::{AuditFilter, NameKind, NamedId, StoreError};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

fn hash32(v: Vec<u8>) -> DbResult<[u8; 32]> {
    v.try_into().map_err(|_| StoreError::Corrupt("an audit hash is not 32 bytes".into()).into())
}

fn head_row(row: &Row) -> DbResult<ChainHead> {
    Ok(ChainHead { seq: row.try_get(0)?, hash: hash32(row.try_get(1)?)? })
}

/// Appends `event` to the chain inside the caller's transaction.
pub(crate) async fn append(tx: &impl GenericClient, event: &AuditEvent, now: Timestamp) -> DbResult<()> {
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
    c.query(&s, &[&after, &limit]).await?.iter().map(entry_row).collect()
}

fn entry_row(r: &Row) -> DbResult<AuditEntry> {
    Ok(AuditEntry {
        seq: r.try_get(0)?,
        at: Timestamp::from_millis(r.try_get(1)?),
        kind: r.try_get(2)?,
        actor: r.try_get(3)?,
        subject: r.try_get(4)?,
        detail: r.try_get(5)?,
        prev_hash: hash32(r.try_get(6)?)?,
        hash: hash32(r.try_get(7)?)?,
    })
}

/// Entries matching `f`, newest first; a negative limit means no limit, as in SQLite.
///
/// Only the filters given appear in the statement (at most eight shapes, each
/// prepared once per connection), so every shape is planned for what it asks:
/// a kind walks `(kind, seq)` backwards, a person combines `(actor, seq)` and
/// `(subject, seq)`, and no filter walks the primary key backwards.
pub(crate) async fn page(c: &impl GenericClient, f: &AuditFilter) -> DbResult<Vec<AuditEntry>> {
    let mut sql =
        String::from("SELECT seq, at, kind, actor, subject, detail, prev_hash, hash FROM audit_log WHERE TRUE");
    let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(4);
    if let Some(who) = &f.involving {
        params.push(who);
        sql.push_str(&format!(" AND (actor = ${n} OR subject = ${n})", n = params.len()));
    }
    if let Some(kind) = &f.kind {
        params.push(kind);
        sql.push_str(&format!(" AND kind = ${}", params.len()));
    }
    if let Some(before) = &f.before_seq {
        params.push(before);
        sql.push_str(&format!(" AND seq < ${}", params.len()));
    }
    let quoted = f.device.as_ref().map(|d| format!("\"{d}\""));
    if let (Some(device), Some(quoted)) = (&f.device, &quoted) {
        params.push(device);
        let id = params.len();
        params.push(quoted);
        // A device appears in the detail as a JSON string value ("device", "truster", "creator", members).
        sql.push_str(&format!(" AND (actor = ${id} OR subject = ${id} OR strpos(detail, ${}) > 0)", params.len()));
    }
    let since = f.since.map(|t| t.as_millis());
    if let Some(since) = &since {
        params.push(since);
        sql.push_str(&format!(" AND at >= ${}", params.len()));
    }
    let until = f.until.map(|t| t.as_millis());
    if let Some(until) = &until {
        params.push(until);
        sql.push_str(&format!(" AND at < ${}", params.len()));
    }
    params.push(&f.limit);
    sql.push_str(&format!(
        " ORDER BY seq DESC LIMIT CASE WHEN ${n}::BIGINT < 0 THEN NULL ELSE ${n}::BIGINT END",
        n = params.len()
    ));
    let s = c.prepare_cached(&sql).await?;
    c.query(&s, &params).await?.iter().map(entry_row).collect()
}

/// The users, devices and apps among `ids`, in one statement.
pub(crate) async fn names(c: &impl GenericClient, ids: &[String]) -> DbResult<Vec<NamedId>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let s = c
        .prepare_cached(
            "SELECT 'user', id, username, NULL::TEXT FROM users WHERE id = ANY($1)
             UNION ALL SELECT 'device', id, display_name, location FROM devices WHERE id = ANY($1)
             UNION ALL SELECT 'app', client_id, display_name, NULL::TEXT FROM apps WHERE client_id = ANY($1)",
        )
        .await?;
    let mut out = Vec::new();
    for r in c.query(&s, &[&ids]).await? {
        let tag: String = r.try_get(0)?;
        let Some(kind) = NameKind::parse(&tag) else { continue };
        out.push(NamedId { id: r.try_get(1)?, kind, name: r.try_get(2)?, location: r.try_get(3)? });
    }
    Ok(out)
}
