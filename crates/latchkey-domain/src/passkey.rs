//! Passkeys (WebAuthn): which sign-in methods an account may give up, how
//! long a ceremony's challenge lives, and what a sign-in says about how it
//! authenticated (RFC 8176 `amr`). The cryptography is webauthn-rs's, in the
//! server; this module only decides.

use crate::time::Timestamp;
use thiserror::Error;

/// How long a registration or sign-in challenge may be answered, in milliseconds.
pub const CEREMONY_LIFETIME_MS: i64 = 5 * 60 * 1000;

/// Most passkeys one account may hold.
pub const MAX_PASSKEYS: usize = 20;

/// What a WebAuthn ceremony is for; each challenge answers only its own kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CeremonyKind {
    /// Registering a new passkey (bound to the signed-in person).
    Register,
    /// Signing in with a discoverable passkey (nobody is known yet).
    SignIn,
    /// Re-confirming a signed-in person with one of their passkeys.
    Reauth,
}

impl CeremonyKind {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            CeremonyKind::Register => "register",
            CeremonyKind::SignIn => "sign_in",
            CeremonyKind::Reauth => "reauth",
        }
    }

    /// Reads back [`CeremonyKind::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [CeremonyKind::Register, CeremonyKind::SignIn, CeremonyKind::Reauth].into_iter().find(|k| k.as_str() == s)
    }
}

/// When a ceremony started at `now` stops being answerable.
pub fn ceremony_expires(now: Timestamp) -> Timestamp {
    Timestamp::from_millis(now.as_millis() + CEREMONY_LIFETIME_MS)
}

/// How a session signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInMethod {
    /// Username and password.
    Password,
    /// A passkey with user verification.
    Passkey,
    /// A QR code approved on a phone that was already signed in.
    Phone,
}

impl SignInMethod {
    /// The RFC 8176 authentication method references, space-separated as stored:
    /// `pwd` for a password; `hwk` (a hardware-bound key) and `user` (the
    /// authenticator verified the person) for a passkey.
    pub fn amr(self) -> &'static str {
        match self {
            SignInMethod::Password => "pwd",
            SignInMethod::Passkey => "hwk user",
            // Multiple-channel authentication: the approval came over a second device.
            SignInMethod::Phone => "mca",
        }
    }

    /// The word the audit log keeps.
    pub fn as_str(self) -> &'static str {
        match self {
            SignInMethod::Password => "password",
            SignInMethod::Passkey => "passkey",
            SignInMethod::Phone => "qr",
        }
    }
}

/// An account's ways to sign in, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInMethods {
    /// Whether it has a password.
    pub password: bool,
    /// How many passkeys it has.
    pub passkeys: usize,
}

/// Why a change to an account's sign-in methods is refused.
#[derive(Debug, Clone, Copy, Error, PartialEq, Eq)]
pub enum MethodRefusal {
    /// It would leave the account with no way to sign in.
    #[error("this is your last way to sign in; add a passkey or keep your password before removing it")]
    LastMethod,
    /// A password can go only once a passkey can take its place.
    #[error("add a passkey before removing your password")]
    NoPasskey,
    /// There is no password to remove.
    #[error("this account has no password")]
    NoPassword,
    /// The account holds as many passkeys as it may.
    #[error("you have as many passkeys as an account may hold; remove one first")]
    TooMany,
}

impl SignInMethods {
    /// Whether one passkey may be removed.
    pub fn may_remove_passkey(self) -> Result<(), MethodRefusal> {
        if self.passkeys <= 1 && !self.password {
            return Err(MethodRefusal::LastMethod);
        }
        Ok(())
    }

    /// Whether the password may be removed.
    pub fn may_remove_password(self) -> Result<(), MethodRefusal> {
        match (self.password, self.passkeys) {
            (false, _) => Err(MethodRefusal::NoPassword),
            (true, 0) => Err(MethodRefusal::NoPasskey),
            _ => Ok(()),
        }
    }

    /// Whether one more passkey may be added.
    pub fn may_add_passkey(self) -> Result<(), MethodRefusal> {
        if self.passkeys >= MAX_PASSKEYS {
            return Err(MethodRefusal::TooMany);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(password: bool, passkeys: usize) -> SignInMethods {
        SignInMethods { password, passkeys }
    }

    #[test]
    fn the_last_way_in_stays() {
        assert_eq!(m(false, 1).may_remove_passkey(), Err(MethodRefusal::LastMethod));
        assert_eq!(m(false, 0).may_remove_passkey(), Err(MethodRefusal::LastMethod));
        assert_eq!(m(true, 1).may_remove_passkey(), Ok(()));
        assert_eq!(m(false, 2).may_remove_passkey(), Ok(()));
    }

    #[test]
    fn a_password_goes_only_for_a_passkey() {
        assert_eq!(m(true, 0).may_remove_password(), Err(MethodRefusal::NoPasskey));
        assert_eq!(m(false, 3).may_remove_password(), Err(MethodRefusal::NoPassword));
        assert_eq!(m(true, 1).may_remove_password(), Ok(()));
    }

    #[test]
    fn passkeys_are_bounded() {
        assert_eq!(m(true, MAX_PASSKEYS).may_add_passkey(), Err(MethodRefusal::TooMany));
        assert_eq!(m(true, MAX_PASSKEYS - 1).may_add_passkey(), Ok(()));
    }

    #[test]
    fn kinds_and_methods_read_back() {
        for k in [CeremonyKind::Register, CeremonyKind::SignIn, CeremonyKind::Reauth] {
            assert_eq!(CeremonyKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(CeremonyKind::parse("other"), None);
        assert_eq!(SignInMethod::Password.amr(), "pwd");
        assert_eq!(SignInMethod::Passkey.amr(), "hwk user");
        assert_eq!(ceremony_expires(Timestamp::from_millis(1)).as_millis(), 1 + CEREMONY_LIFETIME_MS);
    }
}
