//! Password hashing with argon2id, off the async threads (it is deliberately slow).

use crate::error::ApiError;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use std::sync::LazyLock;

/// Hashes a new password into a PHC string.
pub async fn hash(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| ApiError::Internal(format!("password hashing failed: {e}")))
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
}

/// A hash of a password nobody has, so unknown users cost as much as known ones.
static DUMMY_HASH: LazyLock<Option<String>> = LazyLock::new(|| {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default().hash_password(b"no such user", &salt).ok().map(|h| h.to_string())
});

/// Checks `password` against `stored` (or against a dummy when the user does not exist or has no password).
pub async fn verify(password: String, stored: Option<String>) -> Result<bool, ApiError> {
    // A passwordless account stores no hash: it costs the same as a stranger and never matches.
    let stored = stored.filter(|h| !h.is_empty());
    tokio::task::spawn_blocking(move || {
        let exists = stored.is_some();
        let Some(phc) = stored.or_else(|| DUMMY_HASH.clone()) else {
            return false;
        };
        let Ok(parsed) = PasswordHash::new(&phc) else {
            return false;
        };
        Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok() && exists
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))
}
