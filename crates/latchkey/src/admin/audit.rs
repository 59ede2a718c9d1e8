//! `latchkey admin audit ...`: verify the whole log, print its checkpoint, rotate its key.

use anyhow::{bail, Context};
use latchkey_domain::signed_note::NoteVerifier;
use latchkey_server::audit_log;
use latchkey_store::Store;
use std::path::PathBuf;
use std::process::ExitCode;

/// `admin audit verify`: the old chain, then the tree against every checkpoint.
pub async fn verify(
    store: &dyn Store,
    public_url: &str,
    files: &[PathBuf],
    keys: &[String],
) -> anyhow::Result<ExitCode> {
    // Entries written while no server ran (by admin commands) are sealed now, as a server would.
    audit_log::ensure_key(store, public_url).await?;
    audit_log::seal_all(store).await?;
    let verifiers: Vec<NoteVerifier> = if keys.is_empty() {
        audit_log::verifiers(&store.audit_keys().await?)
    } else {
        keys.iter()
            .map(|k| NoteVerifier::parse(k).with_context(|| format!("--key {k:?} is not a verifier key")))
            .collect::<anyhow::Result<_>>()?
    };
    let mut given = Vec::new();
    for f in files {
        let note = std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?;
        given.push((format!("checkpoint {}", f.display()), note));
    }
    let report = audit_log::verify(store, &verifiers, given).await?;
    if report.broken.is_empty() {
        println!("audit log intact: {} entries sealed, root {}", report.size, hex::encode(report.root));
        for (what, c) in &report.checkpoints {
            println!("  {what} (size {}, signed at {} ms) is contained in it", c.size, c.time.as_millis());
        }
        println!(
            "(keep `latchkey admin audit checkpoint` output elsewhere: `verify --checkpoint FILE` proves later that the log only grew)"
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!("audit log BROKEN:");
        for b in &report.broken {
            println!("  - {b}");
        }
        Ok(ExitCode::FAILURE)
    }
}

/// `admin audit checkpoint`: the latest signed note and the verifier keys.
pub async fn checkpoint(store: &dyn Store) -> anyhow::Result<ExitCode> {
    let Some(note) = store.audit_tree().await?.checkpoint else {
        bail!("nothing is sealed yet: start the server (it seals within a second) and ask again");
    };
    print!("{note}");
    for v in audit_log::verifiers(&store.audit_keys().await?) {
        eprintln!("verifier key: {}", v.to_vkey());
    }
    Ok(ExitCode::SUCCESS)
}

/// `admin audit rotate-key`.
pub async fn rotate_key(store: &dyn Store) -> anyhow::Result<ExitCode> {
    let keys = store.audit_keys().await?;
    let Some(name) = keys.first().map(|k| k.name.clone()) else {
        bail!("there is no audit key yet: start the server once, and it makes one");
    };
    let key = audit_log::new_key(&name)?;
    let id = key.key_id;
    store.add_audit_key(key, true, "system".into(), latchkey_server::state::now()).await?;
    println!("new audit key {id:08x} signs checkpoints from now on; the previous key co-signs for 7 more days");
    Ok(ExitCode::SUCCESS)
}
