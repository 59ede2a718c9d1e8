//! Signed notes and transparency log checkpoints (c2sp.org/signed-note, c2sp.org/tlog-checkpoint).
//!
//! The format is the one of Go's `golang.org/x/mod/sumdb/note`, so notes we
//! sign open with standard tools and witnesses. Only Ed25519 keys (signature
//! type `0x01`) are supported.
//!
//! A signed note is its text (ending in a newline), a blank line, then one
//! line per signature: `— <key name> <base64(key ID || signature)>`. A key is
//! known by its name and a 32-bit key ID, the first four bytes of
//! SHA-256(name || "\n" || 0x01 || public key).

use crate::merkle::Hash;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use sha2::{Digest, Sha256};
use std::fmt;
use thiserror::Error;

/// Signature type byte of Ed25519 keys.
const ED25519_TYPE: u8 = 0x01;
/// Starts every signature line: em dash (U+2014) and a space.
const SIG_PREFIX: &str = "\u{2014} ";
/// Most signature lines `open` reads; the spec asks verifiers to accept at least 16.
const MAX_SIGNATURES: usize = 100;

/// Why a note, key or checkpoint was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum NoteError {
    /// A key name is empty or has a space or '+'.
    #[error("invalid key name {0:?}: a key name must be non-empty, with no spaces and no '+'")]
    InvalidKeyName(String),
    /// The Ed25519 seed was refused by the crypto library.
    #[error("invalid Ed25519 signing key")]
    InvalidSigningKey,
    /// Text to sign is not valid note text.
    #[error("cannot sign this text: {0}")]
    InvalidText(&'static str),
    /// `sign_many` was called with no signers.
    #[error("a note needs at least one signer")]
    NoSigners,
    /// A verifier key string could not be parsed.
    #[error("malformed verifier key ({0}); expected <name>+<8 hex digit key ID>+<base64 public key>")]
    MalformedVerifierKey(&'static str),
    /// A verifier key is for a signature type other than Ed25519.
    #[error("unsupported verifier key type 0x{0:02x}; only Ed25519 (0x01) is supported")]
    UnsupportedKeyType(u8),
    /// A verifier key's ID does not match its name and public key.
    #[error("verifier key ID {given:08x} does not match its name and public key (expected {computed:08x}); the key was mistyped or altered")]
    KeyIdMismatch {
        /// Key ID written in the key string.
        given: u32,
        /// Key ID computed from the name and public key.
        computed: u32,
    },
    /// Two different trusted keys share a name and key ID.
    #[error("two different trusted keys are named {name}+{key_id:08x}; remove one")]
    AmbiguousKey {
        /// The shared key name.
        name: String,
        /// The shared key ID.
        key_id: u32,
    },
    /// The note is not in the signed-note format.
    #[error("malformed signed note: {0}")]
    MalformedNote(&'static str),
    /// A trusted key's signature does not verify.
    #[error("bad signature from trusted key {name}+{key_id:08x}: the note was altered, or signed by a different key with the same name and ID")]
    BadSignature {
        /// Name of the trusted key.
        name: String,
        /// ID of the trusted key.
        key_id: u32,
    },
    /// No trusted key signed the note.
    #[error("unknown signer: the note has no signature from a trusted key (signed by: {signed_by}); check the verifier keys configured")]
    UnknownSigner {
        /// The signatures found, as `name+keyid`, comma separated.
        signed_by: String,
    },
    /// The note text is not a tlog checkpoint.
    #[error("malformed checkpoint: {0}")]
    MalformedCheckpoint(&'static str),
}

/// Whether `name` may name a key: non-empty, no Unicode whitespace, no '+'.
fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

fn check_name(name: &str) -> Result<(), NoteError> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(NoteError::InvalidKeyName(name.to_owned()))
    }
}

/// Key ID of an Ed25519 key: the first four bytes of SHA-256(name || "\n" || 0x01 || public key), big-endian.
pub fn key_id(name: &str, public_key: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ED25519_TYPE]);
    h.update(public_key);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// True for characters a signed note may not contain: ASCII controls other than newline.
fn is_forbidden_char(c: char) -> bool {
    c < ' ' && c != '\n'
}

