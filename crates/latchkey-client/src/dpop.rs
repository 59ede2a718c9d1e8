//! A device's own key pair and the DPoP proofs (RFC 9449) it signs.
//!
//! The private key is made on the machine and never leaves it; the server
//! only ever sees the public half, inside proofs, and binds the device's
//! tokens to it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hpke::kem::X25519HkdfSha256;
use hpke::{Kem, Serializable};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// What the session key derivation hashes before the device key's PKCS#8 document.
const SESSION_KEY_DERIVATION: &[u8] = b"latchkey session key derivation v1\n";

/// The device's X25519 key pair that trusted-session keys are sealed to (derived, never stored).
#[derive(Clone)]
pub struct SessionKeyPair {
    /// The private half, for opening invitations.
    pub private: <X25519HkdfSha256 as Kem>::PrivateKey,
    /// The public half, as published (32 bytes).
    pub public: [u8; 32],
}

impl std::fmt::Debug for SessionKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionKeyPair({})", URL_SAFE_NO_PAD.encode(self.public))
    }
}

/// Why a key could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The stored key is not a valid Ed25519 PKCS#8 document.
    #[error("the device key is damaged: {0}")]
    Invalid(String),
    /// Signing failed.
    #[error("could not sign a DPoP proof: {0}")]
    Sign(String),
}

/// An Ed25519 device key.
pub struct DeviceKey {
    pkcs8: Vec<u8>,
    public: Vec<u8>,
    pair: Ed25519KeyPair,
    public_key: latchkey_domain::trust::PublicKey,
}

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DeviceKey({})", self.thumbprint())
    }
}

#[derive(Serialize)]
struct ProofClaims<'a> {
    jti: String,
    htm: &'a str,
    htu: &'a str,
    iat: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    ath: Option<String>,
}

impl DeviceKey {
    /// A fresh key.
    pub fn generate() -> Result<Self, KeyError> {
        let rng = ring::rand::SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|e| KeyError::Invalid(e.to_string()))?;
        Self::from_pkcs8(doc.as_ref())
    }

    /// Loads a key from its PKCS#8 document.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, KeyError> {
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|e| KeyError::Invalid(e.to_string()))?;
        let public = pair.public_key().as_ref().to_vec();
        let public_key =
            latchkey_domain::trust::PublicKey::from_bytes(&public).map_err(|e| KeyError::Invalid(e.to_string()))?;
        Ok(Self { pkcs8: pkcs8.to_vec(), public, pair, public_key })
    }

    /// The PKCS#8 document, for storing (0600) on this machine only.
    pub fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The public key as a JWK.
    pub fn public_jwk(&self) -> serde_json::Value {
        serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(&self.public)})
    }

    /// RFC 7638 thumbprint: what the server binds tokens to (`cnf.jkt`).
    pub fn thumbprint(&self) -> String {
        let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, URL_SAFE_NO_PAD.encode(&self.public));
        URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
    }

    /// The Ed25519 public key, as trust statements name it.
    pub fn public_key(&self) -> latchkey_domain::trust::PublicKey {
        self.public_key
    }

    /// An Ed25519 signature over `message` (raw bytes, no hashing or framing).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair.sign(message).as_ref().to_vec()
    }

    /// [`DeviceKey::sign`], base64url without padding, as signatures travel.
    pub fn sign_b64(&self, message: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(self.sign(message))
    }

    /// The X25519 session key pair, derived from this key: `SHA-256("latchkey session key
    /// derivation v1\n" || pkcs8)` is the HPKE `derive_keypair` input, so nothing new is stored.
    pub fn session_key_pair(&self) -> SessionKeyPair {
        let mut h = Sha256::new();
        h.update(SESSION_KEY_DERIVATION);
        h.update(&self.pkcs8);
        let ikm = h.finalize();
        let (private, public) = X25519HkdfSha256::derive_keypair(&ikm);
        let mut raw = [0u8; 32];
        raw.copy_from_slice(public.to_bytes().as_slice());
        SessionKeyPair { private, public: raw }
    }

    /// A proof for one request: `method` on `url`, naming `access_token` when one goes along.
    pub fn proof(&self, method: &str, url: &str, access_token: Option<&str>) -> Result<String, KeyError> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(serde_json::from_value(self.public_jwk()).map_err(|e| KeyError::Sign(e.to_string()))?);
        let iat =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        let htu = url.split(['?', '#']).next().unwrap_or(url);
        let claims = ProofClaims {
            jti: uuid::Uuid::new_v4().to_string(),
            htm: method,
            htu,
            iat,
            ath: access_token.map(|t| URL_SAFE_NO_PAD.encode(Sha256::digest(t.as_bytes()))),
        };
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(&self.pkcs8))
            .map_err(|e| KeyError::Sign(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_signs() -> Result<(), KeyError> {
        let k = DeviceKey::generate()?;
        let again = DeviceKey::from_pkcs8(k.pkcs8())?;
        assert_eq!(k.thumbprint(), again.thumbprint());
        let proof = k.proof("POST", "http://h/oauth/token?x=1", Some("tok"))?;
        let header = jsonwebtoken::decode_header(&proof).map_err(|e| KeyError::Sign(e.to_string()))?;
        assert_eq!(header.typ.as_deref(), Some("dpop+jwt"));
        assert!(header.jwk.is_some());
        assert!(DeviceKey::from_pkcs8(b"not a key").is_err());
        Ok(())
    }

    #[test]
    fn signs_raw_bytes_and_derives_a_stable_session_key() -> Result<(), KeyError> {
        let k = DeviceKey::generate()?;
        let pk = k.public_key();
        let sig = k.sign(b"hello");
        assert!(pk.verify(b"hello", &sig).is_ok());
        assert!(pk.verify(b"hellO", &sig).is_err());
        assert!(pk.verify_b64(b"hello", &k.sign_b64(b"hello")).is_ok());
        let again = DeviceKey::from_pkcs8(k.pkcs8())?;
        assert_eq!(k.session_key_pair().public, again.session_key_pair().public, "derived, so the same every time");
        let other = DeviceKey::generate()?;
        assert_ne!(k.session_key_pair().public, other.session_key_pair().public);
        Ok(())
    }
}
