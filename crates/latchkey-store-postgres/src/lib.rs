//! PostgreSQL backend for Latchkey: for several replicas sharing one database.
//!
//! Every operation is one transaction on a pooled connection. Transitions
//! load their row `FOR UPDATE`, ask `latchkey-domain`, and write, so callers
//! on any replica take turns on the row they contend for. Audit entries are
//! inserted without a lock; one replica at a time (an advisory lock) seals them
//! into the audit tree and signs its checkpoint. Decisions are
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
mod listen;
mod migrations;
mod sweep;
mod tls;
mod txn;
mod users;

use db::{pg_err, target, Db};
use latchkey_store::*;
use tokio::task::JoinHandle;
use txn::Pg;

/// The PostgreSQL store. Cheap to share behind an `Arc`; dropping it stops its listener.
pub struct PgStore {
    db: Db,
    notifier: DecisionNotifier,
    /// The server secret key, once [`Store::secure_keys`] was given it.
    vault: KeyVault,
    listener: JoinHandle<()>,
}

impl PgStore {
    /// Replicas share one database: per-process memory sees only one replica's requests.
    const SHARED_BY_PROCESSES: bool = true;

    /// The pool's use, for [`Store::stats`].
    fn backend_stats(&self) -> BackendStats {
        BackendStats { pool: Some(self.db.pool_status()), ..BackendStats::default() }
    }

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
            StoreError::Unavailable(format!("cannot connect to PostgreSQL at {}: {why}", target(&config.pg)))
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
        Ok(PgStore { db, notifier, vault: KeyVault::default(), listener })
    }

    /// Drops `schema` and everything in it; for cleaning up after tests.
    pub async fn drop_schema(url: &str, schema: &str) -> Result<(), StoreError> {
        db::check_schema(schema)?;
        let config = db::config(url, None)?;
        let (client, connection) = config.connect().await.map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot connect to PostgreSQL at {}: {}",
                target(&config.pg),
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

/// Runs an operation in one transaction: a shared flow over [`Pg`], or one of
/// this crate's own functions on the transaction. The body clones its
/// arguments first, so it can run again after a deadlock.
macro_rules! pg_write {
    ($s:tt, flow [$($a:ident),*] |$tx:ident| $body:expr) => {
        $s.db
            .write(move |t| {
                $(let $a = $a.clone();)*
                Box::pin(async move { let $tx = &Pg(t); $body.await })
            })
            .await
    };
    ($s:tt, local [$($a:ident),*] |$c:ident| $body:expr) => {
        $s.db
            .write(move |$c| {
                $(let $a = $a.clone();)*
                Box::pin(async move { $body.await })
            })
            .await
    };
}

/// Runs a single-statement read on a pooled connection (atomic on its own).
macro_rules! pg_read {
    ($s:tt, flow [$($a:ident),*] |$tx:ident| $body:expr) => {{
        let conn = $s.db.conn().await?;
        let $tx = &Pg(&conn);
        Ok::<_, StoreError>($body.await?)
    }};
    ($s:tt, local [$($a:ident),*] |$c:ident| $body:expr) => {{
        let conn = $s.db.conn().await?;
        let $c = &conn;
        Ok::<_, StoreError>($body.await?)
    }};
}

latchkey_store::impl_store!(PgStore, pg_write, pg_read);
