//! The cryptography of trusted sessions, all of it on the devices: session
//! keys sealed to one member with HPKE (RFC 9180), invitations signed with the
//! device key, and messages encrypted with ChaCha20-Poly1305.
//!
//! The bytes that are signed or bound as associated data come from
//! `latchkey_domain::trusted_session`; nothing here rebuilds them.

use crate::dpop::{DeviceKey, SessionKeyPair};
use crate::trusted::TrustedError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem, OpModeR, OpModeS, Serializable};
use latchkey_domain::trusted_session::{
    invitation_bytes, message_aad, seal_aad, Descriptor, Invitation, SignedInvitation, HPKE_INFO, INVITATION_SECS,
    MAX_MESSAGE_BYTES,
};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

/// Bytes of a session key.
pub const SESSION_KEY_BYTES: usize = 32;

/// Bytes of an invitation nonce (before base64url).
const INVITATION_NONCE_BYTES: usize = 16;

/// A session's symmetric key for one key generation.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKey([u8; SESSION_KEY_BYTES]);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(…)")
    }
}

impl SessionKey {
    /// A fresh random key (ring's system random source).
    pub fn generate() -> Result<Self, TrustedError> {
        let mut raw = [0u8; SESSION_KEY_BYTES];
        SystemRandom::new().fill(&mut raw).map_err(|_| TrustedError::Crypto("no randomness".into()))?;
        Ok(Self(raw))
    }

    /// Wraps raw key bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TrustedError> {
        let raw: [u8; SESSION_KEY_BYTES] =
            bytes.try_into().map_err(|_| TrustedError::Crypto(format!("a session key of {} bytes", bytes.len())))?;
        Ok(Self(raw))
    }

    /// Reads base64url key bytes (as kept in the local state).
    pub fn from_b64(text: &str) -> Result<Self, TrustedError> {
        Self::from_bytes(&URL_SAFE_NO_PAD.decode(text).map_err(|e| TrustedError::Crypto(e.to_string()))?)
    }

    /// base64url, for the local state file.
    pub fn to_b64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    fn aead(&self) -> Result<LessSafeKey, TrustedError> {
        let unbound =
            UnboundKey::new(&CHACHA20_POLY1305, &self.0).map_err(|_| TrustedError::Crypto("bad session key".into()))?;
        Ok(LessSafeKey::new(unbound))
    }
}

fn random_bytes<const N: usize>() -> Result<[u8; N], TrustedError> {
    let mut out = [0u8; N];
    SystemRandom::new().fill(&mut out).map_err(|_| TrustedError::Crypto("no randomness".into()))?;
    Ok(out)
}

fn b64_decode(what: &str, text: &str) -> Result<Vec<u8>, TrustedError> {
    URL_SAFE_NO_PAD.decode(text).map_err(|e| TrustedError::Crypto(format!("{what} is not base64url: {e}")))
}

/// Seals `key` to one member's X25519 public key: returns `(enc, sealed_key)`, both base64url.
pub fn seal_session_key(
    key: &SessionKey,
    recipient_session_key: &[u8; 32],
    descriptor: &Descriptor,
    recipient: &str,
    nonce: &str,
) -> Result<(String, String), TrustedError> {
    let pk = <X25519HkdfSha256 as Kem>::PublicKey::from_bytes(recipient_session_key)
        .map_err(|e| TrustedError::Crypto(format!("the recipient's session key: {e}")))?;
    let aad = seal_aad(descriptor, recipient, nonce)?;
    let (enc, sealed) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, X25519HkdfSha256, _>(
        &OpModeS::Base,
        &pk,
        HPKE_INFO,
        &key.0,
        &aad,
        &mut rand::rngs::OsRng,
    )
    .map_err(|e| TrustedError::Crypto(format!("cannot seal the session key: {e}")))?;
    Ok((URL_SAFE_NO_PAD.encode(enc.to_bytes()), URL_SAFE_NO_PAD.encode(sealed)))
}

