//! The verifiable audit log: entries sealed into a Merkle tree, with signed checkpoints.
//!
//! A request writes its entry in the same transaction as the change, with no
//! global lock. One sealer per database then appends committed entries to a
//! Merkle tree in the style of RFC 9162 ([`crate::merkle`]): each entry's leaf
//! is [`leaf_hash`] of its fields, and every seal ends with a checkpoint (size,
//! root hash, time) signed as a C2SP signed note ([`crate::signed_note`]).
//! Anyone holding a checkpoint can ask for an inclusion proof of an entry, or
//! a consistency proof that a later checkpoint only added to it, so edits,
//! reordering and truncation all show.
//!
//! Leaf encoding (version 1): SHA-256 over 0x00, then `"latchkey-audit-leaf-v1"`
//! and each field as an 8-byte big-endian length followed by its bytes: seq,
//! at (ms), kind, actor, subject, detail. Integers are 8-byte big-endian; a
//! missing actor or subject is the empty string.
//!
//! Entries recorded before the tree kept a hash chain ([`ChainLink`],
//! [`ChainVerifier`]): each link covers the entry and the previous link. Those
//! entries became the first leaves, and their chain is still checked.

use crate::merkle::{self, CompactRange, Hash, NodeId};
use crate::signed_note::{self, Checkpoint, NoteError, NoteSigner, NoteVerifier};
use crate::time::Timestamp;
use sha2::{Digest, Sha256};
use thiserror::Error;

/// Hash of the chain entry before the first one.
pub const GENESIS_HASH: [u8; 32] = [0u8; 32];
const DOMAIN_TAG: &[u8] = b"latchkey-audit-v1";
const LEAF_TAG: &[u8] = b"latchkey-audit-leaf-v1";

/// Kinds of security-relevant actions. The text forms are stable: they are hashed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditKind {
    /// An account was created.
    UserCreated,
    /// Someone signed in with a correct password.
    SignInSucceeded,
    /// A sign-in was refused.
    SignInFailed,
    /// A session was ended (sign-out).
    SignedOut,
    /// An OAuth app was registered.
    AppCreated,
    /// A device asked to sign in (RFC 8628 device authorization).
    GrantRequested,
    /// A person approved a device sign-in.
    GrantApproved,
    /// A person denied a device sign-in.
    GrantDenied,
    /// Tokens were handed to the device for an approved grant.
    GrantConsumed,
    /// A refresh token family was revoked (logout, revocation endpoint).
    TokenFamilyRevoked,
    /// A rotated refresh token was presented again; its family was revoked.
    RefreshReuseDetected,
    /// A new signing key was made active.
    KeyRotated,
    /// A device was registered.
    DeviceRegistered,
    /// A device was renamed.
    DeviceRenamed,
    /// A device's location changed.
    DeviceRelocated,
    /// A device was revoked.
    DeviceRevoked,
    /// An enrollment key was created.
    EnrollmentKeyCreated,
    /// An enrollment key enrolled a device.
    EnrollmentKeyUsed,
    /// An enrollment key was revoked.
    EnrollmentKeyRevoked,
    /// An app's settings changed.
    AppUpdated,
    /// A desktop started a QR sign-in.
    PairingRequested,
    /// A phone approved a QR sign-in.
    PairingApproved,
    /// A phone refused a QR sign-in.
    PairingDenied,
    /// The desktop gave up a QR sign-in.
    PairingCancelled,
    /// The desktop collected its tokens.
    PairingConsumed,
    /// An admin disabled an account: it gets nothing until enabled.
    UserDisabled,
    /// An admin enabled an account again.
    UserEnabled,
    /// An account and everything it held were deleted.
    UserDeleted,
    /// An account's password was changed; its other sessions ended.
    PasswordChanged,
    /// Everything an account held was ended at once.
    UserRevokedAll,
    /// Repeated wrong passwords locked an account for a while.
    UserLocked,
    /// An app declared an event kind (or changed its retention).
    EventKindDeclared,
    /// A device signed its trust in another device's key.
    TrustAdded,
    /// A device's trust in another was removed.
    TrustRemoved,
    /// A device replaced its key (with or without a signed chain).
    DeviceKeyRotated,
    /// A device made a trusted session with other devices.
    SessionCreated,
    /// A member accepted its invitation, proving its device key.
    SessionJoined,
    /// A member left a trusted session.
    SessionLeft,
    /// A member was removed from a trusted session (revoked, trust ended, key changed).
    SessionMemberRemoved,
    /// A member issued a new session key after the members changed.
    SessionRekeyed,
    /// A trusted session was closed or expired.
    SessionClosed,
    /// A key that signs audit checkpoints was added (the others retire).
    AuditKeyAdded,
    /// A person let a web app sign them in (and with which scopes).
    ConsentGranted,
    /// A person withdrew a web app's consent; its sign-ins ended.
    ConsentWithdrawn,
    /// A web app redeemed an authorization code: a new sign-in.
    CodeRedeemed,
    /// An authorization code was presented again; what it issued was revoked.
    CodeReused,
    /// A person registered a passkey.
    PasskeyAdded,
    /// A person removed one of their passkeys.
    PasskeyRemoved,
    /// A person removed their password: they sign in with passkeys only.
    PasswordRemoved,
    /// Keys stored in plaintext (by an older Latchkey) were sealed under the server secret key.
    KeysEncrypted,
    /// The stored keys were sealed again under a new server secret key.
    SecretKeyRotated,
}

