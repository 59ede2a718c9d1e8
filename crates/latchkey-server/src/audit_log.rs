//! The verifiable audit log, server side: the key that signs checkpoints, the
//! sealer every replica runs, and checking pages' entries against the log.
//!
//! Every replica runs [`sealer`]; the store lets one seal at a time (an advisory
//! lock on PostgreSQL, the writer on SQLite), so replicas share the work without
//! electing anyone by hand, and a replica that dies mid-seal only rolls back.

use crate::error::ApiError;
use crate::state::{now, AppState};
use latchkey_domain::audit::{AuditCheckpoint, ChainVerifier, CheckpointError, TreeVerifier};
use latchkey_domain::merkle;
use latchkey_domain::signed_note::{NoteSigner, NoteVerifier};
use latchkey_store::{AuditKeyRecord, InclusionProof, Store, StoreError};
use std::time::Duration;

/// Entries sealed at most per seal (one transaction); more wait for the next tick.
pub const SEAL_BATCH: i64 = 20_000;

/// The log's name (C2SP origin) for a server at `public_url`: host, port and path, no scheme.
pub fn origin(public_url: &str) -> String {
    let rest = public_url.split_once("://").map_or(public_url, |(_, r)| r);
    format!("{}/audit", rest.trim_end_matches('/'))
}

/// A fresh audit key named `name`.
pub fn new_key(name: &str) -> Result<AuditKeyRecord, ApiError> {
    let mut seed = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed);
    let signer = NoteSigner::new(name, &seed)
        .map_err(|e| ApiError::Internal(format!("the audit log's name {name:?} cannot name a key: {e}")))?;
    Ok(AuditKeyRecord { key_id: signer.key_id(), name: name.to_string(), seed, created_at: now(), retired_at: None })
}

/// Makes the first audit key if there is none (idempotent, safe across replicas).
pub async fn ensure_key(store: &dyn Store, public_url: &str) -> Result<(), ApiError> {
    if store.audit_keys().await?.iter().any(|k| k.signs_at(now())) {
        return Ok(());
    }
    store.add_audit_key(new_key(&origin(public_url))?, false, "system".into(), now()).await?;
    Ok(())
}

/// The verifier keys of `keys` that still sign, newest first.
pub fn verifiers(keys: &[AuditKeyRecord]) -> Vec<NoteVerifier> {
    let t = now();
    keys.iter()
        .rev()
        .filter(|k| k.signs_at(t))
        .filter_map(|k| NoteSigner::new(&k.name, &k.seed).ok().map(|s| s.verifier()))
        .collect()
}

/// Seals every `every` until the task is aborted.
pub async fn sealer(state: AppState, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        seal_now(&state).await;
    }
}

/// One round: seals what waits (in batches until none is full) and records the lag.
pub async fn seal_now(state: &AppState) {
    loop {
        let t = now();
        match state.store.seal_audit(t, SEAL_BATCH).await {
            Ok(Some(s)) => {
                let lag = (t.as_millis() - s.oldest_at.as_millis()).max(0) as u64;
                state.metrics.audit_sealed(Duration::from_millis(lag));
                if (s.entries as i64) < SEAL_BATCH {
                    return;
                }
            }
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "could not seal the audit log; will retry");
                return;
            }
        }
    }
}

/// Seals everything that waits, batch after batch (for admin tools and tests; the
/// server's [`sealer`] does this on its own).
pub async fn seal_all(store: &dyn Store) -> Result<(), StoreError> {
    while let Some(s) = store.seal_audit(now(), SEAL_BATCH).await? {
        if (s.entries as i64) < SEAL_BATCH {
            break;
        }
    }
    Ok(())
}

/// The latest checkpoint (`None` before the first seal), opened with the server's
/// own keys: the inner error says why it does not verify (forged or edited).
pub async fn latest_checkpoint(
    store: &dyn Store,
) -> Result<Option<Result<AuditCheckpoint, CheckpointError>>, StoreError> {
    let tree = store.audit_tree().await?;
    let Some(note) = tree.checkpoint else { return Ok(None) };
    let keys = store.audit_keys().await?;
    Ok(Some(AuditCheckpoint::open(&note, &verifiers(&keys))))
}

