//! The statements behind [`latchkey_store::txn::Txn`] in PostgreSQL, and how
//! rows are read. Every method is one statement; the operations that use
//! them live, once for every backend, in `latchkey_store::flows`.
//!
//! `lock` becomes `FOR UPDATE`, so callers on any replica take turns on the
//! row they contend for. Lock order, to keep clear of deadlocks: grant,
//! pairing or enrollment key, then owner, then audit head; a device's token
//! families before the device itself (a rotation locks its family, then
//! touches the device's `last_seen_at`).

use crate::audit;
use crate::db::{conflict, describe, DbResult, Fail};
use deadpool_postgres::GenericClient;
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
use std::collections::HashSet;
use tokio_postgres::types::ToSql;

/// The channel decided grant and pairing IDs are announced on, to every replica's listener
/// (named before pairings shared it; kept so replicas of mixed versions still hear each other).
pub(crate) const CHANNEL: &str = "latchkey_grants";

/// A transaction (or, for single-statement reads, a plain pooled connection).
pub(crate) struct Pg<'c, C>(pub &'c C);

/// A PostgreSQL row read through [`Columns`].
pub(crate) struct Row<'a>(pub &'a tokio_postgres::Row);

fn decode_err(e: tokio_postgres::Error) -> StoreError {
    StoreError::Database(describe(&e))
}

latchkey_store::impl_columns!(Row<'_>, |row, i| row.0.try_get(i).map_err(decode_err));

/// Statement parameters.
type Params<'p> = [&'p (dyn ToSql + Sync)];

/// Runs a statement; returns how many rows it changed.
pub(crate) async fn exec(c: &impl GenericClient, sql: &str, p: &Params<'_>) -> DbResult<u64> {
    let s = c.prepare_cached(sql).await?;
    Ok(c.execute(&s, p).await?)
}

/// Runs an insert, naming `what` when a unique key is already taken.
pub(crate) async fn insert(c: &impl GenericClient, sql: &str, p: &Params<'_>, what: &'static str) -> DbResult<()> {
    let s = c.prepare_cached(sql).await?;
    c.execute(&s, p).await.map_err(conflict(what))?;
    Ok(())
}