impl AuditKind {
    /// Every kind, for filters and listings.
    pub const ALL: [AuditKind; 51] = [
        AuditKind::UserCreated,
        AuditKind::SignInSucceeded,
        AuditKind::SignInFailed,
        AuditKind::SignedOut,
        AuditKind::AppCreated,
        AuditKind::GrantRequested,
        AuditKind::GrantApproved,
        AuditKind::GrantDenied,
        AuditKind::GrantConsumed,
        AuditKind::TokenFamilyRevoked,
        AuditKind::RefreshReuseDetected,
        AuditKind::KeyRotated,
        AuditKind::DeviceRegistered,
        AuditKind::DeviceRenamed,
        AuditKind::DeviceRelocated,
        AuditKind::DeviceRevoked,
        AuditKind::EnrollmentKeyCreated,
        AuditKind::EnrollmentKeyUsed,
        AuditKind::EnrollmentKeyRevoked,
        AuditKind::AppUpdated,
        AuditKind::PairingRequested,
        AuditKind::PairingApproved,
        AuditKind::PairingDenied,
        AuditKind::PairingCancelled,
        AuditKind::PairingConsumed,
        AuditKind::UserDisabled,
        AuditKind::UserEnabled,
        AuditKind::UserDeleted,
        AuditKind::PasswordChanged,
        AuditKind::UserRevokedAll,
        AuditKind::UserLocked,
        AuditKind::EventKindDeclared,
        AuditKind::TrustAdded,
        AuditKind::TrustRemoved,
        AuditKind::DeviceKeyRotated,
        AuditKind::SessionCreated,
        AuditKind::SessionJoined,
        AuditKind::SessionLeft,
        AuditKind::SessionMemberRemoved,
        AuditKind::SessionRekeyed,
        AuditKind::SessionClosed,
        AuditKind::AuditKeyAdded,
        AuditKind::ConsentGranted,
        AuditKind::ConsentWithdrawn,
        AuditKind::CodeRedeemed,
        AuditKind::CodeReused,
        AuditKind::PasskeyAdded,
        AuditKind::PasskeyRemoved,
        AuditKind::PasswordRemoved,
        AuditKind::KeysEncrypted,
        AuditKind::SecretKeyRotated,
    ];

