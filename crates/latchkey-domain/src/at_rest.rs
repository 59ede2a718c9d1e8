//! Keys at rest: the server secret key, kept outside the database, and the
//! sealed envelopes in which the database holds private key material.
//!
//! The secret key is 32 random bytes, written as `lksk_` and 64 hex digits.
//! HKDF-SHA256 derives three things from it, each under its own label: a key
//! ID (8 bytes, hex) that names the secret without revealing it, the key that
//! seals private keys (XChaCha20-Poly1305), and the HMAC-SHA256 key under which
//! user codes are stored.
//!
//! An envelope is `b"LKK" | 0x01 | key ID (8 bytes) | nonce (24 bytes) | ciphertext`,
//! the ciphertext carrying its 16-byte tag. Its associated data names the row it
//! belongs to (`signing_key:<kid>`, `audit_key:<id>`), so a ciphertext copied
//! into another row does not open.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::{CryptoRng, RngCore};
use sha2::Sha256;
use thiserror::Error;
use zeroize::{Zeroize, Zeroizing};

/// The prefix of a secret key's text form.
pub const KEY_PREFIX: &str = "lksk_";
/// The first bytes of every envelope.
pub const MAGIC: &[u8; 3] = b"LKK";
/// The envelope format this build writes and reads.
pub const VERSION: u8 = 0x01;
/// Bytes of a key ID.
const KEY_ID_LEN: usize = 8;
/// Bytes of an XChaCha20 nonce.
const NONCE_LEN: usize = 24;
/// Bytes of a Poly1305 tag.
const TAG_LEN: usize = 16;
/// Bytes before the ciphertext.
const HEADER_LEN: usize = MAGIC.len() + 1 + KEY_ID_LEN + NONCE_LEN;

/// Why a secret key or an envelope was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AtRestError {
    /// The envelope was sealed under another secret key.
    #[error("sealed under secret key {expected}, but the secret key given is {given}")]
    WrongKey {
        /// The key ID the envelope names.
        expected: String,
        /// The key ID of the secret key given.
        given: String,
    },
    /// The envelope is not one this build wrote, or was changed, or belongs to another row.
    #[error("a sealed key is corrupt or was tampered with ({0})")]
    Tampered(&'static str),
    /// The text is not a secret key.
    #[error("not a Latchkey secret key ({0}); expected {KEY_PREFIX} followed by 64 hex digits")]
    MalformedKey(&'static str),
}

/// The server secret key, with what is derived from it. Never printed by `Debug`.
pub struct SecretKey {
    raw: Zeroizing<[u8; 32]>,
    id: [u8; KEY_ID_LEN],
    seal: Zeroizing<[u8; 32]>,
    user_codes: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({})", self.id())
    }
}

impl Clone for SecretKey {
    fn clone(&self) -> Self {
        Self::from_bytes(*self.raw)
    }
}

impl PartialEq for SecretKey {
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        self.raw.ct_eq(&*other.raw).into()
    }
}

impl Eq for SecretKey {}

/// HKDF-SHA256 output of 32 bytes under `label`.
fn derive(hk: &Hkdf<Sha256>, label: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut out = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's limit of 8160, so expand cannot fail.
    let _ = hk.expand(label, &mut out[..]);
    out
}

