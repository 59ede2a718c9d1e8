//! Refresh-token families in SQLite: issue, rotate, detect reuse, revoke.

use crate::{audit, db_err};
use latchkey_domain::refresh::{RefreshOutcome, RefreshState};
use latchkey_domain::secret::SecretHash;
use latchkey_domain::Timestamp;
use latchkey_store::*;
use rusqlite::{params, Connection, OptionalExtension};

/// What a new token family is for.
pub(crate) struct NewFamily<'a> {
    pub client_id: &'a str,
    pub user_id: &'a str,
    pub scope: &'a str,
    pub auth_time: Timestamp,
    pub device_id: Option<&'a str>,
    pub jkt: Option<&'a str>,
}

/// Starts a token family with its first refresh token; returns what to mint.
pub(crate) fn start_family(
    c: &Connection,
    mint: &MintRefresh,
    f: &NewFamily<'_>,
    now: Timestamp,
) -> StoreResult<TokenSubject> {
    c.prepare_cached(
        "INSERT INTO token_families (id, client_id, user_id, scope, auth_time, created_at, device_id, jkt)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .and_then(|mut s| {
        s.execute(params![
            mint.new_family_id,
            f.client_id,
            f.user_id,
            f.scope,
            f.auth_time.as_millis(),
            now.as_millis(),
            f.device_id,
            f.jkt
        ])
    })
    .map_err(db_err)?;
    insert_token(c, mint, &mint.new_family_id, now)?;
    if let Some(device_id) = f.device_id {
        touch_device(c, device_id, now)?;
    }
    let username: String = c
        .prepare_cached("SELECT username FROM users WHERE id = ?1")
        .and_then(|mut s| s.query_row([f.user_id], |r| r.get(0)))
        .map_err(db_err)?;
    Ok(TokenSubject {
        user_id: f.user_id.to_string(),
        username,
        client_id: f.client_id.to_string(),
        scope: f.scope.to_string(),
        family_id: mint.new_family_id.clone(),
        auth_time: f.auth_time,
        device_id: f.device_id.map(str::to_string),
        jkt: f.jkt.map(str::to_string),
    })
}

fn touch_device(c: &Connection, device_id: &str, now: Timestamp) -> StoreResult<()> {
    c.prepare_cached("UPDATE devices SET last_seen_at = ?1 WHERE id = ?2")
        .and_then(|mut s| s.execute(params![now.as_millis(), device_id]))
        .map_err(db_err)?;
    Ok(())
}

fn insert_token(c: &Connection, mint: &MintRefresh, family_id: &str, now: Timestamp) -> StoreResult<()> {
    c.prepare_cached(
        "INSERT INTO refresh_tokens (token_hash, family_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
    )
    .and_then(|mut s| {
        s.execute(params![mint.token_hash.as_str(), family_id, now.as_millis(), mint.expires_at.as_millis()])
    })
    .map_err(db_err)?;
    Ok(())
}

const RECORD_SQL: &str = "SELECT f.id, f.client_id, f.user_id, u.username, f.scope, t.created_at, t.expires_at,
        t.rotated_at IS NOT NULL, f.revoked_at IS NOT NULL, f.auth_time, f.device_id, f.jkt
     FROM refresh_tokens t JOIN token_families f ON f.id = t.family_id JOIN users u ON u.id = f.user_id
     WHERE t.token_hash = ?1";

fn record(c: &Connection, h: &SecretHash) -> StoreResult<Option<(RefreshTokenRecord, Timestamp)>> {
    c.prepare_cached(RECORD_SQL)
        .and_then(|mut s| {
            s.query_row([h.as_str()], |r| {
                Ok((
                    RefreshTokenRecord {
                        family_id: r.get(0)?,
                        client_id: r.get(1)?,
                        user_id: r.get(2)?,
                        username: r.get(3)?,
                        scope: r.get(4)?,
                        created_at: Timestamp::from_millis(r.get(5)?),
                        expires_at: Timestamp::from_millis(r.get(6)?),
                        rotated: r.get(7)?,
                        family_revoked: r.get(8)?,
                        device_id: r.get(10)?,
                        jkt: r.get(11)?,
                    },
                    Timestamp::from_millis(r.get(9)?),
                ))
            })
            .optional()
        })
        .map_err(db_err)
}

