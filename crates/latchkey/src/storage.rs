//! Opens the configured backend behind the one `Store` interface.

use crate::settings::StorageSettings;
use anyhow::Context;
use latchkey_store::Store;
use std::sync::Arc;

/// Opens (and migrates) the store and unlocks it with the server secret key.
pub async fn open(settings: &StorageSettings, secret: &crate::secret_key::Source) -> anyhow::Result<Arc<dyn Store>> {
    let store = open_locked(settings).await?;
    crate::secret_key::unlock(secret, settings, store.as_ref()).await?;
    Ok(store)
}

/// Opens (and migrates) the store, not yet unlocked.
async fn open_locked(settings: &StorageSettings) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match settings {
        StorageSettings::Sqlite { data_dir, durability } => {
            private_dir(data_dir)?;
            let path = sqlite_path(data_dir);
            private_file(&path)?;
            let store = latchkey_store_sqlite::SqliteStore::open(&path, *durability)
                .await
                .with_context(|| format!("cannot open the database {}", path.display()))?;
            Arc::new(store)
        }
        StorageSettings::Postgres { url } => {
            let store = latchkey_store_postgres::PgStore::connect(url, None)
                .await
                .context("cannot open the PostgreSQL database")?;
            Arc::new(store)
        }
    })
}

/// The SQLite database file in a data directory.
pub fn sqlite_path(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join("latchkey.sqlite3")
}

/// Creates the data directory readable by its owner only: it holds hashes, sealed keys and (by default) the secret key.
pub fn private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir).with_context(|| format!("cannot create the data directory {}", dir.display()))
}

/// Creates the database file 0600 before SQLite does (its WAL and SHM files copy these permissions).
fn private_file(path: &std::path::Path) -> anyhow::Result<()> {
    if path.exists() {
        return Ok(());
    }
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path).map(|_| ()).with_context(|| format!("cannot create the database {}", path.display()))
}
