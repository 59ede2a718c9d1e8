//! `latchkey admin secret ...`: the server secret key that encrypts the stored keys.

use crate::secret_key::{self, Source};
use crate::settings::StorageSettings;
use anyhow::{bail, Context};
use latchkey_domain::at_rest::SecretKey;
use latchkey_store::Store;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `admin secret generate`: a new key on stdout, touching no database.
pub fn generate() -> ExitCode {
    let key = SecretKey::generate(&mut rand::rngs::OsRng);
    println!("{}", *key.to_text());
    eprintln!("secret key ID {}; give it to every replica (LATCHKEY_SECRET_KEY or --secret-key-file)", key.id());
    ExitCode::SUCCESS
}

/// Where the new key goes: a file (written before the database changes), or stdout.
enum Destination {
    /// A new file, moved over `replace` (the data directory's `secret.key`) after the rotation.
    File { written: PathBuf, replace: Option<PathBuf> },
    /// Printed once the rotation committed.
    Stdout,
}

/// `admin secret rotate`: every stored key sealed again under a new secret key, in one transaction.
pub async fn rotate(
    store: &dyn Store,
    storage: &StorageSettings,
    source: &Source,
    new_key_file: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let old = store.secret_key()?.id();
    let (new, destination) = match (new_key_file, source, storage) {
        (Some(path), _, _) if path.exists() => (secret_key::read_file(path)?, None),
        (Some(path), _, _) => {
            let key = SecretKey::generate(&mut rand::rngs::OsRng);
            secret_key::write_new_file(path, &key)?;
            (key, Some(Destination::File { written: path.to_path_buf(), replace: None }))
        }
        (None, Source::Default, StorageSettings::Sqlite { data_dir, .. }) => {
            // Written first: should anything fail, the database still opens with the old key.
            let next = data_dir.join(format!("{}.new", secret_key::DEFAULT_FILE));
            let key = SecretKey::generate(&mut rand::rngs::OsRng);
            if next.exists() {
                bail!("{} exists (left by an interrupted rotation?): remove it and try again", next.display());
            }
            secret_key::write_new_file(&next, &key)?;
            let replace = Some(secret_key::default_file(data_dir));
            (key, Some(Destination::File { written: next, replace }))
        }
        (None, _, _) => (SecretKey::generate(&mut rand::rngs::OsRng), Some(Destination::Stdout)),
    };
    if new.id() == old {
        bail!("the new secret key is the one in use ({old}); give another");
    }
    let moved = store.rotate_secret_key(new.clone(), "admin-cli".into(), latchkey_server::state::now()).await?;
    match destination {
        Some(Destination::File { written, replace: Some(current) }) => {
            // Named by its ID, so a second rotation does not overwrite the first's.
            let kept = current.with_file_name(format!("{}.{old}", secret_key::DEFAULT_FILE));
            std::fs::rename(&current, &kept).and_then(|()| std::fs::rename(&written, &current)).with_context(|| {
                format!(
                    "the keys are now encrypted with the key in {} (ID {}), but it could not be moved to {}: \
                         move it there by hand",
                    written.display(),
                    new.id(),
                    current.display()
                )
            })?;
            eprintln!(
                "The new secret key is in {}; the old one ({old}) is kept in {} for backups taken before now.",
                current.display(),
                kept.display()
            );
        }
        Some(Destination::File { written, replace: None }) => {
            eprintln!("The new secret key is in {}.", written.display());
        }
        Some(Destination::Stdout) => println!("{}", *new.to_text()),
        None => {}
    }
    eprintln!(
        "Re-encrypted {moved} stored keys: secret key {old} -> {}. Restart every server with the new key \
         (LATCHKEY_SECRET_KEY or --secret-key-file); servers still running with the old key cannot read or add keys.",
        new.id()
    );
    Ok(ExitCode::SUCCESS)
}
