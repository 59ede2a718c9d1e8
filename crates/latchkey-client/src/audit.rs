//! Watching the server's audit log from the outside: remember the last signed
//! checkpoint, and on every check prove that the log only grew since (an RFC
//! 9162 consistency proof). A truncated, rewritten or forked log fails here,
//! on the user's machine, whatever the server's database says.
//!
//! Keys are trusted on first use and then only through the log itself: every
//! checkpoint lists, in its signed body, the keys that signed it, so a rotation
//! announced under a key already trusted is followed, and nothing else is.

use crate::{Client, ClientError};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use latchkey_domain::audit::{AuditCheckpoint, CheckpointError};
use latchkey_domain::merkle::{self, Hash, ProofError};
use latchkey_domain::signed_note::NoteVerifier;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Why a check failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditCheckError {
    /// The server could not be asked.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The checkpoint is not signed by a key this machine trusts.
    #[error("the server's audit checkpoint is not signed by a key this machine trusts ({0}); if the operator replaced the key on purpose, `latchkey audit check --forget` starts over")]
    Untrusted(CheckpointError),
    /// The log is smaller than when last seen.
    #[error("the audit log shrank from {was} to {now} entries since this machine last checked: it was truncated")]
    Shrank {
        /// Size remembered.
        was: u64,
        /// Size now.
        now: u64,
    },
    /// The consistency proof does not hold.
    #[error(
        "the audit log of {now} entries does not extend the one of {was} this machine saw: it was rewritten ({why})"
    )]
    Rewritten {
        /// Size remembered.
        was: u64,
        /// Size now.
        now: u64,
        /// What failed.
        why: ProofError,
    },
    /// The server answered something malformed.
    #[error("the server's audit answer is malformed: {0}")]
    Malformed(String),
    /// The remembered state could not be read or written.
    #[error("cannot keep the audit checkpoint in {path}: {why}")]
    Storage {
        /// The file.
        path: PathBuf,
        /// What failed.
        why: String,
    },
}

/// What this machine remembers of a server's log.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Remembered {
    keys: Vec<String>,
    checkpoint: String,
}

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckOutcome {
    /// First check: the checkpoint is remembered, its keys trusted from now on.
    FirstSeen {
        /// Entries in the log.
        size: u64,
        /// The keys now trusted.
        keys: Vec<String>,
    },
    /// The log only grew (or stayed) since the last check.
    Consistent {
        /// Size remembered.
        was: u64,
        /// Size now.
        now: u64,
    },
}

/// The file in which a profile remembers its server's latest checkpoint.
pub fn witness_path(profile_dir: &Path) -> PathBuf {
    profile_dir.join("audit-checkpoint.json")
}

fn storage(path: &Path, why: impl ToString) -> AuditCheckError {
    AuditCheckError::Storage { path: path.to_path_buf(), why: why.to_string() }
}

fn parse_verifiers(keys: &[String]) -> Vec<NoteVerifier> {
    keys.iter().filter_map(|k| NoteVerifier::parse(k).ok()).collect()
}

fn hashes(b64: &[String]) -> Result<Vec<Hash>, AuditCheckError> {
    b64.iter()
        .map(|h| {
            B64.decode(h)
                .ok()
                .and_then(|v| <Hash>::try_from(v).ok())
                .ok_or_else(|| AuditCheckError::Malformed("a proof hash is not 32 bytes of base64".into()))
        })
        .collect()
}

/// Checks the server's log against what `path` remembers, and remembers the new checkpoint.
pub async fn check(client: &Client, path: &Path) -> Result<CheckOutcome, AuditCheckError> {
    let remembered: Option<Remembered> = match std::fs::read(path) {
        Ok(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| storage(path, e))?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(storage(path, e)),
    };
    let (outcome, checkpoint, mut keys) = match remembered {
        None => {
            // Trust on first use, like SSH: the keys the server names now.
            let keys = client.audit_keys().await?.keys;
            let answer = client.audit_consistency(0).await?;
            let cp = AuditCheckpoint::open(&answer.checkpoint, &parse_verifiers(&keys))
                .map_err(AuditCheckError::Untrusted)?;
            (CheckOutcome::FirstSeen { size: cp.size, keys: keys.clone() }, cp, keys)
        }
        Some(r) => {
            let trusted = parse_verifiers(&r.keys);
            let old = AuditCheckpoint::open(&r.checkpoint, &trusted).map_err(AuditCheckError::Untrusted)?;
            let answer = match client.audit_consistency(old.size).await {
                Ok(a) => a,
                // No proof from a size the log no longer reaches: say how small it is now.
                Err(ClientError::Server { status: 400, .. }) => {
                    let now = client.audit_consistency(0).await?;
                    return Err(AuditCheckError::Shrank { was: old.size, now: now.new_size });
                }
                Err(e) => return Err(e.into()),
            };
            let new = AuditCheckpoint::open(&answer.checkpoint, &trusted).map_err(AuditCheckError::Untrusted)?;
            if new.size < old.size {
                return Err(AuditCheckError::Shrank { was: old.size, now: new.size });
            }
            if answer.new_size != new.size || answer.old_size != old.size {
                return Err(AuditCheckError::Malformed("the proof is not for the sizes asked".into()));
            }
            merkle::verify_consistency(old.size, new.size, &old.root, &new.root, &hashes(&answer.hashes)?)
                .map_err(|why| AuditCheckError::Rewritten { was: old.size, now: new.size, why })?;
            (CheckOutcome::Consistent { was: old.size, now: new.size }, new, r.keys)
        }
    };
    // Keys a trusted key signed into the checkpoint are trusted too (a rotation).
    for k in &checkpoint.keys {
        if !keys.contains(k) && NoteVerifier::parse(k).is_ok() {
            keys.push(k.clone());
        }
    }
    let r = Remembered { keys, checkpoint: checkpoint.note };
    let text = serde_json::to_vec_pretty(&r).map_err(|e| storage(path, e))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| storage(path, e))?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path)).map_err(|e| storage(path, e))?;
    Ok(outcome)
}