/// Whether `proof` leads from its leaf to `checkpoint`'s root.
pub fn proves(proof: &InclusionProof, checkpoint: &AuditCheckpoint) -> bool {
    proof.size == checkpoint.size
        && merkle::verify_inclusion(&proof.leaf_hash, proof.leaf, proof.size, &proof.hashes, &checkpoint.root).is_ok()
}

/// What [`verify`] found.
#[derive(Debug, Clone)]
pub struct VerifyReport {
    /// Sealed entries walked.
    pub size: u64,
    /// The root they hash to.
    pub root: merkle::Hash,
    /// The checkpoints that verified (label, checkpoint): the latest first, then those given.
    pub checkpoints: Vec<(String, AuditCheckpoint)>,
    /// Every break found, each naming what is wrong and where; empty when intact.
    pub broken: Vec<String>,
}

/// Entries read at a time while verifying.
const VERIFY_PAGE: i64 = 2000;

/// Checks the whole log: the latest checkpoint's signature (and each `given`
/// (label, note) checkpoint's) with `verifiers`, the hash chain from before the
/// tree, and the tree recomputed from every sealed entry against the stored leaf
/// hashes and every checkpoint. What `latchkey admin audit verify` runs.
pub async fn verify(
    store: &dyn Store,
    verifiers: &[NoteVerifier],
    given: Vec<(String, String)>,
) -> Result<VerifyReport, StoreError> {
    let mut broken = Vec::new();
    // Checkpoints first: a forged one is named before any walk.
    let mut checkpoints = Vec::new();
    let tree = store.audit_tree().await?;
    match &tree.checkpoint {
        None if tree.size == 0 => {}
        None => broken.push(format!("the tree has {} leaves but no signed checkpoint", tree.size)),
        Some(note) => match AuditCheckpoint::open(note, verifiers) {
            Ok(c) => checkpoints.push(("the latest checkpoint".to_string(), c)),
            Err(e) => broken.push(format!("the latest checkpoint is forged or signed by an unknown key: {e}")),
        },
    }
    for (label, note) in given {
        match AuditCheckpoint::open(&note, verifiers) {
            Ok(c) => checkpoints.push((label, c)),
            Err(e) => broken.push(format!("{label} does not verify: {e}")),
        }
    }

    // The chain the tree replaced: its entries must still link up to its frozen head.
    let mut chain = ChainVerifier::default();
    let head = store.audit_head().await?;
    let mut after = 0;
    let mut chain_ok = true;
    'chain: while after < head.seq {
        let page = store.audit_entries(after, VERIFY_PAGE).await?;
        if page.is_empty() {
            break;
        }
        for e in &page {
            if e.seq > head.seq {
                break 'chain;
            }
            if let Err(b) = chain.push(e) {
                broken.push(format!("the hash chain from before the tree: {b}"));
                chain_ok = false;
                break 'chain;
            }
            after = e.seq;
        }
    }
    if chain_ok {
        if let Err(b) = chain.finish(head) {
            broken.push(format!("the hash chain from before the tree: {b}"));
        }
    }

    // The tree, recomputed from every sealed entry.
    let sizes: Vec<u64> = checkpoints.iter().map(|(_, c)| c.size).collect();
    let mut walk = TreeVerifier::new(&sizes);
    let mut after = -1;
    loop {
        let page = store.audit_sealed(after, VERIFY_PAGE).await?;
        for (e, sealed) in &page {
            walk.push(e, *sealed);
            after = e.leaf.unwrap_or(after);
        }
        if (page.len() as i64) < VERIFY_PAGE {
            break;
        }
    }
    for (_, c) in &checkpoints {
        walk.check(c);
    }
    let (size, root, breaks) = walk.finish();
    broken.extend(breaks.iter().map(|b| b.to_string()));
    Ok(VerifyReport { size, root, checkpoints, broken })
}
