//! SQLite backend for Latchkey: the embedded default.
//!
//! SQLite allows one writer at a time, so instead of many connections
//! fighting over the write lock, one thread owns the write connection and
//! commits whatever operations have queued up in a single transaction
//! (group commit): one fsync covers a whole batch. Each operation runs in
//! its own savepoint, so one failing operation never takes its neighbours
//! down, and none learns its result before the batch is durable.
//! Reads go to a small pool of read-only connections, which WAL lets run
//! beside the writer.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod audit;
mod devices;
mod enrollment;
mod keys;
mod migrations;
mod reader;
mod sweep;
mod tokens;
mod txn;
mod users;
mod writer;

use async_trait::async_trait;
use latchkey_domain::audit::{AuditEntry, AuditEvent, ChainHead};
use latchkey_domain::secret::SecretHash;
use latchkey_domain::Timestamp;
use latchkey_store::flows;
use latchkey_store::txn::{GrantCode, PairingCode, Txn};
use latchkey_store::*;
use std::path::{Path, PathBuf};
use txn::{complete, Sql};

/// How hard SQLite works to make each commit survive power loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=FULL`: every commit is fsynced before anyone hears of it.
    #[default]
    Full,
    /// `synchronous=NORMAL`: safe against crashes of the process, may lose the
    /// last commits on power loss.
    Normal,
}

/// The SQLite store. Cheap to share behind an `Arc`.
pub struct SqliteStore {
    writer: writer::Writer,
    readers: reader::Readers,
    notifier: DecisionNotifier,
    path: PathBuf,
}

pub(crate) fn db_err(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked | ErrorCode::CannotOpen | ErrorCode::DiskFull) => {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Database(e.to_string()),
    }
}

/// Only UNIQUE and PRIMARY KEY failures mean "already exists"; a foreign-key or
/// NOT NULL failure is a bug or bad input and must not read as a conflict.
pub(crate) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    use rusqlite::ffi::{SQLITE_CONSTRAINT_PRIMARYKEY, SQLITE_CONSTRAINT_UNIQUE};
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == SQLITE_CONSTRAINT_UNIQUE || f.extended_code == SQLITE_CONSTRAINT_PRIMARYKEY)
}

