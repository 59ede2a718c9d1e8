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
mod grants;
mod keys;
mod listen;
mod migrations;
mod pairings;
mod sweep;
mod tokens;
mod users;

use async_trait::async_trait;
use db::{pg_err, target, Db};
use latchkey_domain::audit::{AuditEntry, AuditEvent, ChainHead};
use latchkey_domain::secret::SecretHash;
use latchkey_domain::Timestamp;
use latchkey_store::*;
use tokio::task::JoinHandle;
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

/// Clones the arguments a transaction body needs, so the body can run again after a deadlock.
macro_rules! in_tx {
    ($db:expr, |$tx:ident| $op:path, $($arg:ident),* ; $($copy:ident),*) => {
        $db.write(move |$tx| {
            $(let $arg = $arg.clone();)*
            Box::pin(async move { $op($tx, $($arg,)* $($copy),*).await })
        })
        .await
    };
}

#[async_trait]
impl Store for PgStore {
    async fn create_user(&self, user: NewUser, actor: Option<String>, now: Timestamp) -> StoreResult<UserRecord> {
        in_tx!(self.db, |tx| users::create_user, user, actor; now)
    }
    async fn user_by_name(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        let c = self.db.conn().await?;
        Ok(users::user_by_name(&c, username).await?)
    }
    async fn count_users(&self) -> StoreResult<i64> {
        let c = self.db.conn().await?;
        Ok(users::count_users(&c).await?)
    }
    async fn create_session(&self, session: NewSession, now: Timestamp) -> StoreResult<()> {
        in_tx!(self.db, |tx| users::create_session, session; now)
    }
    async fn session(&self, token_hash: &SecretHash, now: Timestamp) -> StoreResult<Option<SessionRecord>> {
        let c = self.db.conn().await?;
        Ok(users::session(&c, token_hash, now).await?)
    }
    async fn delete_session(&self, token_hash: &SecretHash, now: Timestamp) -> StoreResult<bool> {
        let h = token_hash.clone();
        self.db
            .write(move |tx| {
                let h = h.clone();
                Box::pin(async move { users::delete_session(tx, &h, now).await })
            })
            .await
    }
    async fn create_app(&self, app: AppRecord, actor: Option<String>, now: Timestamp) -> StoreResult<()> {
        in_tx!(self.db, |tx| users::create_app, app, actor; now)
    }
    async fn app(&self, client_id: &str) -> StoreResult<Option<AppRecord>> {
        let c = self.db.conn().await?;
        Ok(users::app(&c, client_id).await?)
    }
    async fn list_apps(&self) -> StoreResult<Vec<AppRecord>> {
        let c = self.db.conn().await?;
        Ok(users::list_apps(&c).await?)
    }
    async fn update_app(
        &self,
        client_id: &str,
        update: AppUpdate,
        actor: &str,
        now: Timestamp,
    ) -> StoreResult<Option<AppRecord>> {
        let (id, actor) = (client_id.to_string(), actor.to_string());
        self.db
            .write(move |tx| {
                let (id, update, actor) = (id.clone(), update.clone(), actor.clone());
                Box::pin(async move { users::update_app(tx, &id, &update, &actor, now).await })
            })
            .await
    }
    async fn create_pairing(&self, pairing: NewPairing, now: Timestamp) -> StoreResult<()> {
        in_tx!(self.db, |tx| pairings::create, pairing; now)
    }
    async fn pairing_by_phone_code(&self, phone_code_hash: &SecretHash) -> StoreResult<Option<PairingRecord>> {
        let c = self.db.conn().await?;
        Ok(pairings::by_code(&c, pairings::Code::Phone, phone_code_hash).await?)
    }
    async fn pairing_by_desktop_secret(&self, desktop_secret_hash: &SecretHash) -> StoreResult<Option<PairingRecord>> {
        let c = self.db.conn().await?;
        Ok(pairings::by_code(&c, pairings::Code::Desktop, desktop_secret_hash).await?)
    }
    async fn decide_pairing(
        &self,
        phone_code_hash: &SecretHash,
        user_id: &str,
        approve: bool,
        now: Timestamp,
    ) -> StoreResult<PairingResult> {
        let (h, u) = (phone_code_hash.clone(), user_id.to_string());
        let result = self
            .db
            .write(move |tx| {
                let (h, u) = (h.clone(), u.clone());
                Box::pin(async move { pairings::decide(tx, &h, &u, approve, now).await })
            })
            .await?;
        if let PairingResult::Done(p) = &result {
            // Other replicas hear of it through NOTIFY; local waiters need not wait for that round trip.
            self.notifier.notify(&p.id);
        }
        Ok(result)
    }
    async fn cancel_pairing(&self, desktop_secret_hash: &SecretHash, now: Timestamp) -> StoreResult<PairingResult> {
        let h = desktop_secret_hash.clone();
        let result = self
            .db
            .write(move |tx| {
                let h = h.clone();
                Box::pin(async move { pairings::cancel(tx, &h, now).await })
            })
            .await?;
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
        self.db
            .write(move |tx| {
                let (h, mint) = (h.clone(), mint.clone());
                Box::pin(async move { pairings::collect(tx, &h, mint, now).await })
            })
            .await
    }
    async fn create_device_grant(&self, grant: NewDeviceGrant, now: Timestamp) -> StoreResult<()> {
        in_tx!(self.db, |tx| grants::create, grant; now)
    }
    async fn device_grant_by_user_code(&self, user_code_hash: &SecretHash) -> StoreResult<Option<DeviceGrantRecord>> {
        let c = self.db.conn().await?;
        Ok(grants::by_user_code(&c, user_code_hash).await?)
    }
    async fn decide_device_grant(&self, decision: GrantDecision, now: Timestamp) -> StoreResult<DecideResult> {
        let result = in_tx!(self.db, |tx| grants::decide, decision; now)?;
        if let DecideResult::Decided(g) = &result {
            // Other replicas hear of it through NOTIFY; local waiters need not wait for that round trip.
            self.notifier.notify(&g.id);
        }
        Ok(result)
    }
    async fn redeem_device_grant(&self, redeem: Redeem, now: Timestamp) -> StoreResult<Redeemed> {
        in_tx!(self.db, |tx| grants::redeem, redeem; now)
    }
    async fn rotate_refresh_token(&self, rotate: RotateRefresh, now: Timestamp) -> StoreResult<Rotated> {
        in_tx!(self.db, |tx| tokens::rotate, rotate; now)
    }
    async fn revoke_refresh_family(
        &self,
        token_hash: &SecretHash,
        client_id: &str,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let (h, id) = (token_hash.clone(), client_id.to_string());
        self.db
            .write(move |tx| {
                let (h, id) = (h.clone(), id.clone());
                Box::pin(async move { tokens::revoke_family(tx, &h, &id, now).await })
            })
            .await
    }
    async fn revoke_family(&self, family_id: &str, client_id: &str, now: Timestamp) -> StoreResult<bool> {
        let (f, id) = (family_id.to_string(), client_id.to_string());
        self.db
            .write(move |tx| {
                let (f, id) = (f.clone(), id.clone());
                Box::pin(async move { tokens::revoke_family_by_id(tx, &f, &id, now).await })
            })
            .await
    }
    async fn refresh_token(&self, token_hash: &SecretHash) -> StoreResult<Option<RefreshTokenRecord>> {
        let c = self.db.conn().await?;
        Ok(tokens::refresh_token(&c, token_hash).await?)
    }
    async fn family_active(&self, family_id: &str) -> StoreResult<bool> {
        let c = self.db.conn().await?;
        Ok(tokens::family_active(&c, family_id).await?)
    }
    async fn devices(&self, owner_id: &str) -> StoreResult<Vec<DeviceRecord>> {
        let c = self.db.conn().await?;
        Ok(devices::list(&c, owner_id).await?)
    }
    async fn device(&self, id: &str) -> StoreResult<Option<DeviceRecord>> {
        let c = self.db.conn().await?;
        Ok(devices::get(&c, id).await?)
    }
    async fn rename_device(
        &self,
        id: &str,
        owner_id: &str,
        name: &str,
        now: Timestamp,
    ) -> StoreResult<Option<DeviceRecord>> {
        let (id, owner, name) = (id.to_string(), owner_id.to_string(), name.to_string());
        self.db
            .write(move |tx| {
                let (id, owner, name) = (id.clone(), owner.clone(), name.clone());
                Box::pin(async move { devices::rename(tx, &id, &owner, &name, now).await })
            })
            .await
    }
    async fn relocate_device(
        &self,
        id: &str,
        owner_id: &str,
        location: Option<String>,
        now: Timestamp,
    ) -> StoreResult<Option<DeviceRecord>> {
        let (id, owner) = (id.to_string(), owner_id.to_string());
        self.db
            .write(move |tx| {
                let (id, owner, location) = (id.clone(), owner.clone(), location.clone());
                Box::pin(async move { devices::relocate(tx, &id, &owner, location, now).await })
            })
            .await
    }
    async fn location_history(&self, id: &str) -> StoreResult<Vec<LocationChange>> {
        let c = self.db.conn().await?;
        Ok(devices::history(&c, id).await?)
    }
    async fn revoke_device(
        &self,
        id: &str,
        owner_id: Option<&str>,
        actor: &str,
        now: Timestamp,
    ) -> StoreResult<RevokeDevice> {
        let (id, owner, actor) = (id.to_string(), owner_id.map(str::to_string), actor.to_string());
        self.db
            .write(move |tx| {
                let (id, owner, actor) = (id.clone(), owner.clone(), actor.clone());
                Box::pin(async move { devices::revoke(tx, &id, owner.as_deref(), &actor, now).await })
            })
            .await
    }
    async fn create_enrollment_key(&self, key: NewEnrollmentKey, now: Timestamp) -> StoreResult<()> {
        in_tx!(self.db, |tx| enrollment::create, key; now)
    }
    async fn enrollment_keys(&self, owner_id: Option<&str>) -> StoreResult<Vec<EnrollmentKeyRecord>> {
        let c = self.db.conn().await?;
        Ok(enrollment::list(&c, owner_id).await?)
    }
    async fn revoke_enrollment_key(
        &self,
        id: &str,
        owner_id: Option<&str>,
        actor: &str,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let (id, owner, actor) = (id.to_string(), owner_id.map(str::to_string), actor.to_string());
        self.db
            .write(move |tx| {
                let (id, owner, actor) = (id.clone(), owner.clone(), actor.clone());
                Box::pin(async move { enrollment::revoke(tx, &id, owner.as_deref(), &actor, now).await })
            })
            .await
    }
    async fn enroll_device(&self, enroll: Enroll, now: Timestamp) -> StoreResult<Enrolled> {
        in_tx!(self.db, |tx| enrollment::enroll, enroll; now)
    }
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        let c = self.db.conn().await?;
        Ok(keys::all(&c).await?)
    }
    async fn add_signing_key(&self, key: SigningKeyRecord, actor: Option<String>, now: Timestamp) -> StoreResult<()> {
        in_tx!(self.db, |tx| keys::add, key, actor; now)
    }
    async fn append_audit(&self, event: AuditEvent, now: Timestamp) -> StoreResult<()> {
        self.db
            .write(move |tx| {
                let event = event.clone();
                Box::pin(async move { audit::append(tx, &event, now).await })
            })
            .await
    }
    async fn audit_entries(&self, after: i64, limit: i64) -> StoreResult<Vec<AuditEntry>> {
        let c = self.db.conn().await?;
        Ok(audit::entries(&c, after, limit).await?)
    }
    async fn audit_page(&self, filter: AuditFilter) -> StoreResult<Vec<AuditEntry>> {
        let c = self.db.conn().await?;
        Ok(audit::page(&c, &filter).await?)
    }
    async fn audit_head(&self) -> StoreResult<ChainHead> {
        let c = self.db.conn().await?;
        Ok(audit::head(&c).await?)
    }
    async fn sweep(&self, now: Timestamp) -> StoreResult<SweepReport> {
        self.db.write(move |tx| Box::pin(async move { sweep::sweep(tx, now).await })).await
    }
    fn notifier(&self) -> &DecisionNotifier {
        &self.notifier
    }
}