impl SecretKey {
    /// A new random secret key.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut raw = [0u8; 32];
        rng.fill_bytes(&mut raw);
        let key = Self::from_bytes(raw);
        raw.zeroize();
        key
    }

    /// The key made from these 32 bytes.
    pub fn from_bytes(raw: [u8; 32]) -> Self {
        let hk = Hkdf::<Sha256>::new(Some(b"latchkey secret key"), &raw);
        let id_full = derive(&hk, b"latchkey key id v1");
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&id_full[..KEY_ID_LEN]);
        Self {
            raw: Zeroizing::new(raw),
            id,
            seal: derive(&hk, b"latchkey seal keys v1"),
            user_codes: derive(&hk, b"latchkey user codes v1"),
        }
    }

    /// Reads the text form (`lksk_` and 64 hex digits); surrounding whitespace is ignored.
    pub fn parse(text: &str) -> Result<Self, AtRestError> {
        let text = text.trim();
        let hex_part =
            text.strip_prefix(KEY_PREFIX).ok_or(AtRestError::MalformedKey("it does not start with lksk_"))?;
        if hex_part.len() != 64 {
            return Err(AtRestError::MalformedKey("wrong length"));
        }
        let mut raw = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(hex_part, &mut raw[..]).map_err(|_| AtRestError::MalformedKey("not hex"))?;
        Ok(Self::from_bytes(*raw))
    }

    /// The text form, to write to a key file or an environment variable.
    pub fn to_text(&self) -> Zeroizing<String> {
        Zeroizing::new(format!("{KEY_PREFIX}{}", hex::encode(*self.raw)))
    }

    /// The key ID: names this secret in envelopes, messages and the audit log without revealing it.
    pub fn id(&self) -> String {
        hex::encode(self.id)
    }

    /// Seals `plaintext` for the row named by `aad` (see [`signing_key_aad`], [`audit_key_aad`]).
    pub fn seal(&self, aad: &str, plaintext: &[u8], rng: &mut (impl RngCore + CryptoRng)) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let cipher = XChaCha20Poly1305::new(self.seal.as_ref().into());
        let header = self.header(&nonce);
        // Encryption fails only for plaintexts beyond 256 GiB, which a key never is.
        let sealed = cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext, aad: &associated(&header, aad) })
            .unwrap_or_default();
        let mut out = Vec::with_capacity(HEADER_LEN + sealed.len());
        out.extend_from_slice(&header);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens an envelope sealed for the row named by `aad`.
    pub fn open(&self, aad: &str, envelope: &[u8]) -> Result<Zeroizing<Vec<u8>>, AtRestError> {
        let given = envelope_key_id(envelope)?;
        if given != self.id() {
            return Err(AtRestError::WrongKey { expected: given, given: self.id() });
        }
        let (header, ciphertext) = envelope.split_at(HEADER_LEN);
        let nonce = &header[MAGIC.len() + 1 + KEY_ID_LEN..];
        let cipher = XChaCha20Poly1305::new(self.seal.as_ref().into());
        cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: &associated(header, aad) })
            .map(Zeroizing::new)
            .map_err(|_| AtRestError::Tampered("it does not open: changed, or moved from another row"))
    }

    /// HMAC-SHA256 of a user code's canonical form, hex: what the database keeps instead of the code.
    pub fn user_code_hash(&self, canonical: &str) -> String {
        // HMAC takes keys of any length, so new_from_slice cannot fail.
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&self.user_codes[..]) else { return String::new() };
        mac.update(b"user code\0");
        mac.update(canonical.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    fn header(&self, nonce: &[u8; NONCE_LEN]) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[..3].copy_from_slice(MAGIC);
        h[3] = VERSION;
        h[4..4 + KEY_ID_LEN].copy_from_slice(&self.id);
        h[4 + KEY_ID_LEN..].copy_from_slice(nonce);
        h
    }
}

/// The associated data: the whole header (so its key ID and version are bound too) and the row.
fn associated(header: &[u8], aad: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(header.len() + aad.len());
    out.extend_from_slice(header);
    out.extend_from_slice(aad.as_bytes());
    out
}

/// The key ID an envelope names, after checking its format.
pub fn envelope_key_id(envelope: &[u8]) -> Result<String, AtRestError> {
    if envelope.len() < HEADER_LEN + TAG_LEN || &envelope[..3] != MAGIC {
        return Err(AtRestError::Tampered("not a sealed key"));
    }
    if envelope[3] != VERSION {
        return Err(AtRestError::Tampered("an envelope version this build does not know"));
    }
    Ok(hex::encode(&envelope[4..4 + KEY_ID_LEN]))
}

