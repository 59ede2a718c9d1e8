//! The verifiable audit log: sealing committed entries into the tree, its keys, and proofs.
//!
//! Requests only insert entries (see [`Txn::append_audit`]). The sealer runs
//! [`seal`] about every quarter second on every replica; the first to take the
//! seal lock does the work, the others return at once. Entries are sealed in
//! `seq` order among those committed and not yet sealed *when the sealer looks*.
//! An entry whose transaction took its `seq` early but commits late is simply
//! not visible yet: nothing marks it skipped, and the next seal finds it by
//! "no leaf yet", not by "seq above the last one". So leaf order is seal order,
//! never a hole. A sealer that dies mid-batch rolls back its transaction and the
//! next one starts from the same state: no gap, no duplicate.

use crate::audit_records::*;
use crate::txn::Txn;
use crate::StoreError;
use latchkey_domain::at_rest::SecretKey;
use latchkey_domain::audit::{self, AuditCheckpoint, AuditEvent, AuditKind};
use latchkey_domain::merkle::{self, CompactRange, NodeId, ProofError};
use latchkey_domain::signed_note::NoteSigner;
use latchkey_domain::Timestamp;
use std::collections::HashMap;

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("audit tree: {what}"))
}

/// The signers among `keys` at `now`.
fn signers(keys: &[AuditKeyRecord], now: Timestamp) -> Result<Vec<NoteSigner>, StoreError> {
    keys.iter().filter(|k| k.signs_at(now)).map(|k| NoteSigner::new(&k.name, &k.seed).map_err(corrupt)).collect()
}

/// Every audit key, opened, oldest first.
pub async fn keys<T: Txn>(tx: &T, secret: &SecretKey) -> Result<Vec<AuditKeyRecord>, T::Error> {
    let stored = tx.audit_keys().await?;
    let mut out = Vec::with_capacity(stored.len());
    for k in stored {
        out.push(crate::at_rest::open_audit_key(secret, k)?);
    }
    Ok(out)
}

/// Seals up to `max` waiting entries and signs a checkpoint with the keys
/// `secret` opens; `None` when another replica holds the seal or nothing waits.
pub async fn seal<T: Txn>(tx: &T, secret: &SecretKey, now: Timestamp, max: i64) -> Result<Option<Sealed>, T::Error> {
    if !tx.try_seal_lock().await? {
        return Ok(None);
    }
    let pending = tx.unsealed_audit(max).await?;
    let Some(oldest_at) = pending.iter().map(|e| e.at).min() else { return Ok(None) };
    let state = tx.audit_tree(true).await?;
    let ids = merkle::root_plan(state.size);
    let found: HashMap<NodeId, merkle::Hash> = tx.audit_nodes(&ids).await?.into_iter().collect();
    let peaks = ids.iter().map(|id| found.get(id).copied()).collect::<Option<Vec<_>>>();
    let peaks = peaks.ok_or_else(|| corrupt("a subtree of the sealed tree is missing"))?;
    let mut tree = CompactRange::from_peaks(state.size, peaks).map_err(corrupt)?;
    let plan = audit::seal(&mut tree, &pending);
    tx.set_audit_leaves(&plan.leaves).await?;
    tx.insert_audit_nodes(&plan.nodes).await?;
    let keys = keys(tx, secret).await?;
    let signers = signers(&keys, now)?;
    let refs: Vec<&NoteSigner> = signers.iter().collect();
    let Some(first) = signers.first() else {
        return Err(StoreError::Corrupt("no audit key signs checkpoints: restart the server to make one".into()).into());
    };
    let cp = AuditCheckpoint::sign(first.name(), tree.size(), tree.root(), now, &refs).map_err(corrupt)?;
    tx.set_audit_tree(&AuditTreeState {
        size: tree.size(),
        root: tree.root(),
        checkpoint: Some(cp.note),
        sealed_at: Some(now),
    })
    .await?;
    Ok(Some(Sealed { entries: pending.len() as u64, size: tree.size(), oldest_at }))
}

