//! Refresh-token families in PostgreSQL: issue, rotate, detect reuse, revoke.
//! A rotation locks the token and its family, so two replicas exchanging the
//! same token take turns: one rotates, the other sees a replay.

use crate::db::{DbResult, Tx};
use crate::{audit, devices};
use deadpool_postgres::GenericClient;
use latchkey_domain::refresh::{RefreshOutcome, RefreshState};
use latchkey_domain::secret::SecretHash;
use latchkey_domain::Timestamp;
use latchkey_store::*;

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
pub(crate) async fn start_family(
    tx: &Tx<'_>,
    mint: &MintRefresh,
    f: &NewFamily<'_>,
    now: Timestamp,
) -> DbResult<TokenSubject> {
    let s = tx
        .prepare_cached(
            "INSERT INTO token_families (id, client_id, user_id, scope, auth_time, created_at, device_id, jkt)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .await?;
    tx.execute(
        &s,
        &[
            &mint.new_family_id,
            &f.client_id,
            &f.user_id,
            &f.scope,
            &f.auth_time.as_millis(),
            &now.as_millis(),
            &f.device_id,
            &f.jkt,
        ],
    )
    .await?;
    insert_token(tx, mint, &mint.new_family_id, now).await?;
    if let Some(device_id) = f.device_id {
        devices::touch(tx, device_id, now).await?;
    }
    let s = tx.prepare_cached("SELECT username FROM users WHERE id = $1").await?;
    let username: String = tx.query_one(&s, &[&f.user_id]).await?.try_get(0)?;
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

async fn insert_token(tx: &Tx<'_>, mint: &MintRefresh, family_id: &str, now: Timestamp) -> DbResult<()> {
    let s = tx
        .prepare_cached(
            "INSERT INTO refresh_tokens (token_hash, family_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .await?;
    tx.execute(&s, &[&mint.token_hash.as_str(), &family_id, &now.as_millis(), &mint.expires_at.as_millis()]).await?;
    Ok(())
}

const RECORD_SQL: &str = "SELECT f.id, f.client_id, f.user_id, u.username, f.scope, t.created_at, t.expires_at,
        t.rotated_at IS NOT NULL, f.revoked_at IS NOT NULL, f.auth_time, f.device_id, f.jkt
     FROM refresh_tokens t JOIN token_families f ON f.id = t.family_id JOIN users u ON u.id = f.user_id
     WHERE t.token_hash = $1";

/// The token with its family; `lock` takes the token's and the family's rows for the transaction.
async fn record(
    c: &impl GenericClient,
    h: &SecretHash,
    lock: bool,
) -> DbResult<Option<(RefreshTokenRecord, Timestamp)>> {
    let sql = if lock { format!("{RECORD_SQL} FOR UPDATE OF t, f") } else { RECORD_SQL.to_string() };
    let s = c.prepare_cached(&sql).await?;
    let Some(r) = c.query_opt(&s, &[&h.as_str()]).await? else {
        return Ok(None);
    };
    Ok(Some((
        RefreshTokenRecord {
            family_id: r.try_get(0)?,
            client_id: r.try_get(1)?,
            user_id: r.try_get(2)?,
            username: r.try_get(3)?,
            scope: r.try_get(4)?,
            created_at: Timestamp::from_millis(r.try_get(5)?),
            expires_at: Timestamp::from_millis(r.try_get(6)?),
            rotated: r.try_get(7)?,
            family_revoked: r.try_get(8)?,
            device_id: r.try_get(10)?,
            jkt: r.try_get(11)?,
        },
        Timestamp::from_millis(r.try_get(9)?),
    )))
}

pub(crate) async fn refresh_token(c: &impl GenericClient, h: &SecretHash) -> DbResult<Option<RefreshTokenRecord>> {
    Ok(record(c, h, false).await?.map(|(r, _)| r))
}

pub(crate) async fn rotate(tx: &Tx<'_>, r: RotateRefresh, now: Timestamp) -> DbResult<Rotated> {
    let Some((t, auth_time)) = record(tx, &r.token_hash, true).await? else {
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
            revoke(tx, &t.family_id, now).await?;
            audit::append(tx, &events::refresh_reused(&t), now).await?;
            Ok(Rotated::ReuseDetected)
        }
        RefreshOutcome::Rotate => {
            let s = tx.prepare_cached("UPDATE refresh_tokens SET rotated_at = $1 WHERE token_hash = $2").await?;
            tx.execute(&s, &[&now.as_millis(), &r.token_hash.as_str()]).await?;
            insert_token(tx, &r.mint, &t.family_id, now).await?;
            if let Some(device_id) = &t.device_id {
                devices::touch(tx, device_id, now).await?;
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

async fn revoke(tx: &Tx<'_>, family_id: &str, now: Timestamp) -> DbResult<u64> {
    let s = tx.prepare_cached("UPDATE token_families SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL").await?;
    Ok(tx.execute(&s, &[&now.as_millis(), &family_id]).await?)
}

/// Locks every family of a device, in a fixed order, for the caller's transaction.
pub(crate) async fn lock_device_families(tx: &Tx<'_>, device_id: &str) -> DbResult<()> {
    let s = tx.prepare_cached("SELECT id FROM token_families WHERE device_id = $1 ORDER BY id FOR UPDATE").await?;
    tx.query(&s, &[&device_id]).await?;
    Ok(())
}

/// Revokes every live family of a device; returns how many.
pub(crate) async fn revoke_device_families(tx: &Tx<'_>, device_id: &str, now: Timestamp) -> DbResult<u64> {
    let s = tx
        .prepare_cached("UPDATE token_families SET revoked_at = $1 WHERE device_id = $2 AND revoked_at IS NULL")
        .await?;
    Ok(tx.execute(&s, &[&now.as_millis(), &device_id]).await?)
}

pub(crate) async fn revoke_family(tx: &Tx<'_>, h: &SecretHash, client_id: &str, now: Timestamp) -> DbResult<bool> {
    let Some((t, _)) = record(tx, h, true).await? else {
        return Ok(false);
    };
    if t.client_id != client_id {
        return Ok(false);
    }
    if revoke(tx, &t.family_id, now).await? == 0 {
        return Ok(false);
    }
    audit::append(tx, &events::family_revoked(&t.family_id, &t.user_id, client_id), now).await?;
    Ok(true)
}

pub(crate) async fn revoke_family_by_id(
    tx: &Tx<'_>,
    family_id: &str,
    client_id: &str,
    now: Timestamp,
) -> DbResult<bool> {
    let s = tx
        .prepare_cached(
            "SELECT user_id FROM token_families WHERE id = $1 AND client_id = $2 AND revoked_at IS NULL FOR UPDATE",
        )
        .await?;
    let Some(row) = tx.query_opt(&s, &[&family_id, &client_id]).await? else { return Ok(false) };
    let user: String = row.try_get(0)?;
    revoke(tx, family_id, now).await?;
    audit::append(tx, &events::family_revoked(family_id, &user, client_id), now).await?;
    Ok(true)
}

pub(crate) async fn family_active(c: &impl GenericClient, id: &str) -> DbResult<bool> {
    let s = c.prepare_cached("SELECT revoked_at IS NULL FROM token_families WHERE id = $1").await?;
    match c.query_opt(&s, &[&id]).await? {
        Some(r) => Ok(r.try_get(0)?),
        None => Ok(false),
    }
}