/// Opens with `old` and seals again with `new`, for the same row: rotating the secret key.
pub fn reseal(
    old: &SecretKey,
    new: &SecretKey,
    aad: &str,
    envelope: &[u8],
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<Vec<u8>, AtRestError> {
    let plain = old.open(aad, envelope)?;
    Ok(new.seal(aad, &plain, rng))
}

/// The associated data of a token-signing key's row.
pub fn signing_key_aad(kid: &str) -> String {
    format!("signing_key:{kid}")
}

/// The associated data of an audit checkpoint key's row.
pub fn audit_key_aad(key_id: u32) -> String {
    format!("audit_key:{key_id:08x}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    fn key(n: u8) -> SecretKey {
        SecretKey::from_bytes([n; 32])
    }

    #[test]
    fn round_trip() {
        let k = key(1);
        let sealed = k.seal(&signing_key_aad("kid-1"), b"private pkcs8", &mut OsRng);
        assert_eq!(&sealed[..4], b"LKK\x01");
        assert!(!sealed.windows(13).any(|w| w == b"private pkcs8"), "the plaintext is not in the envelope");
        assert_eq!(&**k.open(&signing_key_aad("kid-1"), &sealed).unwrap(), b"private pkcs8");
        let again = k.seal(&signing_key_aad("kid-1"), b"private pkcs8", &mut OsRng);
        assert_ne!(sealed, again, "a fresh nonce each time");
    }

    #[test]
    fn wrong_key_names_both_key_ids() {
        let (a, b) = (key(1), key(2));
        let sealed = a.seal(&audit_key_aad(7), &[9; 32], &mut OsRng);
        let e = b.open(&audit_key_aad(7), &sealed).unwrap_err();
        assert_eq!(e, AtRestError::WrongKey { expected: a.id(), given: b.id() });
        let text = e.to_string();
        assert!(text.contains(&a.id()) && text.contains(&b.id()), "{text}");
    }

    #[test]
    fn every_tampered_byte_is_refused() {
        let k = key(3);
        let aad = signing_key_aad("kid");
        let sealed = k.seal(&aad, b"secret material", &mut OsRng);
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(k.open(&aad, &bad).is_err(), "byte {i} changed and it still opened");
        }
        assert!(matches!(k.open(&aad, &sealed[..sealed.len() - 1]), Err(AtRestError::Tampered(_))));
        assert!(matches!(k.open(&aad, b"LKK"), Err(AtRestError::Tampered(_))));
        assert!(matches!(k.open(&aad, &[0x30; 80]), Err(AtRestError::Tampered(_))));
    }

    #[test]
    fn an_envelope_is_bound_to_its_row() {
        let k = key(4);
        let sealed = k.seal(&signing_key_aad("kid-a"), b"key a", &mut OsRng);
        assert!(matches!(k.open(&signing_key_aad("kid-b"), &sealed), Err(AtRestError::Tampered(_))));
        let audit = k.seal(&audit_key_aad(1), &[1; 32], &mut OsRng);
        assert!(k.open(&audit_key_aad(2), &audit).is_err());
        assert!(k.open(&signing_key_aad("00000001"), &audit).is_err());
    }

    #[test]
    fn reseal_moves_an_envelope_to_the_new_key() {
        let (old, new) = (key(5), key(6));
        let aad = audit_key_aad(42);
        let sealed = old.seal(&aad, &[7; 32], &mut OsRng);
        let moved = reseal(&old, &new, &aad, &sealed, &mut OsRng).unwrap();
        assert_eq!(envelope_key_id(&moved).unwrap(), new.id());
        assert_eq!(&**new.open(&aad, &moved).unwrap(), &[7; 32]);
        assert!(matches!(old.open(&aad, &moved), Err(AtRestError::WrongKey { .. })));
        // Resealing with the wrong old key changes nothing.
        assert!(matches!(reseal(&new, &old, &aad, &sealed, &mut OsRng), Err(AtRestError::WrongKey { .. })));
    }

    #[test]
    fn key_text_parses_back_and_bad_text_is_refused() {
        let k = SecretKey::generate(&mut OsRng);
        let text = k.to_text();
        assert!(text.starts_with("lksk_") && text.len() == 5 + 64);
        let back = SecretKey::parse(&format!("  {}\n", *text)).unwrap();
        assert_eq!(back, k);
        assert_eq!(back.id(), k.id());
        assert_eq!(k.id().len(), 16);
        for bad in ["", "lksk_", "lksk_00", &text[5..], &format!("lksk_{}", "g".repeat(64)), &format!("{}0", *text)] {
            assert!(matches!(SecretKey::parse(bad), Err(AtRestError::MalformedKey(_))), "{bad:?}");
        }
        assert!(!format!("{k:?}").contains(&text[5..]), "Debug does not show the key");
    }

    #[test]
    fn derived_values_are_distinct_and_stable() {
        let k = key(8);
        // Known answers: the derivation is a format; changing it loses every stored key.
        assert_eq!(k.id(), SecretKey::from_bytes([8; 32]).id());
        assert_ne!(k.id(), key(9).id());
        assert_ne!(&*k.seal, &*k.user_codes);
        assert_ne!(k.user_code_hash("BCDFGHJK"), key(9).user_code_hash("BCDFGHJK"));
        assert_ne!(k.user_code_hash("BCDFGHJK"), k.user_code_hash("BCDFGHJL"));
        assert_eq!(k.user_code_hash("BCDFGHJK").len(), 64);
    }
}
