//! The statements behind [`latchkey_store::txn::Txn`] in SQLite, and how
//! rows are read. Every method is one statement; the operations that use
//! them live, once for every backend, in `latchkey_store::flows`.
//!
//! Locks are ignored: one writer thread runs transactions one at a time.

use crate::{audit, db_err, is_unique_violation};
use latchkey_domain::account::{AccountStatus, FailureRun};
use latchkey_domain::audit::{AuditEntry, AuditEvent};
use latchkey_domain::device::DeviceStatus;
use latchkey_domain::events::{Interval, Observers};
use latchkey_domain::merkle::{Hash, NodeId};
use latchkey_domain::pairing::PairingStatus;
use latchkey_domain::secret::SecretHash;
use latchkey_domain::trusted_session::SignedInvitation;
use latchkey_domain::Timestamp;
use latchkey_store::rows::{self, Columns};
use latchkey_store::sql;
use latchkey_store::sql_trust as st;
use latchkey_store::txn::{GrantCode, NewEvent, NewFamily, PairingCode, Txn};
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

latchkey_store::impl_columns!(Row<'_, '_>, |row, i| row.0.get(i).map_err(db_err));

/// Runs a statement; returns how many rows it changed.
pub(crate) fn exec(c: &Connection, sql: &str, p: impl Params) -> StoreResult<usize> {
    c.prepare_cached(sql).and_then(|mut s| s.execute(p)).map_err(db_err)
}

