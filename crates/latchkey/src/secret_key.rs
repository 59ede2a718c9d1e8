//! The server secret key: where it comes from, and unlocking the store with it.
//!
//! `LATCHKEY_SECRET_KEY` (the key's text) or `--secret-key-file` /
//! `LATCHKEY_SECRET_KEY_FILE` (a file holding it). On SQLite with neither,
//! `secret.key` in the data directory, made on first start while the database
//! holds no encrypted keys. PostgreSQL replicas must all be given the same key.

use crate::settings::StorageSettings;
use anyhow::{bail, Context};
use latchkey_domain::at_rest::SecretKey;
use latchkey_store::{Store, StoreError};
use std::path::{Path, PathBuf};

/// The environment variable holding the key's text.
pub const ENV: &str = "LATCHKEY_SECRET_KEY";
/// The key file made in a SQLite data directory when no key is given.
pub const DEFAULT_FILE: &str = "secret.key";

/// Where the operator said the key is.
#[derive(Debug, Clone)]
pub enum Source {
    /// `LATCHKEY_SECRET_KEY`.
    Env,
    /// `--secret-key-file` / `LATCHKEY_SECRET_KEY_FILE`.
    File(PathBuf),
    /// Neither: SQLite's `secret.key` in the data directory, or a refusal on PostgreSQL.
    Default,
}

impl Source {
    /// Reads what the operator set; both at once is refused, as ambiguous.
    pub fn from_settings(file: Option<&Path>) -> anyhow::Result<Self> {
        let env = std::env::var_os(ENV).is_some_and(|v| !v.is_empty());
        match (env, file) {
            (true, Some(_)) => bail!("both {ENV} and --secret-key-file (LATCHKEY_SECRET_KEY_FILE) are set: give one"),
            (true, None) => Ok(Source::Env),
            (false, Some(f)) => Ok(Source::File(f.to_path_buf())),
            (false, None) => Ok(Source::Default),
        }
    }
}

/// Reads a key file (its first line; surrounding whitespace ignored).
pub fn read_file(path: &Path) -> anyhow::Result<SecretKey> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read the secret key file {}", path.display()))?;
    SecretKey::parse(&text).with_context(|| format!("the secret key file {}", path.display()))
}

/// Writes a new key file readable by its owner only; never overwrites.
pub fn write_new_file(path: &Path, key: &SecretKey) -> anyhow::Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o.open(path).with_context(|| format!("cannot create the secret key file {}", path.display()))?;
    f.write_all(format!("{}\n", *key.to_text()).as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write the secret key file {}", path.display()))
}

/// The default key file of a SQLite data directory.
pub fn default_file(data_dir: &Path) -> PathBuf {
    data_dir.join(DEFAULT_FILE)
}

/// What a missing key should say, naming the key the database expects.
fn expected(sealed_under: Option<&str>) -> String {
    match sealed_under {
        Some(id) => format!(" (this database's keys are encrypted with the secret key whose ID is {id})"),
        None => String::new(),
    }
}

/// Finds the key `source` names, making SQLite's default key file when allowed.
async fn resolve(source: &Source, storage: &StorageSettings, store: &dyn Store) -> anyhow::Result<SecretKey> {
    match source {
        Source::Env => {
            let text = std::env::var(ENV).with_context(|| format!("{ENV} is not valid UTF-8"))?;
            Ok(SecretKey::parse(&text).with_context(|| format!("{ENV} is not valid"))?)
        }
        Source::File(path) => read_file(path),
        Source::Default => match storage {
            StorageSettings::Sqlite { data_dir, .. } => {
                let path = default_file(data_dir);
                if path.exists() {
                    return read_file(&path);
                }
                if let Some(id) = store.sealed_under().await? {
                    bail!(
                        "no server secret key: {} does not exist, {ENV} and --secret-key-file are not set, and \
                         this database's keys are encrypted with the secret key whose ID is {id}; give that key \
                         (restore {DEFAULT_FILE} from your backup, or set {ENV} or --secret-key-file)",
                        path.display()
                    );
                }
                let key = SecretKey::generate(&mut rand::rngs::OsRng);
                write_new_file(&path, &key)?;
                eprintln!(
                    "made the server secret key {} (ID {}): it encrypts the stored keys; back it up apart from the database",
                    path.display(),
                    key.id()
                );
                Ok(key)
            }
            StorageSettings::Postgres { .. } => {
                let sealed = store.sealed_under().await?;
                bail!(
                    "PostgreSQL needs the server secret key{}: set {ENV} to it, or --secret-key-file \
                     (LATCHKEY_SECRET_KEY_FILE) to a file holding it; every replica must be given the same key. \
                     A new key: `latchkey admin secret generate`",
                    expected(sealed.as_deref())
                )
            }
        },
    }
}

/// Unlocks `store` with the operator's key: sealing plaintext keys an older
/// version left, refusing a key that is not the database's. Returns the key's ID.
pub async fn unlock(source: &Source, storage: &StorageSettings, store: &dyn Store) -> anyhow::Result<String> {
    let key = resolve(source, storage, store).await?;
    let id = key.id();
    match store.secure_keys(key, latchkey_server::state::now()).await {
        Ok(secured) => {
            if secured.sealed_now > 0 {
                eprintln!(
                    "encrypted {} stored keys with the server secret key {} (they were in plaintext)",
                    secured.sealed_now, secured.key_id
                );
            }
            Ok(id)
        }
        Err(e @ StoreError::WrongSecretKey { .. }) => Err(anyhow::anyhow!("wrong server secret key: {e}")),
        Err(e) => Err(e).context("cannot unlock the stored keys with the server secret key"),
    }
}
