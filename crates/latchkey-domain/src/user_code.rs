//! RFC 8628 user codes: what a person reads off one screen and types into another.
//!
//! Eight characters from the RFC's 20 consonants (§6.1): no vowels, so no
//! words; no digits, so nothing to confuse with letters. 20^8 ≈ 2^34.5
//! codes, which with the server's rate limit on wrong guesses keeps the
//! chance of hitting a live code far below 2^-32 (§5.1).

use rand::Rng;
use std::fmt;
use thiserror::Error;

/// The 20 consonants of RFC 8628 §6.1.
pub const ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
/// Characters in a user code, not counting the dash shown in the middle.
pub const LEN: usize = 8;

/// A well-formed user code, held in canonical form (`ABCDEFGH`, shown as `ABCD-EFGH`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct UserCode([u8; LEN]);

/// Why typed text is not a user code.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum UserCodeError {
    /// Wrong number of code characters after dashes and spaces are removed.
    #[error("a code has {LEN} letters, this has {0}")]
    Length(usize),
    /// A character outside the alphabet (vowels and digits are never used).
    #[error("'{0}' never appears in a code")]
    Character(char),
}

impl UserCode {
    /// A uniformly random code.
    pub fn generate(rng: &mut impl rand::RngCore) -> Self {
        let mut code = [0u8; LEN];
        for c in &mut code {
            *c = ALPHABET[rng.gen_range(0..ALPHABET.len())];
        }
        Self(code)
    }

    /// Accepts what a person types: any case, with or without the dash or spaces.
    pub fn parse(input: &str) -> Result<Self, UserCodeError> {
        let mut code = [0u8; LEN];
        let mut n = 0usize;
        for ch in input.chars() {
            if ch == '-' || ch.is_whitespace() {
                continue;
            }
            let up = ch.to_ascii_uppercase();
            if !up.is_ascii() || !ALPHABET.contains(&(up as u8)) {
                return Err(UserCodeError::Character(ch));
            }
            if n < LEN {
                code[n] = up as u8;
            }
            n += 1;
        }
        if n != LEN {
            return Err(UserCodeError::Length(n));
        }
        Ok(Self(code))
    }

    /// Canonical form without the dash: what is hashed and stored.
    pub fn canonical(&self) -> String {
        self.0.iter().map(|&b| b as char).collect()
    }

    /// What the database keeps and looks the code up by: HMAC-SHA256 under the
    /// server secret key, so a copy of the database cannot try all 2^34.5 codes.
    pub fn stored_hash(&self, key: &crate::at_rest::SecretKey) -> crate::secret::SecretHash {
        crate::secret::SecretHash::from_stored(key.user_code_hash(&self.canonical()))
    }
}

impl fmt::Display for UserCode {
    /// Shown to people as `XXXX-XXXX`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.canonical();
        write!(f, "{}-{}", &s[..4], &s[4..])
    }
}

impl fmt::Debug for UserCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserCode({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    #[test]
    fn displays_with_a_dash_and_parses_back() {
        let mut rng = SmallRng::seed_from_u64(7);
        for _ in 0..100 {
            let code = UserCode::generate(&mut rng);
            let shown = code.to_string();
            assert_eq!(shown.len(), 9);
            assert_eq!(&shown[4..5], "-");
            assert_eq!(UserCode::parse(&shown), Ok(code.clone()));
        }
    }

    #[test]
    fn accepts_any_case_and_spacing() {
        let want = UserCode::parse("BCDF-GHJK").map(|c| c.canonical());
        for typed in ["bcdfghjk", "bcdf-ghjk", " BcDf GhJk ", "BCDF - GHJK", "b-c-d-f-g-h-j-k"] {
            assert_eq!(UserCode::parse(typed).map(|c| c.canonical()), want, "{typed}");
        }
    }

    #[test]
    fn rejects_vowels_digits_and_wrong_length() {
        assert_eq!(UserCode::parse("ABCD-FGHJ"), Err(UserCodeError::Character('A')));
        assert_eq!(UserCode::parse("BCDF-GHJ1"), Err(UserCodeError::Character('1')));
        assert_eq!(UserCode::parse("BCDF-GHJ"), Err(UserCodeError::Length(7)));
        assert_eq!(UserCode::parse("BCDF-GHJKL"), Err(UserCodeError::Length(9)));
        assert_eq!(UserCode::parse(""), Err(UserCodeError::Length(0)));
        assert_eq!(UserCode::parse("BCDF-GHJÄ"), Err(UserCodeError::Character('Ä')));
    }

    #[test]
    fn every_letter_of_the_alphabet_is_used() {
        let mut rng = SmallRng::seed_from_u64(3);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            seen.extend(UserCode::generate(&mut rng).canonical().bytes());
        }
        assert_eq!(seen.len(), ALPHABET.len());
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn stored_hash_is_keyed() {
        use crate::at_rest::SecretKey;
        let code = UserCode::parse("BCDF-GHJK").unwrap();
        let (a, b) = (SecretKey::from_bytes([1; 32]), SecretKey::from_bytes([2; 32]));
        assert_eq!(code.stored_hash(&a), UserCode::parse("bcdfghjk").unwrap().stored_hash(&a));
        assert_ne!(code.stored_hash(&a), code.stored_hash(&b));
        assert_ne!(code.stored_hash(&a), crate::secret::SecretHash::of(&code.canonical()), "not the unkeyed SHA-256");
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = UserCode::parse(&s);
        }

        #[test]
        fn parse_is_case_and_dash_insensitive(seed in any::<u64>()) {
            let code = UserCode::generate(&mut SmallRng::seed_from_u64(seed));
            let lower = code.to_string().to_lowercase().replace('-', " ");
            prop_assert_eq!(UserCode::parse(&lower), Ok(code));
        }
    }
}
