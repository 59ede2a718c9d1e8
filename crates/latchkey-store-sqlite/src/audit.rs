//! The audit chain in SQLite: append under the head row, read back for verification.

use crate::db_err;
use latchkey_domain::audit::{AuditEntry, AuditEvent, ChainHead};
use latchkey_domain::Timestamp;
use latchkey_store::{StoreError, StoreResult};
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

pub(crate) fn entries(c: &Connection, after: i64, limit: i64) -> StoreResult<Vec<AuditEntry>> {
    let mut stmt = c
        .prepare_cached(
            "SELECT seq, at, kind, actor, subject, detail, prev_hash, hash FROM audit_log WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )
        .map_err(db_err)?;
    let rows = stmt
        .query_map(params![after, limit], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, Vec<u8>>(6)?,
                r.get::<_, Vec<u8>>(7)?,
            ))
        })
        .map_err(db_err)?;
    let mut out = Vec::new();
    for row in rows {
        let (seq, at, kind, actor, subject, detail, prev, hash) = row.map_err(db_err)?;
        out.push(AuditEntry {
            seq,
            at: Timestamp::from_millis(at),
            kind,
            actor,
            subject,
            detail,
            prev_hash: hash32(prev)?,
            hash: hash32(hash)?,
        });
    }
    Ok(out)
}