/// A named Ed25519 key that signs notes.
pub struct NoteSigner {
    name: String,
    key_id: u32,
    key_pair: Ed25519KeyPair,
}

impl fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the seed.
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .field("key_id", &format_args!("{:08x}", self.key_id))
            .finish()
    }
}

impl NoteSigner {
    /// A signer for key `name` from a 32-byte Ed25519 seed.
    pub fn new(name: &str, seed: &[u8; 32]) -> Result<Self, NoteError> {
        check_name(name)?;
        let key_pair = Ed25519KeyPair::from_seed_unchecked(seed).map_err(|_| NoteError::InvalidSigningKey)?;
        let mut public = [0u8; 32];
        public.copy_from_slice(key_pair.public_key().as_ref());
        Ok(Self { name: name.to_owned(), key_id: key_id(name, &public), key_pair })
    }

    /// The key name written in signature lines.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The 32-bit key ID written at the start of each signature.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        let mut public = [0u8; 32];
        public.copy_from_slice(self.key_pair.public_key().as_ref());
        public
    }

    /// The verifier for this key, to hand to whoever checks our notes.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier { name: self.name.clone(), key_id: self.key_id, public: self.public_key() }
    }

    /// Signs `text` (which must end in a newline): the text, a blank line and our signature line.
    pub fn sign(&self, text: &str) -> Result<String, NoteError> {
        sign_many(text, &[self])
    }

    /// The signature line for `text`, newline included.
    fn signature_line(&self, text: &str) -> String {
        let sig = self.key_pair.sign(text.as_bytes());
        let mut raw = Vec::with_capacity(4 + sig.as_ref().len());
        raw.extend_from_slice(&self.key_id.to_be_bytes());
        raw.extend_from_slice(sig.as_ref());
        format!("{SIG_PREFIX}{} {}\n", self.name, STANDARD.encode(raw))
    }
}

/// Signs `text` with every signer, one signature line each in the order given (e.g. old and new key during a rotation).
pub fn sign_many(text: &str, signers: &[&NoteSigner]) -> Result<String, NoteError> {
    if !text.ends_with('\n') {
        return Err(NoteError::InvalidText("note text must end with a newline"));
    }
    if text.chars().any(is_forbidden_char) {
        return Err(NoteError::InvalidText("note text must not contain control characters other than newline"));
    }
    if signers.is_empty() {
        return Err(NoteError::NoSigners);
    }
    let mut note = String::with_capacity(text.len() + 1 + signers.len() * 110);
    note.push_str(text);
    note.push('\n');
    for signer in signers {
        note.push_str(&signer.signature_line(text));
    }
    Ok(note)
}

/// A trusted Ed25519 public key, with its name and key ID, that checks note signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    key_id: u32,
    public: [u8; 32],
}

impl NoteVerifier {
    /// A verifier for the Ed25519 public key `public` named `name`.
    pub fn new(name: &str, public: [u8; 32]) -> Result<Self, NoteError> {
        check_name(name)?;
        Ok(Self { name: name.to_owned(), key_id: key_id(name, &public), public })
    }

    /// Parses a verifier key string, `<name>+<8 lowercase hex key ID>+<base64(0x01 || public key)>`.
    pub fn parse(vkey: &str) -> Result<Self, NoteError> {
        let mut fields = vkey.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key_b64)) = (fields.next(), fields.next(), fields.next()) else {
            return Err(NoteError::MalformedVerifierKey("it needs three fields separated by '+'"));
        };
        check_name(name)?;
        if id_hex.len() != 8 || !id_hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(NoteError::MalformedVerifierKey("the key ID must be 8 lowercase hex digits"));
        }
        let given = u32::from_str_radix(id_hex, 16)
            .map_err(|_| NoteError::MalformedVerifierKey("the key ID must be 8 lowercase hex digits"))?;
        let key = STANDARD
            .decode(key_b64)
            .map_err(|_| NoteError::MalformedVerifierKey("the public key is not standard base64"))?;
        let Some((&key_type, public)) = key.split_first() else {
            return Err(NoteError::MalformedVerifierKey("the public key is empty"));
        };
        if key_type != ED25519_TYPE {
            return Err(NoteError::UnsupportedKeyType(key_type));
        }
        let public: [u8; 32] =
            public.try_into().map_err(|_| NoteError::MalformedVerifierKey("an Ed25519 public key is 32 bytes"))?;
        let computed = key_id(name, &public);
        if computed != given {
            return Err(NoteError::KeyIdMismatch { given, computed });
        }
        Ok(Self { name: name.to_owned(), key_id: given, public })
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The 32-bit key ID.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.public
    }

    /// The verifier key string, as [`NoteVerifier::parse`] reads it.
    pub fn to_vkey(&self) -> String {
        self.to_string()
    }

    fn verifies(&self, text: &str, sig: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.public).verify(text.as_bytes(), sig).is_ok()
    }
}

