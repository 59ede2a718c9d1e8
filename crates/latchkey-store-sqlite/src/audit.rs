//! The audit log in SQLite: entries, the sealed tree's rows, its keys, and reads for pages and verification.

use crate::db_err;
use latchkey_domain::audit::{AuditEntry, AuditEvent, ChainHead, ChainLink};
use latchkey_domain::merkle::{Hash, NodeId};
use latchkey_domain::Timestamp;
use latchkey_store::{AuditFilter, AuditTreeState, NameKind, NamedId, StoreError, StoreResult, StoredAuditKey};
use rusqlite::{params, Connection, OptionalExtension};

fn hash32(v: Vec<u8>) -> StoreResult<[u8; 32]> {
    v.try_into().map_err(|_| StoreError::Corrupt("an audit hash is not 32 bytes".into()))
}

fn opt_hash32(v: Option<Vec<u8>>) -> StoreResult<Option<[u8; 32]>> {
    v.map(hash32).transpose()
}

/// Writes `event` inside the caller's transaction; its `seq` is the next rowid.
pub(crate) fn append(c: &Connection, event: &AuditEvent, now: Timestamp) -> StoreResult<()> {
    c.prepare_cached("INSERT INTO audit_log (at, kind, actor, subject, detail) VALUES (?1, ?2, ?3, ?4, ?5)")
        .and_then(|mut s| {
            s.execute(params![now.as_millis(), event.kind.as_str(), event.actor, event.subject, event.detail])
        })
        .map_err(db_err)?;
    Ok(())
}

pub(crate) fn head(c: &Connection) -> StoreResult<ChainHead> {
    let (seq, hash): (i64, Vec<u8>) = c
        .prepare_cached("SELECT seq, hash FROM audit_head WHERE id = 1")
        .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))))
        .map_err(db_err)?;
    Ok(ChainHead { seq, hash: hash32(hash)? })
}

const COLUMNS: &str = "a.seq, a.at, a.kind, a.actor, a.subject, a.detail, a.prev_hash, a.hash, a.leaf";

fn entry(r: &rusqlite::Row<'_>) -> StoreResult<AuditEntry> {
    let prev: Option<Vec<u8>> = r.get(6).map_err(db_err)?;
    let hash: Option<Vec<u8>> = r.get(7).map_err(db_err)?;
    let chain = match (opt_hash32(prev)?, opt_hash32(hash)?) {
        (Some(prev_hash), Some(hash)) => Some(ChainLink { prev_hash, hash }),
        _ => None,
    };
    Ok(AuditEntry {
        seq: r.get(0).map_err(db_err)?,
        at: Timestamp::from_millis(r.get(1).map_err(db_err)?),
        kind: r.get(2).map_err(db_err)?,
        actor: r.get(3).map_err(db_err)?,
        subject: r.get(4).map_err(db_err)?,
        detail: r.get(5).map_err(db_err)?,
        chain,
        leaf: r.get(8).map_err(db_err)?,
    })
}

/// Reads audit rows selected as [`COLUMNS`].
fn collect(mut rows: rusqlite::Rows<'_>) -> StoreResult<Vec<AuditEntry>> {
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(db_err)? {
        out.push(entry(r)?);
    }
    Ok(out)
}

pub(crate) fn entries(c: &Connection, after: i64, limit: i64) -> StoreResult<Vec<AuditEntry>> {
    let mut stmt = c
        .prepare_cached(&format!("SELECT {COLUMNS} FROM audit_log a WHERE a.seq > ?1 ORDER BY a.seq LIMIT ?2"))
        .map_err(db_err)?;
    let rows = stmt.query(params![after, limit]).map_err(db_err)?;
    collect(rows)
}

/// Sealed entries after leaf `after`, in leaf order, with the leaf hash stored for each.
pub(crate) fn sealed(c: &Connection, after: i64, limit: i64) -> StoreResult<Vec<(AuditEntry, Option<Hash>)>> {
    let mut stmt = c
        .prepare_cached(&format!(
            "SELECT {COLUMNS}, n.hash FROM audit_log a LEFT JOIN audit_nodes n ON n.level = 0 AND n.idx = a.leaf
             WHERE a.leaf > ?1 ORDER BY a.leaf LIMIT ?2"
        ))
        .map_err(db_err)?;
    let mut rows = stmt.query(params![after, limit]).map_err(db_err)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(db_err)? {
        out.push((entry(r)?, opt_hash32(r.get(9).map_err(db_err)?)?));
    }
    Ok(out)
}

