//! Trust between one user's devices: what a device signs, and when trust holds.
//!
//! Device A trusts device B when A has signed, with its own private key, a
//! statement over B's ID and B's public key. The server keeps statements
//! and checks their signatures; it cannot make one. A key can be replaced
//! ([`rotation_statement`]); a statement about the old key still counts for
//! the new one only when the old key signed the new one. Every signed
//! message is a short text whose exact bytes are built here, once, and
//! written down in `docs/trusted-sessions.md`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use std::fmt;
use thiserror::Error;

use crate::time::Timestamp;

/// The version of the trusted-session protocol this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// Why a key, a signature or a statement was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TrustError {
    /// Not a 32-byte Ed25519 public key (or an X25519 one, for session keys).
    #[error("not a valid public key: {0}")]
    BadKey(String),
    /// The signature is not valid for this key and these bytes.
    #[error("the signature does not match the key")]
    BadSignature,
    /// An identifier that cannot appear in a signed statement.
    #[error("{0} is not a valid device ID")]
    BadId(String),
}

/// A device's Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; 32]);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.fingerprint())
    }
}

impl PublicKey {
    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TrustError> {
        let raw: [u8; 32] = bytes.try_into().map_err(|_| TrustError::BadKey(format!("{} bytes", bytes.len())))?;
        Ok(Self(raw))
    }

    /// Reads base64url (no padding) key bytes.
    pub fn from_b64(text: &str) -> Result<Self, TrustError> {
        let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|e| TrustError::BadKey(e.to_string()))?;
        Self::from_bytes(&bytes)
    }

    /// Reads an OKP/Ed25519 JWK (what devices register with).
    pub fn from_jwk(jwk: &serde_json::Value) -> Result<Self, TrustError> {
        if jwk.get("kty").and_then(|v| v.as_str()) != Some("OKP")
            || jwk.get("crv").and_then(|v| v.as_str()) != Some("Ed25519")
        {
            return Err(TrustError::BadKey("not an Ed25519 JWK".into()));
        }
        let x = jwk.get("x").and_then(|v| v.as_str()).ok_or_else(|| TrustError::BadKey("no x".into()))?;
        Self::from_b64(x)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Base64url without padding, as keys appear in statements.
    pub fn to_b64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// What a person compares between two machines before trusting.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.0)
    }

    /// Checks that this key signed `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), TrustError> {
        ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &self.0)
            .verify(message, signature)
            .map_err(|_| TrustError::BadSignature)
    }

    /// Checks a base64url signature.
    pub fn verify_b64(&self, message: &[u8], signature: &str) -> Result<(), TrustError> {
        let sig = URL_SAFE_NO_PAD.decode(signature).map_err(|_| TrustError::BadSignature)?;
        self.verify(message, &sig)
    }
}

/// Bytes of a key's fingerprint: 10 bytes (80 bits) of a SHA-256 over the key,
/// taken as bytes, never through a floating-point number.
const FINGERPRINT_BYTES: usize = 10;

/// A key's fingerprint: 80 bits of `SHA-256("latchkey fingerprint v1\n" || key)`,
/// shown as five groups of four hex digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint([u8; FINGERPRINT_BYTES]);

impl Fingerprint {
    fn of(key: &[u8]) -> Self {
        let mut h = Sha256::new();
        h.update(b"latchkey fingerprint v1\n");
        h.update(key);
        let digest = h.finalize();
        let mut out = [0u8; FINGERPRINT_BYTES];
        out.copy_from_slice(&digest[..FINGERPRINT_BYTES]);
        Self(out)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = hex::encode(self.0);
        let groups: Vec<&str> = (0..hex.len()).step_by(4).filter_map(|i| hex.get(i..i + 4)).collect();
        f.write_str(&groups.join(" "))
    }
}

/// Device IDs go into signed text one per line: refuse anything that could
/// make two different statements read the same.
fn line(what: &str) -> Result<&str, TrustError> {
    if what.is_empty() || what.len() > 128 || what.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(TrustError::BadId(what.chars().take(40).collect()));
    }
    Ok(what)
}

/// The exact bytes device `truster` signs to trust `trustee`'s key.
pub fn trust_statement(
    truster: &str,
    trustee: &str,
    trustee_key: &PublicKey,
    issued_at: Timestamp,
) -> Result<Vec<u8>, TrustError> {
    Ok(format!(
        "latchkey trust v1\ntruster: {}\ntrustee: {}\nkey: {}\nissued: {}\n",
        line(truster)?,
        line(trustee)?,
        trustee_key.to_b64(),
        issued_at.as_millis()
    )
    .into_bytes())
}

/// The exact bytes a device's old key signs to hand its trust to a new key.
pub fn rotation_statement(device: &str, old: &PublicKey, new: &PublicKey) -> Result<Vec<u8>, TrustError> {
    Ok(format!("latchkey rotate v1\ndevice: {}\nold: {}\nnew: {}\n", line(device)?, old.to_b64(), new.to_b64())
        .into_bytes())
}