/// Opens the session key of an invitation addressed to the holder of `pair`.
pub fn open_session_key(invitation: &Invitation, pair: &SessionKeyPair) -> Result<SessionKey, TrustedError> {
    let enc = <X25519HkdfSha256 as Kem>::EncappedKey::from_bytes(&b64_decode("enc", &invitation.enc)?)
        .map_err(|e| TrustedError::Crypto(format!("the invitation's enc: {e}")))?;
    let sealed = b64_decode("sealed_key", &invitation.sealed_key)?;
    let aad = seal_aad(&invitation.descriptor, &invitation.recipient, &invitation.nonce)?;
    let key = hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, X25519HkdfSha256>(
        &OpModeR::Base,
        &pair.private,
        &enc,
        HPKE_INFO,
        &sealed,
        &aad,
    )
    .map_err(|_| TrustedError::Crypto("the invitation's session key does not open with this device's key".into()))?;
    SessionKey::from_bytes(&key)
}

/// One member's signed invitation: `key` sealed to `recipient_session_key`,
/// valid for [`INVITATION_SECS`] from `now_ms`, signed by `sender_key`.
pub fn invite(
    sender_key: &DeviceKey,
    sender: &str,
    descriptor: &Descriptor,
    key: &SessionKey,
    recipient: &str,
    recipient_session_key: &[u8; 32],
    now_ms: i64,
) -> Result<SignedInvitation, TrustedError> {
    let nonce = URL_SAFE_NO_PAD.encode(random_bytes::<INVITATION_NONCE_BYTES>()?);
    let (enc, sealed_key) = seal_session_key(key, recipient_session_key, descriptor, recipient, &nonce)?;
    let invitation = Invitation {
        descriptor: descriptor.clone(),
        sender: sender.to_string(),
        recipient: recipient.to_string(),
        nonce,
        issued_at: now_ms,
        expires_at: now_ms + INVITATION_SECS * 1000,
        enc,
        sealed_key,
    };
    let signature = sender_key.sign_b64(&invitation_bytes(&invitation)?);
    Ok(SignedInvitation { invitation, signature })
}

/// Encrypts one message: base64url(12-byte random nonce || ciphertext and tag),
/// bound to its session, key generation, sender and place in the sender's order.
pub fn encrypt_message(
    key: &SessionKey,
    session_id: &str,
    epoch: u32,
    sender: &str,
    seq: i64,
    plaintext: &[u8],
) -> Result<String, TrustedError> {
    let nonce = random_bytes::<NONCE_LEN>()?;
    let mut in_out = plaintext.to_vec();
    key.aead()?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(message_aad(session_id, epoch, sender, seq)),
            &mut in_out,
        )
        .map_err(|_| TrustedError::Crypto("cannot encrypt the message".into()))?;
    let mut raw = nonce.to_vec();
    raw.extend_from_slice(&in_out);
    // The relay's limit is on the ciphertext's bytes (nonce and tag included), as the server counts them.
    if raw.len() > MAX_MESSAGE_BYTES {
        return Err(TrustedError::TooLarge(raw.len()));
    }
    Ok(URL_SAFE_NO_PAD.encode(raw))
}

