//! The statements behind [`latchkey_store::txn::Txn`] in SQLite, and how
//! rows are read. Every method is one statement; the operations that use
//! them live, once for every backend, in `latchkey_store::flows`.
//!
//! Locks are ignored: one writer thread runs transactions one at a time.

use crate::{audit, db_err, is_unique_violation};
use latchkey_domain::audit::AuditEvent;
use latchkey_domain::device::DeviceStatus;
use latchkey_domain::pairing::PairingStatus;
use latchkey_domain::secret::SecretHash;
use latchkey_domain::Timestamp;
use latchkey_store::rows::{self, Columns};
use latchkey_store::txn::{GrantCode, NewFamily, PairingCode, Txn};
use latchkey_store::*;
use rusqlite::{params, Connection, Params};
use std::collections::HashSet;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// One SQLite transaction (the writer's savepoint, or a reader's snapshot).
pub(crate) struct Sql<'c>(pub &'c Connection);

/// Runs an operation written against [`Txn`] to completion on this thread.
/// SQLite's statements never suspend, so it completes on its first poll.
pub(crate) fn complete<T>(op: impl Future<Output = StoreResult<T>>) -> StoreResult<T> {
    match pin!(op).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(result) => result,
        Poll::Pending => Err(StoreError::Database("an SQLite operation suspended, which it never should".into())),
    }
}

/// A rusqlite row read through [`Columns`].
pub(crate) struct Row<'a, 'r>(pub &'a rusqlite::Row<'r>);

impl Columns for Row<'_, '_> {
    fn text(&self, i: usize) -> StoreResult<String> {
        self.0.get(i).map_err(db_err)
    }
    fn opt_text(&self, i: usize) -> StoreResult<Option<String>> {
        self.0.get(i).map_err(db_err)
    }
    fn int(&self, i: usize) -> StoreResult<i64> {
        self.0.get(i).map_err(db_err)
    }
    fn opt_int(&self, i: usize) -> StoreResult<Option<i64>> {
        self.0.get(i).map_err(db_err)
    }
    fn flag(&self, i: usize) -> StoreResult<bool> {
        self.0.get(i).map_err(db_err)
    }
}

/// Runs a statement; returns how many rows it changed.
pub(crate) fn exec(c: &Connection, sql: &str, p: impl Params) -> StoreResult<usize> {
    c.prepare_cached(sql).and_then(|mut s| s.execute(p)).map_err(db_err)
}

/// Runs an insert, naming `what` when a unique key is already taken.
fn insert(c: &Connection, sql: &str, p: impl Params, what: &'static str) -> StoreResult<()> {
    c.prepare_cached(sql).and_then(|mut s| s.execute(p)).map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Conflict(what)
        } else {
            db_err(e)
        }
    })?;
    Ok(())
}

/// The first row of a query, decoded.
pub(crate) fn one<T>(
    c: &Connection,
    sql: &str,
    p: impl Params,
    decode: impl Fn(&Row<'_, '_>) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    let mut s = c.prepare_cached(sql).map_err(db_err)?;
    let mut rows = s.query(p).map_err(db_err)?;
    match rows.next().map_err(db_err)? {
        Some(r) => decode(&Row(r)).map(Some),
        None => Ok(None),
    }
}

/// Every row of a query, decoded.
pub(crate) fn all<T>(
    c: &Connection,
    sql: &str,
    p: impl Params,
    decode: impl Fn(&Row<'_, '_>) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut s = c.prepare_cached(sql).map_err(db_err)?;
    let mut rows = s.query(p).map_err(db_err)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(db_err)? {
        out.push(decode(&Row(r))?);
    }
    Ok(out)
}