/// Makes `key` the audit key, as [`audit::key_change`] decides: unless a key already
/// signs (`replace: false`, the start-up case); with `replace`, the keys signing
/// now retire after [`audit::KEY_OVERLAP_MS`] and the change is recorded. Whether `key` was added.
pub async fn add_key<T: Txn>(
    tx: &T,
    secret: &SecretKey,
    key: &AuditKeyRecord,
    replace: bool,
    actor: &str,
    now: Timestamp,
) -> Result<bool, T::Error> {
    // Held so two replicas starting at once do not both add a first key.
    tx.audit_tree(true).await?;
    super::keys::check_sealing(tx, secret, false).await?;
    let keys = tx.audit_keys().await?;
    let retirements: Vec<_> = keys.iter().map(|k| k.retired_at).collect();
    let Some(retire_at) = audit::key_change(&retirements, replace, now) else { return Ok(false) };
    // The log keeps one name (the checkpoint origin) across rotations.
    let name = keys.first().map(|k| k.name.clone()).unwrap_or_else(|| key.name.clone());
    let key = AuditKeyRecord { name, ..key.clone() };
    tx.retire_audit_keys(retire_at).await?;
    tx.insert_audit_key(&crate::at_rest::seal_audit_key(secret, &key)).await?;
    if replace {
        let subject = format!("{:08x}", key.key_id);
        tx.append_audit(&AuditEvent::new(AuditKind::AuditKeyAdded, Some(actor), Some(&subject)), now).await?;
    }
    Ok(true)
}

/// Inclusion proofs for the entries `seqs` in the tree of `size` leaves (the
/// latest when `None`), by `seq`; entries not sealed by that size are left out.
pub async fn inclusions<T: Txn>(
    tx: &T,
    seqs: &[i64],
    size: Option<u64>,
) -> Result<Result<Vec<InclusionProof>, ProofError>, T::Error> {
    let state = tx.audit_tree(false).await?;
    let size = size.unwrap_or(state.size);
    if size > state.size {
        return Ok(Err(ProofError::BeyondTree { size, tree_size: state.size }));
    }
    let mut plans = Vec::new();
    let mut leaves = tx.audit_leaves_of(seqs).await?;
    leaves.sort_unstable();
    for (seq, leaf) in leaves {
        let leaf = leaf as u64;
        if leaf < size {
            let plan = match merkle::inclusion_plan(leaf, size) {
                Ok(p) => p,
                Err(e) => return Ok(Err(e)),
            };
            plans.push((seq, leaf, plan));
        }
    }
    let mut ids: Vec<NodeId> = plans
        .iter()
        .flat_map(|(_, leaf, p)| {
            let mut n = p.nodes();
            n.push(NodeId { level: 0, index: *leaf });
            n
        })
        .collect();
    ids.sort();
    ids.dedup();
    let found: HashMap<NodeId, merkle::Hash> = tx.audit_nodes(&ids).await?.into_iter().collect();
    let mut out = Vec::with_capacity(plans.len());
    for (seq, leaf, plan) in plans {
        let hashes = plan.assemble(|id| found.get(&id).copied()).ok_or_else(|| corrupt("a subtree is missing"))?;
        let leaf_hash =
            found.get(&NodeId { level: 0, index: leaf }).copied().ok_or_else(|| corrupt("a leaf is missing"))?;
        out.push(InclusionProof { seq, leaf, size, leaf_hash, hashes });
    }
    Ok(Ok(out))
}

/// A consistency proof from the tree of `old` leaves to that of `new` (the latest when `None`).
pub async fn consistency<T: Txn>(
    tx: &T,
    old: u64,
    new: Option<u64>,
) -> Result<Result<(u64, Vec<merkle::Hash>), ProofError>, T::Error> {
    let state = tx.audit_tree(false).await?;
    let new = new.unwrap_or(state.size);
    if new > state.size {
        return Ok(Err(ProofError::BeyondTree { size: new, tree_size: state.size }));
    }
    let plan = match merkle::consistency_plan(old, new) {
        Ok(p) => p,
        Err(e) => return Ok(Err(e)),
    };
    let found: HashMap<NodeId, merkle::Hash> = tx.audit_nodes(&plan.nodes()).await?.into_iter().collect();
    let hashes = plan.assemble(|id| found.get(&id).copied()).ok_or_else(|| corrupt("a subtree is missing"))?;
    Ok(Ok((new, hashes)))
}