    /// Stable text, hashed into the chain.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::UserCreated => "user.created",
            AuditKind::SignInSucceeded => "signin.succeeded",
            AuditKind::SignInFailed => "signin.failed",
            AuditKind::SignedOut => "signin.signed_out",
            AuditKind::AppCreated => "app.created",
            AuditKind::GrantRequested => "grant.requested",
            AuditKind::GrantApproved => "grant.approved",
            AuditKind::GrantDenied => "grant.denied",
            AuditKind::GrantConsumed => "grant.consumed",
            AuditKind::TokenFamilyRevoked => "token.family_revoked",
            AuditKind::RefreshReuseDetected => "token.refresh_reused",
            AuditKind::KeyRotated => "key.rotated",
            AuditKind::DeviceRegistered => "device.registered",
            AuditKind::DeviceRenamed => "device.renamed",
            AuditKind::DeviceRelocated => "device.relocated",
            AuditKind::DeviceRevoked => "device.revoked",
            AuditKind::EnrollmentKeyCreated => "enroll_key.created",
            AuditKind::EnrollmentKeyUsed => "enroll_key.used",
            AuditKind::EnrollmentKeyRevoked => "enroll_key.revoked",
            AuditKind::AppUpdated => "app.updated",
            AuditKind::PairingRequested => "qr.requested",
            AuditKind::PairingApproved => "qr.approved",
            AuditKind::PairingDenied => "qr.denied",
            AuditKind::PairingCancelled => "qr.cancelled",
            AuditKind::PairingConsumed => "qr.consumed",
            AuditKind::UserDisabled => "user.disabled",
            AuditKind::UserEnabled => "user.enabled",
            AuditKind::UserDeleted => "user.deleted",
            AuditKind::PasswordChanged => "user.password_changed",
            AuditKind::UserRevokedAll => "user.revoked_all",
            AuditKind::UserLocked => "user.locked",
            AuditKind::EventKindDeclared => "events.kind_declared",
            AuditKind::TrustAdded => "trust.added",
            AuditKind::TrustRemoved => "trust.removed",
            AuditKind::DeviceKeyRotated => "device.key_rotated",
            AuditKind::SessionCreated => "tsession.created",
            AuditKind::SessionJoined => "tsession.joined",
            AuditKind::SessionLeft => "tsession.left",
            AuditKind::SessionMemberRemoved => "tsession.member_removed",
            AuditKind::SessionRekeyed => "tsession.rekeyed",
            AuditKind::SessionClosed => "tsession.closed",
            AuditKind::AuditKeyAdded => "audit.key_added",
            AuditKind::ConsentGranted => "consent.granted",
            AuditKind::ConsentWithdrawn => "consent.withdrawn",
            AuditKind::CodeRedeemed => "oauth.code_redeemed",
            AuditKind::CodeReused => "oauth.code_reused",
            AuditKind::PasskeyAdded => "passkey.added",
            AuditKind::PasskeyRemoved => "passkey.removed",
            AuditKind::PasswordRemoved => "user.password_removed",
            AuditKind::KeysEncrypted => "keys.encrypted",
            AuditKind::SecretKeyRotated => "secret_key.rotated",
        }
    }

    /// Reads back [`AuditKind::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// An action to record, before it has a place in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// What happened.
    pub kind: AuditKind,
    /// Who did it (a user ID, a client ID, or `system`), if anyone.
    pub actor: Option<String>,
    /// What it was done to (a grant, a user, a key), if anything.
    pub subject: Option<String>,
    /// Extra facts as a JSON object in text form; hashed exactly as stored.
    pub detail: String,
}

impl AuditEvent {
    /// An event with no detail.
    pub fn new(kind: AuditKind, actor: Option<&str>, subject: Option<&str>) -> Self {
        Self { kind, actor: actor.map(str::to_string), subject: subject.map(str::to_string), detail: "{}".to_string() }
    }

    /// The same event with `detail` (JSON object text).
    pub fn with_detail(mut self, detail: String) -> Self {
        self.detail = detail;
        self
    }
}

/// An entry as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Its number, in the order entries were written (not necessarily committed).
    pub seq: i64,
    /// When it was recorded.
    pub at: Timestamp,
    /// Text of the kind (kept as text so entries from newer versions still verify).
    pub kind: String,
    /// Who did it.
    pub actor: Option<String>,
    /// What it was done to.
    pub subject: Option<String>,
    /// JSON object text.
    pub detail: String,
    /// Its link in the hash chain, for entries recorded before the tree.
    pub chain: Option<ChainLink>,
    /// Its position in the tree, once sealed.
    pub leaf: Option<i64>,
}

/// A link of the hash chain that came before the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainLink {
    /// Hash of the previous entry.
    pub prev_hash: [u8; 32],
    /// Hash of this entry.
    pub hash: [u8; 32],
}

/// The end of the old chain: where its last entry attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHead {
    /// Sequence number of the last chained entry (0 for an empty chain).
    pub seq: i64,
    /// Hash of the last chained entry ([`GENESIS_HASH`] for an empty chain).
    pub hash: [u8; 32],
}

impl ChainHead {
    /// The head of an empty chain.
    pub const EMPTY: ChainHead = ChainHead { seq: 0, hash: GENESIS_HASH };