pub(crate) fn unsealed(c: &Connection, limit: i64) -> StoreResult<Vec<AuditEntry>> {
    let mut stmt = c
        .prepare_cached(&format!("SELECT {COLUMNS} FROM audit_log a WHERE a.leaf IS NULL ORDER BY a.seq LIMIT ?1"))
        .map_err(db_err)?;
    let rows = stmt.query(params![limit]).map_err(db_err)?;
    collect(rows)
}

pub(crate) fn tree(c: &Connection) -> StoreResult<AuditTreeState> {
    let (size, root, checkpoint, at): (i64, Vec<u8>, Option<String>, Option<i64>) = c
        .prepare_cached("SELECT size, root, checkpoint, sealed_at FROM audit_tree WHERE id = 1")
        .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))))
        .map_err(db_err)?;
    Ok(AuditTreeState { size: size as u64, root: hash32(root)?, checkpoint, sealed_at: at.map(Timestamp::from_millis) })
}

pub(crate) fn set_tree(c: &Connection, t: &AuditTreeState) -> StoreResult<()> {
    c.prepare_cached("UPDATE audit_tree SET size = ?1, root = ?2, checkpoint = ?3, sealed_at = ?4 WHERE id = 1")
        .and_then(|mut s| {
            s.execute(params![t.size as i64, &t.root[..], t.checkpoint, t.sealed_at.map(|a| a.as_millis())])
        })
        .map_err(db_err)?;
    Ok(())
}

pub(crate) fn set_leaves(c: &Connection, leaves: &[(i64, i64)]) -> StoreResult<()> {
    let mut s = c.prepare_cached("UPDATE audit_log SET leaf = ?2 WHERE seq = ?1").map_err(db_err)?;
    for (seq, leaf) in leaves {
        s.execute(params![seq, leaf]).map_err(db_err)?;
    }
    Ok(())
}

pub(crate) fn insert_nodes(c: &Connection, nodes: &[(NodeId, Hash)]) -> StoreResult<()> {
    let mut s = c.prepare_cached("INSERT INTO audit_nodes (level, idx, hash) VALUES (?1, ?2, ?3)").map_err(db_err)?;
    for (id, h) in nodes {
        s.execute(params![id.level, id.index as i64, &h[..]]).map_err(db_err)?;
    }
    Ok(())
}

pub(crate) fn nodes(c: &Connection, ids: &[NodeId]) -> StoreResult<Vec<(NodeId, Hash)>> {
    let mut s = c.prepare_cached("SELECT hash FROM audit_nodes WHERE level = ?1 AND idx = ?2").map_err(db_err)?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let h: Option<Vec<u8>> =
            s.query_row(params![id.level, id.index as i64], |r| r.get(0)).optional().map_err(db_err)?;
        if let Some(h) = h {
            out.push((*id, hash32(h)?));
        }
    }
    Ok(out)
}

pub(crate) fn leaves_of(c: &Connection, seqs: &[i64]) -> StoreResult<Vec<(i64, i64)>> {
    let mut s = c.prepare_cached("SELECT leaf FROM audit_log WHERE seq = ?1 AND leaf IS NOT NULL").map_err(db_err)?;
    let mut out = Vec::with_capacity(seqs.len());
    for seq in seqs {
        let leaf: Option<i64> = s.query_row(params![seq], |r| r.get(0)).optional().map_err(db_err)?;
        if let Some(leaf) = leaf {
            out.push((*seq, leaf));
        }
    }
    Ok(out)
}

