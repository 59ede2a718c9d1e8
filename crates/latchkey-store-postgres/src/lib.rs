//! PostgreSQL backend for Latchkey: for several replicas sharing one database.
//!
//! Every operation is one transaction on a pooled connection. Transitions
//! load their row `FOR UPDATE`, ask `latchkey-domain`, and write, so callers
//! on any replica take turns on the row they contend for; audit appends lock
//! the single `audit_head` row, so the hash chain stays linear. Decisions are
//! announced with `NOTIFY` inside their transaction and picked up by every
//! replica's listener connection (see `listen`), which makes instant approval
//! work whichever replica the waiting device is connected to; QR sign-in
//! pairings are decided, announced and collected the same way. Registering a
//! device locks its owner's row, so the device cap and slug choice hold across
//! replicas; using an enrollment key locks the key, so a single-use key works once.
//!
//! Each store holds up to 16 pooled connections plus one listener connection;
//! size the server's `max_connections` for that times the number of replicas.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod audit;
mod db;
mod devices;
mod enrollment;
mod keys;
mod listen;
mod migrations;
mod sweep;
mod tokens;
mod txn;
mod users;

use async_trait::async_trait;
use db::{pg_err, target, Db};
use latchkey_domain::audit::{AuditEntry, AuditEvent, ChainHead};
use latchkey_domain::secret::SecretHash;
use latchkey_domain::Timestamp;
use latchkey_store::flows;
use latchkey_store::txn::{GrantCode, PairingCode, Txn};
use latchkey_store::*;
use tokio::task::JoinHandle;
use txn::Pg;
use tokio_postgres::NoTls;

/// The PostgreSQL store. Cheap to share behind an `Arc`; dropping it stops its listener.
pub struct PgStore {
    db: Db,
    notifier: DecisionNotifier,
    listener: JoinHandle<()>,
}

impl PgStore {
    /// Connects to `url`, applies migrations and starts listening for decisions.
    /// With `schema`, creates it if missing and keeps every table in it.
    pub async fn connect(url: &str, schema: Option<&str>) -> Result<PgStore, StoreError> {
        let config = db::config(url, schema)?;
        let db = Db::new(config.clone())?;
        // Whatever stops the first connection (refused, unknown host, bad password,
        // no such database), the operator needs to hear where we tried to go.
        let first = db.conn().await.map_err(|e| {
            let why = match e {
                StoreError::Unavailable(why) | StoreError::Database(why) => why,
                other => other.to_string(),
            };
            StoreError::Unavailable(format!("cannot connect to PostgreSQL at {}: {why}", target(&config)))
        })?;
        drop(first);
        let schema_owned = schema.map(str::to_string);
        db.write(move |tx| {
            let schema = schema_owned.clone();
            Box::pin(async move { migrations::run(tx, schema.as_deref()).await })
        })
        .await?;
        let notifier = DecisionNotifier::default();
        let listener = listen::start(config, notifier.clone()).await?;
        Ok(PgStore { db, notifier, listener })
    }

    /// Drops `schema` and everything in it; for cleaning up after tests.
    pub async fn drop_schema(url: &str, schema: &str) -> Result<(), StoreError> {
        db::check_schema(schema)?;
        let config = db::config(url, None)?;
        let (client, connection) = config.connect(NoTls).await.map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot connect to PostgreSQL at {}: {}",
                target(&config),
                db::describe(&e)
            ))
        })?;
        let driver = tokio::spawn(connection);
        let result =
            client.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).await.map_err(|e| pg_err(&e));
        drop(client);
        let _ = driver.await;
        result
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// Runs `body` in one transaction. The body clones the arguments listed in
/// brackets first, so it can run again after a deadlock.
macro_rules! in_tx {
    ($db:expr, [$($arg:ident),*], |$tx:ident| $body:expr) => {
        $db.write(move |$tx| {
            $(let $arg = $arg.clone();)*
            Box::pin(async move { $body.await })
        })
        .await
    };
}

/// Runs a single-statement read on a pooled connection.
macro_rules! read {
    ($db:expr, |$c:ident| $body:expr) => {{
        let $c = $db.conn().await?;
        Ok($body.await?)
    }};
}

