//! The rules for an app's settings, one set for every way an admin registers
//! or edits an app (the Apps page and `latchkey admin app add`): which
//! combinations make sense, and which URIs Latchkey may send people to.

use crate::authorization::{check_redirect_uri, RedirectUriError};
use crate::names::{DisplayName, NameError};
use thiserror::Error;

/// Most redirect URIs (and, separately, post-logout URIs) one app may register.
pub const MAX_URIS: usize = 20;

/// How an app's ID tokens are signed (`id_token_signed_response_alg`, OIDC Dynamic Registration §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdTokenAlg {
    /// Ed25519: small, fast, the default.
    #[default]
    EdDSA,
    /// RSA PKCS#1 v1.5 with SHA-256, for relying parties that lack EdDSA.
    RS256,
}

impl IdTokenAlg {
    /// The JOSE `alg` name.
    pub fn as_str(self) -> &'static str {
        match self {
            IdTokenAlg::EdDSA => "EdDSA",
            IdTokenAlg::RS256 => "RS256",
        }
    }

    /// Parses a JOSE `alg` name this server signs with.
    pub fn parse(s: &str) -> Option<IdTokenAlg> {
        match s {
            "EdDSA" => Some(IdTokenAlg::EdDSA),
            "RS256" => Some(IdTokenAlg::RS256),
            _ => None,
        }
    }
}

/// Settings as an admin typed them, before any check.
#[derive(Debug, Clone, Default)]
pub struct AppSettingsInput<'a> {
    /// Name shown to people.
    pub display_name: &'a str,
    /// The app's own URL, empty for none.
    pub app_url: &'a str,
    /// Whether it may use the authorization code grant (web sign-in).
    pub authorization_code: bool,
    /// QR sign-in switch.
    pub qr_sign_in: bool,
    /// Whether token requests must carry a DPoP proof.
    pub require_dpop: bool,
    /// Redirect URIs (blank entries are ignored).
    pub redirect_uris: Vec<&'a str>,
    /// Where RP-initiated logout may send people back to (blank entries are ignored).
    pub post_logout_redirect_uris: Vec<&'a str>,
    /// `EdDSA` or `RS256`; empty for the default.
    pub id_token_alg: &'a str,
}

/// Settings that passed every rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSettings {
    /// Name shown to people.
    pub display_name: DisplayName,
    /// The app's own URL.
    pub app_url: Option<String>,
    /// Redirect URIs, each compared exactly, without duplicates.
    pub redirect_uris: Vec<String>,
    /// Post-logout redirect URIs, each compared exactly, without duplicates.
    pub post_logout_redirect_uris: Vec<String>,
    /// How its ID tokens are signed.
    pub id_token_alg: IdTokenAlg,
}

/// Why settings were refused; each message tells an admin what to change.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AppSettingsError {
    /// The display name is not acceptable.
    #[error("display name: {0}")]
    DisplayName(#[from] NameError),
    /// The app URL is not an http(s) origin.
    #[error("the app URL must be an http(s) URL, like https://app.example.com")]
    AppUrl,
    /// QR sign-in with required DPoP.
    #[error(
        "QR sign-in and Require DPoP cannot both be on: a native app's QR sign-in collects tokens that are not bound to a key"
    )]
    QrWithDpop,
    /// A bad redirect URI.
    #[error("redirect URI: {0}")]
    RedirectUri(RedirectUriError),
    /// A bad post-logout redirect URI.
    #[error("post-logout redirect URI: {0}")]
    PostLogoutUri(RedirectUriError),
    /// Too many URIs of one kind.
    #[error("at most {MAX_URIS} redirect URIs and {MAX_URIS} post-logout redirect URIs")]
    TooManyUris,
    /// Web sign-in with nowhere to send codes.
    #[error("web sign-in (authorization_code) needs at least one redirect URI to send codes to")]
    CodeNeedsRedirectUri,
    /// An unknown signing algorithm.
    #[error("ID token signing must be EdDSA or RS256, not {0:?}")]
    IdTokenAlg(String),
}

