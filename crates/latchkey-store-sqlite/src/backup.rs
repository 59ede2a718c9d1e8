//! Online backup and restore of the database file, for `latchkey admin backup|restore`.
//!
//! A backup is taken with SQLite's online backup API from a connection of its
//! own, so it works while a server (another process) keeps writing. It copies
//! every page in one step, inside one read transaction: in WAL mode that read
//! is a snapshot, so the copy is consistent and writers are never blocked (only
//! checkpoints wait for it). The copy is written next to the target under a
//! temporary name, switched out of WAL mode so it is one self-contained file,
//! checked, fsynced, and only then renamed into place.

use crate::{db_err, migrations};
use latchkey_store::StoreError;
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a checked database holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseCheck {
    /// The highest schema migration applied.
    pub schema_version: i64,
    /// Its size in bytes.
    pub bytes: u64,
}

/// Copies the live database at `db` into a new file `dest` (which must not exist).
pub fn backup(db: &Path, dest: &Path) -> Result<DatabaseCheck, StoreError> {
    if !db.exists() {
        return Err(StoreError::Database(format!("there is no database at {}", db.display())));
    }
    refuse_existing(dest)?;
    // Read-write without create: the file must exist, and SQLite may need to
    // write the WAL index (-shm) to read a WAL database at all.
    let src = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(db_err)?;
    src.busy_timeout(Duration::from_secs(5)).map_err(db_err)?;
    copy_to_new_file(&src, dest)
}

/// Copies the backup `src` into a new database file at `db`, after checking
/// both; `db` must not exist yet (nor its WAL files).
pub fn restore(src: &Path, db: &Path) -> Result<DatabaseCheck, StoreError> {
    for p in [db.to_path_buf(), sidecar(db, "-wal"), sidecar(db, "-shm")] {
        refuse_existing(&p)?;
    }
    let source = Connection::open_with_flags(src, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(db_err)?;
    check_conn(&source).map_err(|e| StoreError::Corrupt(format!("{}: {e}", src.display())))?;
    copy_to_new_file(&source, db)
}

/// Checks a database file: SQLite's `integrity_check`, and its schema
/// migrations are readable and all known to this version of Latchkey.
pub fn check(path: &Path) -> Result<DatabaseCheck, StoreError> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(db_err)?;
    let schema_version = check_conn(&conn)?;
    let bytes = std::fs::metadata(path).map_err(io_err)?.len();
    Ok(DatabaseCheck { schema_version, bytes })
}

fn check_conn(conn: &Connection) -> Result<i64, StoreError> {
    let mut stmt = conn.prepare("PRAGMA integrity_check").map_err(db_err)?;
    let problems: Vec<String> =
        stmt.query_map([], |r| r.get::<_, String>(0)).map_err(db_err)?.collect::<Result<_, _>>().map_err(db_err)?;
    if problems != ["ok"] {
        return Err(StoreError::Corrupt(format!("integrity check failed: {}", problems.join("; "))));
    }
    let versions: Vec<i64> = conn
        .prepare("SELECT version FROM schema_migrations ORDER BY version")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(|e| StoreError::Corrupt(format!("not a Latchkey database (no readable schema_migrations: {e})")))?;
    let known = migrations::known_versions();
    if let Some(unknown) = versions.iter().find(|v| !known.contains(v)) {
        return Err(StoreError::Corrupt(format!(
            "it has schema migration {unknown}, which this version of Latchkey does not know (made by a newer one?)"
        )));
    }
    versions.last().copied().ok_or_else(|| StoreError::Corrupt("no schema migration was ever applied".into()))
}

/// Backs `src` up into `dest` via a temporary file beside it, then renames.
fn copy_to_new_file(src: &Connection, dest: &Path) -> Result<DatabaseCheck, StoreError> {
    let tmp = sidecar(dest, &format!(".partial-{}", std::process::id()));
    let result = copy_to(src, &tmp).and_then(|()| {
        let checked = check(&tmp)?;
        // A hard link, not a rename: it fails if `dest` appeared meanwhile rather than replacing it.
        // Where the file system has no hard links, a rename after one more look.
        match std::fs::hard_link(&tmp, dest) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(io_err(e)),
            Err(_) => {
                refuse_existing(dest)?;
                std::fs::rename(&tmp, dest).map_err(io_err)?;
            }
        }
        Ok(checked)
    });
    let _ = std::fs::remove_file(&tmp);
    if result.is_ok() {
        sync_dir(dest);
    }
    result
}