#[async_trait]
impl Store for PgStore {
    async fn create_user(&self, user: NewUser, actor: Option<String>, now: Timestamp) -> StoreResult<UserRecord> {
        in_tx!(self.db, [user, actor], |tx| users::create_user(tx, user, actor, now))
    }
    async fn user_by_name(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        read!(self.db, |c| users::user_by_name(&c, username))
    }
    async fn count_users(&self) -> StoreResult<i64> {
        read!(self.db, |c| users::count_users(&c))
    }
    async fn create_session(&self, session: NewSession, now: Timestamp) -> StoreResult<()> {
        in_tx!(self.db, [session], |tx| users::create_session(tx, session, now))
    }
    async fn session(&self, token_hash: &SecretHash, now: Timestamp) -> StoreResult<Option<SessionRecord>> {
        read!(self.db, |c| users::session(&c, token_hash, now))
    }
    async fn delete_session(&self, token_hash: &SecretHash, now: Timestamp) -> StoreResult<bool> {
        let h = token_hash.clone();
        in_tx!(self.db, [h], |tx| users::delete_session(tx, &h, now))
    }
    async fn create_app(&self, app: AppRecord, actor: Option<String>, now: Timestamp) -> StoreResult<()> {
        in_tx!(self.db, [app, actor], |tx| users::create_app(tx, app, actor, now))
    }
    async fn app(&self, client_id: &str) -> StoreResult<Option<AppRecord>> {
        read!(self.db, |c| users::app(&c, client_id))
    }
    async fn list_apps(&self) -> StoreResult<Vec<AppRecord>> {
        read!(self.db, |c| users::list_apps(&c))
    }
    async fn update_app(
        &self,
        client_id: &str,
        update: AppUpdate,
        actor: &str,
        now: Timestamp,
    ) -> StoreResult<Option<AppRecord>> {
        let (id, actor) = (client_id.to_string(), actor.to_string());
        in_tx!(self.db, [id, update, actor], |tx| users::update_app(tx, &id, &update, &actor, now))
    }
    async fn create_pairing(&self, pairing: NewPairing, now: Timestamp) -> StoreResult<()> {
        in_tx!(self.db, [pairing], |tx| flows::pairings::create(&Pg(tx), &pairing, now))
    }
    async fn pairing_by_phone_code(&self, phone_code_hash: &SecretHash) -> StoreResult<Option<PairingRecord>> {
        read!(self.db, |c| Pg(&c).pairing(PairingCode::Phone, phone_code_hash, false))
    }
    async fn pairing_by_desktop_secret(&self, desktop_secret_hash: &SecretHash) -> StoreResult<Option<PairingRecord>> {
        read!(self.db, |c| Pg(&c).pairing(PairingCode::Desktop, desktop_secret_hash, false))
    }
    async fn decide_pairing(
        &self,
        phone_code_hash: &SecretHash,
        user_id: &str,
        approve: bool,
        now: Timestamp,
    ) -> StoreResult<PairingResult> {
        let (h, u) = (phone_code_hash.clone(), user_id.to_string());
        let result = in_tx!(self.db, [h, u], |tx| flows::pairings::decide(&Pg(tx), &h, &u, approve, now))?;
        if let PairingResult::Done(p) = &result {
            // Other replicas hear of it through NOTIFY; local waiters need not wait for that round trip.
            self.notifier.notify(&p.id);
        }
        Ok(result)
    }
    async fn cancel_pairing(&self, desktop_secret_hash: &SecretHash, now: Timestamp) -> StoreResult<PairingResult> {
        let h = desktop_secret_hash.clone();
        let result = in_tx!(self.db, [h], |tx| flows::pairings::cancel(&Pg(tx), &h, now))?;
        if let PairingResult::Done(p) = &result {
            self.notifier.notify(&p.id);
        }
        Ok(result)
    }
    async fn collect_pairing(
        &self,
        desktop_secret_hash: &SecretHash,
        mint: MintRefresh,
        now: Timestamp,
    ) -> StoreResult<Collected> {
        let h = desktop_secret_hash.clone();
        in_tx!(self.db, [h, mint], |tx| flows::pairings::collect(&Pg(tx), &h, &mint, now))
    }
    async fn create_device_grant(&self, grant: NewDeviceGrant, now: Timestamp) -> StoreResult<()> {
        in_tx!(self.db, [grant], |tx| flows::grants::create(&Pg(tx), &grant, now))
    }
    async fn device_grant_by_user_code(&self, user_code_hash: &SecretHash) -> StoreResult<Option<DeviceGrantRecord>> {
        read!(self.db, |c| Pg(&c).grant(GrantCode::User, user_code_hash, false))
    }
    async fn decide_device_grant(&self, decision: GrantDecision, now: Timestamp) -> StoreResult<DecideResult> {
        let result = in_tx!(self.db, [decision], |tx| flows::grants::decide(&Pg(tx), decision, now))?;
        if let DecideResult::Decided(g) = &result {
            // Other replicas hear of it through NOTIFY; local waiters need not wait for that round trip.
            self.notifier.notify(&g.id);
        }
        Ok(result)
    }
    async fn redeem_device_grant(&self, redeem: Redeem, now: Timestamp) -> StoreResult<Redeemed> {
        in_tx!(self.db, [redeem], |tx| flows::grants::redeem(&Pg(tx), redeem, now))
    }
    async fn rotate_refresh_token(&self, rotate: RotateRefresh, now: Timestamp) -> StoreResult<Rotated> {
        in_tx!(self.db, [rotate], |tx| flows::tokens::rotate(&Pg(tx), rotate, now))
    }
    async fn revoke_refresh_family(
        &self,
        token_hash: &SecretHash,
        client_id: &str,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let (h, id) = (token_hash.clone(), client_id.to_string());
        in_tx!(self.db, [h, id], |tx| flows::tokens::revoke_by_token(&Pg(tx), &h, &id, now))
    }
    async fn revoke_family(&self, family_id: &str, client_id: &str, now: Timestamp) -> StoreResult<bool> {
        let (f, id) = (family_id.to_string(), client_id.to_string());
        in_tx!(self.db, [f, id], |tx| flows::tokens::revoke_by_id(&Pg(tx), &f, &id, now))
    }
    async fn refresh_token(&self, token_hash: &SecretHash) -> StoreResult<Option<RefreshTokenRecord>> {
        let c = self.db.conn().await?;
        Ok(Pg(&c).refresh_token(token_hash, false).await?.map(|(t, _)| t))
    }
    async fn family_active(&self, family_id: &str) -> StoreResult<bool> {
        read!(self.db, |c| tokens::family_active(&c, family_id))
    }
    async fn devices(&self, owner_id: &str) -> StoreResult<Vec<DeviceRecord>> {
        read!(self.db, |c| devices::list(&c, owner_id))
    }
    async fn device(&self, id: &str) -> StoreResult<Option<DeviceRecord>> {
        read!(self.db, |c| Pg(&c).device(id, false))
    }
    async fn rename_device(
        &self,
        id: &str,
        owner_id: &str,
        name: &str,
        now: Timestamp,
    ) -> StoreResult<Option<DeviceRecord>> {
        let (id, owner, name) = (id.to_string(), owner_id.to_string(), name.to_string());
        in_tx!(self.db, [id, owner, name], |tx| flows::devices::rename(&Pg(tx), &id, &owner, &name, now))
    }
    async fn relocate_device(
        &self,
        id: &str,
        owner_id: &str,
        location: Option<String>,
        now: Timestamp,
    ) -> StoreResult<Option<DeviceRecord>> {
        let (id, owner) = (id.to_string(), owner_id.to_string());
        in_tx!(self.db, [id, owner, location], |tx| flows::devices::relocate(&Pg(tx), &id, &owner, location, now))
    }
    async fn location_history(&self, id: &str) -> StoreResult<Vec<LocationChange>> {
        read!(self.db, |c| devices::history(&c, id))
    }
    async fn revoke_device(
        &self,
        id: &str,
        owner_id: Option<&str>,
        actor: &str,
        now: Timestamp,
    ) -> StoreResult<RevokeDevice> {
        let (id, owner, actor) = (id.to_string(), owner_id.map(str::to_string), actor.to_string());
        in_tx!(self.db, [id, owner, actor], |tx| flows::devices::revoke(&Pg(tx), &id, owner.as_deref(), &actor, now))
    }
    async fn create_enrollment_key(&self, key: NewEnrollmentKey, now: Timestamp) -> StoreResult<()> {
        in_tx!(self.db, [key], |tx| flows::enrollment::create(&Pg(tx), &key, now))
    }
    async fn enrollment_keys(&self, owner_id: Option<&str>) -> StoreResult<Vec<EnrollmentKeyRecord>> {
        read!(self.db, |c| enrollment::list(&c, owner_id))
    }
    async fn revoke_enrollment_key(
        &self,
        id: &str,
        owner_id: Option<&str>,
        actor: &str,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let (id, owner, actor) = (id.to_string(), owner_id.map(str::to_string), actor.to_string());
        in_tx!(self.db, [id, owner, actor], |tx| flows::enrollment::revoke(
            &Pg(tx),
            &id,
            owner.as_deref(),
            &actor,
            now
        ))
    }
    async fn enroll_device(&self, enroll: Enroll, now: Timestamp) -> StoreResult<Enrolled> {
        in_tx!(self.db, [enroll], |tx| flows::enrollment::enroll(&Pg(tx), enroll, now))
    }
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        read!(self.db, |c| keys::all(&c))
    }
    async fn add_signing_key(&self, key: SigningKeyRecord, actor: Option<String>, now: Timestamp) -> StoreResult<()> {
        in_tx!(self.db, [key, actor], |tx| keys::add(tx, key, actor, now))
    }
    async fn append_audit(&self, event: AuditEvent, now: Timestamp) -> StoreResult<()> {
        in_tx!(self.db, [event], |tx| audit::append(tx, &event, now))
    }
    async fn audit_entries(&self, after: i64, limit: i64) -> StoreResult<Vec<AuditEntry>> {
        read!(self.db, |c| audit::entries(&c, after, limit))
    }
    async fn audit_page(&self, filter: AuditFilter) -> StoreResult<Vec<AuditEntry>> {
        read!(self.db, |c| audit::page(&c, &filter))
    }
    async fn audit_head(&self) -> StoreResult<ChainHead> {
        read!(self.db, |c| audit::head(&c))
    }
    async fn sweep(&self, now: Timestamp) -> StoreResult<SweepReport> {
        in_tx!(self.db, [], |tx| sweep::sweep(tx, now))
    }
    fn notifier(&self) -> &DecisionNotifier {
        &self.notifier
    }
}