/// Decrypts one relayed message; fails if any of its bound facts differ from what it was sealed with.
pub fn decrypt_message(
    key: &SessionKey,
    session_id: &str,
    epoch: u32,
    sender: &str,
    seq: i64,
    body: &str,
) -> Result<Vec<u8>, TrustedError> {
    let raw = b64_decode("the message body", body)?;
    if raw.len() < NONCE_LEN {
        return Err(TrustedError::Crypto("the message is too short".into()));
    }
    let (nonce, sealed) = raw.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| TrustedError::Crypto("bad nonce".into()))?;
    let mut in_out = sealed.to_vec();
    let plain =
        key.aead()?
            .open_in_place(nonce, Aad::from(message_aad(session_id, epoch, sender, seq)), &mut in_out)
            .map_err(|_| TrustedError::Crypto(format!("a message from {sender} in {session_id} does not decrypt")))?;
    Ok(plain.to_vec())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use latchkey_domain::time::Timestamp;
    use latchkey_domain::trust::PROTOCOL_VERSION;
    use latchkey_domain::trusted_session::{check_invitation, InvitationError};

    fn descriptor() -> Descriptor {
        Descriptor {
            session_id: "s1".into(),
            creator: "a".into(),
            members: vec!["a".into(), "b".into()],
            epoch: 1,
            protocol: PROTOCOL_VERSION,
            expires_at: i64::MAX / 2,
        }
    }

    #[test]
    fn a_sealed_key_opens_only_for_its_recipient_and_its_invitation() {
        let alice = DeviceKey::generate().unwrap();
        let bob = DeviceKey::generate().unwrap();
        let carol = DeviceKey::generate().unwrap();
        let key = SessionKey::generate().unwrap();
        let now = 1_000_000;
        let signed = invite(&alice, "a", &descriptor(), &key, "b", &bob.session_key_pair().public, now).unwrap();
        let inv = &signed.invitation;
        assert_eq!(inv.expires_at - inv.issued_at, INVITATION_SECS * 1000);
        assert_eq!(URL_SAFE_NO_PAD.decode(&inv.nonce).unwrap().len(), 16);
        // The domain's own check accepts what we sign.
        let a_pk = alice.public_key();
        assert_eq!(check_invitation(&signed, &a_pk, "b", Timestamp::from_millis(now + 1)), Ok(()));
        assert_eq!(
            check_invitation(&signed, &bob.public_key(), "b", Timestamp::from_millis(now + 1)),
            Err(InvitationError::Signature)
        );
        assert_eq!(open_session_key(inv, &bob.session_key_pair()).unwrap(), key);
        assert!(open_session_key(inv, &carol.session_key_pair()).is_err(), "another device cannot open it");
        // Moving the sealed key into another invitation (other nonce or descriptor) breaks it.
        let mut moved = inv.clone();
        moved.nonce = "other".into();
        assert!(open_session_key(&moved, &bob.session_key_pair()).is_err());
        let mut moved = inv.clone();
        moved.descriptor.epoch = 2;
        assert!(open_session_key(&moved, &bob.session_key_pair()).is_err());
    }

    #[test]
    fn messages_round_trip_and_bind_their_facts() {
        let key = SessionKey::generate().unwrap();
        let body = encrypt_message(&key, "s1", 1, "a", 7, b"hello").unwrap();
        assert_eq!(decrypt_message(&key, "s1", 1, "a", 7, &body).unwrap(), b"hello");
        assert!(decrypt_message(&key, "s1", 1, "a", 8, &body).is_err(), "seq is bound");
        assert!(decrypt_message(&key, "s1", 2, "a", 7, &body).is_err(), "epoch is bound");
        assert!(decrypt_message(&key, "s1", 1, "b", 7, &body).is_err(), "sender is bound");
        assert!(decrypt_message(&key, "s2", 1, "a", 7, &body).is_err(), "session is bound");
        let other = SessionKey::generate().unwrap();
        assert!(decrypt_message(&other, "s1", 1, "a", 7, &body).is_err());
        let raw = URL_SAFE_NO_PAD.decode(&body).unwrap();
        assert_eq!(raw.len(), NONCE_LEN + 5 + 16, "nonce, ciphertext, tag");
        assert!(decrypt_message(&key, "s1", 1, "a", 7, "AAAA").is_err());
        assert_eq!(SessionKey::from_b64(&key.to_b64()).unwrap(), key);
    }

    #[test]
    fn messages_over_the_relay_limit_are_refused_here() {
        let key = SessionKey::generate().unwrap();
        let big = vec![0u8; MAX_MESSAGE_BYTES];
        assert!(matches!(encrypt_message(&key, "s", 1, "a", 1, &big), Err(TrustedError::TooLarge(_))));
    }
}
