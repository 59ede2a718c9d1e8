//! Opens the configured backend behind the one `Store` interface.

use crate::settings::StorageSettings;
use anyhow::Context;
use latchkey_store::Store;
use std::sync::Arc;

/// Opens (and migrates) the store.
pub async fn open(settings: &StorageSettings) -> anyhow::Result<Arc<dyn Store>> {
    Ok(match settings {
        StorageSettings::Sqlite { data_dir, durability } => {
            std::fs::create_dir_all(data_dir)
                .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
            let path = data_dir.join("latchkey.sqlite3");
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
