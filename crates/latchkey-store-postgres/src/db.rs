//! The connection pool, transactions, and how PostgreSQL failures map onto [`StoreError`].

use crate::tls::{split_ssl_params, TlsMode};
use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use latchkey_store::{StoreError, StoreResult};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tokio_postgres::config::Host;
use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres::Config;
use tokio_postgres_rustls::MakeRustlsConnect;

/// A transaction on a pooled connection.
pub(crate) type Tx<'a> = deadpool_postgres::Transaction<'a>;
/// A pooled connection outside any explicit transaction (single-statement reads).
pub(crate) type Conn = deadpool_postgres::Client;
/// What a transaction body returns; boxed so a body can be re-run on deadlock.
pub(crate) type TxFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, Fail>> + Send + 'a>>;

/// Connections per store; several replicas share the server's `max_connections`.
const POOL_SIZE: usize = 16;
/// How long a caller waits for a free connection before hearing "unavailable".
const POOL_WAIT: Duration = Duration::from_secs(5);
/// How long opening one connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Deadlocks are resolved by PostgreSQL aborting one side; re-running it is safe
/// because the aborted transaction left nothing behind.
const DEADLOCK_RETRIES: usize = 3;

/// A failure inside an operation: either PostgreSQL's error, kept whole so it
/// can still be classified, or an already decided store error.
#[derive(Debug)]
pub(crate) enum Fail {
    Pg(tokio_postgres::Error),
    Store(StoreError),
}

impl From<tokio_postgres::Error> for Fail {
    fn from(e: tokio_postgres::Error) -> Self {
        Fail::Pg(e)
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Store(e)
    }
}

impl From<Fail> for StoreError {
    fn from(f: Fail) -> Self {
        match f {
            Fail::Pg(e) => pg_err(&e),
            Fail::Store(e) => e,
        }
    }
}

/// Result inside an operation.
pub(crate) type DbResult<T> = Result<T, Fail>;

/// The error's text with its causes; `tokio_postgres` puts the useful part in the source.
pub(crate) fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

fn is_retryable(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE
    )
}

/// Whether the error is the link to the server failing rather than the server answering.
fn is_link_failure(e: &tokio_postgres::Error) -> bool {
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        if c.is::<std::io::Error>() {
            return true;
        }
        cause = c.source();
    }
    // `tokio_postgres` exposes no kind; a timeout is the one link failure without a cause.
    e.is_closed() || e.to_string() == "timeout waiting for server"
}

/// Classifies a PostgreSQL error: lost connections, refusals and overload are worth retrying later.
pub(crate) fn pg_err(e: &tokio_postgres::Error) -> StoreError {
    let text = describe(e);
    let Some(code) = e.code() else {
        // No SQLSTATE: either the link failed, or a row did not have the expected shape (a bug).
        return if is_link_failure(e) { StoreError::Unavailable(text) } else { StoreError::Database(text) };
    };
    let c = code.code();
    let unavailable = c.starts_with("08") // connection exception
        || c.starts_with("28") // invalid authorization: the server refuses us
        || c.starts_with("53") // insufficient resources
        || c.starts_with("57P") // shutting down, cannot connect now
        || *code == SqlState::INVALID_CATALOG_NAME // the database does not exist
        || *code == SqlState::T_R_DEADLOCK_DETECTED
        || *code == SqlState::T_R_SERIALIZATION_FAILURE
        || *code == SqlState::LOCK_NOT_AVAILABLE;
    if unavailable {
        StoreError::Unavailable(text)
    } else {
        StoreError::Database(text)
    }
}

/// Maps a unique violation to [`StoreError::Conflict`] naming `what`, as the SQLite backend words it.
pub(crate) fn conflict(what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> Fail {
    move |e| {
        if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
            Fail::Store(StoreError::Conflict(what))
        } else {
            Fail::Pg(e)
        }
    }
}

fn pool_err(e: PoolError) -> StoreError {
    match e {
        PoolError::Backend(e) => pg_err(&e),
        other => StoreError::Unavailable(format!("no PostgreSQL connection available: {other}")),
    }
}

/// Where a configuration points, for messages: hosts, port and database, never credentials.
pub(crate) fn target(config: &Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let ports: Vec<String> = config.get_ports().iter().map(u16::to_string).collect();
    let host = if hosts.is_empty() { "localhost".to_string() } else { hosts.join(",") };
    let port = if ports.is_empty() { "5432".to_string() } else { ports.join(",") };
    format!("{host}:{port}/{}", config.get_dbname().unwrap_or(""))
}

