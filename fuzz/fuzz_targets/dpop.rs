//! DPoP proofs (RFC 9449): the server's own parsing and signature check
//! (`crates/latchkey-server/src/jws.rs`) and the domain's claim checks.
//!
//! Two inputs from each run: the data as a whole proof, and the data as the
//! claims of a proof this target signs. Checks: a proof accepted carries a
//! public key under which its signature verifies (checked again here with
//! ring) and its `jkt` is that key's thumbprint; a proof signed here is
//! accepted exactly when its claims read, and any change to it is refused;
//! the claim checks accept only the method, URL, time and token asked for.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use latchkey_domain::dpop::{self, normalize_htu, token_hash, Expected, ProofClaims};
use latchkey_domain::Timestamp;
use latchkey_fuzz::jws::read_proof;
use latchkey_fuzz::{tampered, text};
use libfuzzer_sys::fuzz_target;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED, ED25519};

/// Verifies `proof`'s signature with the key in its header, independently of jsonwebtoken.
fn signed_by_its_key(proof: &str, jwk: &serde_json::Value) -> bool {
    let Some((input, sig)) = proof.rsplit_once('.') else { return false };
    let Ok(sig) = URL_SAFE_NO_PAD.decode(sig) else { return false };
    let b64 = |k: &str| jwk.get(k).and_then(|v| v.as_str()).and_then(|s| URL_SAFE_NO_PAD.decode(s).ok());
    match jwk.get("kty").and_then(|v| v.as_str()) {
        Some("OKP") => {
            b64("x").is_some_and(|x| UnparsedPublicKey::new(&ED25519, x).verify(input.as_bytes(), &sig).is_ok())
        }
        Some("EC") => match (b64("x"), b64("y")) {
            (Some(x), Some(y)) => {
                let point = [&[4u8][..], &x, &y].concat();
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point).verify(input.as_bytes(), &sig).is_ok()
            }
            _ => false,
        },
        _ => false,
    }
}

fn check_claims(claims: &ProofClaims) {
    let now = Timestamp::from_millis(claims.iat.saturating_mul(1000).clamp(0, i64::MAX / 2));
    let e = Expected { method: "POST", url: "https://lk.example/oauth/token", access_token: Some("tok"), now };
    if dpop::check(claims, &e).is_ok() {
        assert!(claims.htm.eq_ignore_ascii_case("POST"));
        assert_eq!(normalize_htu(&claims.htu), "https://lk.example/oauth/token");
        assert_eq!(claims.ath.as_deref(), Some(token_hash("tok").as_str()));
        assert!(!claims.jti.is_empty() && claims.jti.len() <= 256);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = text(data) else { return };

    if let Ok(p) = read_proof(input) {
        assert!(signed_by_its_key(input, &p.jwk), "accepted a proof its key did not sign: {input:?}");
        assert_eq!(dpop::thumbprint(&p.jwk).as_ref(), Ok(&p.jkt));
        check_claims(&p.claims);
    }
    let _ = normalize_htu(input);

    // A proof signed here, with the input as its claims.
    let Ok(key) = Ed25519KeyPair::from_seed_unchecked(&[7; 32]) else { return };
    let x = URL_SAFE_NO_PAD.encode(key.public_key().as_ref());
    let jwk = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": x});
    let header = serde_json::json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": jwk});
    let mut proof = format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(input));
    let sig = URL_SAFE_NO_PAD.encode(key.sign(proof.as_bytes()));
    proof = format!("{proof}.{sig}");
    let readable = serde_json::from_str::<ProofClaims>(input);
    match read_proof(&proof) {
        Ok(p) => {
            assert_eq!(Some(&p.claims), readable.as_ref().ok());
            assert_eq!(dpop::thumbprint(&jwk).as_ref(), Ok(&p.jkt));
        }
        Err(e) => assert!(readable.is_err() || proof.len() > latchkey_fuzz::jws::MAX_PROOF_LEN, "refused: {e}"),
    }
    if let Some(t) = tampered(&proof, data.len()) {
        assert!(read_proof(&t).is_err(), "a changed proof was accepted: {t:?}");
    }
});
