//! DPoP (RFC 9449): proof-of-possession checks, with the signature already verified.
//!
//! A device's tokens are bound to its key (`cnf.jkt`, the key's RFC 7638
//! thumbprint). Each request carries a fresh proof JWT signed by that key,
//! naming the method and URL it is for, a unique `jti`, and (at resource
//! endpoints) the hash of the access token it accompanies. A copied token is
//! useless without the key; a copied proof is useless for any other request
//! and, within its short life, is refused as a replay.

use crate::time::Timestamp;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use thiserror::Error;

/// How far a proof's `iat` may lie in the past.
pub const MAX_AGE_SECS: i64 = 60;
/// How far a proof's `iat` may lie in the future (clock skew).
pub const MAX_SKEW_SECS: i64 = 5;

/// The claims of a DPoP proof (RFC 9449 §4.2).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ProofClaims {
    /// Unique ID, for replay detection.
    pub jti: String,
    /// HTTP method.
    pub htm: String,
    /// HTTP URL without query and fragment.
    pub htu: String,
    /// Issue time, seconds.
    pub iat: i64,
    /// Base64url SHA-256 of the access token (resource requests only).
    #[serde(default)]
    pub ath: Option<String>,
}

/// What a proof must say to be accepted for this request.
#[derive(Debug, Clone)]
pub struct Expected<'a> {
    /// The request's method.
    pub method: &'a str,
    /// The request's absolute URL (query and fragment are ignored).
    pub url: &'a str,
    /// The access token presented with it, for resource requests.
    pub access_token: Option<&'a str>,
    /// Now.
    pub now: Timestamp,
}

/// Why a proof was refused.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum DpopError {
    /// Not a well-formed proof (header, signature, claims).
    #[error("the DPoP proof is not valid: {0}")]
    Malformed(String),
    /// Signed for another method.
    #[error("the DPoP proof is for {found}, not {expected}")]
    WrongMethod {
        /// Method in the proof.
        found: String,
        /// This request's method.
        expected: String,
    },
    /// Signed for another URL.
    #[error("the DPoP proof is for another URL ({found})")]
    WrongUrl {
        /// URL in the proof.
        found: String,
    },
    /// Too old or from the future.
    #[error("the DPoP proof is too old or from the future; check the device clock")]
    Stale,
    /// The `ath` claim is missing or does not match the token.
    #[error("the DPoP proof does not name this access token (ath)")]
    WrongToken,
    /// Seen before.
    #[error("this DPoP proof was already used; make a new one for every request")]
    Replayed,
    /// Signed with a key other than the one the token is bound to.
    #[error("the DPoP proof is signed with another key than the one this token is bound to")]
    WrongKey,
}

/// RFC 9449 §4.3 step 9: compare URLs without query or fragment, scheme and host case-insensitively.
pub fn normalize_htu(url: &str) -> String {
    let no_frag = url.split('#').next().unwrap_or("");
    let no_query = no_frag.split('?').next().unwrap_or("");
    match no_query.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, "/"),
            };
            format!("{}://{}{}", scheme.to_ascii_lowercase(), authority.to_ascii_lowercase(), path)
        }
        None => no_query.to_string(),
    }
}

/// Base64url SHA-256 of an access token (the `ath` claim).
pub fn token_hash(access_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(access_token.as_bytes()))
}

/// Checks the claims of a proof whose signature already verified.
pub fn check(claims: &ProofClaims, expected: &Expected<'_>) -> Result<(), DpopError> {
    if claims.jti.is_empty() || claims.jti.len() > 256 {
        return Err(DpopError::Malformed("jti must be 1 to 256 characters".into()));
    }
    if !claims.htm.eq_ignore_ascii_case(expected.method) {
        return Err(DpopError::WrongMethod { found: claims.htm.clone(), expected: expected.method.into() });
    }
    if normalize_htu(&claims.htu) != normalize_htu(expected.url) {
        return Err(DpopError::WrongUrl { found: claims.htu.clone() });
    }
    let now = expected.now.as_secs();
    if claims.iat < now - MAX_AGE_SECS || claims.iat > now + MAX_SKEW_SECS {
        return Err(DpopError::Stale);
    }
    if let Some(token) = expected.access_token {
        if claims.ath.as_deref() != Some(token_hash(token).as_str()) {
            return Err(DpopError::WrongToken);
        }
    }
    Ok(())
}