pub(crate) fn keys(c: &Connection) -> StoreResult<Vec<StoredAuditKey>> {
    let mut s = c
        .prepare_cached(
            "SELECT key_id, name, seed_sealed, created_at, retired_at FROM audit_keys ORDER BY created_at, key_id",
        )
        .map_err(db_err)?;
    let mut rows = s.query([]).map_err(db_err)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(db_err)? {
        let key_id: i64 = r.get(0).map_err(db_err)?;
        out.push(StoredAuditKey {
            key_id: u32::try_from(key_id).map_err(|_| StoreError::Corrupt("an audit key ID is out of range".into()))?,
            name: r.get(1).map_err(db_err)?,
            sealed_seed: r.get(2).map_err(db_err)?,
            created_at: Timestamp::from_millis(r.get(3).map_err(db_err)?),
            retired_at: r.get::<_, Option<i64>>(4).map_err(db_err)?.map(Timestamp::from_millis),
        });
    }
    Ok(out)
}

pub(crate) fn insert_key(c: &Connection, k: &StoredAuditKey) -> StoreResult<()> {
    c.prepare_cached("INSERT INTO audit_keys (key_id, name, seed_sealed, created_at) VALUES (?1, ?2, ?3, ?4)")
        .and_then(|mut s| s.execute(params![k.key_id as i64, k.name, &k.sealed_seed, k.created_at.as_millis()]))
        .map_err(db_err)?;
    Ok(())
}

pub(crate) fn retire_keys(c: &Connection, at: Timestamp) -> StoreResult<()> {
    c.prepare_cached("UPDATE audit_keys SET retired_at = ?1 WHERE retired_at IS NULL")
        .and_then(|mut s| s.execute(params![at.as_millis()]))
        .map_err(db_err)?;
    Ok(())
}

pub(crate) fn page(c: &Connection, f: &AuditFilter) -> StoreResult<Vec<AuditEntry>> {
    // Only the filters given go into the query, so each shape gets a plan that uses its index
    // (`?1 IS NULL OR …` would make SQLite scan the whole log newest-first).
    let mut conds = Vec::new();
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    if let Some(who) = &f.involving {
        args.push(who.clone().into());
        conds.push(format!("(actor = ?{n} OR subject = ?{n})", n = args.len()));
    }
    if let Some(kind) = &f.kind {
        args.push(kind.clone().into());
        conds.push(format!("kind = ?{}", args.len()));
    }
    if let Some(before) = f.before_seq {
        args.push(before.into());
        conds.push(format!("seq < ?{}", args.len()));
    }
    if let Some(device) = &f.device {
        args.push(device.clone().into());
        let id = args.len();
        // A device appears in the detail as a JSON string value ("device", "truster", "creator", members).
        args.push(format!("\"{device}\"").into());
        conds.push(format!("(actor = ?{id} OR subject = ?{id} OR instr(detail, ?{}) > 0)", args.len()));
    }
    if let Some(since) = f.since {
        args.push(since.as_millis().into());
        conds.push(format!("at >= ?{}", args.len()));
    }
    if let Some(until) = f.until {
        args.push(until.as_millis().into());
        conds.push(format!("at < ?{}", args.len()));
    }
    args.push(f.limit.into());
    let where_ = if conds.is_empty() { String::new() } else { format!("WHERE {}", conds.join(" AND ")) };
    let sql = format!("SELECT {COLUMNS} FROM audit_log a {where_} ORDER BY seq DESC LIMIT ?{}", args.len());
    let mut stmt = c.prepare_cached(&sql).map_err(db_err)?;
    let rows = stmt.query(rusqlite::params_from_iter(args)).map_err(db_err)?;
    collect(rows)
}

/// The users, devices and apps among `ids`, in one statement.
pub(crate) fn names(c: &Connection, ids: &[String]) -> StoreResult<Vec<NamedId>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let list = (1..=ids.len()).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT 'user', id, username, NULL FROM users WHERE id IN ({list})
         UNION ALL SELECT 'device', id, display_name, location FROM devices WHERE id IN ({list})
         UNION ALL SELECT 'app', client_id, display_name, NULL FROM apps WHERE client_id IN ({list})"
    );
    let mut stmt = c.prepare(&sql).map_err(db_err)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(ids)).map_err(db_err)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(db_err)? {
        let tag: String = r.get(0).map_err(db_err)?;
        let Some(kind) = NameKind::parse(&tag) else { continue };
        out.push(NamedId {
            id: r.get(1).map_err(db_err)?,
            kind,
            name: r.get(2).map_err(db_err)?,
            location: r.get(3).map_err(db_err)?,
        });
    }
    Ok(out)
}
