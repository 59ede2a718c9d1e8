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
mod backup;
mod checkpoint;
mod devices;
mod enrollment;
mod migrations;
mod reader;
mod sweep;
mod txn;
mod users;
mod writer;

pub use backup::{backup, check, restore, DatabaseCheck};
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
    /// The server secret key, once [`Store::secure_keys`] was given it.
    vault: KeyVault,
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
    /// One process owns an SQLite database (its writer thread), so its memory is the whole truth.
    const SHARED_BY_PROCESSES: bool = false;

    /// The writer's queue and commits, for [`Store::stats`].
    fn backend_stats(&self) -> BackendStats {
        let (queued, commits, secs) = self.writer.load();
        BackendStats { writer_queue: Some(queued), commits: Some((commits, secs)), pool: None }
    }

    /// Opens (creating if needed) the database at `path`, runs migrations, starts the writer.
    pub async fn open(path: impl AsRef<Path>, durability: Durability) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let p = path.clone();
        let (conn, checkpoint_conn) = tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
            let mut conn = open_conn(&p, durability)?;
            migrations::run(&mut conn)?;
            // Checkpoints run beside the writer (see `checkpoint`); its own
            // automatic one is only the backstop. Each operation runs in a
            // savepoint, which copies every page it first changes into a
            // sub-journal: kept in memory, that is a copy; on disk (past 64 KiB,
            // SQLite's default) it was a write per page.
            conn.execute_batch(&format!(
                "PRAGMA wal_autocheckpoint = {}; PRAGMA temp_store = MEMORY;",
                checkpoint::WRITER_AUTOCHECKPOINT
            ))
            .map_err(db_err)?;
            let checkpoint_conn = open_conn(&p, durability)?;
            Ok((conn, checkpoint_conn))
        })
        .await
        .map_err(|e| StoreError::Database(e.to_string()))??;
        let writer = writer::Writer::start(conn, checkpoint::Checkpointer::start(checkpoint_conn)?)?;
        let readers = reader::Readers::new(path.clone());
        Ok(Self { writer, readers, notifier: DecisionNotifier::default(), vault: KeyVault::default(), path })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Runs an operation in the writer's next batch: a shared flow over [`Sql`],
/// or one of this crate's own functions on the write connection.
macro_rules! sqlite_write {
    ($s:tt, flow [$($a:ident),*] |$tx:ident| $body:expr) => {
        $s.writer
            .run(move |c| {
                let $tx = &Sql(c);
                complete($body)
            })
            .await
    };
    ($s:tt, local [$($a:ident),*] |$c:ident| $body:expr) => {
        $s.writer.run(move |$c| $body).await
    };
}

/// Runs a read on a pooled read-only connection, beside the writer.
macro_rules! sqlite_read {
    ($s:tt, flow [$($a:ident),*] |$tx:ident| $body:expr) => {
        $s.readers
            .run(move |c| {
                let $tx = &Sql(c);
                complete($body)
            })
            .await
    };
    ($s:tt, local [$($a:ident),*] |$c:ident| $body:expr) => {
        $s.readers.run(move |$c| $body).await
    };
}

latchkey_store::impl_store!(SqliteStore, sqlite_write, sqlite_read);