fn copy_to(src: &Connection, tmp: &Path) -> Result<(), StoreError> {
    private_new_file(tmp)?;
    let mut dst = Connection::open(tmp).map_err(db_err)?;
    {
        let backup = Backup::new(src, &mut dst).map_err(db_err)?;
        let mut tries = 0;
        // -1: every page in one step, so the whole copy is one snapshot of the source.
        loop {
            match backup.step(-1).map_err(db_err)? {
                StepResult::Done => break,
                StepResult::More => {}
                StepResult::Busy | StepResult::Locked if tries < 50 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                other => return Err(StoreError::Unavailable(format!("the database stayed busy ({other:?})"))),
            }
        }
    }
    // One self-contained file: no WAL beside it. FULL sync so the close fsyncs it.
    dst.execute_batch("PRAGMA journal_mode = DELETE; PRAGMA synchronous = FULL;").map_err(db_err)?;
    drop(dst);
    std::fs::File::open(tmp).and_then(|f| f.sync_all()).map_err(io_err)
}

fn refuse_existing(p: &Path) -> Result<(), StoreError> {
    if p.symlink_metadata().is_ok() {
        return Err(StoreError::Conflict("the target file"));
    }
    Ok(())
}

/// `path` with `suffix` appended to its file name.
fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Creates an empty file readable by its owner only: backups hold hashes and signing keys.
fn private_new_file(path: &Path) -> Result<(), StoreError> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path).map(|_| ()).map_err(io_err)
}

fn sync_dir(file: &Path) {
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

fn io_err(e: std::io::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::{Durability, SqliteStore};
    use latchkey_domain::audit::ChainVerifier;
    use latchkey_domain::Timestamp;
    use latchkey_store::{AppRecord, ClientKind, Store};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;

    fn app(i: usize) -> AppRecord {
        AppRecord {
            client_id: format!("app-{i}"),
            display_name: format!("App {i}"),
            kind: ClientKind::Public,
            secret_hash: None,
            grant_types: vec![],
            redirect_uris: vec![],
            app_url: None,
            qr_sign_in: false,
            require_dpop: false,
            created_at: Timestamp::from_millis(1),
            post_logout_redirect_uris: Vec::new(),
            id_token_alg: Default::default(),
        }
    }

    /// Backups taken while the writer commits as fast as it can are snapshots: in each,
    /// the apps table and the audit log agree, and the hash chain matches its recorded head.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn backups_during_a_stream_of_writes_are_consistent_snapshots() {
        let dir = std::env::temp_dir().join(format!("latchkey-backup-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = dir.join("latchkey.sqlite3");
        let store = Arc::new(SqliteStore::open(&db, Durability::Normal).await.unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let committed = Arc::new(AtomicUsize::new(0));
        let writer = {
            let (store, stop, committed) = (store.clone(), stop.clone(), committed.clone());
            tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    store.create_app(app(i), Some("test".into()), Timestamp::from_millis(1)).await.unwrap();
                    i += 1;
                    committed.store(i, Ordering::Relaxed);
                }
                i
            })
        };
        let mut seen: Vec<usize> = Vec::new();
        for n in 0..5 {
            // Each backup starts after at least one commit the one before cannot have seen.
            while committed.load(Ordering::Relaxed) <= seen.last().copied().unwrap_or(0) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let (src, dest) = (db.clone(), dir.join(format!("backup-{n}.sqlite3")));
            let checked = tokio::task::spawn_blocking(move || backup(&src, &dest)).await.unwrap().unwrap();
            assert_eq!(checked.schema_version, *migrations::known_versions().last().unwrap());
            let copy = SqliteStore::open(dir.join(format!("backup-{n}.sqlite3")), Durability::Normal).await.unwrap();
            let entries = copy.audit_entries(0, 1_000_000).await.unwrap();
            let mut chain = ChainVerifier::default();
            for e in &entries {
                chain.push(e).unwrap();
            }
            chain.finish(copy.audit_head().await.unwrap()).unwrap();
            let apps = copy.list_apps().await.unwrap().len();
            let created = entries.iter().filter(|e| e.kind == "app.created").count();
            assert_eq!(apps, created, "backup {n}: the apps and the audit log are from one moment");
            seen.push(apps);
        }
        stop.store(true, Ordering::Relaxed);
        let written = writer.await.unwrap();
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "each backup saw writes the one before did not: {seen:?}");
        assert!(written >= *seen.last().unwrap(), "the backups saw only committed writes");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