    /// Links `event` at `at` onto this head, returning the entry and the new head.
    /// Only tests and migrations build chains now: new entries are sealed into the tree.
    pub fn append(&self, event: &AuditEvent, at: Timestamp) -> (AuditEntry, ChainHead) {
        let seq = self.seq + 1;
        let hash = entry_hash(
            seq,
            at,
            event.kind.as_str(),
            event.actor.as_deref(),
            event.subject.as_deref(),
            &event.detail,
            &self.hash,
        );
        let entry = AuditEntry {
            seq,
            at,
            kind: event.kind.as_str().to_string(),
            actor: event.actor.clone(),
            subject: event.subject.clone(),
            detail: event.detail.clone(),
            chain: Some(ChainLink { prev_hash: self.hash, hash }),
            leaf: None,
        };
        (entry, ChainHead { seq, hash })
    }
}

fn entry_hash(
    seq: i64,
    at: Timestamp,
    kind: &str,
    actor: Option<&str>,
    subject: Option<&str>,
    detail: &str,
    prev: &[u8; 32],
) -> [u8; 32] {
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    };
    field(DOMAIN_TAG);
    field(&seq.to_be_bytes());
    field(&at.as_millis().to_be_bytes());
    field(kind.as_bytes());
    field(actor.unwrap_or("").as_bytes());
    field(subject.unwrap_or("").as_bytes());
    field(detail.as_bytes());
    field(prev);
    h.finalize().into()
}

/// The first place where the old chain does not hold.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ChainBreak {
    /// A sequence number is missing or out of order (a row deleted or inserted).
    #[error("entry {found} follows entry {after}: entries are missing or out of order")]
    Gap {
        /// The last good sequence number.
        after: i64,
        /// The sequence number found next.
        found: i64,
    },
    /// An entry does not point at its predecessor's hash.
    #[error("entry {seq} does not link to the entry before it")]
    BrokenLink {
        /// The offending entry.
        seq: i64,
    },
    /// An entry's content does not match its hash (it was edited).
    #[error("entry {seq} was altered: its content does not match its hash")]
    Altered {
        /// The offending entry.
        seq: i64,
    },
    /// The stored head does not match the last entry (entries cut off the end, or the head edited).
    #[error("the chain ends at entry {last_seq} but its recorded head is entry {head_seq}")]
    HeadMismatch {
        /// Last entry found.
        last_seq: i64,
        /// Head recorded.
        head_seq: i64,
    },
}

/// Incremental verifier of the old chain: feed its entries in `seq` order, then
/// [`ChainVerifier::finish`] with the stored head. Entries without a link are skipped.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    head: ChainHead,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self { head: ChainHead::EMPTY }
    }
}

impl ChainVerifier {
    /// Checks the next entry against everything seen so far.
    pub fn push(&mut self, e: &AuditEntry) -> Result<(), ChainBreak> {
        let Some(link) = e.chain else { return Ok(()) };
        if e.seq != self.head.seq + 1 {
            return Err(ChainBreak::Gap { after: self.head.seq, found: e.seq });
        }
        if link.prev_hash != self.head.hash {
            return Err(ChainBreak::BrokenLink { seq: e.seq });
        }
        let want =
            entry_hash(e.seq, e.at, &e.kind, e.actor.as_deref(), e.subject.as_deref(), &e.detail, &link.prev_hash);
        if want != link.hash {
            return Err(ChainBreak::Altered { seq: e.seq });
        }
        self.head = ChainHead { seq: e.seq, hash: link.hash };
        Ok(())
    }

    /// Compares the end of the chain with the recorded head; returns the verified head.
    pub fn finish(self, recorded: ChainHead) -> Result<ChainHead, ChainBreak> {
        if recorded != self.head {
            return Err(ChainBreak::HeadMismatch { last_seq: self.head.seq, head_seq: recorded.seq });
        }
        Ok(self.head)
    }
}

// ---- the tree ----

/// The leaf hash of an entry: what the tree commits to.
pub fn leaf_hash(e: &AuditEntry) -> Hash {
    let mut data = Vec::with_capacity(96 + e.kind.len() + e.detail.len());
    let mut field = |bytes: &[u8]| {
        data.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
        data.extend_from_slice(bytes);
    };
    field(LEAF_TAG);
    field(&e.seq.to_be_bytes());
    field(&e.at.as_millis().to_be_bytes());
    field(e.kind.as_bytes());
    field(e.actor.as_deref().unwrap_or("").as_bytes());
    field(e.subject.as_deref().unwrap_or("").as_bytes());
    field(e.detail.as_bytes());
    merkle::leaf_hash(&data)
}