/// RFC 7638 thumbprint of a public JWK given as JSON: what `cnf.jkt` carries.
pub fn thumbprint(jwk: &serde_json::Value) -> Result<String, DpopError> {
    let field = |k: &str| {
        jwk.get(k).and_then(|v| v.as_str()).ok_or_else(|| DpopError::Malformed(format!("the key has no {k:?}")))
    };
    // Members in lexicographic order, no whitespace (RFC 7638 §3).
    let canonical = match field("kty")? {
        "OKP" => format!(r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#, field("crv")?, field("x")?),
        "EC" => format!(r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#, field("crv")?, field("x")?, field("y")?),
        other => {
            return Err(DpopError::Malformed(format!(
                "key type {other:?} is not supported; use OKP (Ed25519) or EC (P-256)"
            )))
        }
    };
    if jwk.get("d").is_some() {
        return Err(DpopError::Malformed("the proof carries a private key; send only the public key".into()));
    }
    Ok(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
}

/// Most proofs remembered at once. A flood of fresh proofs (each needs only a
/// fresh key) must not grow memory without bound: past this, expired entries go,
/// then the oldest (a proof evicted early could be replayed for the rest of its
/// minute, which takes a flood of this size within that minute).
pub const MAX_REMEMBERED: usize = 100_000;

/// Remembers `jti`s of recent proofs so each is accepted once.
#[derive(Debug, Default)]
pub struct ReplayWindow {
    seen: HashMap<String, Timestamp>,
}

impl ReplayWindow {
    /// Records `jti` for key `jkt`; `Err(Replayed)` if it was seen within the proof lifetime.
    pub fn admit(&mut self, jkt: &str, jti: &str, now: Timestamp) -> Result<(), DpopError> {
        let key = format!("{jkt}:{jti}");
        match self.seen.get(&key) {
            Some(at) if now.millis_since(*at) <= (MAX_AGE_SECS + MAX_SKEW_SECS) * 1000 => Err(DpopError::Replayed),
            _ => {
                if self.seen.len() >= MAX_REMEMBERED {
                    self.make_room(now);
                }
                self.seen.insert(key, now);
                Ok(())
            }
        }
    }

    /// Frees room: expired entries, then the oldest 1% (so a flood pays for the
    /// scan once per thousand proofs).
    fn make_room(&mut self, now: Timestamp) {
        self.prune(now);
        if self.seen.len() < MAX_REMEMBERED {
            return;
        }
        let mut times: Vec<i64> = self.seen.values().map(|t| t.as_millis()).collect();
        let cut = times.len() / 100;
        let (_, threshold, _) = times.select_nth_unstable(cut);
        let threshold = *threshold;
        self.seen.retain(|_, at| at.as_millis() > threshold);
    }

    /// Forgets entries older than any acceptable proof.
    pub fn prune(&mut self, now: Timestamp) {
        let keep = (MAX_AGE_SECS + MAX_SKEW_SECS) * 1000;
        self.seen.retain(|_, at| now.millis_since(*at) <= keep);
    }

    /// How many entries are held.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// How a request's DPoP key relates to the key a grant or token family is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    /// Bound and proven with that key, or unbound and sent without a proof.
    Holds,
    /// Bound to a key the request did not prove (no proof, or another key).
    WrongKey,
    /// A proof came with something bound to no key: it cannot be bound now
    /// (binding happens when a sign-in starts), and answering with bearer tokens
    /// would let the client believe they are bound (RFC 9449 §5).
    ProofWithoutBinding,
}

/// Compares the key something is bound to with the key a request proved.
pub fn binding(bound: Option<&str>, presented: Option<&str>) -> Binding {
    match (bound, presented) {
        (Some(b), Some(p)) if b == p => Binding::Holds,
        (Some(_), _) => Binding::WrongKey,
        (None, Some(_)) => Binding::ProofWithoutBinding,
        (None, None) => Binding::Holds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> ProofClaims {
        ProofClaims {
            jti: "j1".into(),
            htm: "POST".into(),
            htu: "https://lk.example/oauth/token".into(),
            iat: 1000,
            ath: None,
        }
    }

    fn expected(now_secs: i64) -> Expected<'static> {
        Expected {
            method: "POST",
            url: "https://LK.example/oauth/token?x=1",
            access_token: None,
            now: Timestamp::from_millis(now_secs * 1000),
        }
    }

    #[test]
    fn accepts_a_matching_fresh_proof() {
        assert_eq!(check(&claims(), &expected(1000)), Ok(()));
        assert_eq!(check(&claims(), &expected(1000 + MAX_AGE_SECS)), Ok(()));
    }

    #[test]
    fn refuses_wrong_method_url_and_time() {
        let e = Expected { method: "GET", ..expected(1000) };
        assert!(matches!(check(&claims(), &e), Err(DpopError::WrongMethod { .. })));
        let e = Expected { url: "https://lk.example/oauth/revoke", ..expected(1000) };
        assert!(matches!(check(&claims(), &e), Err(DpopError::WrongUrl { .. })));
        assert_eq!(check(&claims(), &expected(1000 + MAX_AGE_SECS + 1)), Err(DpopError::Stale));
        assert_eq!(check(&claims(), &expected(1000 - MAX_SKEW_SECS - 1)), Err(DpopError::Stale));
    }

    #[test]
    fn resource_requests_must_name_the_token() {
        let e = Expected { access_token: Some("tok"), ..expected(1000) };
        assert_eq!(check(&claims(), &e), Err(DpopError::WrongToken));
        let with = ProofClaims { ath: Some(token_hash("tok")), ..claims() };
        assert_eq!(check(&with, &e), Ok(()));
        let other = ProofClaims { ath: Some(token_hash("other")), ..claims() };
        assert_eq!(check(&other, &e), Err(DpopError::WrongToken));
    }

    #[test]
    fn replays_are_refused_within_the_window() {
        let mut w = ReplayWindow::default();
        let t = Timestamp::from_millis(0);
        assert_eq!(w.admit("k", "j", t), Ok(()));
        assert_eq!(w.admit("k", "j", t.plus_secs(30)), Err(DpopError::Replayed));
        assert_eq!(w.admit("other-key", "j", t), Ok(()));
        w.prune(t.plus_secs(MAX_AGE_SECS + MAX_SKEW_SECS + 1));
        assert!(w.is_empty());
    }

    #[test]
    fn thumbprint_matches_rfc8037_example() {
        // RFC 8037 Appendix A.3.
        let jwk = serde_json::json!({"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
        assert_eq!(thumbprint(&jwk), Ok("kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k".into()));
        let private = serde_json::json!({"kty":"OKP","crv":"Ed25519","x":"a","d":"b"});
        assert!(thumbprint(&private).is_err());
        assert!(thumbprint(&serde_json::json!({"kty":"RSA"})).is_err());
    }

    #[test]
    fn htu_normalisation() {
        assert_eq!(normalize_htu("HTTPS://Lk.Example:8443/a/B?q#f"), "https://lk.example:8443/a/B");
        assert_eq!(normalize_htu("http://h"), "http://h/");
    }

    #[test]
    fn binding_compares_bound_and_presented_keys() {
        assert_eq!(binding(Some("a"), Some("a")), Binding::Holds);
        assert_eq!(binding(None, None), Binding::Holds);
        assert_eq!(binding(Some("a"), Some("b")), Binding::WrongKey);
        assert_eq!(binding(Some("a"), None), Binding::WrongKey);
        assert_eq!(binding(None, Some("a")), Binding::ProofWithoutBinding);
    }

    #[test]
    fn the_replay_window_is_bounded_and_still_refuses_recent_replays() {
        let mut w = ReplayWindow::default();
        let t = Timestamp::from_millis(1_000_000);
        for i in 0..MAX_REMEMBERED {
            assert_eq!(w.admit("k", &format!("j{i}"), t.plus_millis((i / 1000) as i64)), Ok(()));
        }
        let later = t.plus_millis(200);
        assert_eq!(w.admit("k", "one-more", later), Ok(()));
        assert!(w.len() <= MAX_REMEMBERED, "bounded: {}", w.len());
        assert_eq!(w.admit("k", "one-more", later), Err(DpopError::Replayed));
        assert_eq!(
            w.admit("k", &format!("j{}", MAX_REMEMBERED - 1), later),
            Err(DpopError::Replayed),
            "the newest stay"
        );
    }
}
