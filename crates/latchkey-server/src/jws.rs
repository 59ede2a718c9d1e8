//! JWS checks that need no server state: a DPoP proof's signature by the key it
//! carries, and a token's signature, `alg`, `typ`, issuer and expiry against
//! the server's verification keys.
//!
//! This file uses nothing of the rest of the crate (only `jsonwebtoken`,
//! `serde`, `serde_json` and `latchkey_domain`): the fuzz targets in `fuzz/`
//! compile this very file on their own, without the server's dependency tree.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use latchkey_domain::dpop::{self, DpopError, ProofClaims};
use serde::de::DeserializeOwned;
use std::collections::HashMap;

/// Longest DPoP proof read: a proof is a few hundred bytes.
pub const MAX_PROOF_LEN: usize = 4096;

/// A DPoP proof whose signature verified with the key it carries; its claims
/// are not checked against the request yet (`latchkey_domain::dpop::check`).
#[derive(Debug, Clone)]
pub struct SignedProof {
    /// The claims, as signed.
    pub claims: ProofClaims,
    /// RFC 7638 thumbprint of the proof's key.
    pub jkt: String,
    /// The public key, as JWK JSON.
    pub jwk: serde_json::Value,
}

/// Reads a DPoP proof (RFC 9449 §4.3 steps 2–7): a `dpop+jwt` signed with
/// EdDSA or ES256 by the public key in its own header.
pub fn read_proof(proof: &str) -> Result<SignedProof, DpopError> {
    let bad = |m: String| DpopError::Malformed(m);
    if proof.len() > MAX_PROOF_LEN {
        return Err(bad("the proof is too long".into()));
    }
    let header = jsonwebtoken::decode_header(proof).map_err(|e| bad(e.to_string()))?;
    if header.typ.as_deref() != Some("dpop+jwt") {
        return Err(bad("typ must be dpop+jwt".into()));
    }
    if !matches!(header.alg, Algorithm::EdDSA | Algorithm::ES256) {
        return Err(bad("alg must be EdDSA or ES256".into()));
    }
    let jwk = header.jwk.ok_or_else(|| bad("the proof carries no jwk".into()))?;
    let jwk_json = serde_json::to_value(&jwk).map_err(|e| bad(e.to_string()))?;
    let jkt = dpop::thumbprint(&jwk_json)?;
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| bad(format!("unusable key: {e}")))?;
    let mut v = Validation::new(header.alg);
    v.validate_exp = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<ProofClaims>(proof, &key, &v)
        .map_err(|e| bad(format!("signature or claims: {e}")))?
        .claims;
    Ok(SignedProof { claims, jkt, jwk: jwk_json })
}

/// Verifies a token this server signed: a known `kid`, an allowed `alg`, the
/// `typ` expected, the issuer, and (when `expiry`) that it has not expired.
/// `None` for anything invalid.
pub fn verify_token<C: DeserializeOwned>(
    token: &str,
    keys: &HashMap<String, DecodingKey>,
    issuer: &str,
    typ: &str,
    expiry: bool,
) -> Option<C> {
    let header = jsonwebtoken::decode_header(token).ok()?;
    // Access tokens are only ever EdDSA; RS256 is for the ID tokens of apps that ask.
    let alg_ok = header.alg == Algorithm::EdDSA || (header.alg == Algorithm::RS256 && typ == "JWT");
    if !alg_ok || header.typ.as_deref() != Some(typ) {
        return None;
    }
    let key = keys.get(header.kid.as_deref()?)?;
    let mut v = Validation::new(header.alg);
    v.set_issuer(&[issuer]);
    // jsonwebtoken checks `iss` only when the token has one: without this, a
    // token with no (or a non-string) `iss` would pass the issuer check.
    v.required_spec_claims.insert("iss".into());
    v.validate_aud = false;
    v.validate_exp = expiry;
    if !expiry {
        v.required_spec_claims.remove("exp");
    }
    v.leeway = 0;
    jsonwebtoken::decode::<C>(token, key, &v).ok().map(|d| d.claims)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use ring::signature::{Ed25519KeyPair, KeyPair};

    fn signed(key: &Ed25519KeyPair, claims: &str) -> String {
        let header = r#"{"alg":"EdDSA","typ":"at+jwt","kid":"k1"}"#;
        let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(key.sign(input.as_bytes())))
    }

    /// Found by the `jwt` fuzz target: a token of ours without `iss` passed the issuer check.
    #[test]
    fn a_token_without_our_issuer_is_refused() {
        let key = Ed25519KeyPair::from_seed_unchecked(&[1; 32]).unwrap();
        let dk = DecodingKey::from_ed_components(&URL_SAFE_NO_PAD.encode(key.public_key().as_ref())).unwrap();
        let keys = HashMap::from([("k1".to_string(), dk)]);
        let verify = |claims: &str| {
            verify_token::<serde_json::Value>(&signed(&key, claims), &keys, "https://lk", "at+jwt", true)
        };
        assert!(verify(r#"{"iss":"https://lk","exp":4102444800}"#).is_some());
        for bad in [
            r#"{"+iss":"https://lk","exp":4102444800}"#,
            r#"{"iss":7,"exp":4102444800}"#,
            r#"{"iss":"https://other","exp":4102444800}"#,
            r#"{"iss":"https://lk","exp":1}"#,
        ] {
            assert!(verify(bad).is_none(), "{bad} was accepted");
        }
    }
}