/// Rejects schema names that would need quoting: `search_path` in the startup
/// options and the `CREATE SCHEMA` must name the very same schema.
pub(crate) fn check_schema(schema: &str) -> StoreResult<()> {
    let mut chars = schema.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if first_ok && rest_ok && schema.len() <= 63 {
        Ok(())
    } else {
        Err(StoreError::Database(format!(
            "schema name {schema:?} must be 1-63 lowercase letters, digits or underscores, not starting with a digit"
        )))
    }
}

/// Where and how to connect: tokio-postgres's configuration and the TLS connector `sslmode` asks for.
#[derive(Clone)]
pub(crate) struct PgConfig {
    pub(crate) pg: Config,
    pub(crate) tls: MakeRustlsConnect,
}

impl PgConfig {
    /// Opens one connection outside the pool.
    pub(crate) async fn connect(
        &self,
    ) -> Result<
        (tokio_postgres::Client, tokio_postgres::Connection<tokio_postgres::Socket, TlsStream>),
        tokio_postgres::Error,
    > {
        self.pg.connect(self.tls.clone()).await
    }
}

/// The stream of a connection, encrypted or not.
pub(crate) type TlsStream = <MakeRustlsConnect as tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket>>::Stream;

/// Parses `url` (with libpq's `sslmode` and `sslrootcert`, see [`crate::tls`]) and,
/// for a schema, makes every session start with it as `search_path`.
pub(crate) fn config(url: &str, schema: Option<&str>) -> StoreResult<PgConfig> {
    let (url, sslmode, sslrootcert) = split_ssl_params(url);
    let mut config: Config = url.parse().map_err(|e: tokio_postgres::Error| {
        StoreError::Database(format!("invalid PostgreSQL URL: {}", describe(&e)))
    })?;
    // A key=value string's `sslmode=require` reaches us already parsed.
    let sslmode = sslmode.or_else(|| (config.get_ssl_mode() == SslMode::Require).then(|| "require".to_string()));
    let mode = TlsMode::from_params(sslmode.as_deref(), sslrootcert.as_deref())?;
    // Plain never even asks the server for TLS, as with `NoTls` before; the others insist on it.
    config.ssl_mode(if mode.encrypts() { SslMode::Require } else { SslMode::Disable });
    if let Some(schema) = schema {
        check_schema(schema)?;
        let options = match config.get_options() {
            Some(existing) if !existing.trim().is_empty() => {
                format!("{existing} -c search_path={schema}")
            }
            _ => format!("-c search_path={schema}"),
        };
        config.options(options);
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("latchkey");
    }
    Ok(PgConfig { pg: config, tls: mode.connector()? })
}

/// The pool every operation draws from.
#[derive(Clone)]
pub(crate) struct Db {
    pool: Pool,
}

impl Db {
    /// Connections held, idle, and the most there may be.
    pub(crate) fn pool_status(&self) -> (u64, u64, u64) {
        let s = self.pool.status();
        (s.size as u64, s.available as u64, s.max_size as u64)
    }

    pub(crate) fn new(config: PgConfig) -> StoreResult<Self> {
        let manager =
            Manager::from_config(config.pg, config.tls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| StoreError::Database(format!("cannot build the PostgreSQL pool: {e}")))?;
        Ok(Self { pool })
    }

    /// A pooled connection, for reads that are a single statement (and so atomic on their own).
    pub(crate) async fn conn(&self) -> StoreResult<Conn> {
        self.pool.get().await.map_err(pool_err)
    }

    /// Runs `body` in one transaction and commits it; rolls back on any error.
    pub(crate) async fn write<T, F>(&self, body: F) -> StoreResult<T>
    where
        T: Send,
        F: for<'a> Fn(&'a Tx<'a>) -> TxFuture<'a, T> + Send + Sync,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut conn = self.conn().await?;
            let tx = conn.transaction().await.map_err(|e| pg_err(&e))?;
            let failure = match body(&tx).await {
                Ok(value) => match tx.commit().await {
                    Ok(()) => return Ok(value),
                    Err(e) => Fail::Pg(e),
                },
                Err(f) => {
                    // The connection goes back to the pool; leave it outside any transaction.
                    let _ = tx.rollback().await;
                    f
                }
            };
            match failure {
                Fail::Pg(e) if is_retryable(&e) && attempt <= DEADLOCK_RETRIES => {
                    tracing::debug!(error = %describe(&e), attempt, "retrying PostgreSQL transaction");
                }
                f => return Err(f.into()),
            }
        }
    }
}
