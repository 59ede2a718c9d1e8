//! What the verifiable audit log stores and hands out: the tree's state, its keys, proofs.

use latchkey_domain::merkle::Hash;
use latchkey_domain::Timestamp;

/// The tree as last sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditTreeState {
    /// Leaves sealed.
    pub size: u64,
    /// Root hash at that size.
    pub root: Hash,
    /// The signed checkpoint of that size (none before the first seal).
    pub checkpoint: Option<String>,
    /// When it was sealed.
    pub sealed_at: Option<Timestamp>,
}

/// A key that signs checkpoints, opened (`Debug` leaves the seed out).
#[derive(Clone, PartialEq, Eq)]
pub struct AuditKeyRecord {
    /// The signed-note key ID.
    pub key_id: u32,
    /// The key name (the log's origin).
    pub name: String,
    /// The Ed25519 seed.
    pub seed: [u8; 32],
    /// When it was added.
    pub created_at: Timestamp,
    /// From when it no longer signs.
    pub retired_at: Option<Timestamp>,
}

impl std::fmt::Debug for AuditKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditKeyRecord")
            .field("key_id", &self.key_id)
            .field("name", &self.name)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

impl AuditKeyRecord {
    /// Whether it signs checkpoints at `now` ([`latchkey_domain::audit::key_signs`]).
    pub fn signs_at(&self, now: Timestamp) -> bool {
        latchkey_domain::audit::key_signs(self.retired_at, now)
    }
}

/// What one seal did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sealed {
    /// Entries sealed by it.
    pub entries: u64,
    /// The tree's size after it.
    pub size: u64,
    /// When the oldest entry it sealed was recorded (sealing lag = now - this).
    pub oldest_at: Timestamp,
}

/// Proof that an entry is the leaf `leaf` of the tree of `size` leaves (RFC 9162 §2.1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    /// The entry.
    pub seq: i64,
    /// Its position.
    pub leaf: u64,
    /// The tree size the proof is for.
    pub size: u64,
    /// The leaf hash sealed for it.
    pub leaf_hash: Hash,
    /// The audit path, leaf to root.
    pub hashes: Vec<Hash>,
}
