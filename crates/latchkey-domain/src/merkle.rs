//! Merkle tree hashing and proofs for a transparency log (RFC 9162 §2.1).
//!
//! The tree is the left-balanced binary tree of RFC 9162 (the same as RFC
//! 6962 and Certificate Transparency). The storage layer keeps only the hashes
//! of *perfect* subtrees, keyed by [`NodeId`] `(level, index)`: a node at
//! level `l` and index `i` covers leaves `[i << l, (i + 1) << l)`. Every other
//! hash a proof or root needs is the right fold ([`fold`]) of a few of them.
//!
//! The flow for a proof is: make a plan ([`inclusion_plan`],
//! [`consistency_plan`], [`root_plan`]), fetch [`ProofPlan::nodes`] in one
//! batch, then [`ProofPlan::assemble`] the proof in RFC order. Appending goes
//! through [`CompactRange::append`], which names every node row to insert.

use sha2::{Digest, Sha256};
use thiserror::Error;

/// A SHA-256 hash: a leaf hash, an interior node hash or a tree root.
pub type Hash = [u8; 32];

/// The hash of one log entry: SHA-256(0x00 || data).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    h.finalize().into()
}

/// The hash of an interior node: SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: SHA-256 of the empty string.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// A perfect subtree, covering leaves `[index << level, (index + 1) << level)`; level 0 is a leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    /// Height above the leaves: the subtree holds `2^level` leaves.
    pub level: u8,
    /// Position among the subtrees of this level, counted from the left.
    pub index: u64,
}

/// The perfect subtrees, left to right, that exactly cover leaves `[start, end)`.
///
/// Each one is the largest aligned perfect subtree that fits where the
/// previous one ended. For a range that is a node of some RFC 9162 tree (its
/// start a multiple of the smallest power of two at least its length, which
/// covers every range a root or proof needs), these are its sizes' set bits,
/// largest first, and [`fold`] of their hashes is the Merkle Tree Hash of the
/// range. An empty (or reversed) range gives no nodes.
pub fn range_nodes(start: u64, end: u64) -> Vec<NodeId> {
    let mut nodes = Vec::new();
    let mut at = start;
    while at < end {
        let remaining = end - at;
        // Largest level whose subtree starts at `at` (alignment) and fits in what is left.
        let fits = 63 - remaining.leading_zeros();
        let level = at.trailing_zeros().min(fits);
        nodes.push(NodeId { level: level as u8, index: at >> level });
        at += 1u64 << level;
    }
    nodes
}

/// Right fold of subtree hashes: the last one, then `node_hash(h[i], acc)` going left; empty gives [`empty_root`].
pub fn fold(hashes: &[Hash]) -> Hash {
    match hashes.split_last() {
        None => empty_root(),
        Some((last, rest)) => rest.iter().rev().fold(*last, |acc, h| node_hash(h, &acc)),
    }
}

/// Why a proof could not be planned or did not verify.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ProofError {
    /// The leaf index is not inside the tree.
    #[error("leaf index {index} is out of range for a tree of {size} leaves")]
    IndexOutOfRange {
        /// The requested leaf index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// A consistency proof was asked from a larger tree to a smaller one.
    #[error("tree sizes out of order: old size {old_size} is larger than new size {new_size}")]
    SizesOutOfOrder {
        /// The earlier tree size.
        old_size: u64,
        /// The later tree size.
        new_size: u64,
    },
    /// A proof was asked for a tree larger than the log has sealed.
    #[error("tree size {size} is beyond the log, which has {tree_size} leaves")]
    BeyondTree {
        /// The size asked for.
        size: u64,
        /// The log's size.
        tree_size: u64,
    },
    /// The proof has the wrong number of hashes for these sizes.
    #[error("wrong proof length: expected {expected} hashes, got {got}")]
    WrongProofLength {
        /// Hashes a proof for these sizes has.
        expected: usize,
        /// Hashes the proof had.
        got: usize,
    },
    /// The proof does not lead to the given root(s).
    #[error("root mismatch: the proof does not lead to the expected root hash")]
    RootMismatch,
    /// A compact range was given the wrong number of peak hashes for its size.
    #[error("wrong number of peaks: a tree of {size} leaves has {expected}, got {got}")]
    WrongPeakCount {
        /// The tree size.
        size: u64,
        /// Peaks a tree of that size has (its number of set bits).
        expected: usize,
        /// Peaks given.
        got: usize,
    },
}