/// What one seal writes: each entry's position and every subtree it completed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SealPlan {
    /// (seq, leaf) for each entry sealed, in leaf order.
    pub leaves: Vec<(i64, i64)>,
    /// Every perfect subtree that became complete (level 0 are the leaves).
    pub nodes: Vec<(NodeId, Hash)>,
}

/// Appends `pending` (committed entries not yet sealed, in the order they are to be
/// sealed) to the tree whose right edge is `tree`, and says what to store.
pub fn seal(tree: &mut CompactRange, pending: &[AuditEntry]) -> SealPlan {
    let mut plan = SealPlan { leaves: Vec::with_capacity(pending.len()), nodes: Vec::with_capacity(pending.len() * 2) };
    for e in pending {
        let leaf = tree.size() as i64;
        plan.nodes.extend(tree.append(leaf_hash(e)));
        plan.leaves.push((e.seq, leaf));
    }
    plan
}

/// How long a replaced checkpoint key keeps co-signing, so verifiers that know
/// only it can follow the rotation (checkpoints list every signer's key).
pub const KEY_OVERLAP_MS: i64 = 7 * 24 * 3600 * 1000;

/// Whether a checkpoint key retired from `retired_at` (`None`: not retired) still signs at `now`.
pub fn key_signs(retired_at: Option<Timestamp>, now: Timestamp) -> bool {
    retired_at.is_none_or(|r| r > now)
}

/// Adding a checkpoint key, given when each existing key retires: `None` when a key
/// already signs and this is not a rotation (a second start-up adds nothing);
/// otherwise the time from which the keys not yet retired stop signing.
pub fn key_change(retirements: &[Option<Timestamp>], rotate: bool, now: Timestamp) -> Option<Timestamp> {
    if !rotate && retirements.iter().any(|r| key_signs(*r, now)) {
        return None;
    }
    Some(now.plus_millis(KEY_OVERLAP_MS))
}

/// A signed checkpoint of the audit tree, opened and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCheckpoint {
    /// The log's name (C2SP origin line).
    pub origin: String,
    /// How many leaves it covers.
    pub size: u64,
    /// The tree's root at that size.
    pub root: Hash,
    /// When it was sealed.
    pub time: Timestamp,
    /// The verifier keys that signed it, as its signed body lists them: a verifier
    /// that trusts one of them learns the others from it (how key rotation reaches clients).
    pub keys: Vec<String>,
    /// The signed note, as published.
    pub note: String,
}

/// Why a checkpoint could not be made or read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CheckpointError {
    /// The note or its signatures did not check out.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// The note is a checkpoint, but not one of ours (no time line).
    #[error("the checkpoint has no `time <ms>` line: it is not a Latchkey audit checkpoint")]
    NoTime,
}

const TIME_PREFIX: &str = "time ";
const KEY_PREFIX: &str = "key ";

impl AuditCheckpoint {
    /// Signs a checkpoint for `size`/`root` at `time` with every key in `signers`.
    pub fn sign(
        origin: &str,
        size: u64,
        root: Hash,
        time: Timestamp,
        signers: &[&NoteSigner],
    ) -> Result<Self, CheckpointError> {
        let keys: Vec<String> = signers.iter().map(|s| s.verifier().to_vkey()).collect();
        let mut extensions = vec![format!("{TIME_PREFIX}{}", time.as_millis())];
        extensions.extend(keys.iter().map(|k| format!("{KEY_PREFIX}{k}")));
        let body = Checkpoint { origin: origin.to_string(), size, root, extensions }.body();
        let note = signed_note::sign_many(&body, signers)?;
        Ok(Self { origin: origin.to_string(), size, root, time, keys, note })
    }

    /// Opens a published checkpoint, requiring a valid signature by one of `verifiers`.
    pub fn open(note: &str, verifiers: &[NoteVerifier]) -> Result<Self, CheckpointError> {
        let opened = signed_note::open(note, verifiers)?;
        let cp = Checkpoint::parse(&opened.text)?;
        let time = cp
            .extensions
            .iter()
            .find_map(|l| l.strip_prefix(TIME_PREFIX).and_then(|t| t.parse::<i64>().ok()))
            .ok_or(CheckpointError::NoTime)?;
        let keys = cp.extensions.iter().filter_map(|l| l.strip_prefix(KEY_PREFIX)).map(str::to_string).collect();
        Ok(Self {
            origin: cp.origin,
            size: cp.size,
            root: cp.root,
            time: Timestamp::from_millis(time),
            keys,
            note: note.into(),
        })
    }
}