/// Checks settings against every rule; what it returns is what is stored.
pub fn check(input: &AppSettingsInput<'_>) -> Result<AppSettings, AppSettingsError> {
    let display_name = DisplayName::parse(input.display_name)?;
    let url = input.app_url.trim();
    let app_url = if url.is_empty() {
        None
    } else if url.len() > 2000
        || url.chars().any(|c| c.is_control() || c.is_whitespace())
        || crate::pairing::origin(url).is_none()
    {
        return Err(AppSettingsError::AppUrl);
    } else {
        Some(url.to_string())
    };
    if input.qr_sign_in && input.require_dpop {
        return Err(AppSettingsError::QrWithDpop);
    }
    let redirect_uris = uris(&input.redirect_uris).map_err(AppSettingsError::RedirectUri)?;
    let post_logout_redirect_uris = uris(&input.post_logout_redirect_uris).map_err(AppSettingsError::PostLogoutUri)?;
    if redirect_uris.len() > MAX_URIS || post_logout_redirect_uris.len() > MAX_URIS {
        return Err(AppSettingsError::TooManyUris);
    }
    if input.authorization_code && redirect_uris.is_empty() {
        return Err(AppSettingsError::CodeNeedsRedirectUri);
    }
    let alg = input.id_token_alg.trim();
    let id_token_alg = if alg.is_empty() {
        IdTokenAlg::default()
    } else {
        IdTokenAlg::parse(alg).ok_or_else(|| AppSettingsError::IdTokenAlg(alg.to_string()))?
    };
    Ok(AppSettings { display_name, app_url, redirect_uris, post_logout_redirect_uris, id_token_alg })
}

/// Checked, trimmed, de-duplicated URIs; blank entries are skipped.
fn uris(given: &[&str]) -> Result<Vec<String>, RedirectUriError> {
    let mut out: Vec<String> = Vec::new();
    for u in given.iter().map(|u| u.trim()).filter(|u| !u.is_empty()) {
        let u = check_redirect_uri(u)?;
        if !out.contains(&u) {
            out.push(u);
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn input() -> AppSettingsInput<'static> {
        AppSettingsInput { display_name: "Notes", ..Default::default() }
    }

    #[test]
    fn a_plain_app_is_accepted_with_defaults() {
        let s = check(&input()).unwrap();
        assert_eq!(s.display_name.as_str(), "Notes");
        assert_eq!((s.app_url, s.id_token_alg), (None, IdTokenAlg::EdDSA));
    }

    #[test]
    fn uris_are_checked_trimmed_and_deduplicated() {
        let i = AppSettingsInput {
            authorization_code: true,
            redirect_uris: vec![" https://a.example/cb ", "", "https://a.example/cb", "http://127.0.0.1:9/cb"],
            post_logout_redirect_uris: vec!["https://a.example/bye"],
            ..input()
        };
        let s = check(&i).unwrap();
        assert_eq!(s.redirect_uris, ["https://a.example/cb", "http://127.0.0.1:9/cb"]);
        assert_eq!(s.post_logout_redirect_uris, ["https://a.example/bye"]);
    }

    /// Settings, and whether the refusal they get is the expected one.
    type Case = (AppSettingsInput<'static>, fn(&AppSettingsError) -> bool);

    #[test]
    fn each_rule_refuses_with_its_own_reason() {
        let cases: Vec<Case> = vec![
            (AppSettingsInput { display_name: "", ..input() }, |e| matches!(e, AppSettingsError::DisplayName(_))),
            (AppSettingsInput { app_url: "ftp://x", ..input() }, |e| *e == AppSettingsError::AppUrl),
            (AppSettingsInput { qr_sign_in: true, require_dpop: true, app_url: "https://a.example", ..input() }, |e| {
                *e == AppSettingsError::QrWithDpop
            }),
            (AppSettingsInput { redirect_uris: vec!["http://evil.example/cb"], ..input() }, |e| {
                matches!(e, AppSettingsError::RedirectUri(RedirectUriError::Insecure(_)))
            }),
            (AppSettingsInput { post_logout_redirect_uris: vec!["https://a.example/#x"], ..input() }, |e| {
                matches!(e, AppSettingsError::PostLogoutUri(RedirectUriError::Fragment(_)))
            }),
            (AppSettingsInput { authorization_code: true, ..input() }, |e| {
                *e == AppSettingsError::CodeNeedsRedirectUri
            }),
            (AppSettingsInput { id_token_alg: "HS256", ..input() }, |e| matches!(e, AppSettingsError::IdTokenAlg(_))),
        ];
        for (i, expected) in cases {
            let e = check(&i).unwrap_err();
            assert!(expected(&e), "{i:?} gave {e:?}");
        }
    }

    #[test]
    fn more_than_the_limit_of_uris_is_refused() {
        let many: Vec<String> = (0..=MAX_URIS).map(|n| format!("https://a.example/{n}")).collect();
        let i = AppSettingsInput { post_logout_redirect_uris: many.iter().map(String::as_str).collect(), ..input() };
        assert_eq!(check(&i).unwrap_err(), AppSettingsError::TooManyUris);
    }

    #[test]
    fn rs256_can_be_chosen_and_names_round_trip() {
        let s = check(&AppSettingsInput { id_token_alg: "RS256", ..input() }).unwrap();
        assert_eq!(s.id_token_alg, IdTokenAlg::RS256);
        for a in [IdTokenAlg::EdDSA, IdTokenAlg::RS256] {
            assert_eq!(IdTokenAlg::parse(a.as_str()), Some(a));
        }
    }
}