/// Which stored nodes make up each hash of a proof.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProofPlan {
    /// One entry per proof hash, in RFC 9162 order; the hash is the [`fold`] of these nodes' hashes.
    pub parts: Vec<Vec<NodeId>>,
}

impl ProofPlan {
    /// Every node the plan needs, distinct and sorted, for one batched fetch.
    pub fn nodes(&self) -> Vec<NodeId> {
        let mut all: Vec<NodeId> = self.parts.iter().flatten().copied().collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// Builds the proof from stored node hashes; `None` if `lookup` is missing any node.
    pub fn assemble(&self, lookup: impl Fn(NodeId) -> Option<Hash>) -> Option<Vec<Hash>> {
        self.parts
            .iter()
            .map(|part| {
                let hashes = part.iter().map(|&n| lookup(n)).collect::<Option<Vec<Hash>>>()?;
                Some(fold(&hashes))
            })
            .collect()
    }
}

/// Largest power of two strictly less than `n`; `n` must be at least 2.
fn split_point(n: u64) -> u64 {
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The nodes whose [`fold`] is the root of the tree of `size` leaves (one per set bit of `size`).
pub fn root_plan(size: u64) -> Vec<NodeId> {
    range_nodes(0, size)
}

/// The plan for the inclusion proof of leaf `index` in the tree of `size` leaves (RFC 9162 §2.1.3.1 PATH).
pub fn inclusion_plan(index: u64, size: u64) -> Result<ProofPlan, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    // PATH(m, D[lo:hi]) lists the inner levels first, so walk down from the
    // root collecting siblings and reverse at the end.
    let mut parts = Vec::new();
    let (mut lo, mut hi) = (0u64, size);
    while hi - lo > 1 {
        let k = split_point(hi - lo);
        if index < lo + k {
            parts.push(range_nodes(lo + k, hi));
            hi = lo + k;
        } else {
            parts.push(range_nodes(lo, lo + k));
            lo += k;
        }
    }
    parts.reverse();
    Ok(ProofPlan { parts })
}

/// The plan for the consistency proof from `old_size` to `new_size` (RFC 9162 §2.1.4.1 PROOF / SUBPROOF).
pub fn consistency_plan(old_size: u64, new_size: u64) -> Result<ProofPlan, ProofError> {
    if old_size > new_size {
        return Err(ProofError::SizesOutOfOrder { old_size, new_size });
    }
    if old_size == 0 || old_size == new_size {
        return Ok(ProofPlan::default());
    }
    // SUBPROOF(m, D[lo:hi], b), walked from the root down; its output is
    // innermost first, so collect and reverse.
    let mut parts = Vec::new();
    let (mut lo, mut hi) = (0u64, new_size);
    let mut whole_old_tree = true;
    while old_size != hi {
        let k = split_point(hi - lo);
        if old_size <= lo + k {
            parts.push(range_nodes(lo + k, hi));
            hi = lo + k;
        } else {
            parts.push(range_nodes(lo, lo + k));
            lo += k;
            whole_old_tree = false;
        }
    }
    if !whole_old_tree {
        parts.push(range_nodes(lo, hi));
    }
    parts.reverse();
    Ok(ProofPlan { parts })
}

/// Checks that `leaf` is at `index` in the tree of `size` leaves with root `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> Result<(), ProofError> {
    let expected = inclusion_plan(index, size)?.parts.len();
    if proof.len() != expected {
        return Err(ProofError::WrongProofLength { expected, got: proof.len() });
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return Err(ProofError::WrongProofLength { expected, got: proof.len() });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongProofLength { expected, got: proof.len() });
    }
    if r != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Checks that the tree of `new_size` leaves with `new_root` extends the one of `old_size` with `old_root` (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    let expected = consistency_plan(old_size, new_size)?.parts.len();
    if proof.len() != expected {
        return Err(ProofError::WrongProofLength { expected, got: proof.len() });
    }
    if old_size == 0 {
        // Every tree extends the empty one; there is nothing to check.
        return Ok(());
    }
    if old_size == new_size {
        return if old_root == new_root { Ok(()) } else { Err(ProofError::RootMismatch) };
    }
    // Step 2: when the old tree is a perfect subtree of the new one, its root is the first hash.
    let mut path: Vec<&Hash> = Vec::with_capacity(proof.len() + 1);
    if old_size.is_power_of_two() {
        path.push(old_root);
    }
    path.extend(proof);
    let Some((first, rest)) = path.split_first() else {
        return Err(ProofError::WrongProofLength { expected, got: proof.len() });
    };
    let (mut fn_, mut sn) = (old_size - 1, new_size - 1);
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let (mut fr, mut sr) = (**first, **first);
    for c in rest {
        if sn == 0 {
            return Err(ProofError::WrongProofLength { expected, got: proof.len() });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongProofLength { expected, got: proof.len() });
    }
    if fr != *old_root || sr != *new_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// The right edge of a tree: enough to compute its root and append to it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CompactRange {
    size: u64,
    peaks: Vec<Hash>,
}