pub(crate) fn refresh_token(c: &Connection, h: &SecretHash) -> StoreResult<Option<RefreshTokenRecord>> {
    Ok(record(c, h)?.map(|(r, _)| r))
}

pub(crate) fn rotate(c: &Connection, r: RotateRefresh, now: Timestamp) -> StoreResult<Rotated> {
    let Some((t, auth_time)) = record(c, &r.token_hash)? else {
        return Ok(Rotated::Invalid);
    };
    if t.client_id != r.client_id {
        return Ok(Rotated::Invalid);
    }
    if t.jkt.is_some() && t.jkt != r.presented_jkt {
        // A refresh token bound to a device key is useless without that key (RFC 9449 §5).
        return Ok(Rotated::WrongKey);
    }
    let state = RefreshState { rotated: t.rotated, family_revoked: t.family_revoked, expires_at: t.expires_at };
    match state.use_at(now) {
        RefreshOutcome::Refuse => Ok(Rotated::Invalid),
        RefreshOutcome::ReuseDetected => {
            revoke(c, &t.family_id, now)?;
            audit::append(c, &events::refresh_reused(&t), now)?;
            Ok(Rotated::ReuseDetected)
        }
        RefreshOutcome::Rotate => {
            c.prepare_cached("UPDATE refresh_tokens SET rotated_at = ?1 WHERE token_hash = ?2")
                .and_then(|mut s| s.execute(params![now.as_millis(), r.token_hash.as_str()]))
                .map_err(db_err)?;
            insert_token(c, &r.mint, &t.family_id, now)?;
            if let Some(device_id) = &t.device_id {
                touch_device(c, device_id, now)?;
            }
            Ok(Rotated::Tokens(TokenSubject {
                user_id: t.user_id,
                username: t.username,
                client_id: t.client_id,
                scope: t.scope,
                family_id: t.family_id,
                auth_time,
                device_id: t.device_id,
                jkt: t.jkt,
            }))
        }
    }
}

fn revoke(c: &Connection, family_id: &str, now: Timestamp) -> StoreResult<usize> {
    c.prepare_cached("UPDATE token_families SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL")
        .and_then(|mut s| s.execute(params![now.as_millis(), family_id]))
        .map_err(db_err)
}

/// Revokes every live family of a device; returns how many.
pub(crate) fn revoke_device_families(c: &Connection, device_id: &str, now: Timestamp) -> StoreResult<usize> {
    c.prepare_cached("UPDATE token_families SET revoked_at = ?1 WHERE device_id = ?2 AND revoked_at IS NULL")
        .and_then(|mut s| s.execute(params![now.as_millis(), device_id]))
        .map_err(db_err)
}

pub(crate) fn revoke_family(c: &Connection, h: &SecretHash, client_id: &str, now: Timestamp) -> StoreResult<bool> {
    let Some((t, _)) = record(c, h)? else {
        return Ok(false);
    };
    if t.client_id != client_id {
        return Ok(false);
    }
    if revoke(c, &t.family_id, now)? == 0 {
        return Ok(false);
    }
    audit::append(c, &events::family_revoked(&t.family_id, &t.user_id, client_id), now)?;
    Ok(true)
}

pub(crate) fn revoke_family_by_id(
    c: &Connection,
    family_id: &str,
    client_id: &str,
    now: Timestamp,
) -> StoreResult<bool> {
    let user: Option<String> = c
        .prepare_cached("SELECT user_id FROM token_families WHERE id = ?1 AND client_id = ?2 AND revoked_at IS NULL")
        .and_then(|mut s| s.query_row(params![family_id, client_id], |r| r.get(0)).optional())
        .map_err(db_err)?;
    let Some(user) = user else { return Ok(false) };
    revoke(c, family_id, now)?;
    audit::append(c, &events::family_revoked(family_id, &user, client_id), now)?;
    Ok(true)
}

pub(crate) fn family_active(c: &Connection, id: &str) -> StoreResult<bool> {
    c.prepare_cached("SELECT revoked_at IS NULL FROM token_families WHERE id = ?1")
        .and_then(|mut s| s.query_row([id], |r| r.get::<_, bool>(0)).optional())
        .map_err(db_err)
        .map(|v| v.unwrap_or(false))
}