/// The exact bytes a device signs to publish the X25519 key sessions are sealed to.
pub fn session_key_statement(device: &str, protocol: u32, kem_key: &[u8]) -> Result<Vec<u8>, TrustError> {
    if kem_key.len() != 32 {
        return Err(TrustError::BadKey(format!("session key of {} bytes", kem_key.len())));
    }
    Ok(format!(
        "latchkey session-key v1\ndevice: {}\nprotocol: {}\nkey: {}\n",
        line(device)?,
        protocol,
        URL_SAFE_NO_PAD.encode(kem_key)
    )
    .into_bytes())
}

/// Reads a base64url X25519 session key.
pub fn parse_session_key(text: &str) -> Result<[u8; 32], TrustError> {
    let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|e| TrustError::BadKey(e.to_string()))?;
    bytes.as_slice().try_into().map_err(|_| TrustError::BadKey(format!("session key of {} bytes", bytes.len())))
}

/// One key replacement of a device, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// The key replaced.
    pub old: PublicKey,
    /// The key that replaced it.
    pub new: PublicKey,
    /// Whether the old key signed the new one (only then does trust carry over).
    pub chained: bool,
}

/// Whether a statement about `signed` still speaks for `current`: the same
/// key, or `current` reached from it through signed rotations only.
pub fn carries_over(signed: &PublicKey, current: &PublicKey, rotations: &[Rotation]) -> bool {
    let mut at = *signed;
    // Each key is replaced at most once in a chain; the bound stops a cycle.
    for _ in 0..=rotations.len() {
        if at == *current {
            return true;
        }
        match rotations.iter().find(|r| r.old == at && r.chained) {
            Some(r) => at = r.new,
            None => return false,
        }
    }
    false
}

/// A stored trust statement, reduced to what decides whether it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement<'a> {
    /// The device that signed.
    pub truster: &'a str,
    /// The key the truster signed with.
    pub truster_key: PublicKey,
    /// The device trusted.
    pub trustee: &'a str,
    /// The key of the trustee it names.
    pub trustee_key: PublicKey,
}

/// A device as trust sees it now.
#[derive(Debug, Clone)]
pub struct Party<'a> {
    /// Its ID.
    pub id: &'a str,
    /// Whether it is active (not revoked).
    pub active: bool,
    /// Its current key.
    pub key: PublicKey,
    /// Its key replacements.
    pub rotations: &'a [Rotation],
}

/// Which side of a pair has not trusted the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// The first device (the one asking) does not trust the second.
    Ours,
    /// The second device does not trust the first.
    Theirs,
    /// Neither trusts the other.
    Both,
}

impl Missing {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Missing::Ours => "creator",
            Missing::Theirs => "target",
            Missing::Both => "both",
        }
    }
}

/// Whether `from`'s statement about `to` holds now: signed with a key that
/// leads to `from`'s current key, naming a key that leads to `to`'s.
pub fn holds(statement: &Statement<'_>, from: &Party<'_>, to: &Party<'_>) -> bool {
    statement.truster == from.id
        && statement.trustee == to.id
        && carries_over(&statement.truster_key, &from.key, from.rotations)
        && carries_over(&statement.trustee_key, &to.key, to.rotations)
}