impl CompactRange {
    /// The compact range of the empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a compact range from stored peaks: the hashes of [`root_plan`]`(size)`, largest first.
    pub fn from_peaks(size: u64, peaks: Vec<Hash>) -> Result<Self, ProofError> {
        let expected = size.count_ones() as usize;
        if peaks.len() != expected {
            return Err(ProofError::WrongPeakCount { size, expected, got: peaks.len() });
        }
        Ok(Self { size, peaks })
    }

    /// Number of leaves in the tree.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Hashes of the perfect subtrees along the right edge, largest first.
    pub fn peaks(&self) -> &[Hash] {
        &self.peaks
    }

    /// The tree's root (Merkle Tree Hash); [`empty_root`] for the empty tree.
    pub fn root(&self) -> Hash {
        fold(&self.peaks)
    }

    /// Adds a leaf hash; returns every node completed by it (the leaf at level 0 first, then each parent).
    ///
    /// A tree of `u64::MAX` leaves is full: it takes no more and this returns nothing.
    pub fn append(&mut self, leaf: Hash) -> Vec<(NodeId, Hash)> {
        if self.size == u64::MAX {
            return Vec::new();
        }
        let mut node = NodeId { level: 0, index: self.size };
        let mut hash = leaf;
        let mut completed = vec![(node, hash)];
        // Each trailing one bit of the old size is a peak of the level being completed.
        for _ in 0..self.size.trailing_ones() {
            let Some(left) = self.peaks.pop() else { break };
            hash = node_hash(&left, &hash);
            node = NodeId { level: node.level + 1, index: node.index >> 1 };
            completed.push((node, hash));
        }
        self.peaks.push(hash);
        self.size += 1;
        completed
    }
}