impl Txn for Sql<'_> {
    type Error = StoreError;

    async fn append_audit(&self, event: &AuditEvent, now: Timestamp) -> StoreResult<()> {
        audit::append(self.0, event, now)
    }
    async fn announce_decided(&self, _id: &str) -> StoreResult<()> {
        // The store wakes local waiters itself, after the writer's commit.
        Ok(())
    }

    async fn username(&self, user_id: &str) -> StoreResult<String> {
        one(self.0, "SELECT username FROM users WHERE id = ?1", [user_id], |r| r.text(0))?
            .ok_or_else(|| StoreError::Corrupt(format!("user {user_id} does not exist")))
    }
    async fn lock_owner(&self, _owner_id: &str) -> StoreResult<()> {
        Ok(())
    }

    async fn insert_grant(&self, g: &NewDeviceGrant, now: Timestamp) -> StoreResult<()> {
        insert(
            self.0,
            "INSERT INTO device_grants (id, client_id, scope, device_code_hash, user_code_hash, status, created_at,
                expires_at, interval_secs, requester_ip, requester_user_agent, device_name,
                device_slug, device_location, device_platform, device_client_version, device_public_jwk, device_jkt)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
            params![
                g.id,
                g.client_id,
                g.scope,
                g.device_code_hash.as_str(),
                g.user_code_hash.as_str(),
                g.state.status.as_str(),
                now.as_millis(),
                g.state.expires_at.as_millis(),
                g.state.interval_secs,
                g.requester.ip,
                g.requester.user_agent,
                g.requester.device_name,
                g.device.slug,
                g.device.location,
                g.device.platform,
                g.device.client_version,
                g.device.public_jwk,
                g.device.jkt,
            ],
            "a grant with this code",
        )
    }
    async fn grant(&self, code: GrantCode, hash: &SecretHash, _lock: bool) -> StoreResult<Option<DeviceGrantRecord>> {
        let column = match code {
            GrantCode::Device => "device_code_hash",
            GrantCode::User => "user_code_hash",
        };
        let sql = format!("SELECT {} FROM device_grants WHERE {column} = ?1", rows::GRANT_COLUMNS);
        one(self.0, &sql, [hash.as_str()], |r| rows::device_grant(r))
    }
    async fn set_grant_decided(&self, g: &DeviceGrantRecord) -> StoreResult<()> {
        exec(
            self.0,
            "UPDATE device_grants SET status = ?1, user_id = ?2, decided_at = ?3, device_id = ?4
             WHERE id = ?5 AND status = 'pending'",
            params![g.state.status.as_str(), g.user_id, g.decided_at.map(|t| t.as_millis()), g.device_id, g.id],
        )?;
        Ok(())
    }
    async fn set_grant_polled(&self, id: &str, interval_secs: i64, now: Timestamp) -> StoreResult<()> {
        exec(
            self.0,
            "UPDATE device_grants SET last_polled_at = ?1, interval_secs = ?2 WHERE id = ?3",
            params![now.as_millis(), interval_secs, id],
        )?;
        Ok(())
    }
    async fn set_grant_consumed(&self, id: &str) -> StoreResult<bool> {
        let sql = "UPDATE device_grants SET status = 'consumed' WHERE id = ?1 AND status = 'approved'";
        Ok(exec(self.0, sql, [id])? == 1)
    }

    async fn device(&self, id: &str, _lock: bool) -> StoreResult<Option<DeviceRecord>> {
        let sql = format!("SELECT {} FROM devices WHERE id = ?1", rows::DEVICE_COLUMNS);
        one(self.0, &sql, [id], |r| rows::device(r))
    }
    async fn device_status(&self, id: &str) -> StoreResult<Option<DeviceStatus>> {
        one(self.0, "SELECT status FROM devices WHERE id = ?1", [id], |r| rows::device_status(r))
    }
    async fn active_device_with_key(&self, owner_id: &str, jkt: &str) -> StoreResult<Option<DeviceRecord>> {
        let sql = format!(
            "SELECT {} FROM devices WHERE owner_id = ?1 AND jkt = ?2 AND status = 'active'
             ORDER BY created_at DESC, id LIMIT 1",
            rows::DEVICE_COLUMNS
        );
        one(self.0, &sql, [owner_id, jkt], |r| rows::device(r))
    }
    async fn active_device_count(&self, owner_id: &str) -> StoreResult<i64> {
        let sql = "SELECT COUNT(*) FROM devices WHERE owner_id = ?1 AND status = 'active'";
        Ok(one(self.0, sql, [owner_id], |r| r.int(0))?.unwrap_or(0))
    }
    async fn device_slugs(&self, owner_id: &str) -> StoreResult<HashSet<String>> {
        let slugs = all(self.0, "SELECT slug FROM devices WHERE owner_id = ?1", [owner_id], |r| r.text(0))?;
        Ok(slugs.into_iter().collect())
    }
    async fn insert_device(&self, d: &DeviceRecord) -> StoreResult<()> {
        insert(
            self.0,
            "INSERT INTO devices (id, owner_id, display_name, slug, location, platform, client_version, created_at,
                status, public_jwk, jkt) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                d.id,
                d.owner_id,
                d.display_name,
                d.slug,
                d.location,
                d.platform,
                d.client_version,
                d.created_at.as_millis(),
                d.status.as_str(),
                d.public_jwk,
                d.jkt
            ],
            "a device with this ID or slug",
        )
    }
    async fn add_location(&self, device_id: &str, location: Option<&str>, now: Timestamp) -> StoreResult<()> {
        exec(
            self.0,
            "INSERT INTO device_locations (device_id, location, effective_at) VALUES (?1, ?2, ?3)",
            params![device_id, location, now.as_millis()],
        )?;
        Ok(())
    }
    async fn set_device_name(&self, id: &str, name: &str) -> StoreResult<()> {
        exec(self.0, "UPDATE devices SET display_name = ?1 WHERE id = ?2", params![name, id])?;
        Ok(())
    }
    async fn set_device_location(&self, id: &str, location: Option<&str>) -> StoreResult<()> {
        exec(self.0, "UPDATE devices SET location = ?1 WHERE id = ?2", params![location, id])?;
        Ok(())
    }
    async fn set_device_revoked(&self, id: &str, now: Timestamp) -> StoreResult<()> {
        let sql = "UPDATE devices SET status = 'revoked', revoked_at = ?1 WHERE id = ?2";
        exec(self.0, sql, params![now.as_millis(), id])?;
        Ok(())
    }
    async fn touch_device(&self, id: &str, now: Timestamp) -> StoreResult<()> {
        exec(self.0, "UPDATE devices SET last_seen_at = ?1 WHERE id = ?2", params![now.as_millis(), id])?;
        Ok(())
    }

    async fn insert_family(&self, f: &NewFamily<'_>, now: Timestamp) -> StoreResult<()> {
        insert(
            self.0,
            "INSERT INTO token_families (id, client_id, user_id, scope, auth_time, created_at, device_id, jkt)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                f.id,
                f.client_id,
                f.user_id,
                f.scope,
                f.auth_time.as_millis(),
                now.as_millis(),
                f.device_id,
                f.jkt
            ],
            "a token family with this ID",
        )
    }
    async fn insert_refresh_token(&self, t: &NewRefreshToken, family_id: &str, now: Timestamp) -> StoreResult<()> {
        insert(
            self.0,
            "INSERT INTO refresh_tokens (token_hash, family_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![t.token_hash.as_str(), family_id, now.as_millis(), t.expires_at.as_millis()],
            "a refresh token with this value",
        )
    }
    async fn refresh_token(
        &self,
        hash: &SecretHash,
        _lock: bool,
    ) -> StoreResult<Option<(RefreshTokenRecord, Timestamp)>> {
        // SQLite reads `$1` as a parameter too; with one parameter it is the first.
        one(self.0, rows::REFRESH_TOKEN_SELECT, [hash.as_str()], |r| rows::refresh_token(r))
    }
    async fn set_refresh_rotated(&self, hash: &SecretHash, now: Timestamp) -> StoreResult<()> {
        let sql = "UPDATE refresh_tokens SET rotated_at = ?1 WHERE token_hash = ?2";
        exec(self.0, sql, params![now.as_millis(), hash.as_str()])?;
        Ok(())
    }
    async fn live_family_owner(&self, family_id: &str, client_id: &str) -> StoreResult<Option<String>> {
        let sql = "SELECT user_id FROM token_families WHERE id = ?1 AND client_id = ?2 AND revoked_at IS NULL";
        one(self.0, sql, [family_id, client_id], |r| r.text(0))
    }
    async fn set_family_revoked(&self, family_id: &str, now: Timestamp) -> StoreResult<bool> {
        let sql = "UPDATE token_families SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL";
        Ok(exec(self.0, sql, params![now.as_millis(), family_id])? > 0)
    }
    async fn lock_device_families(&self, _device_id: &str) -> StoreResult<()> {
        Ok(())
    }
    async fn set_device_families_revoked(&self, device_id: &str, now: Timestamp) -> StoreResult<u64> {
        let sql = "UPDATE token_families SET revoked_at = ?1 WHERE device_id = ?2 AND revoked_at IS NULL";
        Ok(exec(self.0, sql, params![now.as_millis(), device_id])? as u64)
    }

    async fn insert_pairing(&self, p: &NewPairing, now: Timestamp) -> StoreResult<()> {
        insert(
            self.0,
            "INSERT INTO pairings (id, client_id, desktop_secret_hash, phone_code_hash, status, created_at, expires_at,
                requester_ip, requester_user_agent, return_to) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                p.id,
                p.client_id,
                p.desktop_secret_hash.as_str(),
                p.phone_code_hash.as_str(),
                p.state.status.as_str(),
                now.as_millis(),
                p.state.expires_at.as_millis(),
                p.requester.ip,
                p.requester.user_agent,
                p.return_to,
            ],
            "a pairing with this code",
        )
    }
    async fn pairing(&self, code: PairingCode, hash: &SecretHash, _lock: bool) -> StoreResult<Option<PairingRecord>> {
        let column = match code {
            PairingCode::Phone => "phone_code_hash",
            PairingCode::Desktop => "desktop_secret_hash",
        };
        let sql = format!("SELECT {} FROM pairings WHERE {column} = ?1", rows::PAIRING_COLUMNS);
        one(self.0, &sql, [hash.as_str()], |r| rows::pairing(r))
    }
    async fn set_pairing_status(
        &self,
        id: &str,
        from: PairingStatus,
        to: PairingStatus,
        decided_by: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let changed = exec(
            self.0,
            "UPDATE pairings SET status = ?1, user_id = COALESCE(?2, user_id),
                decided_at = CASE WHEN ?2 IS NULL THEN decided_at ELSE ?3 END
             WHERE id = ?4 AND status = ?5",
            params![to.as_str(), decided_by, now.as_millis(), id, from.as_str()],
        )?;
        Ok(changed == 1)
    }

    async fn insert_enrollment_key(&self, k: &NewEnrollmentKey, now: Timestamp) -> StoreResult<()> {
        insert(
            self.0,
            "INSERT INTO enrollment_keys (id, key_hash, owner_id, reusable, expires_at, tag, created_by, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                k.id,
                k.key_hash.as_str(),
                k.owner_id,
                k.reusable,
                k.expires_at.as_millis(),
                k.tag,
                k.created_by,
                now.as_millis()
            ],
            "an enrollment key with this ID",
        )
    }
    async fn usable_key(&self, hash: &SecretHash, _lock: bool) -> StoreResult<Option<UsableKey>> {
        let sql = format!("SELECT {} FROM enrollment_keys WHERE key_hash = ?1", rows::USABLE_KEY_COLUMNS);
        one(self.0, &sql, [hash.as_str()], |r| rows::usable_key(r))
    }
    async fn count_key_use(&self, id: &str) -> StoreResult<bool> {
        let sql = "UPDATE enrollment_keys SET uses = uses + 1 WHERE id = ?1 AND (reusable OR uses = 0)";
        Ok(exec(self.0, sql, [id])? == 1)
    }
    async fn set_key_revoked(&self, id: &str, owner_id: Option<&str>, now: Timestamp) -> StoreResult<bool> {
        let changed = exec(
            self.0,
            "UPDATE enrollment_keys SET revoked_at = ?1
             WHERE id = ?2 AND revoked_at IS NULL AND (?3 IS NULL OR owner_id = ?3)",
            params![now.as_millis(), id, owner_id],
        )?;
        Ok(changed > 0)
    }
}