impl fmt::Display for NoteVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut key = Vec::with_capacity(33);
        key.push(ED25519_TYPE);
        key.extend_from_slice(&self.public);
        write!(f, "{}+{:08x}+{}", self.name, self.key_id, STANDARD.encode(key))
    }
}

/// A note whose signatures checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedNote {
    /// The signed text, final newline included.
    pub text: String,
    /// Names of the trusted keys whose signatures verified, in order of first appearance, each once.
    pub verified_by: Vec<String>,
}

/// Checks a signed note against trusted keys and returns its text.
///
/// Signatures from keys not in `verifiers` (by name and key ID) are ignored.
/// Fails if any trusted key's signature does not verify, or if no trusted key
/// signed.
pub fn open(note: &str, verifiers: &[NoteVerifier]) -> Result<OpenedNote, NoteError> {
    if note.chars().any(is_forbidden_char) {
        return Err(NoteError::MalformedNote("it contains a control character other than newline"));
    }
    let Some(split) = note.rfind("\n\n") else {
        return Err(NoteError::MalformedNote("no blank line between the text and the signatures"));
    };
    let text = &note[..split + 1];
    let sigs = &note[split + 2..];
    let Some(sigs) = sigs.strip_suffix('\n') else {
        return Err(NoteError::MalformedNote("the signature block must be non-empty and end with a newline"));
    };

    let mut verified: Vec<(&str, u32)> = Vec::new();
    let mut unknown: Vec<String> = Vec::new();
    for (count, line) in sigs.split('\n').enumerate() {
        if count >= MAX_SIGNATURES {
            return Err(NoteError::MalformedNote("too many signatures"));
        }
        let Some(rest) = line.strip_prefix(SIG_PREFIX) else {
            return Err(NoteError::MalformedNote("a signature line must start with an em dash (U+2014) and a space"));
        };
        let Some((name, b64)) = rest.split_once(' ') else {
            return Err(NoteError::MalformedNote("a signature line must be '— <key name> <base64 signature>'"));
        };
        if !is_valid_name(name) {
            return Err(NoteError::MalformedNote("a signature line has an invalid key name"));
        }
        let raw = STANDARD.decode(b64).map_err(|_| NoteError::MalformedNote("a signature is not standard base64"))?;
        let [a, b, c, d, sig @ ..] = raw.as_slice() else {
            return Err(NoteError::MalformedNote("a signature is too short"));
        };
        if sig.is_empty() {
            return Err(NoteError::MalformedNote("a signature is too short"));
        }
        let id = u32::from_be_bytes([*a, *b, *c, *d]);

        let mut matching = verifiers.iter().filter(|v| v.name == name && v.key_id == id);
        let Some(verifier) = matching.next() else {
            unknown.push(format!("{name}+{id:08x}"));
            continue;
        };
        if matching.any(|other| other.public != verifier.public) {
            return Err(NoteError::AmbiguousKey { name: name.to_owned(), key_id: id });
        }
        if !verifier.verifies(text, sig) {
            return Err(NoteError::BadSignature { name: name.to_owned(), key_id: id });
        }
        if !verified.contains(&(name, id)) {
            verified.push((name, id));
        }
    }

    if verified.is_empty() {
        return Err(NoteError::UnknownSigner { signed_by: unknown.join(", ") });
    }
    let mut verified_by: Vec<String> = Vec::with_capacity(verified.len());
    for (name, _) in verified {
        if !verified_by.iter().any(|n| n == name) {
            verified_by.push(name.to_owned());
        }
    }
    Ok(OpenedNote { text: text.to_owned(), verified_by })
}