/// A place where the stored log does not match its tree or its checkpoints.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum TreeBreak {
    /// Leaves are missing: entries were deleted (or never sealed in order).
    #[error("leaves {expected}..{found} are missing: entries were deleted")]
    Gap {
        /// The first missing leaf.
        expected: i64,
        /// The leaf found instead.
        found: i64,
    },
    /// The entry's content does not hash to the leaf sealed at its position.
    #[error("entry {seq} (leaf {leaf}) does not match what was sealed there: it was edited or moved")]
    Altered {
        /// The entry.
        seq: i64,
        /// Its position.
        leaf: i64,
    },
    /// The sealed leaf hash itself is gone.
    #[error("leaf {leaf} (entry {seq}) has no sealed hash: the tree was edited")]
    MissingNode {
        /// The entry.
        seq: i64,
        /// Its position.
        leaf: i64,
    },
    /// A checkpoint covers more leaves than the log has.
    #[error("checkpoint of size {checkpoint} but the log has only {found} sealed entries: it was truncated")]
    Truncated {
        /// The checkpoint's size.
        checkpoint: u64,
        /// Leaves found.
        found: u64,
    },
    /// The entries do not add up to a checkpoint's root.
    #[error("the first {size} entries do not hash to the root signed in that checkpoint: the log was rewritten")]
    RootMismatch {
        /// The checkpoint's size.
        size: u64,
    },
}

/// Walks the sealed entries in leaf order, recomputing the tree, and compares it
/// with the stored leaf hashes and with checkpoints. Collects every break found
/// (up to a cap) rather than stopping at the first, so a swapped pair names both.
#[derive(Debug, Clone)]
pub struct TreeVerifier {
    tree: CompactRange,
    next: i64,
    roots: Vec<(u64, Option<Hash>)>,
    breaks: Vec<TreeBreak>,
}

/// How many breaks [`TreeVerifier`] collects before it stops listing them.
pub const MAX_BREAKS: usize = 64;

impl TreeVerifier {
    /// A verifier that will also report the root at each size in `sizes`.
    pub fn new(sizes: &[u64]) -> Self {
        let roots = sizes.iter().map(|s| (*s, if *s == 0 { Some(merkle::empty_root()) } else { None })).collect();
        Self { tree: CompactRange::new(), next: 0, roots, breaks: Vec::new() }
    }

    fn note(&mut self, b: TreeBreak) {
        if self.breaks.len() < MAX_BREAKS {
            self.breaks.push(b);
        }
    }

    /// The next sealed entry (by leaf) and the leaf hash stored for it, if any.
    pub fn push(&mut self, e: &AuditEntry, sealed: Option<Hash>) {
        let Some(leaf) = e.leaf else { return };
        if leaf != self.next {
            self.note(TreeBreak::Gap { expected: self.next, found: leaf });
        }
        let h = leaf_hash(e);
        match sealed {
            None => self.note(TreeBreak::MissingNode { seq: e.seq, leaf }),
            Some(s) if s != h => self.note(TreeBreak::Altered { seq: e.seq, leaf }),
            Some(_) => {}
        }
        self.tree.append(h);
        self.next = leaf + 1;
        let size = self.tree.size();
        for (want, root) in self.roots.iter_mut() {
            if *want == size {
                *root = Some(self.tree.root());
            }
        }
    }

    /// How many leaves have been seen.
    pub fn size(&self) -> u64 {
        self.tree.size()
    }

    /// Checks `checkpoint` (whose size was given to [`TreeVerifier::new`]) against what was seen.
    pub fn check(&mut self, checkpoint: &AuditCheckpoint) {
        let root = self.roots.iter().find(|(s, _)| *s == checkpoint.size).and_then(|(_, r)| *r);
        match root {
            None => self.note(TreeBreak::Truncated { checkpoint: checkpoint.size, found: self.tree.size() }),
            Some(r) if r != checkpoint.root => self.note(TreeBreak::RootMismatch { size: checkpoint.size }),
            Some(_) => {}
        }
    }