/// The first row of a query, decoded.
pub(crate) async fn one<T>(
    c: &impl GenericClient,
    sql: &str,
    p: &Params<'_>,
    decode: impl Fn(&Row<'_>) -> StoreResult<T>,
) -> DbResult<Option<T>> {
    let s = c.prepare_cached(sql).await?;
    match c.query_opt(&s, p).await? {
        Some(r) => Ok(Some(decode(&Row(&r))?)),
        None => Ok(None),
    }
}

/// Every row of a query, decoded.
pub(crate) async fn all<T>(
    c: &impl GenericClient,
    sql: &str,
    p: &Params<'_>,
    decode: impl Fn(&Row<'_>) -> StoreResult<T>,
) -> DbResult<Vec<T>> {
    let s = c.prepare_cached(sql).await?;
    let rows = c.query(&s, p).await?;
    Ok(rows.iter().map(|r| decode(&Row(r))).collect::<StoreResult<_>>()?)
}

/// Inserts [`sql::EVENT_INSERT_ROWS`] events with [`sql::INSERT_EVENTS`]; the IDs it stored.
async fn insert_event_rows(
    c: &impl GenericClient,
    events: &[(NewEvent<'_>, i64)],
    now: Timestamp,
) -> DbResult<Vec<String>> {
    let computed: Vec<(Option<i64>, Option<i64>, String)> = events
        .iter()
        .map(|(e, _)| {
            let (start, end) = (e.interval.map(|i| i.start.as_millis()), e.interval.map(|i| i.end.as_millis()));
            (start, end, rows::observers_text(e.observers))
        })
        .collect();
    let created = now.as_millis();
    let mut p: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(events.len() * 11);
    for ((e, seq), (start, end, observers)) in events.iter().zip(&computed) {
        p.extend([
            &e.id as &(dyn ToSql + Sync),
            &e.user_id,
            &e.client_id,
            &e.kind,
            &e.series,
            &e.identity,
            start,
            end,
            &created,
            seq,
            observers,
        ]);
    }
    all(c, &sql::INSERT_EVENTS, &p, |r| r.text(0)).await
}

/// `sql`, holding the rows it reads until commit when `lock`.
fn locked(sql: &str, lock: bool) -> std::borrow::Cow<'_, str> {
    with_lock(sql, lock.then_some("FOR UPDATE"))
}

/// `sql` with a row-locking clause, if any.
fn with_lock<'s>(sql: &'s str, clause: Option<&str>) -> std::borrow::Cow<'s, str> {
    match clause {
        Some(clause) => format!("{sql} {clause}").into(),
        None => sql.into(),
    }
}

impl<C: GenericClient + Sync> Txn for Pg<'_, C> {
    type Error = Fail;

    async fn append_audit(&self, event: &AuditEvent, now: Timestamp) -> DbResult<()> {
        audit::append(self.0, event, now).await
    }
    async fn first_use(&self, key: &[u8; 32], until: Timestamp, now: Timestamp) -> DbResult<bool> {
        Ok(one(self.0, sql::FIRST_USE, &[&&key[..], &until.as_millis(), &now.as_millis()], |_| Ok(())).await?.is_some())
    }
    async fn try_seal_lock(&self) -> DbResult<bool> {
        audit::try_seal_lock(self.0).await
    }
    async fn unsealed_audit(&self, limit: i64) -> DbResult<Vec<AuditEntry>> {
        audit::unsealed(self.0, limit).await
    }
    async fn audit_tree(&self, lock: bool) -> DbResult<AuditTreeState> {
        audit::tree(self.0, lock).await
    }
    async fn set_audit_tree(&self, state: &AuditTreeState) -> DbResult<()> {
        audit::set_tree(self.0, state).await
    }
    async fn set_audit_leaves(&self, leaves: &[(i64, i64)]) -> DbResult<()> {
        audit::set_leaves(self.0, leaves).await
    }
    async fn insert_audit_nodes(&self, nodes: &[(NodeId, Hash)]) -> DbResult<()> {
        audit::insert_nodes(self.0, nodes).await
    }
    async fn audit_nodes(&self, ids: &[NodeId]) -> DbResult<Vec<(NodeId, Hash)>> {
        audit::nodes(self.0, ids).await
    }
    async fn audit_leaves_of(&self, seqs: &[i64]) -> DbResult<Vec<(i64, i64)>> {
        audit::leaves_of(self.0, seqs).await
    }
    async fn audit_keys(&self) -> DbResult<Vec<StoredAuditKey>> {
        audit::keys(self.0).await
    }
    async fn insert_audit_key(&self, key: &StoredAuditKey) -> DbResult<()> {
        audit::insert_key(self.0, key).await
    }
    async fn set_audit_key_sealed(&self, key_id: u32, sealed: &[u8]) -> DbResult<()> {
        exec(self.0, sql::SET_AUDIT_KEY_SEALED, &[&sealed, &i64::from(key_id)]).await?;
        Ok(())
    }
    async fn signing_keys(&self) -> DbResult<Vec<StoredSigningKey>> {
        // Byte order on ties, as SQLite sorts, whatever the database's collation.
        let sql = "SELECT kid, private_sealed, public_key, created_at, retired_at, alg FROM signing_keys
                   ORDER BY created_at DESC, kid COLLATE \"C\"";
        all(self.0, sql, &[], |r| rows::signing_key(r)).await
    }
    async fn retire_signing_keys(&self, alg: IdTokenAlg, at: Timestamp) -> DbResult<()> {
        // Serialises rotations across replicas, so exactly one key per algorithm is left unretired.
        self.0.batch_execute("LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE").await?;
        exec(self.0, sql::RETIRE_SIGNING_KEYS, &[&at.as_millis(), &alg.as_str()]).await?;
        Ok(())
    }
    async fn insert_signing_key(&self, k: &StoredSigningKey) -> DbResult<()> {
        let alg = k.alg.as_str();
        let p: &Params<'_> = &[&k.kid, &k.sealed_private, &k.public_key, &k.created_at.as_millis(), &alg];
        insert(self.0, sql::INSERT_SIGNING_KEY, p, "signing key").await
    }
    async fn set_signing_key_sealed(&self, kid: &str, sealed: &[u8]) -> DbResult<()> {
        exec(self.0, sql::SET_SIGNING_KEY_SEALED, &[&sealed, &kid]).await?;
        Ok(())
    }
    async fn key_sealing(&self, lock: bool) -> DbResult<Option<String>> {
        Ok(one(self.0, &locked(sql::KEY_SEALING, lock), &[], |r| r.opt_text(0)).await?.flatten())
    }
    async fn set_key_sealing(&self, key_id: &str, now: Timestamp) -> DbResult<()> {
        exec(self.0, sql::SET_KEY_SEALING, &[&key_id, &now.as_millis()]).await?;
        Ok(())
    }
    async fn retire_audit_keys(&self, at: Timestamp) -> DbResult<()> {
        audit::retire_keys(self.0, at).await
    }
    async fn announce_decided(&self, id: &str) -> DbResult<()> {
        // Queued by PostgreSQL and delivered to every listener only if this transaction commits.
        exec(self.0, "SELECT pg_notify($1, $2)", &[&CHANNEL, &id]).await?;
        Ok(())
    }

    async fn username(&self, user_id: &str) -> DbResult<String> {
        one(self.0, sql::USERNAME, &[&user_id], |r| r.text(0))
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("user {user_id} does not exist")).into())
    }
    async fn lock_owner(&self, owner_id: &str) -> DbResult<()> {
        // `FOR NO KEY UPDATE` queues registrations behind one another without blocking
        // the key-share locks that inserting rows referencing the user takes.
        exec(self.0, "SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE", &[&owner_id]).await?;
        Ok(())
    }

    async fn account(&self, user_id: &str, lock: bool) -> DbResult<Option<AccountStatus>> {
        // FOR SHARE conflicts with the UPDATE that disables: a disable waits for a
        // transaction holding this, and one that waited reads the disable.
        one(self.0, &with_lock(sql::ACCOUNT_STATUS, lock.then_some("FOR SHARE")), &[&user_id], |r| {
            rows::account_status(r)
        })
        .await
    }
    async fn users(&self) -> DbResult<Vec<UserRecord>> {
        all(self.0, sql::USERS, &[], |r| rows::user(r)).await
    }
    async fn user(&self, user_id: &str) -> DbResult<Option<UserRecord>> {
        one(self.0, sql::USER_BY_ID, &[&user_id], |r| rows::user(r)).await
    }
    async fn set_user_disabled(&self, user_id: &str, at: Option<Timestamp>) -> DbResult<bool> {
        Ok(exec(self.0, sql::SET_USER_DISABLED, &[&at.map(|t| t.as_millis()), &user_id]).await? == 1)
    }
    async fn failure_run(&self, user_id: &str) -> DbResult<Option<FailureRun>> {
        one(self.0, sql::FAILURE_RUN, &[&user_id], |r| rows::failure_run(r)).await
    }
    async fn set_failure_run(&self, user_id: &str, run: FailureRun) -> DbResult<()> {
        exec(self.0, sql::SET_FAILURE_RUN, &[&run.count, &run.first_at.map(|t| t.as_millis()), &user_id]).await?;
        Ok(())
    }
    async fn set_locked_until(&self, user_id: &str, until: Option<Timestamp>) -> DbResult<()> {
        exec(self.0, sql::SET_LOCKED_UNTIL, &[&until.map(|t| t.as_millis()), &user_id]).await?;
        Ok(())
    }
    async fn add_network_failure(&self, user_id: &str, network: &str, now: Timestamp) -> DbResult<()> {
        exec(self.0, sql::ADD_NETWORK_FAILURE, &[&user_id, &network, &now.as_millis()]).await?;
        Ok(())
    }
    async fn prune_network_failures(&self, user_id: &str, before: Timestamp) -> DbResult<()> {
        exec(self.0, sql::PRUNE_NETWORK_FAILURES, &[&user_id, &before.as_millis()]).await?;
        Ok(())
    }
    async fn network_failed_at(&self, user_id: &str, network: &str) -> DbResult<Option<Timestamp>> {
        one(self.0, sql::NETWORK_FAILED_AT, &[&user_id, &network], |r| r.at(0)).await
    }
    async fn clear_network_failures(&self, user_id: &str) -> DbResult<()> {
        exec(self.0, sql::CLEAR_NETWORK_FAILURES, &[&user_id]).await?;
        Ok(())
    }
    async fn delete_user(&self, user_id: &str) -> DbResult<bool> {
        Ok(exec(self.0, sql::DELETE_USER, &[&user_id]).await? == 1)
    }
    async fn set_password(&self, user_id: &str, password_hash: &str) -> DbResult<bool> {
        Ok(exec(self.0, sql::SET_PASSWORD, &[&password_hash, &user_id]).await? == 1)
    }
    async fn delete_sessions_of(&self, user_id: &str, keep: Option<&SecretHash>) -> DbResult<u64> {
        let keep = keep.map_or("", |h| h.as_str());
        exec(self.0, sql::DELETE_SESSIONS_OF, &[&user_id, &keep]).await
    }
    async fn revoke_families_of(&self, user_id: &str, now: Timestamp) -> DbResult<u64> {
        exec(self.0, sql::REVOKE_FAMILIES_OF, &[&now.as_millis(), &user_id]).await
    }
    async fn deny_approved_grants_of(&self, user_id: &str) -> DbResult<u64> {
        exec(self.0, sql::DENY_APPROVED_GRANTS_OF, &[&user_id]).await
    }
    async fn cancel_approved_pairings_of(&self, user_id: &str) -> DbResult<u64> {
        exec(self.0, sql::CANCEL_APPROVED_PAIRINGS_OF, &[&user_id]).await
    }
    async fn revoke_enrollment_keys_of(&self, user_id: &str, now: Timestamp) -> DbResult<u64> {
        exec(self.0, sql::REVOKE_ENROLLMENT_KEYS_OF, &[&now.as_millis(), &user_id]).await
    }

    async fn insert_grant(&self, g: &NewDeviceGrant, now: Timestamp) -> DbResult<()> {
        insert(
            self.0,
            sql::INSERT_GRANT,
            &[
                &g.id,
                &g.client_id,
                &g.scope,
                &g.device_code_hash.as_str(),
                &g.user_code_hash.as_str(),
                &g.state.status.as_str(),
                &now.as_millis(),
                &g.state.expires_at.as_millis(),
                &g.state.interval_secs,
                &g.requester.ip,
                &g.requester.user_agent,
                &g.requester.device_name,
                &g.device.slug,
                &g.device.location,
                &g.device.platform,
                &g.device.client_version,
                &g.device.public_jwk,
                &g.device.jkt,
            ],
            "a grant with this code",
        )
        .await
    }
    async fn grant(&self, code: GrantCode, hash: &SecretHash, lock: bool) -> DbResult<Option<DeviceGrantRecord>> {
        let sql = match code {
            GrantCode::Device => sql::GRANT_BY_DEVICE_CODE,
            GrantCode::User => sql::GRANT_BY_USER_CODE,
        };
        one(self.0, &locked(sql, lock), &[&hash.as_str()], |r| rows::device_grant(r)).await
    }
    async fn set_grant_decided(&self, g: &DeviceGrantRecord) -> DbResult<()> {
        exec(
            self.0,
            sql::SET_GRANT_DECIDED,
            &[&g.state.status.as_str(), &g.user_id, &g.decided_at.map(|t| t.as_millis()), &g.device_id, &g.id],
        )
        .await?;
        Ok(())
    }
    async fn set_grant_polled(&self, id: &str, interval_secs: i64, now: Timestamp) -> DbResult<()> {
        exec(self.0, sql::SET_GRANT_POLLED, &[&now.as_millis(), &interval_secs, &id]).await?;
        Ok(())
    }
    async fn set_grant_consumed(&self, id: &str) -> DbResult<bool> {
        Ok(exec(self.0, sql::SET_GRANT_CONSUMED, &[&id]).await? == 1)
    }

    async fn device(&self, id: &str, lock: bool) -> DbResult<Option<DeviceRecord>> {
        one(self.0, &locked(sql::DEVICE, lock), &[&id], |r| rows::device(r)).await
    }
    async fn device_status(&self, id: &str) -> DbResult<Option<DeviceStatus>> {
        one(self.0, sql::DEVICE_STATUS, &[&id], |r| rows::device_status(r)).await
    }
    async fn active_device_with_key(&self, owner_id: &str, jkt: &str) -> DbResult<Option<DeviceRecord>> {
        one(self.0, sql::ACTIVE_DEVICE_WITH_KEY, &[&owner_id, &jkt], |r| rows::device(r)).await
    }
    async fn active_device_count(&self, owner_id: &str) -> DbResult<i64> {
        Ok(one(self.0, sql::ACTIVE_DEVICE_COUNT, &[&owner_id], |r| r.int(0)).await?.unwrap_or(0))
    }
    async fn device_slugs(&self, owner_id: &str) -> DbResult<HashSet<String>> {
        let slugs = all(self.0, sql::DEVICE_SLUGS, &[&owner_id], |r| r.text(0)).await?;
        Ok(slugs.into_iter().collect())
    }
    async fn slug_taken(&self, owner_id: &str, slug: &str) -> DbResult<bool> {
        Ok(one(self.0, sql::SLUG_TAKEN, &[&owner_id, &slug], |_| Ok(())).await?.is_some())
    }
    async fn insert_device(&self, d: &DeviceRecord) -> DbResult<()> {
        insert(
            self.0,
            sql::INSERT_DEVICE,
            &[
                &d.id,
                &d.owner_id,
                &d.display_name,
                &d.slug,
                &d.location,
                &d.platform,
                &d.client_version,
                &d.created_at.as_millis(),
                &d.status.as_str(),
                &d.public_jwk,
                &d.jkt,
            ],
            "a device with this ID or slug",
        )
        .await
    }
    async fn add_location(&self, device_id: &str, location: Option<&str>, now: Timestamp) -> DbResult<()> {
        exec(self.0, sql::INSERT_LOCATION, &[&device_id, &location, &now.as_millis()]).await?;
        Ok(())
    }
    async fn set_device_name(&self, id: &str, name: &str) -> DbResult<()> {
        exec(self.0, sql::SET_DEVICE_NAME, &[&name, &id]).await?;
        Ok(())
    }
    async fn set_device_location(&self, id: &str, location: Option<&str>) -> DbResult<()> {
        exec(self.0, sql::SET_DEVICE_LOCATION, &[&location, &id]).await?;
        Ok(())
    }
    async fn set_device_revoked(&self, id: &str, now: Timestamp) -> DbResult<()> {
        exec(self.0, sql::SET_DEVICE_REVOKED, &[&now.as_millis(), &id]).await?;
        Ok(())
    }
    async fn touch_device(&self, id: &str, now: Timestamp) -> DbResult<()> {
        exec(self.0, sql::TOUCH_DEVICE, &[&now.as_millis(), &id]).await?;
        Ok(())
    }

    async fn insert_family(&self, f: &NewFamily<'_>, now: Timestamp) -> DbResult<()> {
        insert(
            self.0,
            sql::INSERT_FAMILY,
            &[
                &f.id,
                &f.client_id,
                &f.user_id,
                &f.scope,
                &f.auth_time.as_millis(),
                &now.as_millis(),
                &f.device_id,
                &f.jkt,
                &f.ip,
                &f.user_agent,
            ],
            "a token family with this ID",
        )
        .await
    }
    async fn insert_refresh_token(&self, t: &NewRefreshToken, family_id: &str, now: Timestamp) -> DbResult<()> {
        insert(
            self.0,
            sql::INSERT_REFRESH_TOKEN,
            &[&t.token_hash.as_str(), &family_id, &now.as_millis(), &t.expires_at.as_millis()],
            "a refresh token with this value",
        )
        .await
    }
    async fn refresh_token(&self, hash: &SecretHash, lock: bool) -> DbResult<Option<(RefreshTokenRecord, Timestamp)>> {
        let sql = if lock { format!("{} FOR UPDATE OF t, f", sql::REFRESH_TOKEN) } else { sql::REFRESH_TOKEN.into() };
        one(self.0, &sql, &[&hash.as_str()], |r| rows::refresh_token(r)).await
    }
    async fn set_family_tokens_rotated(&self, family_id: &str, now: Timestamp) -> DbResult<()> {
        exec(self.0, sql::SET_FAMILY_TOKENS_ROTATED, &[&now.as_millis(), &family_id]).await.map(drop)
    }
    async fn set_refresh_rotated(&self, hash: &SecretHash, now: Timestamp) -> DbResult<()> {
        exec(self.0, sql::SET_REFRESH_ROTATED, &[&now.as_millis(), &hash.as_str()]).await?;
        Ok(())
    }
    async fn live_family_owner(&self, family_id: &str, client_id: &str) -> DbResult<Option<String>> {
        one(self.0, &locked(sql::LIVE_FAMILY_OWNER, true), &[&family_id, &client_id], |r| r.text(0)).await
    }
    async fn set_family_revoked(&self, family_id: &str, now: Timestamp) -> DbResult<bool> {
        Ok(exec(self.0, sql::SET_FAMILY_REVOKED, &[&now.as_millis(), &family_id]).await? > 0)
    }
    async fn lock_device_families(&self, device_id: &str) -> DbResult<()> {
        let sql = "SELECT id FROM token_families WHERE device_id = $1 ORDER BY id FOR UPDATE";
        exec(self.0, sql, &[&device_id]).await?;
        Ok(())
    }
    async fn event_kind(&self, client_id: &str, name: &str, lock: bool) -> DbResult<Option<EventKindRecord>> {
        let q = with_lock(sql::EVENT_KIND, lock.then_some("FOR UPDATE"));
        one(self.0, &q, &[&client_id, &name], |r| rows::event_kind(r)).await
    }
    async fn insert_event_kind(&self, k: &EventKindRecord, now: Timestamp) -> DbResult<()> {
        let spec = rows::kind_spec_text(&k.spec)?;
        let p: [&(dyn ToSql + Sync); 5] =
            [&k.client_id, &k.spec.name.as_str(), &spec, &k.retention_secs, &now.as_millis()];
        insert(self.0, sql::INSERT_EVENT_KIND, &p, "an event kind with this name").await
    }
    async fn set_event_kind_retention(&self, client_id: &str, name: &str, secs: Option<i64>) -> DbResult<()> {
        exec(self.0, sql::SET_EVENT_KIND_RETENTION, &[&secs, &client_id, &name]).await.map(drop)
    }
    async fn event_kinds(&self, client_id: &str) -> DbResult<Vec<EventKindRecord>> {
        all(self.0, sql::EVENT_KINDS, &[&client_id], |r| rows::event_kind(r)).await
    }
    async fn ensure_event_head(&self, user_id: &str) -> DbResult<()> {
        exec(self.0, sql::ENSURE_EVENT_HEAD, &[&user_id]).await.map(drop)
    }
    async fn event_head(&self, user_id: &str, lock: bool) -> DbResult<i64> {
        // FOR UPDATE: one batch of a user at a time, so numbers are handed out in commit order.
        let q = with_lock(sql::EVENT_HEAD, lock.then_some("FOR UPDATE"));
        Ok(one(self.0, &q, &[&user_id], |r| r.int(0)).await?.unwrap_or(0))
    }
    async fn set_event_head(&self, user_id: &str, seq: i64) -> DbResult<()> {
        exec(self.0, sql::SET_EVENT_HEAD, &[&seq, &user_id]).await.map(drop)
    }
    async fn insert_event(&self, e: &NewEvent<'_>, seq: i64, now: Timestamp) -> DbResult<bool> {
        let (start, end) = (e.interval.map(|i| i.start.as_millis()), e.interval.map(|i| i.end.as_millis()));
        let observers = rows::observers_text(e.observers);
        let p: [&(dyn ToSql + Sync); 11] = [
            &e.id,
            &e.user_id,
            &e.client_id,
            &e.kind,
            &e.series,
            &e.identity,
            &start,
            &end,
            &now.as_millis(),
            &seq,
            &observers,
        ];
        Ok(exec(self.0, sql::INSERT_EVENT, &p).await? > 0)
    }
    async fn insert_events(&self, events: &[(NewEvent<'_>, i64)], now: Timestamp) -> DbResult<Vec<String>> {
        // Full chunks go in one statement each (one round trip for 50 events); the rest one by one.
        let mut inserted = Vec::new();
        let mut chunks = events.chunks_exact(sql::EVENT_INSERT_ROWS);
        for chunk in &mut chunks {
            inserted.extend(insert_event_rows(self.0, chunk, now).await?);
        }
        for (e, seq) in chunks.remainder() {
            if self.insert_event(e, *seq, now).await? {
                inserted.push(e.id.to_string());
            }
        }
        Ok(inserted)
    }
    async fn event_observers(&self, id: &str) -> DbResult<Option<Observers>> {
        one(self.0, sql::EVENT_OBSERVERS, &[&id], |r| rows::observers(r)).await
    }
    async fn set_event_observers(&self, id: &str, o: &Observers, seq: i64) -> DbResult<()> {
        exec(self.0, sql::SET_EVENT_OBSERVERS, &[&rows::observers_text(o), &seq, &id]).await.map(drop)
    }
    async fn set_event_seq(&self, id: &str, seq: i64) -> DbResult<()> {
        exec(self.0, sql::SET_EVENT_SEQ, &[&seq, &id]).await.map(drop)
    }
    async fn add_part(&self, event_id: &str, device_id: &str, i: Interval) -> DbResult<bool> {
        let p: [&(dyn ToSql + Sync); 4] = [&event_id, &device_id, &i.start.as_millis(), &i.end.as_millis()];
        Ok(exec(self.0, sql::ADD_PART, &p).await? > 0)
    }
    async fn series_events(&self, series: &str) -> DbResult<Vec<(String, Interval)>> {
        all(self.0, sql::SERIES_EVENTS, &[&series], |r| rows::series_event(r)).await
    }
    async fn set_event_interval(&self, id: &str, i: Interval, o: &Observers, seq: i64) -> DbResult<()> {
        let observers = rows::observers_text(o);
        let p: [&(dyn ToSql + Sync); 5] = [&i.start.as_millis(), &i.end.as_millis(), &observers, &seq, &id];
        exec(self.0, sql::SET_EVENT_INTERVAL, &p).await.map(drop)
    }
    async fn set_merged_into(&self, id: &str, into: &str, seq: i64) -> DbResult<()> {
        exec(self.0, sql::SET_MERGED_INTO, &[&into, &seq, &id]).await.map(drop)
    }
    async fn move_parts(&self, from: &str, to: &str) -> DbResult<()> {
        exec(self.0, sql::MOVE_PARTS, &[&to, &from]).await.map(drop)
    }
    async fn events_after(&self, user_id: &str, client_id: &str, after: i64, limit: i64) -> DbResult<Vec<StoredEvent>> {
        all(self.0, sql::EVENTS_AFTER, &[&user_id, &client_id, &after, &limit], |r| rows::stored_event(r)).await
    }
    async fn parts_between(&self, user_id: &str, after: i64, last: i64) -> DbResult<Vec<(String, EventPart)>> {
        all(self.0, sql::PARTS_BETWEEN, &[&user_id, &after, &last], |r| rows::event_part(r)).await
    }
    async fn sign_ins(&self, user_id: &str, live_since: Timestamp, now: Timestamp) -> DbResult<Vec<SignInRecord>> {
        let p: [&(dyn ToSql + Sync); 3] = [&user_id, &now.as_millis(), &live_since.as_millis()];
        all(self.0, sql::SIGN_INS, &p, |r| rows::sign_in(r)).await
    }
    async fn delete_session_of(&self, id: &str, user_id: &str) -> DbResult<bool> {
        Ok(exec(self.0, sql::DELETE_SESSION_OF, &[&id, &user_id]).await? > 0)
    }
    async fn revoke_web_family(&self, id: &str, user_id: &str, now: Timestamp) -> DbResult<Option<String>> {
        one(self.0, sql::REVOKE_WEB_FAMILY, &[&now.as_millis(), &id, &user_id], |r| r.text(0)).await
    }
    async fn family_liveness(&self, family_id: &str) -> DbResult<Option<(bool, AccountStatus)>> {
        one(self.0, sql::FAMILY_LIVENESS, &[&family_id], |r| rows::family_liveness(r)).await
    }
    async fn set_device_families_revoked(&self, device_id: &str, now: Timestamp) -> DbResult<u64> {
        exec(self.0, sql::SET_DEVICE_FAMILIES_REVOKED, &[&now.as_millis(), &device_id]).await
    }

    async fn insert_authorization_code(&self, c: &NewAuthorizationCode, now: Timestamp) -> DbResult<()> {
        insert(
            self.0,
            sql::INSERT_AUTHORIZATION_CODE,
            &[
                &c.code_hash.as_str(),
                &c.client_id,
                &c.user_id,
                &c.redirect_uri,
                &c.scope,
                &c.nonce,
                &c.code_challenge,
                &c.auth_time.as_millis(),
                &c.amr,
                &c.ip,
                &c.user_agent,
                &now.as_millis(),
                &c.expires_at.as_millis(),
            ],
            "an authorization code with this value",
        )
        .await
    }
    async fn authorization_code(&self, hash: &SecretHash, lock: bool) -> DbResult<Option<AuthorizationCodeRecord>> {
        one(self.0, &locked(sql::AUTHORIZATION_CODE, lock), &[&hash.as_str()], |r| rows::authorization_code(r)).await
    }
    async fn set_code_used(&self, hash: &SecretHash, family_id: &str, now: Timestamp) -> DbResult<bool> {
        Ok(exec(self.0, sql::SET_CODE_USED, &[&now.as_millis(), &family_id, &hash.as_str()]).await? == 1)
    }
    async fn revoke_app_families_of(&self, user_id: &str, client_id: &str, now: Timestamp) -> DbResult<u64> {
        exec(self.0, sql::REVOKE_APP_FAMILIES_OF, &[&now.as_millis(), &user_id, &client_id]).await
    }
    async fn consent(&self, user_id: &str, client_id: &str) -> DbResult<Option<ConsentRecord>> {
        one(self.0, sql::CONSENT, &[&user_id, &client_id], |r| rows::consent(r)).await
    }
    async fn consents_of(&self, user_id: &str) -> DbResult<Vec<ConsentRecord>> {
        all(self.0, sql::CONSENTS_OF, &[&user_id], |r| rows::consent(r)).await
    }
    async fn upsert_consent(&self, c: &ConsentRecord) -> DbResult<()> {
        exec(self.0, sql::UPSERT_CONSENT, &[&c.user_id, &c.client_id, &c.scope, &c.granted_at.as_millis()]).await?;
        Ok(())
    }
    async fn delete_consent(&self, user_id: &str, client_id: &str) -> DbResult<bool> {
        Ok(exec(self.0, sql::DELETE_CONSENT, &[&user_id, &client_id]).await? > 0)
    }

    async fn passkeys_of(&self, user_id: &str) -> DbResult<Vec<PasskeyRecord>> {
        all(self.0, sql::PASSKEYS_OF, &[&user_id], |r| rows::passkey(r)).await
    }
    async fn passkey_by_credential(&self, credential_id: &str) -> DbResult<Option<PasskeyRecord>> {
        one(self.0, sql::PASSKEY_BY_CREDENTIAL, &[&credential_id], |r| rows::passkey(r)).await
    }
    async fn insert_passkey(&self, p: &NewPasskey, now: Timestamp) -> DbResult<()> {
        let params: [&(dyn ToSql + Sync); 6] =
            [&p.id, &p.user_id, &p.credential_id, &p.passkey, &p.name, &now.as_millis()];
        insert(self.0, sql::INSERT_PASSKEY, &params, "a passkey with this credential").await
    }
    async fn delete_passkey(&self, id: &str, user_id: &str) -> DbResult<Option<String>> {
        one(self.0, sql::DELETE_PASSKEY, &[&id, &user_id], |r| r.text(0)).await
    }
    async fn count_passkeys(&self, user_id: &str) -> DbResult<i64> {
        Ok(one(self.0, sql::COUNT_PASSKEYS, &[&user_id], |r| r.int(0)).await?.unwrap_or(0))
    }
    async fn set_passkey_used(&self, id: &str, user_id: &str, passkey: &str, now: Timestamp) -> DbResult<bool> {
        Ok(exec(self.0, sql::SET_PASSKEY_USED, &[&passkey, &now.as_millis(), &id, &user_id]).await? == 1)
    }
    async fn insert_ceremony(&self, c: &NewCeremony, now: Timestamp) -> DbResult<()> {
        let p: [&(dyn ToSql + Sync); 6] =
            [&c.id_hash.as_str(), &c.kind.as_str(), &c.state, &c.user_id, &now.as_millis(), &c.expires_at.as_millis()];
        insert(self.0, sql::INSERT_CEREMONY, &p, "a ceremony with this ID").await
    }
    async fn take_ceremony(
        &self,
        id_hash: &SecretHash,
        kind: latchkey_domain::passkey::CeremonyKind,
        now: Timestamp,
    ) -> DbResult<Option<CeremonyRecord>> {
        let p: [&(dyn ToSql + Sync); 3] = [&id_hash.as_str(), &kind.as_str(), &now.as_millis()];
        one(self.0, sql::TAKE_CEREMONY, &p, |r| rows::ceremony(r)).await
    }
    async fn insert_web_session(&self, s: &NewSession, now: Timestamp) -> DbResult<()> {
        crate::users::insert_session(self.0, s, now).await
    }

    async fn insert_pairing(&self, p: &NewPairing, now: Timestamp) -> DbResult<()> {
        insert(
            self.0,
            sql::INSERT_PAIRING,
            &[
                &p.id,
                &p.client_id,
                &p.desktop_secret_hash.as_str(),
                &p.phone_code_hash.as_str(),
                &p.state.status.as_str(),
                &now.as_millis(),
                &p.state.expires_at.as_millis(),
                &p.requester.ip,
                &p.requester.user_agent,
                &p.continues,
            ],
            "a pairing with this code",
        )
        .await
    }
    async fn pairing(&self, code: PairingCode, hash: &SecretHash, lock: bool) -> DbResult<Option<PairingRecord>> {
        let sql = match code {
            PairingCode::Phone => sql::PAIRING_BY_PHONE_CODE,
            PairingCode::Desktop => sql::PAIRING_BY_DESKTOP_SECRET,
        };
        one(self.0, &locked(sql, lock), &[&hash.as_str()], |r| rows::pairing(r)).await
    }
    async fn set_pairing_status(
        &self,
        id: &str,
        from: PairingStatus,
        to: PairingStatus,
        decided_by: Option<&str>,
        now: Timestamp,
    ) -> DbResult<bool> {
        let changed =
            exec(self.0, sql::SET_PAIRING_STATUS, &[&to.as_str(), &decided_by, &now.as_millis(), &id, &from.as_str()])
                .await?;
        Ok(changed == 1)
    }

    async fn insert_enrollment_key(&self, k: &NewEnrollmentKey, now: Timestamp) -> DbResult<()> {
        insert(
            self.0,
            sql::INSERT_ENROLLMENT_KEY,
            &[
                &k.id,
                &k.key_hash.as_str(),
                &k.owner_id,
                &k.reusable,
                &k.expires_at.as_millis(),
                &k.tag,
                &k.created_by,
                &now.as_millis(),
            ],
            "an enrollment key with this ID",
        )
        .await
    }
    async fn usable_key(&self, hash: &SecretHash, lock: bool) -> DbResult<Option<UsableKey>> {
        one(self.0, &locked(sql::USABLE_KEY, lock), &[&hash.as_str()], |r| rows::usable_key(r)).await
    }
    async fn count_key_use(&self, id: &str) -> DbResult<bool> {
        Ok(exec(self.0, sql::COUNT_KEY_USE, &[&id]).await? == 1)
    }
    async fn set_key_revoked(&self, id: &str, owner_id: Option<&str>, now: Timestamp) -> DbResult<bool> {
        let changed = exec(self.0, sql::SET_KEY_REVOKED, &[&now.as_millis(), &id, &owner_id]).await?;
        Ok(changed > 0)
    }
    async fn devices_with_slug(&self, owner_id: &str, slug: &str) -> DbResult<Vec<DeviceRecord>> {
        all(self.0, sql::DEVICES_WITH_SLUG, &[&owner_id, &slug], |r| rows::device(r)).await
    }
    async fn rotations(&self, device_id: &str) -> DbResult<Vec<RotationRecord>> {
        all(self.0, st::ROTATIONS, &[&device_id], |r| rows::rotation(r)).await
    }
    async fn insert_rotation(&self, device_id: &str, r: &RotationRecord, now: Timestamp) -> DbResult<()> {
        let p: &Params<'_> = &[&device_id, &r.old_key, &r.new_key, &r.signature, &now.as_millis()];
        insert(self.0, st::INSERT_ROTATION, p, "a rotation of this key").await
    }
    async fn set_device_key(&self, device_id: &str, jwk: &str, jkt: &str) -> DbResult<()> {
        exec(self.0, st::SET_DEVICE_KEY, &[&jwk, &jkt, &device_id]).await.map(drop)
    }
    async fn session_key(&self, device_id: &str) -> DbResult<Option<SessionKeyRecord>> {
        one(self.0, st::SESSION_KEY, &[&device_id], |r| rows::session_key(r)).await
    }
    async fn upsert_session_key(&self, device_id: &str, k: &SessionKeyRecord, now: Timestamp) -> DbResult<()> {
        let p: &Params<'_> =
            &[&device_id, &i64::from(k.protocol), &k.key, &k.signed_by, &k.signature, &now.as_millis()];
        exec(self.0, st::UPSERT_SESSION_KEY, p).await.map(drop)
    }
    async fn upsert_trust(&self, t: &NewTrust, truster_key: &str, now: Timestamp) -> DbResult<()> {
        let p: &Params<'_> = &[
            &t.truster,
            &t.trustee,
            &truster_key,
            &t.trustee_key,
            &t.issued_at.as_millis(),
            &t.signature,
            &now.as_millis(),
        ];
        exec(self.0, st::UPSERT_TRUST, p).await.map(drop)
    }
    async fn delete_trust(&self, truster: &str, trustee: &str) -> DbResult<bool> {
        Ok(exec(self.0, st::DELETE_TRUST, &[&truster, &trustee]).await? > 0)
    }
    async fn delete_trusts_of_device(&self, device_id: &str) -> DbResult<u64> {
        exec(self.0, st::DELETE_TRUSTS_OF_DEVICE, &[&device_id]).await
    }
    async fn trusts_of_user(&self, user_id: &str) -> DbResult<Vec<TrustRecord>> {
        all(self.0, st::TRUSTS_OF_USER, &[&user_id], |r| rows::trust(r)).await
    }
    async fn channel_count(&self, device_id: &str, since: Timestamp) -> DbResult<i64> {
        Ok(one(self.0, st::CHANNEL_COUNT, &[&device_id, &since.as_millis()], |r| r.int(0)).await?.unwrap_or(0))
    }
    async fn insert_channel(&self, id: &str, device_id: &str, now: Timestamp) -> DbResult<()> {
        insert(self.0, st::INSERT_CHANNEL, &[&id, &device_id, &now.as_millis()], "a channel with this ID").await
    }
    async fn touch_channel(&self, id: &str, now: Timestamp) -> DbResult<()> {
        exec(self.0, st::TOUCH_CHANNEL, &[&now.as_millis(), &id]).await.map(drop)
    }
    async fn delete_channel(&self, id: &str) -> DbResult<()> {
        exec(self.0, st::DELETE_CHANNEL, &[&id]).await.map(drop)
    }
    async fn insert_session(&self, s: &TrustedSessionRecord) -> DbResult<()> {
        let p: &Params<'_> = &[
            &s.id,
            &s.user_id,
            &s.creator,
            &i64::from(s.epoch),
            &i64::from(s.protocol),
            &s.created_at.as_millis(),
            &s.expires_at.as_millis(),
        ];
        insert(self.0, st::INSERT_SESSION, p, "a session with this ID").await
    }
    async fn session(&self, id: &str, lock: bool) -> DbResult<Option<TrustedSessionRecord>> {
        one(self.0, &locked(st::SESSION, lock), &[&id], |r| rows::trusted_session(r)).await
    }
    async fn sessions_of_device(&self, device_id: &str, now: Timestamp) -> DbResult<Vec<TrustedSessionRecord>> {
        all(self.0, st::SESSIONS_OF_DEVICE, &[&now.as_millis(), &device_id], |r| rows::trusted_session(r)).await
    }
    async fn expired_sessions(&self, now: Timestamp, limit: i64) -> DbResult<Vec<TrustedSessionRecord>> {
        all(self.0, st::EXPIRED_SESSIONS, &[&now.as_millis(), &limit], |r| rows::trusted_session(r)).await
    }
    async fn set_session_epoch(&self, id: &str, epoch: u32, rekey_needed: bool) -> DbResult<()> {
        exec(self.0, st::SET_SESSION_EPOCH, &[&i64::from(epoch), &i64::from(rekey_needed), &id]).await.map(drop)
    }
    async fn close_session(&self, id: &str, now: Timestamp) -> DbResult<bool> {
        Ok(exec(self.0, st::CLOSE_SESSION, &[&now.as_millis(), &id]).await? > 0)
    }
    async fn insert_member(
        &self,
        session_id: &str,
        device_id: &str,
        status: &str,
        joined_epoch: Option<u32>,
        now: Timestamp,
    ) -> DbResult<()> {
        let p: &Params<'_> = &[&session_id, &device_id, &status, &joined_epoch.map(i64::from), &now.as_millis()];
        insert(self.0, st::INSERT_MEMBER, p, "this member").await
    }
    async fn members(&self, session_id: &str) -> DbResult<Vec<(String, String, Option<i64>)>> {
        all(self.0, st::MEMBERS, &[&session_id], |r| rows::member(r)).await
    }
    async fn set_member(
        &self,
        session_id: &str,
        device_id: &str,
        status: &str,
        joined_epoch: Option<u32>,
        now: Timestamp,
    ) -> DbResult<bool> {
        let p: &Params<'_> = &[&status, &joined_epoch.map(i64::from), &now.as_millis(), &session_id, &device_id];
        Ok(exec(self.0, st::SET_MEMBER, p).await? > 0)
    }
    async fn open_sessions_with_member(&self, device_id: &str) -> DbResult<Vec<String>> {
        all(self.0, st::OPEN_SESSIONS_WITH_MEMBER, &[&device_id], |r| r.text(0)).await
    }
    async fn invited_count(&self, device_id: &str) -> DbResult<i64> {
        Ok(one(self.0, st::INVITED_COUNT, &[&device_id], |r| r.int(0)).await?.unwrap_or(0))
    }
    async fn insert_invitation(&self, inv: &SignedInvitation) -> DbResult<()> {
        let i = &inv.invitation;
        let body = rows::invitation_text(inv)?;
        let p: &Params<'_> =
            &[&i.nonce, &i.descriptor.session_id, &i.recipient, &i64::from(i.descriptor.epoch), &body, &i.expires_at];
        insert(self.0, st::INSERT_INVITATION, p, "an invitation with this nonce").await
    }
    async fn invitation(&self, nonce: &str) -> DbResult<Option<InvitationState>> {
        one(self.0, st::INVITATION, &[&nonce], |r| rows::invitation_state(r)).await
    }
    async fn use_invitation(&self, nonce: &str, now: Timestamp) -> DbResult<bool> {
        Ok(exec(self.0, st::USE_INVITATION, &[&now.as_millis(), &nonce]).await? > 0)
    }
    async fn pending_invitations(&self, device_id: &str, now: Timestamp) -> DbResult<Vec<SignedInvitation>> {
        all(self.0, st::PENDING_INVITATIONS, &[&device_id, &now.as_millis()], |r| rows::invitation_body(r)).await
    }
    async fn has_pending_invitation(&self, session_id: &str, device_id: &str, now: Timestamp) -> DbResult<bool> {
        let p: &Params<'_> = &[&session_id, &device_id, &now.as_millis()];
        Ok(one(self.0, st::HAS_PENDING_INVITATION, p, |r| r.int(0)).await?.unwrap_or(0) > 0)
    }
    async fn ensure_log_head(&self, user_id: &str) -> DbResult<()> {
        exec(self.0, st::ENSURE_LOG_HEAD, &[&user_id]).await.map(drop)
    }
    async fn log_head(&self, user_id: &str, lock: bool) -> DbResult<i64> {
        // FOR UPDATE: one append per user at a time, so positions are handed out in commit order.
        Ok(one(self.0, &locked(st::LOG_HEAD, lock), &[&user_id], |r| r.int(0)).await?.unwrap_or(0))
    }
    async fn set_log_head(&self, user_id: &str, pos: i64) -> DbResult<()> {
        exec(self.0, st::SET_LOG_HEAD, &[&pos, &user_id]).await.map(drop)
    }
    async fn insert_log(&self, user_id: &str, e: &LogEntry, now: Timestamp) -> DbResult<()> {
        let (sender, seq, body) = match &e.message {
            Some((s, q, b)) => (Some(s.as_str()), Some(*q), Some(b.as_str())),
            None => (None, None, None),
        };
        let (event, device) = match &e.event {
            Some((ev, d)) => (Some(ev.as_str()), d.as_deref()),
            None => (None, None),
        };
        let p: &Params<'_> = &[
            &user_id,
            &e.pos,
            &e.session_id,
            &i64::from(e.epoch),
            &sender,
            &seq,
            &body,
            &event,
            &device,
            &now.as_millis(),
        ];
        insert(self.0, st::INSERT_LOG, p, "a log entry at this position").await
    }
    async fn member_seq(&self, session_id: &str, device_id: &str) -> DbResult<i64> {
        Ok(one(self.0, st::MEMBER_SEQ, &[&session_id, &device_id], |r| r.int(0)).await?.unwrap_or(0))
    }
    async fn set_member_seq(&self, session_id: &str, device_id: &str, seq: i64) -> DbResult<()> {
        exec(self.0, st::SET_MEMBER_SEQ, &[&seq, &session_id, &device_id]).await.map(drop)
    }
    async fn prune_log(&self, session_id: &str, keep: i64) -> DbResult<u64> {
        exec(self.0, st::PRUNE_LOG, &[&session_id, &keep]).await
    }
    async fn set_pruned(&self, session_id: &str) -> DbResult<()> {
        exec(self.0, st::SET_PRUNED, &[&session_id]).await.map(drop)
    }
    async fn log_after(&self, device_id: &str, user_id: &str, after: i64, limit: i64) -> DbResult<Vec<LogEntry>> {
        all(self.0, st::LOG_AFTER, &[&device_id, &user_id, &after, &limit], |r| rows::log_entry(r)).await
    }
    async fn channel_gap(&self, device_id: &str) -> DbResult<i64> {
        Ok(one(self.0, st::CHANNEL_GAP, &[&device_id], |r| r.int(0)).await?.unwrap_or(0))
    }

    async fn device_sign_ins_by_day(&self, user_id: &str, since: Timestamp) -> DbResult<Vec<DaySignIns>> {
        all(self.0, sql::DEVICE_SIGN_INS_BY_DAY, &[&user_id, &since.as_millis()], |r| {
            Ok(DaySignIns { device_id: r.text(0)?, day: r.int(1)?, count: r.int(2)? })
        })
        .await
    }
    async fn logins_by_hour(&self, since: Timestamp) -> DbResult<Vec<(String, i64, i64)>> {
        all(self.0, sql::LOGINS_BY_HOUR, &[&since.as_millis()], |r| Ok((r.text(0)?, r.int(1)?, r.int(2)?))).await
    }
    async fn expired_logins_by_hour(&self, since: Timestamp, before: Timestamp) -> DbResult<Vec<(i64, i64)>> {
        all(self.0, sql::EXPIRED_LOGINS_BY_HOUR, &[&since.as_millis(), &before.as_millis()], |r| {
            Ok((r.int(0)?, r.int(1)?))
        })
        .await
    }
    async fn active_totals(&self) -> DbResult<(i64, i64)> {
        Ok(one(self.0, sql::ACTIVE_TOTALS, &[], |r| Ok((r.int(0)?, r.int(1)?))).await?.unwrap_or((0, 0)))
    }
}