/// A transparency log checkpoint: the note text committing to the tree of `size` leaves with root `root`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Identifies the log, e.g. `auth.example.com/audit`.
    pub origin: String,
    /// Number of leaves in the tree.
    pub size: u64,
    /// Merkle Tree Hash of those leaves.
    pub root: Hash,
    /// Optional extra lines, each non-empty (the spec advises against them).
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// The note text: origin, size and base64 root on their own lines, then each extension line.
    pub fn body(&self) -> String {
        let mut body = format!("{}\n{}\n{}\n", self.origin, self.size, STANDARD.encode(self.root));
        for ext in &self.extensions {
            body.push_str(ext);
            body.push('\n');
        }
        body
    }

    /// Parses checkpoint note text strictly (the text of an [`OpenedNote`]).
    pub fn parse(text: &str) -> Result<Checkpoint, NoteError> {
        let Some(body) = text.strip_suffix('\n') else {
            return Err(NoteError::MalformedCheckpoint("the text must end with a newline"));
        };
        if body.chars().any(is_forbidden_char) {
            return Err(NoteError::MalformedCheckpoint("it contains a control character other than newline"));
        }
        let mut lines = body.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next()) else {
            return Err(NoteError::MalformedCheckpoint("it needs an origin, a tree size and a root hash line"));
        };
        let extensions: Vec<String> = lines.map(str::to_owned).collect();
        if origin.is_empty() {
            return Err(NoteError::MalformedCheckpoint("the origin line is empty"));
        }
        let size_ok =
            !size.is_empty() && size.bytes().all(|b| b.is_ascii_digit()) && (size == "0" || !size.starts_with('0'));
        if !size_ok {
            return Err(NoteError::MalformedCheckpoint("the tree size must be a decimal number without leading zeros"));
        }
        let size: u64 = size.parse().map_err(|_| NoteError::MalformedCheckpoint("the tree size is too large"))?;
        let root_bytes = STANDARD
            .decode(root)
            .map_err(|_| NoteError::MalformedCheckpoint("the root hash is not standard base64"))?;
        let root_hash: Hash =
            root_bytes.try_into().map_err(|_| NoteError::MalformedCheckpoint("the root hash must be 32 bytes"))?;
        if STANDARD.encode(root_hash) != root {
            return Err(NoteError::MalformedCheckpoint("the root hash is not canonical base64"));
        }
        if extensions.iter().any(String::is_empty) {
            return Err(NoteError::MalformedCheckpoint("extension lines must be non-empty"));
        }
        Ok(Checkpoint { origin: origin.to_owned(), size, root: root_hash, extensions })
    }
}

