//! Settings from flags, then `LATCHKEY_*` environment variables, then an
//! optional TOML file, then defaults: the first that says something wins.
//! Every setting is declared once, in [`latchkey_server::config`]; this file
//! only reads the file and maps storage settings to a backend.

use anyhow::Context;
use clap::Args;
use latchkey_server::config::{ServeArgs, Settings, SettingsFile, SqliteSync, StorageArgs};
use std::path::{Path, PathBuf};

/// The settings file, and where data lives: shared by `serve` and `admin` so both see the same database.
#[derive(Args, Debug, Clone, Default)]
pub struct DataArgs {
    /// A TOML file with any of these settings (keys: the flag names in snake_case).
    #[arg(long, env = "LATCHKEY_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub storage: StorageArgs,
}

/// Reads the file named by `--config`, if any.
fn load_file(path: Option<&Path>) -> anyhow::Result<SettingsFile> {
    let Some(path) = path else {
        return Ok(SettingsFile::default());
    };
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
    SettingsFile::parse(&text).with_context(|| format!("config file {} is not valid", path.display()))
}

impl DataArgs {
    /// Every setting, merged (flags and environment over the file over defaults) and validated.
    pub fn resolve(&self, serve: ServeArgs) -> anyhow::Result<Settings> {
        let file = load_file(self.config.as_deref())?;
        let settings = Settings::resolve(self.storage.clone().or(file.storage()), serve.or(file.serve()));
        settings.validate()?;
        Ok(settings)
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

impl StorageSettings {
    /// The backend the settings name: PostgreSQL when `database` is set, else SQLite.
    pub fn of(settings: &Settings) -> Self {
        if let Some(url) = &settings.database {
            return StorageSettings::Postgres { url: url.clone() };
        }
        let durability = match settings.sqlite_sync {
            SqliteSync::Full => latchkey_store_sqlite::Durability::Full,
            SqliteSync::Normal => latchkey_store_sqlite::Durability::Normal,
        };
        StorageSettings::Sqlite { data_dir: settings.data_dir.clone(), durability }
    }
}