/// Runs an insert, naming `what` when a unique key is already taken.
pub(crate) fn insert(c: &Connection, sql: &str, p: impl Params, what: &'static str) -> StoreResult<()> {
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
    async fn first_use(&self, key: &[u8; 32], until: Timestamp, now: Timestamp) -> StoreResult<bool> {
        Ok(one(self.0, sql::FIRST_USE, params![&key[..], until.as_millis(), now.as_millis()], |_| Ok(()))?.is_some())
    }
    async fn try_seal_lock(&self) -> StoreResult<bool> {
        // The one writer already runs transactions one at a time.
        Ok(true)
    }
    async fn unsealed_audit(&self, limit: i64) -> StoreResult<Vec<AuditEntry>> {
        audit::unsealed(self.0, limit)
    }
    async fn audit_tree(&self, _lock: bool) -> StoreResult<AuditTreeState> {
        audit::tree(self.0)
    }
    async fn set_audit_tree(&self, state: &AuditTreeState) -> StoreResult<()> {
        audit::set_tree(self.0, state)
    }
    async fn set_audit_leaves(&self, leaves: &[(i64, i64)]) -> StoreResult<()> {
        audit::set_leaves(self.0, leaves)
    }
    async fn insert_audit_nodes(&self, nodes: &[(NodeId, Hash)]) -> StoreResult<()> {
        audit::insert_nodes(self.0, nodes)
    }
    async fn audit_nodes(&self, ids: &[NodeId]) -> StoreResult<Vec<(NodeId, Hash)>> {
        audit::nodes(self.0, ids)
    }
    async fn audit_leaves_of(&self, seqs: &[i64]) -> StoreResult<Vec<(i64, i64)>> {
        audit::leaves_of(self.0, seqs)
    }
    async fn audit_keys(&self) -> StoreResult<Vec<StoredAuditKey>> {
        audit::keys(self.0)
    }
    async fn insert_audit_key(&self, key: &StoredAuditKey) -> StoreResult<()> {
        audit::insert_key(self.0, key)
    }
    async fn set_audit_key_sealed(&self, key_id: u32, sealed: &[u8]) -> StoreResult<()> {
        exec(self.0, sql::SET_AUDIT_KEY_SEALED, params![sealed, i64::from(key_id)])?;
        Ok(())
    }
    async fn signing_keys(&self) -> StoreResult<Vec<StoredSigningKey>> {
        let sql = "SELECT kid, private_sealed, public_key, created_at, retired_at, alg FROM signing_keys
                   ORDER BY created_at DESC, kid";
        all(self.0, sql, [], |r| rows::signing_key(r))
    }
    async fn retire_signing_keys(&self, alg: IdTokenAlg, at: Timestamp) -> StoreResult<()> {
        exec(self.0, sql::RETIRE_SIGNING_KEYS, params![at.as_millis(), alg.as_str()])?;
        Ok(())
    }
    async fn insert_signing_key(&self, k: &StoredSigningKey) -> StoreResult<()> {
        let p = params![k.kid, k.sealed_private, k.public_key, k.created_at.as_millis(), k.alg.as_str()];
        insert(self.0, sql::INSERT_SIGNING_KEY, p, "signing key")
    }
    async fn set_signing_key_sealed(&self, kid: &str, sealed: &[u8]) -> StoreResult<()> {
        exec(self.0, sql::SET_SIGNING_KEY_SEALED, params![sealed, kid])?;
        Ok(())
    }
    async fn key_sealing(&self, _lock: bool) -> StoreResult<Option<String>> {
        Ok(one(self.0, sql::KEY_SEALING, [], |r| r.opt_text(0))?.flatten())
    }
    async fn set_key_sealing(&self, key_id: &str, now: Timestamp) -> StoreResult<()> {
        exec(self.0, sql::SET_KEY_SEALING, params![key_id, now.as_millis()])?;
        Ok(())
    }
    async fn retire_audit_keys(&self, at: Timestamp) -> StoreResult<()> {
        audit::retire_keys(self.0, at)
    }
    async fn announce_decided(&self, _id: &str) -> StoreResult<()> {
        // The store wakes local waiters itself, after the writer's commit.
        Ok(())
    }

    async fn username(&self, user_id: &str) -> StoreResult<String> {
        one(self.0, sql::USERNAME, [user_id], |r| r.text(0))?
            .ok_or_else(|| StoreError::Corrupt(format!("user {user_id} does not exist")))
    }
    async fn lock_owner(&self, _owner_id: &str) -> StoreResult<()> {
        Ok(())
    }
    async fn account(&self, user_id: &str, _lock: bool) -> StoreResult<Option<AccountStatus>> {
        one(self.0, sql::ACCOUNT_STATUS, [user_id], |r| rows::account_status(r))
    }
    async fn users(&self) -> StoreResult<Vec<UserRecord>> {
        all(self.0, sql::USERS, [], |r| rows::user(r))
    }
    async fn user(&self, user_id: &str) -> StoreResult<Option<UserRecord>> {
        one(self.0, sql::USER_BY_ID, [user_id], |r| rows::user(r))
    }
    async fn set_user_disabled(&self, user_id: &str, at: Option<Timestamp>) -> StoreResult<bool> {
        Ok(exec(self.0, sql::SET_USER_DISABLED, params![at.map(|t| t.as_millis()), user_id])? == 1)
    }
    async fn failure_run(&self, user_id: &str) -> StoreResult<Option<FailureRun>> {
        one(self.0, sql::FAILURE_RUN, [user_id], |r| rows::failure_run(r))
    }
    async fn set_failure_run(&self, user_id: &str, run: FailureRun) -> StoreResult<()> {
        exec(self.0, sql::SET_FAILURE_RUN, params![run.count, run.first_at.map(|t| t.as_millis()), user_id])?;
        Ok(())
    }
    async fn set_locked_until(&self, user_id: &str, until: Option<Timestamp>) -> StoreResult<()> {
        exec(self.0, sql::SET_LOCKED_UNTIL, params![until.map(|t| t.as_millis()), user_id])?;
        Ok(())
    }
    async fn add_network_failure(&self, user_id: &str, network: &str, now: Timestamp) -> StoreResult<()> {
        exec(self.0, sql::ADD_NETWORK_FAILURE, params![user_id, network, now.as_millis()])?;
        Ok(())
    }
    async fn prune_network_failures(&self, user_id: &str, before: Timestamp) -> StoreResult<()> {
        exec(self.0, sql::PRUNE_NETWORK_FAILURES, params![user_id, before.as_millis()])?;
        Ok(())
    }
    async fn network_failed_at(&self, user_id: &str, network: &str) -> StoreResult<Option<Timestamp>> {
        one(self.0, sql::NETWORK_FAILED_AT, [user_id, network], |r| r.at(0))
    }
    async fn clear_network_failures(&self, user_id: &str) -> StoreResult<()> {
        exec(self.0, sql::CLEAR_NETWORK_FAILURES, [user_id])?;
        Ok(())
    }
    async fn delete_user(&self, user_id: &str) -> StoreResult<bool> {
        Ok(exec(self.0, sql::DELETE_USER, [user_id])? == 1)
    }
    async fn set_password(&self, user_id: &str, password_hash: &str) -> StoreResult<bool> {
        Ok(exec(self.0, sql::SET_PASSWORD, [password_hash, user_id])? == 1)
    }
    async fn delete_sessions_of(&self, user_id: &str, keep: Option<&SecretHash>) -> StoreResult<u64> {
        let keep = keep.map_or("", |h| h.as_str());
        Ok(exec(self.0, sql::DELETE_SESSIONS_OF, [user_id, keep])? as u64)
    }
    async fn revoke_families_of(&self, user_id: &str, now: Timestamp) -> StoreResult<u64> {
        Ok(exec(self.0, sql::REVOKE_FAMILIES_OF, params![now.as_millis(), user_id])? as u64)
    }
    async fn deny_approved_grants_of(&self, user_id: &str) -> StoreResult<u64> {
        Ok(exec(self.0, sql::DENY_APPROVED_GRANTS_OF, [user_id])? as u64)
    }
    async fn cancel_approved_pairings_of(&self, user_id: &str) -> StoreResult<u64> {
        Ok(exec(self.0, sql::CANCEL_APPROVED_PAIRINGS_OF, [user_id])? as u64)
    }
    async fn revoke_enrollment_keys_of(&self, user_id: &str, now: Timestamp) -> StoreResult<u64> {
        Ok(exec(self.0, sql::REVOKE_ENROLLMENT_KEYS_OF, params![now.as_millis(), user_id])? as u64)
    }

    async fn insert_grant(&self, g: &NewDeviceGrant, now: Timestamp) -> StoreResult<()> {
        insert(
            self.0,
            sql::INSERT_GRANT,
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
        let sql = match code {
            GrantCode::Device => sql::GRANT_BY_DEVICE_CODE,
            GrantCode::User => sql::GRANT_BY_USER_CODE,
        };
        one(self.0, sql, [hash.as_str()], |r| rows::device_grant(r))
    }
    async fn set_grant_decided(&self, g: &DeviceGrantRecord) -> StoreResult<()> {
        exec(
            self.0,
            sql::SET_GRANT_DECIDED,
            params![g.state.status.as_str(), g.user_id, g.decided_at.map(|t| t.as_millis()), g.device_id, g.id],
        )?;
        Ok(())
    }
    async fn set_grant_polled(&self, id: &str, interval_secs: i64, now: Timestamp) -> StoreResult<()> {
        exec(self.0, sql::SET_GRANT_POLLED, params![now.as_millis(), interval_secs, id])?;
        Ok(())
    }
    async fn set_grant_consumed(&self, id: &str) -> StoreResult<bool> {
        Ok(exec(self.0, sql::SET_GRANT_CONSUMED, [id])? == 1)
    }

    async fn device(&self, id: &str, _lock: bool) -> StoreResult<Option<DeviceRecord>> {
        one(self.0, sql::DEVICE, [id], |r| rows::device(r))
    }
    async fn device_status(&self, id: &str) -> StoreResult<Option<DeviceStatus>> {
        one(self.0, sql::DEVICE_STATUS, [id], |r| rows::device_status(r))
    }
    async fn active_device_with_key(&self, owner_id: &str, jkt: &str) -> StoreResult<Option<DeviceRecord>> {
        one(self.0, sql::ACTIVE_DEVICE_WITH_KEY, [owner_id, jkt], |r| rows::device(r))
    }
    async fn active_device_count(&self, owner_id: &str) -> StoreResult<i64> {
        Ok(one(self.0, sql::ACTIVE_DEVICE_COUNT, [owner_id], |r| r.int(0))?.unwrap_or(0))
    }
    async fn device_slugs(&self, owner_id: &str) -> StoreResult<HashSet<String>> {
        let slugs = all(self.0, sql::DEVICE_SLUGS, [owner_id], |r| r.text(0))?;
        Ok(slugs.into_iter().collect())
    }
    async fn slug_taken(&self, owner_id: &str, slug: &str) -> StoreResult<bool> {
        Ok(one(self.0, sql::SLUG_TAKEN, [owner_id, slug], |_| Ok(()))?.is_some())
    }
    async fn insert_device(&self, d: &DeviceRecord) -> StoreResult<()> {
        insert(
            self.0,
            sql::INSERT_DEVICE,
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
        exec(self.0, sql::INSERT_LOCATION, params![device_id, location, now.as_millis()])?;
        Ok(())
    }
    async fn set_device_name(&self, id: &str, name: &str) -> StoreResult<()> {
        exec(self.0, sql::SET_DEVICE_NAME, params![name, id])?;
        Ok(())
    }
    async fn set_device_location(&self, id: &str, location: Option<&str>) -> StoreResult<()> {
        exec(self.0, sql::SET_DEVICE_LOCATION, params![location, id])?;
        Ok(())
    }
    async fn set_device_revoked(&self, id: &str, now: Timestamp) -> StoreResult<()> {
        exec(self.0, sql::SET_DEVICE_REVOKED, params![now.as_millis(), id])?;
        Ok(())
    }
    async fn touch_device(&self, id: &str, now: Timestamp) -> StoreResult<()> {
        exec(self.0, sql::TOUCH_DEVICE, params![now.as_millis(), id])?;
        Ok(())
    }

    async fn insert_family(&self, f: &NewFamily<'_>, now: Timestamp) -> StoreResult<()> {
        insert(
            self.0,
            sql::INSERT_FAMILY,
            params![
                f.id,
                f.client_id,
                f.user_id,
                f.scope,
                f.auth_time.as_millis(),
                now.as_millis(),
                f.device_id,
                f.jkt,
                f.ip,
                f.user_agent
            ],
            "a token family with this ID",
        )
    }
    async fn insert_refresh_token(&self, t: &NewRefreshToken, family_id: &str, now: Timestamp) -> StoreResult<()> {
        insert(
            self.0,
            sql::INSERT_REFRESH_TOKEN,
            params![t.token_hash.as_str(), family_id, now.as_millis(), t.expires_at.as_millis()],
            "a refresh token with this value",
        )
    }
    async fn refresh_token(
        &self,
        hash: &SecretHash,
        _lock: bool,
    ) -> StoreResult<Option<(RefreshTokenRecord, Timestamp)>> {
        one(self.0, sql::REFRESH_TOKEN, [hash.as_str()], |r| rows::refresh_token(r))
    }
    async fn set_family_tokens_rotated(&self, family_id: &str, now: Timestamp) -> StoreResult<()> {
        exec(self.0, sql::SET_FAMILY_TOKENS_ROTATED, params![now.as_millis(), family_id]).map(drop)
    }
    async fn set_refresh_rotated(&self, hash: &SecretHash, now: Timestamp) -> StoreResult<()> {
        exec(self.0, sql::SET_REFRESH_ROTATED, params![now.as_millis(), hash.as_str()])?;
        Ok(())
    }
    async fn live_family_owner(&self, family_id: &str, client_id: &str) -> StoreResult<Option<String>> {
        one(self.0, sql::LIVE_FAMILY_OWNER, [family_id, client_id], |r| r.text(0))
    }
    async fn set_family_revoked(&self, family_id: &str, now: Timestamp) -> StoreResult<bool> {
        Ok(exec(self.0, sql::SET_FAMILY_REVOKED, params![now.as_millis(), family_id])? > 0)
    }
    async fn lock_device_families(&self, _device_id: &str) -> StoreResult<()> {
        Ok(())
    }
    async fn event_kind(&self, client_id: &str, name: &str, _lock: bool) -> StoreResult<Option<EventKindRecord>> {
        one(self.0, sql::EVENT_KIND, [client_id, name], |r| rows::event_kind(r))
    }
    async fn insert_event_kind(&self, k: &EventKindRecord, now: Timestamp) -> StoreResult<()> {
        let spec = rows::kind_spec_text(&k.spec)?;
        let p = params![k.client_id, k.spec.name.as_str(), spec, k.retention_secs, now.as_millis()];
        insert(self.0, sql::INSERT_EVENT_KIND, p, "an event kind with this name")
    }
    async fn set_event_kind_retention(&self, client_id: &str, name: &str, secs: Option<i64>) -> StoreResult<()> {
        exec(self.0, sql::SET_EVENT_KIND_RETENTION, params![secs, client_id, name]).map(drop)
    }
    async fn event_kinds(&self, client_id: &str) -> StoreResult<Vec<EventKindRecord>> {
        all(self.0, sql::EVENT_KINDS, [client_id], |r| rows::event_kind(r))
    }
    async fn ensure_event_head(&self, user_id: &str) -> StoreResult<()> {
        exec(self.0, sql::ENSURE_EVENT_HEAD, [user_id]).map(drop)
    }
    async fn event_head(&self, user_id: &str, _lock: bool) -> StoreResult<i64> {
        Ok(one(self.0, sql::EVENT_HEAD, [user_id], |r| r.int(0))?.unwrap_or(0))
    }
    async fn set_event_head(&self, user_id: &str, seq: i64) -> StoreResult<()> {
        exec(self.0, sql::SET_EVENT_HEAD, params![seq, user_id]).map(drop)
    }
    async fn insert_event(&self, e: &NewEvent<'_>, seq: i64, now: Timestamp) -> StoreResult<bool> {
        let (start, end) = (e.interval.map(|i| i.start.as_millis()), e.interval.map(|i| i.end.as_millis()));
        let observers = rows::observers_text(e.observers);
        let p = params![
            e.id,
            e.user_id,
            e.client_id,
            e.kind,
            e.series,
            e.identity,
            start,
            end,
            now.as_millis(),
            seq,
            observers
        ];
        Ok(exec(self.0, sql::INSERT_EVENT, p)? > 0)
    }
    async fn insert_events(&self, events: &[(NewEvent<'_>, i64)], now: Timestamp) -> StoreResult<Vec<String>> {
        // In process there is no round trip to save, and one cached single-row
        // statement per event measured as fast as the multi-row one
        // (`sql::INSERT_EVENTS`, which PostgreSQL uses).
        let mut inserted = Vec::new();
        for (e, seq) in events {
            if self.insert_event(e, *seq, now).await? {
                inserted.push(e.id.to_string());
            }
        }
        Ok(inserted)
    }
    async fn event_observers(&self, id: &str) -> StoreResult<Option<Observers>> {
        one(self.0, sql::EVENT_OBSERVERS, [id], |r| rows::observers(r))
    }
    async fn set_event_observers(&self, id: &str, o: &Observers, seq: i64) -> StoreResult<()> {
        exec(self.0, sql::SET_EVENT_OBSERVERS, params![rows::observers_text(o), seq, id]).map(drop)
    }
    async fn set_event_seq(&self, id: &str, seq: i64) -> StoreResult<()> {
        exec(self.0, sql::SET_EVENT_SEQ, params![seq, id]).map(drop)
    }
    async fn add_part(&self, event_id: &str, device_id: &str, i: Interval) -> StoreResult<bool> {
        let p = params![event_id, device_id, i.start.as_millis(), i.end.as_millis()];
        Ok(exec(self.0, sql::ADD_PART, p)? > 0)
    }
    async fn series_events(&self, series: &str) -> StoreResult<Vec<(String, Interval)>> {
        all(self.0, sql::SERIES_EVENTS, [series], |r| rows::series_event(r))
    }
    async fn set_event_interval(&self, id: &str, i: Interval, o: &Observers, seq: i64) -> StoreResult<()> {
        let p = params![i.start.as_millis(), i.end.as_millis(), rows::observers_text(o), seq, id];
        exec(self.0, sql::SET_EVENT_INTERVAL, p).map(drop)
    }
    async fn set_merged_into(&self, id: &str, into: &str, seq: i64) -> StoreResult<()> {
        exec(self.0, sql::SET_MERGED_INTO, params![into, seq, id]).map(drop)
    }
    async fn move_parts(&self, from: &str, to: &str) -> StoreResult<()> {
        exec(self.0, sql::MOVE_PARTS, [to, from]).map(drop)
    }
    async fn events_after(
        &self,
        user_id: &str,
        client_id: &str,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<StoredEvent>> {
        all(self.0, sql::EVENTS_AFTER, params![user_id, client_id, after, limit], |r| rows::stored_event(r))
    }
    async fn parts_between(&self, user_id: &str, after: i64, last: i64) -> StoreResult<Vec<(String, EventPart)>> {
        all(self.0, sql::PARTS_BETWEEN, params![user_id, after, last], |r| rows::event_part(r))
    }
    async fn sign_ins(&self, user_id: &str, live_since: Timestamp, now: Timestamp) -> StoreResult<Vec<SignInRecord>> {
        all(self.0, sql::SIGN_INS, params![user_id, now.as_millis(), live_since.as_millis()], |r| rows::sign_in(r))
    }
    async fn delete_session_of(&self, id: &str, user_id: &str) -> StoreResult<bool> {
        Ok(exec(self.0, sql::DELETE_SESSION_OF, [id, user_id])? > 0)
    }
    async fn revoke_web_family(&self, id: &str, user_id: &str, now: Timestamp) -> StoreResult<Option<String>> {
        one(self.0, sql::REVOKE_WEB_FAMILY, params![now.as_millis(), id, user_id], |r| r.text(0))
    }
    async fn family_liveness(&self, family_id: &str) -> StoreResult<Option<(bool, AccountStatus)>> {
        one(self.0, sql::FAMILY_LIVENESS, [family_id], |r| rows::family_liveness(r))
    }
    async fn set_device_families_revoked(&self, device_id: &str, now: Timestamp) -> StoreResult<u64> {
        Ok(exec(self.0, sql::SET_DEVICE_FAMILIES_REVOKED, params![now.as_millis(), device_id])? as u64)
    }

    async fn insert_authorization_code(&self, c: &NewAuthorizationCode, now: Timestamp) -> StoreResult<()> {
        insert(
            self.0,
            sql::INSERT_AUTHORIZATION_CODE,
            params![
                c.code_hash.as_str(),
                c.client_id,
                c.user_id,
                c.redirect_uri,
                c.scope,
                c.nonce,
                c.code_challenge,
                c.auth_time.as_millis(),
                c.amr,
                c.ip,
                c.user_agent,
                now.as_millis(),
                c.expires_at.as_millis(),
            ],
            "an authorization code with this value",
        )
    }
    async fn authorization_code(&self, hash: &SecretHash, _lock: bool) -> StoreResult<Option<AuthorizationCodeRecord>> {
        one(self.0, sql::AUTHORIZATION_CODE, [hash.as_str()], |r| rows::authorization_code(r))
    }
    async fn set_code_used(&self, hash: &SecretHash, family_id: &str, now: Timestamp) -> StoreResult<bool> {
        Ok(exec(self.0, sql::SET_CODE_USED, params![now.as_millis(), family_id, hash.as_str()])? == 1)
    }
    async fn revoke_app_families_of(&self, user_id: &str, client_id: &str, now: Timestamp) -> StoreResult<u64> {
        Ok(exec(self.0, sql::REVOKE_APP_FAMILIES_OF, params![now.as_millis(), user_id, client_id])? as u64)
    }
    async fn consent(&self, user_id: &str, client_id: &str) -> StoreResult<Option<ConsentRecord>> {
        one(self.0, sql::CONSENT, [user_id, client_id], |r| rows::consent(r))
    }
    async fn consents_of(&self, user_id: &str) -> StoreResult<Vec<ConsentRecord>> {
        all(self.0, sql::CONSENTS_OF, [user_id], |r| rows::consent(r))
    }
    async fn upsert_consent(&self, c: &ConsentRecord) -> StoreResult<()> {
        exec(self.0, sql::UPSERT_CONSENT, params![c.user_id, c.client_id, c.scope, c.granted_at.as_millis()])?;
        Ok(())
    }
    async fn delete_consent(&self, user_id: &str, client_id: &str) -> StoreResult<bool> {
        Ok(exec(self.0, sql::DELETE_CONSENT, [user_id, client_id])? > 0)
    }

    async fn passkeys_of(&self, user_id: &str) -> StoreResult<Vec<PasskeyRecord>> {
        all(self.0, sql::PASSKEYS_OF, [user_id], |r| rows::passkey(r))
    }
    async fn passkey_by_credential(&self, credential_id: &str) -> StoreResult<Option<PasskeyRecord>> {
        one(self.0, sql::PASSKEY_BY_CREDENTIAL, [credential_id], |r| rows::passkey(r))
    }
    async fn insert_passkey(&self, p: &NewPasskey, now: Timestamp) -> StoreResult<()> {
        let params = params![p.id, p.user_id, p.credential_id, p.passkey, p.name, now.as_millis()];
        insert(self.0, sql::INSERT_PASSKEY, params, "a passkey with this credential")
    }
    async fn delete_passkey(&self, id: &str, user_id: &str) -> StoreResult<Option<String>> {
        one(self.0, sql::DELETE_PASSKEY, [id, user_id], |r| r.text(0))
    }
    async fn count_passkeys(&self, user_id: &str) -> StoreResult<i64> {
        Ok(one(self.0, sql::COUNT_PASSKEYS, [user_id], |r| r.int(0))?.unwrap_or(0))
    }
    async fn set_passkey_used(&self, id: &str, user_id: &str, passkey: &str, now: Timestamp) -> StoreResult<bool> {
        Ok(exec(self.0, sql::SET_PASSKEY_USED, params![passkey, now.as_millis(), id, user_id])? == 1)
    }
    async fn insert_ceremony(&self, c: &NewCeremony, now: Timestamp) -> StoreResult<()> {
        let p =
            params![c.id_hash.as_str(), c.kind.as_str(), c.state, c.user_id, now.as_millis(), c.expires_at.as_millis()];
        insert(self.0, sql::INSERT_CEREMONY, p, "a ceremony with this ID")
    }
    async fn take_ceremony(
        &self,
        id_hash: &SecretHash,
        kind: latchkey_domain::passkey::CeremonyKind,
        now: Timestamp,
    ) -> StoreResult<Option<CeremonyRecord>> {
        let p = params![id_hash.as_str(), kind.as_str(), now.as_millis()];
        one(self.0, sql::TAKE_CEREMONY, p, |r| rows::ceremony(r))
    }
    async fn insert_web_session(&self, s: &NewSession, now: Timestamp) -> StoreResult<()> {
        crate::users::insert_session(self.0, s, now)
    }

    async fn insert_pairing(&self, p: &NewPairing, now: Timestamp) -> StoreResult<()> {
        insert(
            self.0,
            sql::INSERT_PAIRING,
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
                p.continues,
            ],
            "a pairing with this code",
        )
    }
    async fn pairing(&self, code: PairingCode, hash: &SecretHash, _lock: bool) -> StoreResult<Option<PairingRecord>> {
        let sql = match code {
            PairingCode::Phone => sql::PAIRING_BY_PHONE_CODE,
            PairingCode::Desktop => sql::PAIRING_BY_DESKTOP_SECRET,
        };
        one(self.0, sql, [hash.as_str()], |r| rows::pairing(r))
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
            sql::SET_PAIRING_STATUS,
            params![to.as_str(), decided_by, now.as_millis(), id, from.as_str()],
        )?;
        Ok(changed == 1)
    }

    async fn insert_enrollment_key(&self, k: &NewEnrollmentKey, now: Timestamp) -> StoreResult<()> {
        insert(
            self.0,
            sql::INSERT_ENROLLMENT_KEY,
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
        one(self.0, sql::USABLE_KEY, [hash.as_str()], |r| rows::usable_key(r))
    }
    async fn count_key_use(&self, id: &str) -> StoreResult<bool> {
        Ok(exec(self.0, sql::COUNT_KEY_USE, [id])? == 1)
    }
    async fn set_key_revoked(&self, id: &str, owner_id: Option<&str>, now: Timestamp) -> StoreResult<bool> {
        let changed = exec(self.0, sql::SET_KEY_REVOKED, params![now.as_millis(), id, owner_id])?;
        Ok(changed > 0)
    }
    async fn devices_with_slug(&self, owner_id: &str, slug: &str) -> StoreResult<Vec<DeviceRecord>> {
        all(self.0, sql::DEVICES_WITH_SLUG, [owner_id, slug], |r| rows::device(r))
    }
    async fn rotations(&self, device_id: &str) -> StoreResult<Vec<RotationRecord>> {
        all(self.0, st::ROTATIONS, [device_id], |r| rows::rotation(r))
    }
    async fn insert_rotation(&self, device_id: &str, r: &RotationRecord, now: Timestamp) -> StoreResult<()> {
        let p = params![device_id, r.old_key, r.new_key, r.signature, now.as_millis()];
        insert(self.0, st::INSERT_ROTATION, p, "a rotation of this key")
    }
    async fn set_device_key(&self, device_id: &str, jwk: &str, jkt: &str) -> StoreResult<()> {
        exec(self.0, st::SET_DEVICE_KEY, params![jwk, jkt, device_id]).map(drop)
    }
    async fn session_key(&self, device_id: &str) -> StoreResult<Option<SessionKeyRecord>> {
        one(self.0, st::SESSION_KEY, [device_id], |r| rows::session_key(r))
    }
    async fn upsert_session_key(&self, device_id: &str, k: &SessionKeyRecord, now: Timestamp) -> StoreResult<()> {
        let p = params![device_id, i64::from(k.protocol), k.key, k.signed_by, k.signature, now.as_millis()];
        exec(self.0, st::UPSERT_SESSION_KEY, p).map(drop)
    }
    async fn upsert_trust(&self, t: &NewTrust, truster_key: &str, now: Timestamp) -> StoreResult<()> {
        let p = params![
            t.truster,
            t.trustee,
            truster_key,
            t.trustee_key,
            t.issued_at.as_millis(),
            t.signature,
            now.as_millis()
        ];
        exec(self.0, st::UPSERT_TRUST, p).map(drop)
    }
    async fn delete_trust(&self, truster: &str, trustee: &str) -> StoreResult<bool> {
        Ok(exec(self.0, st::DELETE_TRUST, [truster, trustee])? > 0)
    }
    async fn delete_trusts_of_device(&self, device_id: &str) -> StoreResult<u64> {
        Ok(exec(self.0, st::DELETE_TRUSTS_OF_DEVICE, [device_id])? as u64)
    }
    async fn trusts_of_user(&self, user_id: &str) -> StoreResult<Vec<TrustRecord>> {
        all(self.0, st::TRUSTS_OF_USER, [user_id], |r| rows::trust(r))
    }
    async fn channel_count(&self, device_id: &str, since: Timestamp) -> StoreResult<i64> {
        Ok(one(self.0, st::CHANNEL_COUNT, params![device_id, since.as_millis()], |r| r.int(0))?.unwrap_or(0))
    }
    async fn insert_channel(&self, id: &str, device_id: &str, now: Timestamp) -> StoreResult<()> {
        insert(self.0, st::INSERT_CHANNEL, params![id, device_id, now.as_millis()], "a channel with this ID")
    }
    async fn touch_channel(&self, id: &str, now: Timestamp) -> StoreResult<()> {
        exec(self.0, st::TOUCH_CHANNEL, params![now.as_millis(), id]).map(drop)
    }
    async fn delete_channel(&self, id: &str) -> StoreResult<()> {
        exec(self.0, st::DELETE_CHANNEL, [id]).map(drop)
    }
    async fn insert_session(&self, s: &TrustedSessionRecord) -> StoreResult<()> {
        let p = params![
            s.id,
            s.user_id,
            s.creator,
            i64::from(s.epoch),
            i64::from(s.protocol),
            s.created_at.as_millis(),
            s.expires_at.as_millis()
        ];
        insert(self.0, st::INSERT_SESSION, p, "a session with this ID")
    }
    async fn session(&self, id: &str, _lock: bool) -> StoreResult<Option<TrustedSessionRecord>> {
        one(self.0, st::SESSION, [id], |r| rows::trusted_session(r))
    }
    async fn sessions_of_device(&self, device_id: &str, now: Timestamp) -> StoreResult<Vec<TrustedSessionRecord>> {
        all(self.0, st::SESSIONS_OF_DEVICE, params![now.as_millis(), device_id], |r| rows::trusted_session(r))
    }
    async fn expired_sessions(&self, now: Timestamp, limit: i64) -> StoreResult<Vec<TrustedSessionRecord>> {
        all(self.0, st::EXPIRED_SESSIONS, params![now.as_millis(), limit], |r| rows::trusted_session(r))
    }
    async fn set_session_epoch(&self, id: &str, epoch: u32, rekey_needed: bool) -> StoreResult<()> {
        exec(self.0, st::SET_SESSION_EPOCH, params![i64::from(epoch), i64::from(rekey_needed), id]).map(drop)
    }
    async fn close_session(&self, id: &str, now: Timestamp) -> StoreResult<bool> {
        Ok(exec(self.0, st::CLOSE_SESSION, params![now.as_millis(), id])? > 0)
    }
    async fn insert_member(
        &self,
        session_id: &str,
        device_id: &str,
        status: &str,
        joined_epoch: Option<u32>,
        now: Timestamp,
    ) -> StoreResult<()> {
        let p = params![session_id, device_id, status, joined_epoch.map(i64::from), now.as_millis()];
        insert(self.0, st::INSERT_MEMBER, p, "this member")
    }
    async fn members(&self, session_id: &str) -> StoreResult<Vec<(String, String, Option<i64>)>> {
        all(self.0, st::MEMBERS, [session_id], |r| rows::member(r))
    }
    async fn set_member(
        &self,
        session_id: &str,
        device_id: &str,
        status: &str,
        joined_epoch: Option<u32>,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let p = params![status, joined_epoch.map(i64::from), now.as_millis(), session_id, device_id];
        Ok(exec(self.0, st::SET_MEMBER, p)? > 0)
    }
    async fn open_sessions_with_member(&self, device_id: &str) -> StoreResult<Vec<String>> {
        all(self.0, st::OPEN_SESSIONS_WITH_MEMBER, [device_id], |r| r.text(0))
    }
    async fn invited_count(&self, device_id: &str) -> StoreResult<i64> {
        Ok(one(self.0, st::INVITED_COUNT, [device_id], |r| r.int(0))?.unwrap_or(0))
    }
    async fn insert_invitation(&self, inv: &SignedInvitation) -> StoreResult<()> {
        let i = &inv.invitation;
        let body = rows::invitation_text(inv)?;
        let p =
            params![i.nonce, i.descriptor.session_id, i.recipient, i64::from(i.descriptor.epoch), body, i.expires_at];
        insert(self.0, st::INSERT_INVITATION, p, "an invitation with this nonce")
    }
    async fn invitation(&self, nonce: &str) -> StoreResult<Option<InvitationState>> {
        one(self.0, st::INVITATION, [nonce], |r| rows::invitation_state(r))
    }
    async fn use_invitation(&self, nonce: &str, now: Timestamp) -> StoreResult<bool> {
        Ok(exec(self.0, st::USE_INVITATION, params![now.as_millis(), nonce])? > 0)
    }
    async fn pending_invitations(&self, device_id: &str, now: Timestamp) -> StoreResult<Vec<SignedInvitation>> {
        all(self.0, st::PENDING_INVITATIONS, params![device_id, now.as_millis()], |r| rows::invitation_body(r))
    }
    async fn has_pending_invitation(&self, session_id: &str, device_id: &str, now: Timestamp) -> StoreResult<bool> {
        let p = params![session_id, device_id, now.as_millis()];
        Ok(one(self.0, st::HAS_PENDING_INVITATION, p, |r| r.int(0))?.unwrap_or(0) > 0)
    }
    async fn ensure_log_head(&self, user_id: &str) -> StoreResult<()> {
        exec(self.0, st::ENSURE_LOG_HEAD, [user_id]).map(drop)
    }
    async fn log_head(&self, user_id: &str, _lock: bool) -> StoreResult<i64> {
        Ok(one(self.0, st::LOG_HEAD, [user_id], |r| r.int(0))?.unwrap_or(0))
    }
    async fn set_log_head(&self, user_id: &str, pos: i64) -> StoreResult<()> {
        exec(self.0, st::SET_LOG_HEAD, params![pos, user_id]).map(drop)
    }
    async fn insert_log(&self, user_id: &str, e: &LogEntry, now: Timestamp) -> StoreResult<()> {
        let (sender, seq, body) = match &e.message {
            Some((s, q, b)) => (Some(s.as_str()), Some(*q), Some(b.as_str())),
            None => (None, None, None),
        };
        let (event, device) = match &e.event {
            Some((ev, d)) => (Some(ev.as_str()), d.as_deref()),
            None => (None, None),
        };
        let p = params![
            user_id,
            e.pos,
            e.session_id,
            i64::from(e.epoch),
            sender,
            seq,
            body,
            event,
            device,
            now.as_millis()
        ];
        insert(self.0, st::INSERT_LOG, p, "a log entry at this position")
    }
    async fn member_seq(&self, session_id: &str, device_id: &str) -> StoreResult<i64> {
        Ok(one(self.0, st::MEMBER_SEQ, [session_id, device_id], |r| r.int(0))?.unwrap_or(0))
    }
    async fn set_member_seq(&self, session_id: &str, device_id: &str, seq: i64) -> StoreResult<()> {
        exec(self.0, st::SET_MEMBER_SEQ, params![seq, session_id, device_id]).map(drop)
    }
    async fn prune_log(&self, session_id: &str, keep: i64) -> StoreResult<u64> {
        Ok(exec(self.0, st::PRUNE_LOG, params![session_id, keep])? as u64)
    }
    async fn set_pruned(&self, session_id: &str) -> StoreResult<()> {
        exec(self.0, st::SET_PRUNED, [session_id]).map(drop)
    }
    async fn log_after(&self, device_id: &str, user_id: &str, after: i64, limit: i64) -> StoreResult<Vec<LogEntry>> {
        all(self.0, st::LOG_AFTER, params![device_id, user_id, after, limit], |r| rows::log_entry(r))
    }
    async fn channel_gap(&self, device_id: &str) -> StoreResult<i64> {
        Ok(one(self.0, st::CHANNEL_GAP, [device_id], |r| r.int(0))?.unwrap_or(0))
    }

    async fn device_sign_ins_by_day(&self, user_id: &str, since: Timestamp) -> StoreResult<Vec<DaySignIns>> {
        all(self.0, sql::DEVICE_SIGN_INS_BY_DAY, params![user_id, since.as_millis()], |r| {
            Ok(DaySignIns { device_id: r.text(0)?, day: r.int(1)?, count: r.int(2)? })
        })
    }
    async fn logins_by_hour(&self, since: Timestamp) -> StoreResult<Vec<(String, i64, i64)>> {
        all(self.0, sql::LOGINS_BY_HOUR, [since.as_millis()], |r| Ok((r.text(0)?, r.int(1)?, r.int(2)?)))
    }
    async fn expired_logins_by_hour(&self, since: Timestamp, before: Timestamp) -> StoreResult<Vec<(i64, i64)>> {
        all(self.0, sql::EXPIRED_LOGINS_BY_HOUR, [since.as_millis(), before.as_millis()], |r| {
            Ok((r.int(0)?, r.int(1)?))
        })
    }
    async fn active_totals(&self) -> StoreResult<(i64, i64)> {
        Ok(one(self.0, sql::ACTIVE_TOTALS, [], |r| Ok((r.int(0)?, r.int(1)?)))?.unwrap_or((0, 0)))
    }
}
