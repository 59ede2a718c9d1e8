//! The audit log in PostgreSQL: entries (appended without a lock), the sealed
//! tree's rows, its keys, and reads for pages and verification.

use crate::db::DbResult;
use deadpool_postgres::GenericClient;
use latchkey_domain::audit::{AuditEntry, AuditEvent, ChainHead, ChainLink};
use latchkey_domain::merkle::{Hash, NodeId};
use latchkey_domain::Timestamp;
use latchkey_store::{AuditFilter, AuditTreeState, NameKind, NamedId, StoreError, StoredAuditKey};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

fn hash32(v: Vec<u8>) -> DbResult<[u8; 32]> {
    v.try_into().map_err(|_| StoreError::Corrupt("an audit hash is not 32 bytes".into()).into())
}

fn opt_hash32(v: Option<Vec<u8>>) -> DbResult<Option<[u8; 32]>> {
    v.map(hash32).transpose()
}

/// Writes `event` inside the caller's transaction; `seq` comes from a sequence, so nothing is locked.
pub(crate) async fn append(tx: &impl GenericClient, event: &AuditEvent, now: Timestamp) -> DbResult<()> {
    let insert = tx
        .prepare_cached("INSERT INTO audit_log (at, kind, actor, subject, detail) VALUES ($1, $2, $3, $4, $5)")
        .await?;
    tx.execute(&insert, &[&now.as_millis(), &event.kind.as_str(), &event.actor, &event.subject, &event.detail]).await?;
    Ok(())
}

/// The recorded head of the old chain.
pub(crate) async fn head(c: &impl GenericClient) -> DbResult<ChainHead> {
    let s = c.prepare_cached("SELECT seq, hash FROM audit_head WHERE id = 1").await?;
    let row = c.query_one(&s, &[]).await?;
    Ok(ChainHead { seq: row.try_get(0)?, hash: hash32(row.try_get(1)?)? })
}

const COLUMNS: &str = "a.seq, a.at, a.kind, a.actor, a.subject, a.detail, a.prev_hash, a.hash, a.leaf";

/// Entries after `after`, oldest first. A negative `limit` means no limit, as in SQLite.
pub(crate) async fn entries(c: &impl GenericClient, after: i64, limit: i64) -> DbResult<Vec<AuditEntry>> {
    let s = c
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM audit_log a
             WHERE a.seq > $1 ORDER BY a.seq LIMIT CASE WHEN $2::BIGINT < 0 THEN NULL ELSE $2::BIGINT END"
        ))
        .await?;
    c.query(&s, &[&after, &limit]).await?.iter().map(entry_row).collect()
}

/// Sealed entries after leaf `after`, in leaf order, with the leaf hash stored for each.
pub(crate) async fn sealed(
    c: &impl GenericClient,
    after: i64,
    limit: i64,
) -> DbResult<Vec<(AuditEntry, Option<Hash>)>> {
    let s = c
        .prepare_cached(&format!(
            "SELECT {COLUMNS}, n.hash FROM audit_log a LEFT JOIN audit_nodes n ON n.level = 0 AND n.idx = a.leaf
             WHERE a.leaf > $1 ORDER BY a.leaf LIMIT $2"
        ))
        .await?;
    c.query(&s, &[&after, &limit]).await?.iter().map(|r| Ok((entry_row(r)?, opt_hash32(r.try_get(9)?)?))).collect()
}

pub(crate) async fn unsealed(c: &impl GenericClient, limit: i64) -> DbResult<Vec<AuditEntry>> {
    let s = c
        .prepare_cached(&format!("SELECT {COLUMNS} FROM audit_log a WHERE a.leaf IS NULL ORDER BY a.seq LIMIT $1"))
        .await?;
    c.query(&s, &[&limit]).await?.iter().map(entry_row).collect()
}

/// Takes the seal for this transaction, if no other replica holds it.
pub(crate) async fn try_seal_lock(c: &impl GenericClient) -> DbResult<bool> {
    // Advisory locks are per database, not per schema: the key names the schema, so
    // installations (and test runs) sharing one database do not hold each other's seal.
    let s = c.prepare_cached("SELECT pg_try_advisory_xact_lock(1818977121, hashtext(current_schema()))").await?;
    Ok(c.query_one(&s, &[]).await?.try_get(0)?)
}

pub(crate) async fn tree(c: &impl GenericClient, lock: bool) -> DbResult<AuditTreeState> {
    let sql = if lock {
        "SELECT size, root, checkpoint, sealed_at FROM audit_tree WHERE id = 1 FOR UPDATE"
    } else {
        "SELECT size, root, checkpoint, sealed_at FROM audit_tree WHERE id = 1"
    };
    let s = c.prepare_cached(sql).await?;
    let r = c.query_one(&s, &[]).await?;
    let size: i64 = r.try_get(0)?;
    let at: Option<i64> = r.try_get(3)?;
    Ok(AuditTreeState {
        size: size as u64,
        root: hash32(r.try_get(1)?)?,
        checkpoint: r.try_get(2)?,
        sealed_at: at.map(Timestamp::from_millis),
    })
}

pub(crate) async fn set_tree(c: &impl GenericClient, t: &AuditTreeState) -> DbResult<()> {
    let s = c
        .prepare_cached("UPDATE audit_tree SET size = $1, root = $2, checkpoint = $3, sealed_at = $4 WHERE id = 1")
        .await?;
    c.execute(&s, &[&(t.size as i64), &&t.root[..], &t.checkpoint, &t.sealed_at.map(|a| a.as_millis())]).await?;
    Ok(())
}

