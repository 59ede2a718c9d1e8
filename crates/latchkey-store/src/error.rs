//! Errors every backend reports in the same terms.

use thiserror::Error;

/// A storage failure. Business outcomes (a code not found, a grant expired) are
/// not errors: they are values in the operation's result.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The database was migrated by a newer Latchkey: this server must not run on it.
    #[error(
        "this database was migrated by a newer Latchkey (schema version {found}; this server knows up to {known}): \
         run the newer version on every replica, or restore a backup taken before the upgrade"
    )]
    NewerSchema {
        /// The highest migration the database has.
        found: i64,
        /// The highest migration this build knows.
        known: i64,
    },
    /// A unique value is taken (a username, a client ID).
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// The database cannot be reached or refused service; worth retrying later.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// Stored data does not parse (a bug or tampering).
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    /// The database's keys are sealed under another server secret key than the one given.
    #[error(
        "the keys in this database are encrypted with secret key {expected}, but the secret key given is {given}: \
         start with the key whose ID is {expected} (LATCHKEY_SECRET_KEY or --secret-key-file)"
    )]
    WrongSecretKey {
        /// The key ID the database names.
        expected: String,
        /// The key ID of the key given.
        given: String,
    },
    /// An operation needed the server secret key before the store was given one.
    #[error("no server secret key was given to the store (Store::secure_keys), so its keys cannot be read")]
    NoSecretKey,
    /// Anything else the database reported.
    #[error("database error: {0}")]
    Database(String),
}
