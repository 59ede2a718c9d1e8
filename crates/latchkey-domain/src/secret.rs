//! High-entropy secrets (device codes, session and refresh tokens, client secrets)
//! and the one-way hashes under which they are stored.
//!
//! Secrets here are 256-bit random values, so a single SHA-256 is the right
//! at-rest protection: nothing to brute-force, and lookups stay an index probe.
//! Passwords are different and use argon2id in the server.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a secret is for; its prefix makes leaked secrets recognisable by scanners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// RFC 8628 device_code, held by the device that asked to sign in.
    DeviceCode,
    /// A signed-in user's session (cookie or bearer).
    Session,
    /// An opaque OAuth refresh token.
    RefreshToken,
    /// A confidential app's client secret.
    ClientSecret,
    /// An enrollment key for a machine without a browser.
    EnrollmentKey,
    /// A desktop's secret for one QR sign-in.
    PairingSecret,
    /// An OAuth authorization code (web sign-in), redeemed once by the app.
    AuthorizationCode,
    /// The ID of a WebAuthn ceremony (passkey registration or sign-in), held in a cookie.
    Ceremony,
}

impl SecretKind {
    fn prefix(self) -> &'static str {
        match self {
            SecretKind::DeviceCode => "lkd_",
            SecretKind::Session => "lks_",
            SecretKind::RefreshToken => "lkr_",
            SecretKind::ClientSecret => "lkc_",
            SecretKind::EnrollmentKey => "lke_",
            SecretKind::PairingSecret => "lkq_",
            SecretKind::AuthorizationCode => "lka_",
            SecretKind::Ceremony => "lkw_",
        }
    }
}

/// A freshly generated secret: shown once to its holder, stored only as [`SecretHash`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// 256 bits from `rng`, base64url, with the kind's prefix.
    pub fn generate(kind: SecretKind, rng: &mut impl RngCore) -> Self {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        Self(format!("{}{}", kind.prefix(), URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// The secret's text, to hand to its holder exactly once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The hash to store in place of the secret.
    pub fn hash(&self) -> SecretHash {
        SecretHash::of(&self.0)
    }
}

/// SHA-256 of a secret, hex encoded: what the database holds and what lookups use.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SecretHash(String);

impl SecretHash {
    /// Hashes presented secret text (from a request) for lookup or comparison.
    pub fn of(secret: &str) -> Self {
        Self(hex::encode(Sha256::digest(secret.as_bytes())))
    }

    /// Rebuilds a hash read back from storage.
    pub fn from_stored(hex: String) -> Self {
        Self(hex)
    }

    /// The hex text to store.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Constant-time equality, for comparing a presented secret with a stored one.
    pub fn ct_eq(&self, other: &SecretHash) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    #[test]
    fn generated_secrets_carry_prefix_and_256_bits() {
        let mut rng = SmallRng::seed_from_u64(1);
        let s = Secret::generate(SecretKind::DeviceCode, &mut rng);
        assert!(s.expose().starts_with("lkd_"));
        // 32 bytes base64url without padding is 43 characters.
        assert_eq!(s.expose().len(), 4 + 43);
        let t = Secret::generate(SecretKind::DeviceCode, &mut rng);
        assert_ne!(s, t);
    }

    #[test]
    fn hash_is_stable_and_compares_in_constant_time() {
        let mut rng = SmallRng::seed_from_u64(2);
        let s = Secret::generate(SecretKind::RefreshToken, &mut rng);
        assert!(s.hash().ct_eq(&SecretHash::of(s.expose())));
        assert!(!s.hash().ct_eq(&SecretHash::of("lkr_other")));
        assert_eq!(s.hash().as_str().len(), 64);
        assert!(!format!("{s:?}").contains(s.expose()));
    }
}