#[cfg(test)]
// A broken promise fails the test, and panicking is how tests fail.
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;
    use std::sync::OnceLock;

    // ---- Reference implementation, straight from the RFC 9162 text ----

    /// Largest power of two smaller than n (n > 1).
    fn ref_k(n: usize) -> usize {
        let mut k = 1;
        while k * 2 < n {
            k *= 2;
        }
        k
    }

    /// MTH(D[n]) over leaf hashes.
    fn ref_mth(d: &[Hash]) -> Hash {
        match d.len() {
            0 => empty_root(),
            1 => d[0],
            n => {
                let k = ref_k(n);
                node_hash(&ref_mth(&d[..k]), &ref_mth(&d[k..]))
            }
        }
    }

    /// PATH(m, D[n]).
    fn ref_path(m: usize, d: &[Hash]) -> Vec<Hash> {
        let n = d.len();
        if n == 1 {
            return vec![];
        }
        let k = ref_k(n);
        if m < k {
            let mut p = ref_path(m, &d[..k]);
            p.push(ref_mth(&d[k..]));
            p
        } else {
            let mut p = ref_path(m - k, &d[k..]);
            p.push(ref_mth(&d[..k]));
            p
        }
    }

    /// SUBPROOF(m, D[n], b).
    fn ref_subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
        let n = d.len();
        if m == n {
            return if b { vec![] } else { vec![ref_mth(d)] };
        }
        let k = ref_k(n);
        if m <= k {
            let mut p = ref_subproof(m, &d[..k], b);
            p.push(ref_mth(&d[k..]));
            p
        } else {
            let mut p = ref_subproof(m - k, &d[k..], false);
            p.push(ref_mth(&d[..k]));
            p
        }
    }

    /// PROOF(m, D[n]); empty when m is 0 (nothing to prove).
    fn ref_proof(m: usize, d: &[Hash]) -> Vec<Hash> {
        if m == 0 {
            return vec![];
        }
        ref_subproof(m, d, true)
    }

    // ---- A node store filled only through CompactRange::append ----

    const MAX: usize = 300;

    struct Fixture {
        leaves: Vec<Hash>,
        nodes: HashMap<NodeId, Hash>,
        ranges: Vec<CompactRange>,
    }

    fn fixture() -> &'static Fixture {
        static F: OnceLock<Fixture> = OnceLock::new();
        F.get_or_init(|| {
            let leaves: Vec<Hash> = (0..MAX as u64).map(|i| leaf_hash(&i.to_be_bytes())).collect();
            let mut nodes = HashMap::new();
            let mut cr = CompactRange::new();
            let mut ranges = vec![cr.clone()];
            for leaf in &leaves {
                for (id, h) in cr.append(*leaf) {
                    assert!(nodes.insert(id, h).is_none(), "node {id:?} completed twice");
                }
                ranges.push(cr.clone());
            }
            Fixture { leaves, nodes, ranges }
        })
    }

    fn lookup(id: NodeId) -> Option<Hash> {
        fixture().nodes.get(&id).copied()
    }

    fn root(size: usize) -> Hash {
        ref_mth(&fixture().leaves[..size])
    }

    fn flip(h: &Hash, bit: usize) -> Hash {
        let mut h = *h;
        h[bit / 8 % 32] ^= 1 << (bit % 8);
        h
    }

    fn hx(s: &str) -> Hash {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    // ---- Known answers ----

    #[test]
    fn known_answers() {
        assert_eq!(empty_root(), hx("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
        // One empty leaf: the root is SHA-256(0x00).
        let mut cr = CompactRange::new();
        cr.append(leaf_hash(b""));
        assert_eq!(cr.root(), hx("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"));
        assert_eq!(cr.root(), <[u8; 32]>::from(Sha256::digest([0u8])));
        // Two leaves.
        let (a, b) = (leaf_hash(b"a"), leaf_hash(b"b"));
        let mut cr = CompactRange::new();
        cr.append(a);
        cr.append(b);
        assert_eq!(cr.root(), node_hash(&a, &b));
    }

    /// The RFC 6962 test vectors used by Certificate Transparency implementations.
    #[test]
    fn rfc6962_test_vectors() {
        let data = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"];
        let roots = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        let mut nodes = HashMap::new();
        let mut cr = CompactRange::new();
        let mut leaves = Vec::new();
        for (d, r) in data.iter().zip(roots) {
            let leaf = leaf_hash(&hex::decode(d).unwrap());
            leaves.push(leaf);
            nodes.extend(cr.append(leaf));
            assert_eq!(cr.root(), hx(r));
        }
        let proof = inclusion_plan(0, 8).unwrap().assemble(|n| nodes.get(&n).copied()).unwrap();
        let expected = [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ];
        assert_eq!(proof, expected.map(hx));
        verify_inclusion(&leaves[0], 0, 8, &proof, &hx(roots[7])).unwrap();
    }

    #[test]
    fn every_stored_node_is_the_hash_of_its_leaves() {
        let f = fixture();
        for (id, h) in &f.nodes {
            let start = (id.index << id.level) as usize;
            let end = ((id.index + 1) << id.level) as usize;
            assert_eq!(*h, ref_mth(&f.leaves[start..end]), "{id:?}");
        }
        // Every perfect subtree inside the 300 leaves, and nothing else.
        let expected: usize = (0..9).map(|l| MAX >> l).sum();
        assert_eq!(f.nodes.len(), expected);
    }

    #[test]
    fn roots_and_compact_ranges_match_the_reference() {
        let f = fixture();
        for size in 0..=MAX {
            let cr = &f.ranges[size];
            assert_eq!(cr.size(), size as u64);
            assert_eq!(cr.root(), root(size), "size {size}");
            let plan = root_plan(size as u64);
            let peaks: Vec<Hash> = plan.iter().map(|&n| lookup(n).unwrap()).collect();
            assert_eq!(peaks, cr.peaks(), "size {size}");
            assert_eq!(fold(&peaks), root(size));
            // from_peaks round-trips, and the rebuilt range keeps appending identically.
            let mut rebuilt = CompactRange::from_peaks(cr.size(), cr.peaks().to_vec()).unwrap();
            assert_eq!(&rebuilt, cr);
            if size < MAX {
                let mut next = cr.clone();
                assert_eq!(rebuilt.append(f.leaves[size]), next.append(f.leaves[size]));
                assert_eq!(rebuilt, f.ranges[size + 1]);
            }
            let mut wrong = cr.peaks().to_vec();
            wrong.push(empty_root());
            assert!(matches!(CompactRange::from_peaks(size as u64, wrong), Err(ProofError::WrongPeakCount { .. })));
        }
    }

    #[test]
    fn append_reports_the_leaf_then_its_parents() {
        let mut cr = CompactRange::new();
        for _ in 0..7 {
            cr.append(leaf_hash(b"x"));
        }
        let done = cr.append(leaf_hash(b"y"));
        let ids: Vec<NodeId> = done.iter().map(|(id, _)| *id).collect();
        assert_eq!(
            ids,
            [
                NodeId { level: 0, index: 7 },
                NodeId { level: 1, index: 3 },
                NodeId { level: 2, index: 1 },
                NodeId { level: 3, index: 0 }
            ]
        );
        assert_eq!(cr.peaks().len(), 1);
        assert_eq!(done[3].1, cr.root());
    }

    #[test]
    fn range_nodes_shapes() {
        assert!(range_nodes(5, 5).is_empty());
        assert!(range_nodes(6, 5).is_empty());
        assert_eq!(
            range_nodes(0, 13),
            [NodeId { level: 3, index: 0 }, NodeId { level: 2, index: 2 }, NodeId { level: 0, index: 12 }]
        );
        assert_eq!(range_nodes(8, 11), [NodeId { level: 1, index: 4 }, NodeId { level: 0, index: 10 }]);
        // Unaligned ranges still get an exact cover.
        assert_eq!(range_nodes(3, 8), [NodeId { level: 0, index: 3 }, NodeId { level: 2, index: 1 }]);
        assert_eq!(range_nodes(0, u64::MAX).len(), 64);
        assert_eq!(root_plan(u64::MAX).first(), Some(&NodeId { level: 63, index: 0 }));
    }

    #[test]
    fn plans_at_the_edges() {
        assert_eq!(inclusion_plan(0, 0), Err(ProofError::IndexOutOfRange { index: 0, size: 0 }));
        assert_eq!(inclusion_plan(5, 5), Err(ProofError::IndexOutOfRange { index: 5, size: 5 }));
        assert_eq!(inclusion_plan(0, 1).unwrap().parts.len(), 0);
        assert_eq!(consistency_plan(3, 2), Err(ProofError::SizesOutOfOrder { old_size: 3, new_size: 2 }));
        assert!(consistency_plan(0, 9).unwrap().parts.is_empty());
        assert!(consistency_plan(9, 9).unwrap().parts.is_empty());
        // Huge trees plan without overflow.
        assert_eq!(inclusion_plan(u64::MAX - 1, u64::MAX).unwrap().parts.len(), 63);
        assert!(!consistency_plan(u64::MAX - 1, u64::MAX).unwrap().parts.is_empty());
        // A missing node means no proof.
        let plan = inclusion_plan(3, 10).unwrap();
        assert_eq!(plan.assemble(|_| None), None);
        let nodes = plan.nodes();
        assert!(nodes.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn trivial_consistency_cases() {
        let r = root(5);
        verify_consistency(0, 5, &empty_root(), &r, &[]).unwrap();
        assert!(verify_consistency(0, 5, &empty_root(), &r, &[r]).is_err());
        verify_consistency(5, 5, &r, &r, &[]).unwrap();
        assert_eq!(verify_consistency(5, 5, &r, &root(4), &[]), Err(ProofError::RootMismatch));
        assert!(verify_consistency(5, 5, &r, &r, &[r]).is_err());
        assert!(verify_consistency(6, 5, &r, &r, &[]).is_err());
        assert!(verify_inclusion(&r, 5, 5, &[], &r).is_err());
    }

    proptest! {
        #[test]
        fn inclusion_proofs(size in 1..=MAX, seed in any::<usize>(), other in any::<usize>(), bit in 0..256usize) {
            let f = fixture();
            let index = seed % size;
            let plan = inclusion_plan(index as u64, size as u64).unwrap();
            let proof = plan.assemble(lookup).unwrap();
            prop_assert_eq!(&proof, &ref_path(index, &f.leaves[..size]));
            let leaf = f.leaves[index];
            let r = root(size);
            prop_assert_eq!(verify_inclusion(&leaf, index as u64, size as u64, &proof, &r), Ok(()));

            // Any flipped bit in any proof hash fails.
            for i in 0..proof.len() {
                let mut bad = proof.clone();
                bad[i] = flip(&bad[i], bit);
                prop_assert!(verify_inclusion(&leaf, index as u64, size as u64, &bad, &r).is_err());
            }
            // A wrong root or leaf fails.
            prop_assert_eq!(
                verify_inclusion(&leaf, index as u64, size as u64, &proof, &flip(&r, bit)),
                Err(ProofError::RootMismatch)
            );
            prop_assert!(verify_inclusion(&flip(&leaf, bit), index as u64, size as u64, &proof, &r).is_err());
            // A wrong index fails.
            let wrong_index = other % (size + 2);
            if wrong_index != index {
                prop_assert!(verify_inclusion(&leaf, wrong_index as u64, size as u64, &proof, &r).is_err());
            }
            // A wrong size fails against that size's root. (Against the true
            // root it can pass: RFC 9162 binds size to root only through the
            // signed tree head.)
            let wrong_size = 1 + other % MAX;
            if wrong_size != size && index < wrong_size {
                prop_assert!(
                    verify_inclusion(&leaf, index as u64, wrong_size as u64, &proof, &root(wrong_size)).is_err()
                );
            }
            // Truncated or extended proofs fail.
            if !proof.is_empty() {
                prop_assert!(verify_inclusion(&leaf, index as u64, size as u64, &proof[1..], &r).is_err());
            }
            let mut longer = proof.clone();
            longer.push(r);
            prop_assert!(verify_inclusion(&leaf, index as u64, size as u64, &longer, &r).is_err());
        }

        #[test]
        fn consistency_proofs(new in 1..=MAX, seed in any::<usize>(), other in any::<usize>(), bit in 0..256usize) {
            let f = fixture();
            let old = seed % (new + 1);
            let plan = consistency_plan(old as u64, new as u64).unwrap();
            let proof = plan.assemble(lookup).unwrap();
            prop_assert_eq!(&proof, &ref_proof(old, &f.leaves[..new]));
            let (r_old, r_new) = (root(old), root(new));
            prop_assert_eq!(verify_consistency(old as u64, new as u64, &r_old, &r_new, &proof), Ok(()));

            for i in 0..proof.len() {
                let mut bad = proof.clone();
                bad[i] = flip(&bad[i], bit);
                prop_assert!(verify_consistency(old as u64, new as u64, &r_old, &r_new, &bad).is_err());
            }
            if old > 0 {
                prop_assert!(verify_consistency(old as u64, new as u64, &flip(&r_old, bit), &r_new, &proof).is_err());
                prop_assert!(verify_consistency(old as u64, new as u64, &r_old, &flip(&r_new, bit), &proof).is_err());
            }
            if old > 0 && old < new {
                // Wrong sizes fail, even with the right roots for those sizes.
                let wrong_old = 1 + other % new;
                if wrong_old != old {
                    prop_assert!(
                        verify_consistency(wrong_old as u64, new as u64, &root(wrong_old), &r_new, &proof).is_err()
                    );
                }
                let wrong_new = old + other % (MAX + 1 - old);
                if wrong_new != new {
                    prop_assert!(
                        verify_consistency(old as u64, wrong_new as u64, &r_old, &root(wrong_new), &proof).is_err()
                    );
                }
                prop_assert!(verify_consistency(old as u64, new as u64, &r_old, &r_new, &proof[1..]).is_err());
                let mut longer = proof.clone();
                longer.push(r_new);
                prop_assert!(verify_consistency(old as u64, new as u64, &r_old, &r_new, &longer).is_err());
            }
        }

        #[test]
        fn range_nodes_cover_exactly(start in 0u64..1 << 40, len in 0u64..1 << 20) {
            let nodes = range_nodes(start, start + len);
            let mut at = start;
            for n in &nodes {
                prop_assert_eq!(n.index << n.level, at);
                at += 1 << n.level;
            }
            prop_assert_eq!(at, start + len);
        }
    }
}