/// A read-only connection: readers can never write, whatever a bug asks of them.
/// Readers do point lookups and there can be dozens of them, so each gets a small
/// page cache (2 MB); the writer keeps the large one and the OS caches the file.
fn open_reader(path: &Path) -> Result<rusqlite::Connection, StoreError> {
    use rusqlite::OpenFlags;
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    let conn = rusqlite::Connection::open_with_flags(path, flags).map_err(db_err)?;
    conn.execute_batch("PRAGMA busy_timeout = 5000; PRAGMA cache_size = -2000;").map_err(db_err)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

fn open_conn(path: &Path, durability: Durability) -> Result<rusqlite::Connection, StoreError> {
    let conn = rusqlite::Connection::open(path).map_err(db_err)?;
    let sync = match durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = {sync};
         PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 5000;
         PRAGMA cache_size = -16000;"
    ))
    .map_err(db_err)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, runs migrations, starts the writer.
    pub async fn open(path: impl AsRef<Path>, durability: Durability) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let p = path.clone();
        let conn = tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
            let mut conn = open_conn(&p, durability)?;
            migrations::run(&mut conn)?;
            Ok(conn)
        })
        .await
        .map_err(|e| StoreError::Database(e.to_string()))??;
        let writer = writer::Writer::start(conn)?;
        let readers = reader::Readers::new(path.clone());
        Ok(Self { writer, readers, notifier: DecisionNotifier::default(), path })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_user(&self, user: NewUser, actor: Option<String>, now: Timestamp) -> StoreResult<UserRecord> {
        self.writer.run(move |c| users::create_user(c, user, actor, now)).await
    }
    async fn user_by_name(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        let name = username.to_string();
        self.readers.run(move |c| users::user_by_name(c, &name)).await
    }
    async fn count_users(&self) -> StoreResult<i64> {
        self.readers.run(users::count_users).await
    }
    async fn create_session(&self, session: NewSession, now: Timestamp) -> StoreResult<()> {
        self.writer.run(move |c| users::create_session(c, session, now)).await
    }
    async fn session(&self, token_hash: &SecretHash, now: Timestamp) -> StoreResult<Option<SessionRecord>> {
        let h = token_hash.clone();
        self.readers.run(move |c| users::session(c, &h, now)).await
    }
    async fn delete_session(&self, token_hash: &SecretHash, now: Timestamp) -> StoreResult<bool> {
        let h = token_hash.clone();
        self.writer.run(move |c| users::delete_session(c, &h, now)).await
    }
    async fn create_app(&self, app: AppRecord, actor: Option<String>, now: Timestamp) -> StoreResult<()> {
        self.writer.run(move |c| users::create_app(c, app, actor, now)).await
    }
    async fn app(&self, client_id: &str) -> StoreResult<Option<AppRecord>> {
        let id = client_id.to_string();
        self.readers.run(move |c| users::app(c, &id)).await
    }
    async fn list_apps(&self) -> StoreResult<Vec<AppRecord>> {
        self.readers.run(users::list_apps).await
    }
    async fn update_app(
        &self,
        client_id: &str,
        update: AppUpdate,
        actor: &str,
        now: Timestamp,
    ) -> StoreResult<Option<AppRecord>> {
        let (id, actor) = (client_id.to_string(), actor.to_string());
        self.writer.run(move |c| users::update_app(c, &id, update, &actor, now)).await
    }
    async fn create_pairing(&self, pairing: NewPairing, now: Timestamp) -> StoreResult<()> {
        self.writer.run(move |c| complete(flows::pairings::create(&Sql(c), &pairing, now))).await
    }
    async fn pairing_by_phone_code(&self, phone_code_hash: &SecretHash) -> StoreResult<Option<PairingRecord>> {
        let h = phone_code_hash.clone();
        self.readers.run(move |c| complete(Sql(c).pairing(PairingCode::Phone, &h, false))).await
    }
    async fn pairing_by_desktop_secret(&self, desktop_secret_hash: &SecretHash) -> StoreResult<Option<PairingRecord>> {
        let h = desktop_secret_hash.clone();
        self.readers.run(move |c| complete(Sql(c).pairing(PairingCode::Desktop, &h, false))).await
    }
    async fn decide_pairing(
        &self,
        phone_code_hash: &SecretHash,
        user_id: &str,
        approve: bool,
        now: Timestamp,
    ) -> StoreResult<PairingResult> {
        let (h, u) = (phone_code_hash.clone(), user_id.to_string());
        let r = self.writer.run(move |c| complete(flows::pairings::decide(&Sql(c), &h, &u, approve, now))).await?;
        if let PairingResult::Done(p) = &r {
            self.notifier.notify(&p.id);
        }
        Ok(r)
    }
    async fn cancel_pairing(&self, desktop_secret_hash: &SecretHash, now: Timestamp) -> StoreResult<PairingResult> {
        let h = desktop_secret_hash.clone();
        let r = self.writer.run(move |c| complete(flows::pairings::cancel(&Sql(c), &h, now))).await?;
        if let PairingResult::Done(p) = &r {
            self.notifier.notify(&p.id);
        }
        Ok(r)
    }
    async fn collect_pairing(
        &self,
        desktop_secret_hash: &SecretHash,
        mint: MintRefresh,
        now: Timestamp,
    ) -> StoreResult<Collected> {
        let h = desktop_secret_hash.clone();
        self.writer.run(move |c| complete(flows::pairings::collect(&Sql(c), &h, &mint, now))).await
    }
    async fn create_device_grant(&self, grant: NewDeviceGrant, now: Timestamp) -> StoreResult<()> {
        self.writer.run(move |c| complete(flows::grants::create(&Sql(c), &grant, now))).await
    }
    async fn device_grant_by_user_code(&self, user_code_hash: &SecretHash) -> StoreResult<Option<DeviceGrantRecord>> {
        let h = user_code_hash.clone();
        self.readers.run(move |c| complete(Sql(c).grant(GrantCode::User, &h, false))).await
    }
    async fn decide_device_grant(&self, decision: GrantDecision, now: Timestamp) -> StoreResult<DecideResult> {
        let result = self.writer.run(move |c| complete(flows::grants::decide(&Sql(c), decision, now))).await?;
        if let DecideResult::Decided(g) = &result {
            // The writer answers only after commit, so waiters wake to a durable decision.
            self.notifier.notify(&g.id);
        }
        Ok(result)
    }
    async fn redeem_device_grant(&self, redeem: Redeem, now: Timestamp) -> StoreResult<Redeemed> {
        if redeem.mode == RedeemMode::Wait {
            // Checking a waiting grant writes nothing: keep it off the single writer.
            let r = redeem.clone();
            if let Some(answer) = self.readers.run(move |c| complete(flows::grants::wait_check(&Sql(c), &r, now))).await? {
                return Ok(answer);
            }
        }
        self.writer.run(move |c| complete(flows::grants::redeem(&Sql(c), redeem, now))).await
    }
    async fn rotate_refresh_token(&self, rotate: RotateRefresh, now: Timestamp) -> StoreResult<Rotated> {
        self.writer.run(move |c| complete(flows::tokens::rotate(&Sql(c), rotate, now))).await
    }
    async fn revoke_refresh_family(
        &self,
        token_hash: &SecretHash,
        client_id: &str,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let (h, id) = (token_hash.clone(), client_id.to_string());
        self.writer.run(move |c| complete(flows::tokens::revoke_by_token(&Sql(c), &h, &id, now))).await
    }
    async fn revoke_family(&self, family_id: &str, client_id: &str, now: Timestamp) -> StoreResult<bool> {
        let (f, id) = (family_id.to_string(), client_id.to_string());
        self.writer.run(move |c| complete(flows::tokens::revoke_by_id(&Sql(c), &f, &id, now))).await
    }
    async fn refresh_token(&self, token_hash: &SecretHash) -> StoreResult<Option<RefreshTokenRecord>> {
        let h = token_hash.clone();
        self.readers.run(move |c| Ok(complete(Sql(c).refresh_token(&h, false))?.map(|(t, _)| t))).await
    }
    async fn family_active(&self, family_id: &str) -> StoreResult<bool> {
        let id = family_id.to_string();
        self.readers.run(move |c| tokens::family_active(c, &id)).await
    }
    async fn devices(&self, owner_id: &str) -> StoreResult<Vec<DeviceRecord>> {
        let id = owner_id.to_string();
        self.readers.run(move |c| devices::list(c, &id)).await
    }
    async fn device(&self, id: &str) -> StoreResult<Option<DeviceRecord>> {
        let id = id.to_string();
        self.readers.run(move |c| complete(Sql(c).device(&id, false))).await
    }
    async fn rename_device(
        &self,
        id: &str,
        owner_id: &str,
        name: &str,
        now: Timestamp,
    ) -> StoreResult<Option<DeviceRecord>> {
        let (id, owner, name) = (id.to_string(), owner_id.to_string(), name.to_string());
        self.writer.run(move |c| complete(flows::devices::rename(&Sql(c), &id, &owner, &name, now))).await
    }
    async fn relocate_device(
        &self,
        id: &str,
        owner_id: &str,
        location: Option<String>,
        now: Timestamp,
    ) -> StoreResult<Option<DeviceRecord>> {
        let (id, owner) = (id.to_string(), owner_id.to_string());
        self.writer.run(move |c| complete(flows::devices::relocate(&Sql(c), &id, &owner, location, now))).await
    }
    async fn location_history(&self, id: &str) -> StoreResult<Vec<LocationChange>> {
        let id = id.to_string();
        self.readers.run(move |c| devices::history(c, &id)).await
    }
    async fn revoke_device(
        &self,
        id: &str,
        owner_id: Option<&str>,
        actor: &str,
        now: Timestamp,
    ) -> StoreResult<RevokeDevice> {
        let (id, owner, actor) = (id.to_string(), owner_id.map(str::to_string), actor.to_string());
        self.writer.run(move |c| complete(flows::devices::revoke(&Sql(c), &id, owner.as_deref(), &actor, now))).await
    }
    async fn create_enrollment_key(&self, key: NewEnrollmentKey, now: Timestamp) -> StoreResult<()> {
        self.writer.run(move |c| complete(flows::enrollment::create(&Sql(c), &key, now))).await
    }
    async fn enrollment_keys(&self, owner_id: Option<&str>) -> StoreResult<Vec<EnrollmentKeyRecord>> {
        let owner = owner_id.map(str::to_string);
        self.readers.run(move |c| enrollment::list(c, owner.as_deref())).await
    }
    async fn revoke_enrollment_key(
        &self,
        id: &str,
        owner_id: Option<&str>,
        actor: &str,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let (id, owner, actor) = (id.to_string(), owner_id.map(str::to_string), actor.to_string());
        self.writer.run(move |c| complete(flows::enrollment::revoke(&Sql(c), &id, owner.as_deref(), &actor, now))).await
    }
    async fn enroll_device(&self, enroll: Enroll, now: Timestamp) -> StoreResult<Enrolled> {
        self.writer.run(move |c| complete(flows::enrollment::enroll(&Sql(c), enroll, now))).await
    }
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        self.readers.run(keys::all).await
    }
    async fn add_signing_key(&self, key: SigningKeyRecord, actor: Option<String>, now: Timestamp) -> StoreResult<()> {
        self.writer.run(move |c| keys::add(c, key, actor, now)).await
    }
    async fn append_audit(&self, event: AuditEvent, now: Timestamp) -> StoreResult<()> {
        self.writer.run(move |c| audit::append(c, &event, now)).await
    }
    async fn audit_entries(&self, after: i64, limit: i64) -> StoreResult<Vec<AuditEntry>> {
        self.readers.run(move |c| audit::entries(c, after, limit)).await
    }
    async fn audit_page(&self, filter: AuditFilter) -> StoreResult<Vec<AuditEntry>> {
        self.readers.run(move |c| audit::page(c, &filter)).await
    }
    async fn audit_head(&self) -> StoreResult<ChainHead> {
        self.readers.run(audit::head).await
    }
    async fn sweep(&self, now: Timestamp) -> StoreResult<SweepReport> {
        self.writer.run(move |c| sweep::sweep(c, now)).await
    }
    fn notifier(&self) -> &DecisionNotifier {
        &self.notifier
    }
}