    /// The recomputed root and every break found.
    pub fn finish(self) -> (u64, Hash, Vec<TreeBreak>) {
        (self.tree.size(), self.tree.root(), self.breaks)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    type Edit = Box<dyn Fn(&mut AuditEntry)>;

    fn chain(n: usize) -> (Vec<AuditEntry>, ChainHead) {
        let mut head = ChainHead::EMPTY;
        let mut out = Vec::new();
        for i in 0..n {
            let ev = AuditEvent::new(AuditKind::ALL[i % AuditKind::ALL.len()], Some("u1"), Some("g1"))
                .with_detail(format!("{{\"i\":{i}}}"));
            let (e, h) = head.append(&ev, Timestamp::from_millis(i as i64));
            out.push(e);
            head = h;
        }
        (out, head)
    }

    fn verify(entries: &[AuditEntry], head: ChainHead) -> Result<ChainHead, ChainBreak> {
        let mut v = ChainVerifier::default();
        for e in entries {
            v.push(e)?;
        }
        v.finish(head)
    }

    #[test]
    fn intact_chain_verifies() {
        let (entries, head) = chain(20);
        assert_eq!(verify(&entries, head), Ok(head));
        assert_eq!(verify(&[], ChainHead::EMPTY), Ok(ChainHead::EMPTY));
    }

    #[test]
    fn any_edit_of_any_field_is_detected() {
        let (entries, head) = chain(10);
        for i in 0..entries.len() {
            let edits: Vec<Edit> = vec![
                Box::new(|e| e.kind = "user.created.x".into()),
                Box::new(|e| e.actor = Some("mallory".into())),
                Box::new(|e| e.subject = None),
                Box::new(|e| e.detail = "{}".into()),
                Box::new(|e| e.at = e.at.plus_millis(1)),
                Box::new(|e| e.chain.as_mut().unwrap().hash[0] ^= 1),
                Box::new(|e| e.chain.as_mut().unwrap().prev_hash[31] ^= 1),
            ];
            for edit in edits {
                let mut tampered = entries.clone();
                edit(&mut tampered[i]);
                assert!(verify(&tampered, head).is_err(), "edit at {i} not detected");
            }
        }
    }

    #[test]
    fn deleting_any_entry_is_detected() {
        let (entries, head) = chain(10);
        for i in 0..entries.len() {
            let mut tampered = entries.clone();
            tampered.remove(i);
            assert!(verify(&tampered, head).is_err(), "delete at {i} not detected");
        }
    }

    #[test]
    fn break_names_the_first_bad_entry() {
        let (mut entries, head) = chain(5);
        entries[2].detail = "{\"i\":99}".into();
        assert_eq!(verify(&entries, head), Err(ChainBreak::Altered { seq: 3 }));
        let (mut entries, head) = chain(5);
        entries.remove(1);
        assert_eq!(verify(&entries, head), Err(ChainBreak::Gap { after: 1, found: 3 }));
        let (mut entries, head) = chain(5);
        entries.pop();
        assert_eq!(verify(&entries, head), Err(ChainBreak::HeadMismatch { last_seq: 4, head_seq: 5 }));
    }

    #[test]
    fn kinds_round_trip() {
        for k in AuditKind::ALL {
            assert_eq!(AuditKind::parse(k.as_str()), Some(k));
        }
    }

    fn sealed(n: usize) -> (Vec<AuditEntry>, Vec<Hash>, CompactRange) {
        let (mut entries, _) = chain(n);
        let mut tree = CompactRange::new();
        let plan = seal(&mut tree, &entries);
        for (e, (seq, leaf)) in entries.iter_mut().zip(&plan.leaves) {
            assert_eq!(e.seq, *seq);
            e.leaf = Some(*leaf);
        }
        let leaves = plan.nodes.iter().filter(|(id, _)| id.level == 0).map(|(_, h)| *h).collect();
        (entries, leaves, tree)
    }

    fn signer(seed: u8) -> NoteSigner {
        NoteSigner::new("audit.example", &[seed; 32]).unwrap()
    }

    fn tree_breaks(entries: &[AuditEntry], leaves: &[Hash], cps: &[AuditCheckpoint]) -> Vec<TreeBreak> {
        let sizes: Vec<u64> = cps.iter().map(|c| c.size).collect();
        let mut v = TreeVerifier::new(&sizes);
        for e in entries {
            v.push(e, e.leaf.and_then(|l| leaves.get(l as usize).copied()));
        }
        for c in cps {
            v.check(c);
        }
        v.finish().2
    }

    #[test]
    fn sealing_numbers_leaves_in_order_and_matches_the_merkle_root() {
        let (entries, leaves, tree) = sealed(13);
        assert_eq!(tree.size(), 13);
        assert_eq!(leaves, entries.iter().map(leaf_hash).collect::<Vec<_>>());
        let mut again = CompactRange::new();
        for h in &leaves {
            again.append(*h);
        }
        assert_eq!(again.root(), tree.root());
        let s = signer(1);
        let cp = AuditCheckpoint::sign("audit.example", 13, tree.root(), Timestamp::from_millis(5), &[&s]).unwrap();
        assert!(tree_breaks(&entries, &leaves, &[cp]).is_empty());
    }

    #[test]
    fn a_seal_continues_where_the_last_one_ended() {
        let (all, _, whole) = sealed(10);
        let mut tree = CompactRange::new();
        let first = seal(&mut tree, &all[..4]);
        let rest = seal(&mut tree, &all[4..]);
        assert_eq!(tree.root(), whole.root());
        assert_eq!(rest.leaves[0], (all[4].seq, 4));
        assert!(first.nodes.iter().chain(&rest.nodes).any(|(id, _)| id.level == 3));
    }

    #[test]
    fn verify_names_an_edit_a_swap_a_deletion_and_a_truncation() {
        let (entries, leaves, tree) = sealed(9);
        let s = signer(2);
        let cp = AuditCheckpoint::sign("audit.example", 9, tree.root(), Timestamp::from_millis(1), &[&s]).unwrap();

        let mut edited = entries.clone();
        edited[3].detail = "{}".into();
        assert_eq!(
            tree_breaks(&edited, &leaves, std::slice::from_ref(&cp)),
            vec![TreeBreak::Altered { seq: 4, leaf: 3 }, TreeBreak::RootMismatch { size: 9 }]
        );

        let mut swapped = entries.clone();
        swapped.swap(2, 6);
        swapped[2].leaf = Some(2);
        swapped[6].leaf = Some(6);
        let b = tree_breaks(&swapped, &leaves, std::slice::from_ref(&cp));
        assert!(
            b.contains(&TreeBreak::Altered { seq: 7, leaf: 2 }) && b.contains(&TreeBreak::Altered { seq: 3, leaf: 6 })
        );

        let mut holed = entries.clone();
        holed.remove(5);
        assert_eq!(
            tree_breaks(&holed, &leaves, std::slice::from_ref(&cp))[0],
            TreeBreak::Gap { expected: 5, found: 6 }
        );

        let cut = &entries[..7];
        assert_eq!(tree_breaks(cut, &leaves, &[cp]), vec![TreeBreak::Truncated { checkpoint: 9, found: 7 }]);
    }

    #[test]
    fn keys_are_added_once_and_rotations_overlap() {
        let t = Timestamp::from_millis(1_000);
        assert_eq!(key_change(&[], false, t), Some(t.plus_millis(KEY_OVERLAP_MS)), "the first key");
        assert_eq!(key_change(&[None], false, t), None, "a second start-up adds nothing");
        assert_eq!(key_change(&[None], true, t), Some(t.plus_millis(KEY_OVERLAP_MS)), "a rotation");
        let old = Some(t.plus_millis(10));
        assert_eq!(key_change(&[old], false, t), None, "a retiring key still signs");
        assert!(key_signs(old, t) && !key_signs(old, t.plus_millis(10)));
        assert!(key_change(&[old], false, t.plus_millis(10)).is_some(), "every key retired: make one");
    }

    #[test]
    fn checkpoints_are_signed_and_forgeries_refused() {
        let (_, _, tree) = sealed(5);
        let (old, new) = (signer(3), signer(4));
        let cp =
            AuditCheckpoint::sign("audit.example", 5, tree.root(), Timestamp::from_millis(77), &[&old, &new]).unwrap();
        let opened = AuditCheckpoint::open(&cp.note, &[old.verifier()]).unwrap();
        assert_eq!((opened.size, opened.root, opened.time), (5, tree.root(), Timestamp::from_millis(77)));
        assert!(AuditCheckpoint::open(&cp.note, &[new.verifier()]).is_ok());
        assert_eq!(opened.keys, vec![old.verifier().to_vkey(), new.verifier().to_vkey()], "rotation travels signed");
        let forged = cp.note.replacen("\n5\n", "\n6\n", 1);
        assert!(AuditCheckpoint::open(&forged, &[old.verifier()]).is_err());
        let other = signer(9);
        let by_other =
            AuditCheckpoint::sign("audit.example", 5, tree.root(), Timestamp::from_millis(1), &[&other]).unwrap();
        assert!(AuditCheckpoint::open(&by_other.note, &[old.verifier()]).is_err());
    }
}