#[cfg(test)]
// A broken promise fails the test, and panicking is how tests fail.
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // The example in the documentation of golang.org/x/mod/sumdb/note.
    const GO_SKEY: &str = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const GO_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const GO_TEXT: &str =
        "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const GO_SIG_LINE: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    /// Reads Go's signer key format, `PRIVATE+KEY+<name>+<id>+<base64(0x01 || seed)>`.
    fn go_signer(skey: &str) -> NoteSigner {
        let fields: Vec<&str> = skey.splitn(5, '+').collect();
        assert_eq!(&fields[..2], ["PRIVATE", "KEY"]);
        let key = STANDARD.decode(fields[4]).unwrap();
        assert_eq!(key[0], 0x01);
        let seed: [u8; 32] = key[1..].try_into().unwrap();
        let signer = NoteSigner::new(fields[2], &seed).unwrap();
        assert_eq!(format!("{:08x}", signer.key_id()), fields[3]);
        signer
    }

    fn signer(name: &str, n: u8) -> NoteSigner {
        NoteSigner::new(name, &[n; 32]).unwrap()
    }

    #[test]
    fn go_note_package_example() {
        let signer = go_signer(GO_SKEY);
        assert_eq!(signer.key_id(), 0xc74f20a3);
        assert_eq!(signer.verifier().to_vkey(), GO_VKEY);
        let verifier = NoteVerifier::parse(GO_VKEY).unwrap();
        assert_eq!(verifier, signer.verifier());
        assert_eq!(verifier.to_string(), GO_VKEY);

        let expected = format!("{GO_TEXT}\n{GO_SIG_LINE}");
        assert_eq!(signer.sign(GO_TEXT).unwrap(), expected);

        let opened = open(&expected, &[verifier]).unwrap();
        assert_eq!(opened.text, GO_TEXT);
        assert_eq!(opened.verified_by, ["PeterNeumann"]);
    }

    #[test]
    fn round_trip_and_tampering() {
        let s = signer("log.example/audit", 1);
        let note = s.sign("hello\n\nworld\n").unwrap();
        let opened = open(&note, &[s.verifier()]).unwrap();
        assert_eq!(opened.text, "hello\n\nworld\n");
        assert_eq!(opened.verified_by, ["log.example/audit"]);

        let tampered = note.replacen("world", "w0rld", 1);
        assert_eq!(
            open(&tampered, &[s.verifier()]),
            Err(NoteError::BadSignature { name: "log.example/audit".into(), key_id: s.key_id() })
        );
        // A text ending in a blank line round-trips too.
        let note = s.sign("a\n\n").unwrap();
        assert_eq!(open(&note, &[s.verifier()]).unwrap().text, "a\n\n");
    }

    #[test]
    fn unknown_signatures_are_ignored_and_known_ones_all_count() {
        let (old, new, stranger) = (signer("log", 1), signer("log", 2), signer("witness", 3));
        let text = "tree\n";
        let note = sign_many(text, &[&old, &stranger]).unwrap();
        assert_eq!(open(&note, &[old.verifier()]).unwrap().verified_by, ["log"]);
        // Same name, other key ID: also unknown, so ignored.
        let note = sign_many(text, &[&new, &old]).unwrap();
        assert_eq!(open(&note, &[old.verifier()]).unwrap().verified_by, ["log"]);
        // Two trusted signers both verify.
        let note = sign_many(text, &[&old, &stranger]).unwrap();
        let opened = open(&note, &[stranger.verifier(), old.verifier()]).unwrap();
        assert_eq!(opened.verified_by, ["log", "witness"]);
        // Nobody trusted.
        let err = open(&note, &[new.verifier()]).unwrap_err();
        assert!(matches!(&err, NoteError::UnknownSigner { signed_by } if signed_by.contains("witness+")));
        assert!(open(&note, &[]).is_err());
    }

    #[test]
    fn a_bad_signature_from_a_trusted_key_rejects_the_note() {
        let (good, other) = (signer("log", 1), signer("witness", 2));
        let note = sign_many("tree\n", &[&good, &other]).unwrap();
        // Swap the witness's signature bytes for a signature over other text.
        let forged_line = other.sign("other\n").unwrap().lines().last().unwrap().to_owned();
        let mut lines: Vec<&str> = note.lines().collect();
        let last = lines.len() - 1;
        lines[last] = &forged_line;
        let forged = lines.join("\n") + "\n";
        assert!(open(&forged, &[good.verifier()]).is_ok());
        assert!(matches!(open(&forged, &[good.verifier(), other.verifier()]), Err(NoteError::BadSignature { .. })));
    }

    #[test]
    fn signing_rejects_bad_input() {
        let s = signer("log", 1);
        assert!(matches!(s.sign("no newline"), Err(NoteError::InvalidText(_))));
        assert!(matches!(s.sign("tab\there\n"), Err(NoteError::InvalidText(_))));
        assert!(matches!(s.sign(""), Err(NoteError::InvalidText(_))));
        assert_eq!(sign_many("x\n", &[]), Err(NoteError::NoSigners));
        for bad in ["", "a b", "a+b", "a\nb", "a\u{a0}b"] {
            assert!(matches!(NoteSigner::new(bad, &[1; 32]), Err(NoteError::InvalidKeyName(_))), "{bad:?}");
            assert!(NoteVerifier::new(bad, [1; 32]).is_err());
        }
    }

    #[test]
    fn verifier_keys_are_parsed_strictly() {
        let v = signer("log.example", 7).verifier();
        let vkey = v.to_vkey();
        assert_eq!(NoteVerifier::parse(&vkey).unwrap(), v);
        assert_eq!(NoteVerifier::new("log.example", v.public_key()).unwrap(), v);

        let (name, rest) = vkey.split_once('+').unwrap();
        let (id, key) = rest.split_once('+').unwrap();
        assert!(matches!(NoteVerifier::parse(name), Err(NoteError::MalformedVerifierKey(_))));
        assert!(matches!(NoteVerifier::parse(&format!("{name}+{id}")), Err(NoteError::MalformedVerifierKey(_))));
        let upper = format!("{name}+{}+{key}", id.to_uppercase());
        if upper != vkey {
            assert!(matches!(NoteVerifier::parse(&upper), Err(NoteError::MalformedVerifierKey(_))));
        }
        assert!(matches!(
            NoteVerifier::parse(&format!("{name}+00000000+{key}")),
            Err(NoteError::KeyIdMismatch { given: 0, .. })
        ));
        assert!(matches!(NoteVerifier::parse(&format!("other+{id}+{key}")), Err(NoteError::KeyIdMismatch { .. })));
        let mut raw = STANDARD.decode(key).unwrap();
        raw[0] = 0x02;
        assert_eq!(
            NoteVerifier::parse(&format!("{name}+{id}+{}", STANDARD.encode(&raw))),
            Err(NoteError::UnsupportedKeyType(2))
        );
        raw[0] = 0x01;
        raw.pop();
        assert!(matches!(
            NoteVerifier::parse(&format!("{name}+{id}+{}", STANDARD.encode(&raw))),
            Err(NoteError::MalformedVerifierKey(_))
        ));
        assert!(matches!(NoteVerifier::parse(&format!("{name}+{id}+!!!")), Err(NoteError::MalformedVerifierKey(_))));
        assert!(matches!(NoteVerifier::parse(&format!("a b+{id}+{key}")), Err(NoteError::InvalidKeyName(_))));
    }

    #[test]
    fn malformed_notes_are_rejected() {
        let s = signer("log", 1);
        let v = [s.verifier()];
        let good = s.sign("text\n").unwrap();
        let sig_line = good.split("\n\n").nth(1).unwrap();
        let cases = [
            "",
            "text\n",
            "text\n\n",
            "text\n\n\n",
            &good[..good.len() - 1],
            &good.replace('\u{2014}', "-"),
            &good.replace("log ", "log"),
            &good.replace("log ", "l+g "),
            "text\n\n\u{2014} log !!!\n",
            "text\n\n\u{2014} log AAAA\n",
            "text\n\n\u{2014} log AAAAAA==\n",
            &format!("text\r\n\n{sig_line}"),
            &format!("text\n\n{sig_line}\n"),
            &format!("text\n\n{sig_line}garbage\n"),
        ];
        for case in cases {
            assert!(matches!(open(case, &v), Err(NoteError::MalformedNote(_))), "{case:?}: {:?}", open(case, &v));
        }
        let many = format!("text\n\n{}", sig_line.repeat(MAX_SIGNATURES + 1));
        assert_eq!(open(&many, &v), Err(NoteError::MalformedNote("too many signatures")));
        let enough = format!("text\n\n{}", sig_line.repeat(16));
        assert_eq!(open(&enough, &v).unwrap().verified_by, ["log"]);
    }

    #[test]
    fn checkpoints() {
        let cp =
            Checkpoint { origin: "auth.example.com/audit".into(), size: 20852163, root: [7; 32], extensions: vec![] };
        let body = cp.body();
        assert_eq!(body, format!("auth.example.com/audit\n20852163\n{}\n", STANDARD.encode([7u8; 32])));
        assert_eq!(Checkpoint::parse(&body).unwrap(), cp);
        let with_ext = Checkpoint { extensions: vec!["ext one".into(), "two".into()], size: 0, ..cp.clone() };
        assert_eq!(Checkpoint::parse(&with_ext.body()).unwrap(), with_ext);

        // Signed and opened end to end.
        let s = signer("auth.example.com/audit", 9);
        let opened = open(&s.sign(&body).unwrap(), &[s.verifier()]).unwrap();
        assert_eq!(Checkpoint::parse(&opened.text).unwrap(), cp);

        // The example in c2sp.org/tlog-checkpoint parses.
        let spec = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
        assert_eq!(Checkpoint::parse(spec).unwrap().size, 20852163);

        let root = STANDARD.encode([7u8; 32]);
        let bad = [
            String::new(),
            "o\n1\n".to_string(),
            format!("o\n1\n{root}"),
            format!("\n1\n{root}\n"),
            format!("o\n\n{root}\n"),
            format!("o\n01\n{root}\n"),
            format!("o\n00\n{root}\n"),
            format!("o\n+1\n{root}\n"),
            format!("o\n-1\n{root}\n"),
            format!("o\n1 \n{root}\n"),
            format!("o\n18446744073709551616\n{root}\n"),
            "o\n1\n\n".to_string(),
            format!("o\n1\n{}\n", STANDARD.encode([7u8; 31])),
            format!("o\n1\n{}\n", root.trim_end_matches('=')),
            format!("o\n1\n{}\n", hex::encode([7u8; 32])),
            format!("o\n1\n{root}\n\n"),
            format!("o\n1\n{root}\next\n\n"),
            format!("o\n1\n{root}\nta\tb\n"),
        ];
        for case in &bad {
            assert!(matches!(Checkpoint::parse(case), Err(NoteError::MalformedCheckpoint(_))), "{case:?}");
        }
        assert_eq!(Checkpoint::parse(&format!("o\n18446744073709551615\n{root}\n")).unwrap().size, u64::MAX);
    }

    #[test]
    fn errors_read_well() {
        let err = NoteError::BadSignature { name: "log".into(), key_id: 0xab };
        assert!(err.to_string().contains("log+000000ab"));
        assert!(format!("{:?}", signer("log", 1)).contains("log"));
    }

    fn note_like() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("\n".to_string()),
            Just("\n\n".to_string()),
            Just("\u{2014} ".to_string()),
            Just(" ".to_string()),
            Just("log".to_string()),
            Just("AAAAAAAA".to_string()),
            Just("=".to_string()),
            "[A-Za-z0-9+/=]{0,100}",
            "\\PC{0,4}",
            any::<char>().prop_map(String::from),
        ];
        proptest::collection::vec(piece, 0..24).prop_map(|p| p.concat())
    }

    proptest! {
        #[test]
        fn open_never_panics(note in any::<String>(), shaped in note_like()) {
            let s = signer("log", 1);
            let v = [s.verifier()];
            let _ = open(&note, &v);
            let _ = open(&shaped, &v);
            let _ = Checkpoint::parse(&note);
            let _ = Checkpoint::parse(&shaped);
            let _ = NoteVerifier::parse(&note);
        }

        #[test]
        fn mangled_notes_never_panic_or_verify_wrong_text(
            text in "[a-z \n]{0,40}\n", at in any::<usize>(), insert in note_like(), cut in 0usize..8,
        ) {
            let s = signer("log", 1);
            let v = [s.verifier()];
            let note = s.sign(&text).unwrap();
            prop_assert_eq!(&open(&note, &v).unwrap().text, &text);
            let chars: Vec<char> = note.chars().collect();
            let at = at % (chars.len() + 1);
            let end = (at + cut).min(chars.len());
            let mangled: String = chars[..at].iter().chain(insert.chars().collect::<Vec<_>>().iter()).chain(chars[end..].iter()).collect();
            if let Ok(opened) = open(&mangled, &v) {
                // Whatever still verifies must be exactly the signed text.
                prop_assert_eq!(opened.text, text);
            }
        }

        #[test]
        fn checkpoint_round_trip(origin in "[!-~]{1,30}", size in any::<u64>(), root in any::<[u8; 32]>(),
                                 extensions in proptest::collection::vec("[ -~]{1,20}", 0..3)) {
            let cp = Checkpoint { origin, size, root, extensions };
            prop_assert_eq!(Checkpoint::parse(&cp.body()), Ok(cp));
        }
    }
}