/// Whether `a` and `b` trust each other now, given every statement between
/// them. Revoked devices trust nobody and are trusted by nobody.
pub fn mutual(a: &Party<'_>, b: &Party<'_>, statements: &[Statement<'_>]) -> Result<(), Missing> {
    let live = a.active && b.active;
    let ours = live && statements.iter().any(|s| holds(s, a, b));
    let theirs = live && statements.iter().any(|s| holds(s, b, a));
    match (ours, theirs) {
        (true, true) => Ok(()),
        (false, true) => Err(Missing::Ours),
        (true, false) => Err(Missing::Theirs),
        (false, false) => Err(Missing::Both),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use ring::signature::{Ed25519KeyPair, KeyPair};

    fn pair(seed: u8) -> (Ed25519KeyPair, PublicKey) {
        let kp = Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).unwrap();
        let pk = PublicKey::from_bytes(kp.public_key().as_ref()).unwrap();
        (kp, pk)
    }

    #[test]
    fn a_statement_verifies_only_with_its_signer_and_its_bytes() {
        let (a, a_pk) = pair(1);
        let (_, b_pk) = pair(2);
        let msg = trust_statement("dev-a", "dev-b", &b_pk, Timestamp::from_millis(5)).unwrap();
        let sig = a.sign(&msg);
        assert_eq!(a_pk.verify(&msg, sig.as_ref()), Ok(()));
        assert_eq!(b_pk.verify(&msg, sig.as_ref()), Err(TrustError::BadSignature));
        let other = trust_statement("dev-a", "dev-c", &b_pk, Timestamp::from_millis(5)).unwrap();
        assert_eq!(a_pk.verify(&other, sig.as_ref()), Err(TrustError::BadSignature));
    }

    #[test]
    fn the_signed_bytes_are_exactly_the_documented_text() {
        let key = PublicKey::from_bytes(&[0u8; 32]).unwrap();
        let msg = trust_statement("A", "B", &key, Timestamp::from_millis(1700000000000)).unwrap();
        assert_eq!(
            String::from_utf8(msg).unwrap(),
            "latchkey trust v1\ntruster: A\ntrustee: B\nkey: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\nissued: 1700000000000\n"
        );
    }

    #[test]
    fn ids_that_could_forge_another_line_are_refused() {
        let key = PublicKey::from_bytes(&[0u8; 32]).unwrap();
        for bad in ["", "a\nkey: x", "a b", "a\tb"] {
            assert!(matches!(trust_statement(bad, "b", &key, Timestamp::from_millis(0)), Err(TrustError::BadId(_))));
        }
    }

    #[test]
    fn fingerprints_carry_80_bits_in_five_groups() {
        let (_, pk) = pair(3);
        let shown = pk.fingerprint().to_string();
        let groups: Vec<&str> = shown.split(' ').collect();
        assert_eq!(groups.len(), 5);
        assert!(groups.iter().all(|g| g.len() == 4 && g.chars().all(|c| c.is_ascii_hexdigit())));
        // 20 hex digits = 80 bits, more than the 64 required.
        assert_eq!(shown.replace(' ', "").len() * 4, 80);
        let (_, other) = pair(4);
        assert_ne!(other.fingerprint(), pk.fingerprint());
    }

    #[test]
    fn trust_carries_over_only_through_signed_rotations() {
        let (_, k1) = pair(1);
        let (_, k2) = pair(2);
        let (_, k3) = pair(3);
        let signed = [Rotation { old: k1, new: k2, chained: true }, Rotation { old: k2, new: k3, chained: true }];
        assert!(carries_over(&k1, &k3, &signed));
        let broken = [Rotation { old: k1, new: k2, chained: true }, Rotation { old: k2, new: k3, chained: false }];
        assert!(!carries_over(&k1, &k3, &broken));
        assert!(carries_over(&k1, &k2, &broken));
        assert!(!carries_over(&k3, &k1, &signed), "chains run forward only");
        let cycle = [Rotation { old: k1, new: k2, chained: true }, Rotation { old: k2, new: k1, chained: true }];
        assert!(!carries_over(&k1, &k3, &cycle));
    }

    #[test]
    fn mutual_trust_needs_both_statements_and_both_devices_active() {
        let (_, ka) = pair(1);
        let (_, kb) = pair(2);
        let a = Party { id: "a", active: true, key: ka, rotations: &[] };
        let b = Party { id: "b", active: true, key: kb, rotations: &[] };
        let ab = Statement { truster: "a", truster_key: ka, trustee: "b", trustee_key: kb };
        let ba = Statement { truster: "b", truster_key: kb, trustee: "a", trustee_key: ka };
        assert_eq!(mutual(&a, &b, &[ab.clone(), ba.clone()]), Ok(()));
        assert_eq!(mutual(&a, &b, std::slice::from_ref(&ab)), Err(Missing::Theirs));
        assert_eq!(mutual(&a, &b, std::slice::from_ref(&ba)), Err(Missing::Ours));
        assert_eq!(mutual(&a, &b, &[]), Err(Missing::Both));
        let revoked = Party { active: false, ..b.clone() };
        assert_eq!(mutual(&a, &revoked, &[ab.clone(), ba.clone()]), Err(Missing::Both));
        // A statement over a key the trustee no longer holds (no chain) does not count.
        let (_, kb2) = pair(5);
        let rotated = [Rotation { old: kb, new: kb2, chained: false }];
        let b2 = Party { id: "b", active: true, key: kb2, rotations: &rotated };
        assert_eq!(mutual(&a, &b2, &[ab.clone(), ba.clone()]), Err(Missing::Both));
        let chained = [Rotation { old: kb, new: kb2, chained: true }];
        let b3 = Party { id: "b", active: true, key: kb2, rotations: &chained };
        assert_eq!(mutual(&a, &b3, &[ab, ba]), Ok(()));
    }

    #[test]
    fn session_key_statements_need_a_32_byte_key() {
        assert!(session_key_statement("a", 1, &[0u8; 31]).is_err());
        let text = String::from_utf8(session_key_statement("a", 1, &[0u8; 32]).unwrap()).unwrap();
        assert!(text.starts_with("latchkey session-key v1\ndevice: a\nprotocol: 1\n"));
    }
}