/// One statement for the whole batch: a seal may place thousands of entries.
pub(crate) async fn set_leaves(c: &impl GenericClient, leaves: &[(i64, i64)]) -> DbResult<()> {
    let (seqs, idx): (Vec<i64>, Vec<i64>) = leaves.iter().copied().unzip();
    let s = c
        .prepare_cached(
            "UPDATE audit_log a SET leaf = u.leaf FROM unnest($1::BIGINT[], $2::BIGINT[]) AS u(seq, leaf)
             WHERE a.seq = u.seq",
        )
        .await?;
    c.execute(&s, &[&seqs, &idx]).await?;
    Ok(())
}

pub(crate) async fn insert_nodes(c: &impl GenericClient, nodes: &[(NodeId, Hash)]) -> DbResult<()> {
    let levels: Vec<i16> = nodes.iter().map(|(id, _)| i16::from(id.level)).collect();
    let idx: Vec<i64> = nodes.iter().map(|(id, _)| id.index as i64).collect();
    let hashes: Vec<&[u8]> = nodes.iter().map(|(_, h)| &h[..]).collect();
    let s = c
        .prepare_cached(
            "INSERT INTO audit_nodes (level, idx, hash) SELECT * FROM unnest($1::SMALLINT[], $2::BIGINT[], $3::BYTEA[])",
        )
        .await?;
    c.execute(&s, &[&levels, &idx, &hashes]).await?;
    Ok(())
}

pub(crate) async fn nodes(c: &impl GenericClient, ids: &[NodeId]) -> DbResult<Vec<(NodeId, Hash)>> {
    let levels: Vec<i16> = ids.iter().map(|id| i16::from(id.level)).collect();
    let idx: Vec<i64> = ids.iter().map(|id| id.index as i64).collect();
    let s = c
        .prepare_cached(
            "SELECT n.level, n.idx, n.hash FROM unnest($1::SMALLINT[], $2::BIGINT[]) AS w(level, idx)
             JOIN audit_nodes n ON n.level = w.level AND n.idx = w.idx",
        )
        .await?;
    let mut out = Vec::with_capacity(ids.len());
    for r in c.query(&s, &[&levels, &idx]).await? {
        let level: i16 = r.try_get(0)?;
        let index: i64 = r.try_get(1)?;
        let id = NodeId { level: level as u8, index: index as u64 };
        out.push((id, hash32(r.try_get(2)?)?));
    }
    Ok(out)
}

pub(crate) async fn leaves_of(c: &impl GenericClient, seqs: &[i64]) -> DbResult<Vec<(i64, i64)>> {
    let s = c.prepare_cached("SELECT seq, leaf FROM audit_log WHERE seq = ANY($1) AND leaf IS NOT NULL").await?;
    let mut out = Vec::with_capacity(seqs.len());
    for r in c.query(&s, &[&seqs]).await? {
        out.push((r.try_get(0)?, r.try_get(1)?));
    }
    Ok(out)
}

pub(crate) async fn keys(c: &impl GenericClient) -> DbResult<Vec<StoredAuditKey>> {
    let s = c
        .prepare_cached(
            "SELECT key_id, name, seed_sealed, created_at, retired_at FROM audit_keys ORDER BY created_at, key_id",
        )
        .await?;
    let mut out = Vec::new();
    for r in c.query(&s, &[]).await? {
        let key_id: i64 = r.try_get(0)?;
        let retired: Option<i64> = r.try_get(4)?;
        out.push(StoredAuditKey {
            key_id: u32::try_from(key_id).map_err(|_| StoreError::Corrupt("an audit key ID is out of range".into()))?,
            name: r.try_get(1)?,
            sealed_seed: r.try_get(2)?,
            created_at: Timestamp::from_millis(r.try_get(3)?),
            retired_at: retired.map(Timestamp::from_millis),
        });
    }
    Ok(out)
}

pub(crate) async fn insert_key(c: &impl GenericClient, k: &StoredAuditKey) -> DbResult<()> {
    let s = c
        .prepare_cached("INSERT INTO audit_keys (key_id, name, seed_sealed, created_at) VALUES ($1, $2, $3, $4)")
        .await?;
    c.execute(&s, &[&i64::from(k.key_id), &k.name, &&k.sealed_seed, &k.created_at.as_millis()]).await?;
    Ok(())
}

pub(crate) async fn retire_keys(c: &impl GenericClient, at: Timestamp) -> DbResult<()> {
    let s = c.prepare_cached("UPDATE audit_keys SET retired_at = $1 WHERE retired_at IS NULL").await?;
    c.execute(&s, &[&at.as_millis()]).await?;
    Ok(())
}

fn entry_row(r: &Row) -> DbResult<AuditEntry> {
    let chain = match (opt_hash32(r.try_get(6)?)?, opt_hash32(r.try_get(7)?)?) {
        (Some(prev_hash), Some(hash)) => Some(ChainLink { prev_hash, hash }),
        _ => None,
    };
    Ok(AuditEntry {
        seq: r.try_get(0)?,
        at: Timestamp::from_millis(r.try_get(1)?),
        kind: r.try_get(2)?,
        actor: r.try_get(3)?,
        subject: r.try_get(4)?,
        detail: r.try_get(5)?,
        chain,
        leaf: r.try_get(8)?,
    })
}

/// Entries matching `f`, newest first; a negative limit means no limit, as in SQLite.
///
/// Only the filters given appear in the statement (at most eight shapes, each
/// prepared once per connection), so every shape is planned for what it asks:
/// a kind walks `(kind, seq)` backwards, a person combines `(actor, seq)` and
/// `(subject, seq)`, and no filter walks the primary key backwards.
pub(crate) async fn page(c: &impl GenericClient, f: &AuditFilter) -> DbResult<Vec<AuditEntry>> {
    let mut sql = format!("SELECT {COLUMNS} FROM audit_log a WHERE TRUE");
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
