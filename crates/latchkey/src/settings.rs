//! Settings from flags, then `LATCHKEY_*` environment variables, then an
//! optional TOML file, then defaults: the first that says something wins.

use anyhow::Context;
use clap::Args;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Where data lives; shared by `serve` and `admin` so both see the same database.
#[derive(Args, Debug, Clone, Default)]
pub struct StorageArgs {
    /// Directory for the SQLite database (default ./latchkey-data).
    #[arg(long, env = "LATCHKEY_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL URL (postgres://...); when set, SQLite is not used.
    #[arg(long, env = "LATCHKEY_DATABASE", global = true)]
    pub database: Option<String>,
    /// SQLite durability: `full` (fsync every commit, default) or `normal`.
    #[arg(long, env = "LATCHKEY_SQLITE_SYNC", global = true)]
    pub sqlite_sync: Option<String>,
    /// A TOML file with any of these settings.
    #[arg(long, env = "LATCHKEY_CONFIG", global = true)]
    pub config: Option<PathBuf>,
}

/// The TOML file's shape. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    pub data_dir: Option<PathBuf>,
    pub database: Option<String>,
    pub sqlite_sync: Option<String>,
    pub listen: Option<String>,
    pub public_url: Option<String>,
    pub trust_proxy_headers: Option<bool>,
    pub device_code_lifetime_secs: Option<i64>,
    pub poll_interval_secs: Option<i64>,
    pub wait_timeout_secs: Option<u64>,
    pub access_token_lifetime_secs: Option<i64>,
    pub refresh_token_lifetime_secs: Option<i64>,
    pub session_lifetime_secs: Option<i64>,
    pub device_cap: Option<i64>,
    pub device_auth_per_minute: Option<u32>,
}

impl FileSettings {
    /// Reads the file named by `--config`, if any.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("config file {} is not valid", path.display()))
    }
}

/// Storage settings after merging.
#[derive(Debug, Clone)]
pub enum StorageSettings {
    /// SQLite file in a data directory.
    Sqlite {
        /// The directory.
        data_dir: PathBuf,
        /// Whether every commit is fsynced.
        durability: latchkey_store_sqlite::Durability,
    },
    /// A PostgreSQL server.
    Postgres {
        /// Its URL.
        url: String,
    },
}

impl StorageArgs {
    /// Merges flags/env with the file.
    pub fn resolve(&self, file: &FileSettings) -> anyhow::Result<StorageSettings> {
        if let Some(url) = self.database.clone().or_else(|| file.database.clone()) {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                anyhow::bail!("--database must be a postgres:// URL (leave it out to use SQLite in --data-dir)");
            }
            return Ok(StorageSettings::Postgres { url });
        }
        let data_dir =
            self.data_dir.clone().or_else(|| file.data_dir.clone()).unwrap_or_else(|| PathBuf::from("latchkey-data"));
        let durability = match self.sqlite_sync.clone().or_else(|| file.sqlite_sync.clone()).as_deref() {
            None | Some("full") => latchkey_store_sqlite::Durability::Full,
            Some("normal") => latchkey_store_sqlite::Durability::Normal,
            Some(other) => anyhow::bail!("--sqlite-sync must be full or normal, not {other:?}"),
        };
        Ok(StorageSettings::Sqlite { data_dir, durability })
    }
}
