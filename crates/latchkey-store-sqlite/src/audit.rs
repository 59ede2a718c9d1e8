//! The audit chain in SQLite: append under the head row, read back for verification.

use crate::db_err;
use latchkey_domain::audit::{AuditEntry, AuditEvent, ChainHead};
use latchkey_domain::Timestamp;
use latchkey_store::{AuditFilter, NameKind, NamedId, StoreError, StoreResult};
use rusqlite::{params, Connection};

fn hash32(v: Vec<u8>) -> StoreResult<[u8; 32]> {
    v.try_into().map_err(|_| StoreError::Corrupt("an audit hash is not 32 bytes".into()))
}

/// Appends `event` to the chain inside the caller's transaction.
pub(crate) fn append(c: &Connection, event: &AuditEvent, now: Timestamp) -> StoreResult<()> {
    let head = head(c)?;
    let (e, new_head) = head.append(event, now);
    c.prepare_cached(
        "INSERT INTO audit_log (seq, at, kind, actor, subject, detail, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .and_then(|mut s| {
        s.execute(params![e.seq, e.at.as_millis(), e.kind, e.actor, e.subject, e.detail, &e.prev_hash[..], &e.hash[..]])
    })
    .map_err(db_err)?;
    c.prepare_cached("UPDATE audit_head SET seq = ?1, hash = ?2 WHERE id = 1")
        .and_then(|mut s| s.execute(params![new_head.seq, &new_head.hash[..]]))
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

/// Reads audit rows selected as `seq, at, kind, actor, subject, detail, prev_hash, hash`.
fn collect(mut rows: rusqlite::Rows<'_>) -> StoreResult<Vec<AuditEntry>> {
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(db_err)? {
        out.push(AuditEntry {
            seq: r.get(0).map_err(db_err)?,
            at: Timestamp::from_millis(r.get(1).map_err(db_err)?),
            kind: r.get(2).map_err(db_err)?,
            actor: r.get(3).map_err(db_err)?,
            subject: r.get(4).map_err(db_err)?,
            detail: r.get(5).map_err(db_err)?,
            prev_hash: hash32(r.get(6).map_err(db_err)?)?,
            hash: hash32(r.get(7).map_err(db_err)?)?,
        });
    }
    Ok(out)
}

pub(crate) fn entries(c: &Connection, after: i64, limit: i64) -> StoreResult<Vec<AuditEntry>> {
    let mut stmt = c
        .prepare_cached(
            "SELECT seq, at, kind, actor, subject, detail, prev_hash, hash FROM audit_log WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )
        .map_err(db_err)?;
    let rows = stmt.query(params![after, limit]).map_err(db_err)?;
    collect(rows)
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
    let sql = format!(
        "SELECT seq, at, kind, actor, subject, detail, prev_hash, hash FROM audit_log {where_} ORDER BY seq DESC LIMIT ?{}",
        args.len()
    );
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
