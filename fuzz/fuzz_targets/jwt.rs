//! Access tokens and ID tokens (`id_token_hint`) as the server verifies them
//! (`crates/latchkey-server/src/jws.rs`, the code behind `KeyRing::verify`).
//!
//! Two inputs from each run: the data as a whole token, and the data as the
//! claims of tokens this target signs with the server's key and with another
//! key under the same `kid`. Checks: a token accepted is EdDSA, names the key,
//! has the `typ` and issuer asked for, is unexpired when that is asked, and
//! its signature verifies under the server's key (checked again here with
//! ring); a token signed by another key, or changed in any character, is
//! never accepted.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::DecodingKey;
use latchkey_fuzz::jws::verify_token;
use latchkey_fuzz::{tampered, text};
use libfuzzer_sys::fuzz_target;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use serde_json::Value;
use std::collections::HashMap;

const ISSUER: &str = "https://lk.example";
const KID: &str = "k1";

fn sign(key: &Ed25519KeyPair, typ: &str, claims: &str) -> String {
    let header = serde_json::json!({"alg": "EdDSA", "typ": typ, "kid": KID});
    let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims));
    let sig = URL_SAFE_NO_PAD.encode(key.sign(input.as_bytes()));
    format!("{input}.{sig}")
}

/// What an accepted token must be, checked without jsonwebtoken.
fn check_accepted(token: &str, claims: &Value, public: &[u8], typ: &str, expiry: bool) {
    let mut parts = token.split('.');
    let header: Value = parts
        .next()
        .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok())
        .and_then(|h| serde_json::from_slice(&h).ok())
        .expect("an accepted token has a JSON header");
    assert_eq!(header["alg"], "EdDSA", "{token:?}");
    assert_eq!(header["typ"], typ);
    assert_eq!(header["kid"], KID);
    // jsonwebtoken also reads an array of issuers; one naming only ours is still ours.
    let ours = |v: &Value| v == ISSUER;
    let iss = &claims["iss"];
    assert!(ours(iss) || iss.as_array().is_some_and(|a| !a.is_empty() && a.iter().all(ours)), "{token:?}");
    if expiry {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        assert!(claims["exp"].as_f64().is_some_and(|e| e >= now as f64), "expired: {claims}");
    }
    let (input, sig) = token.rsplit_once('.').expect("three parts");
    let sig = URL_SAFE_NO_PAD.decode(sig).expect("base64url signature");
    assert!(UnparsedPublicKey::new(&ED25519, public).verify(input.as_bytes(), &sig).is_ok(), "not ours: {token:?}");
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = text(data) else { return };
    let (Ok(ours), Ok(theirs)) =
        (Ed25519KeyPair::from_seed_unchecked(&[1; 32]), Ed25519KeyPair::from_seed_unchecked(&[2; 32]))
    else {
        return;
    };
    let public = ours.public_key().as_ref().to_vec();
    let Ok(dk) = DecodingKey::from_ed_components(&URL_SAFE_NO_PAD.encode(&public)) else { return };
    let keys = HashMap::from([(KID.to_string(), dk)]);

    for (typ, expiry) in [("at+jwt", true), ("JWT", false)] {
        if let Some(claims) = verify_token::<Value>(input, &keys, ISSUER, typ, expiry) {
            check_accepted(input, &claims, &public, typ, expiry);
        }
        let token = sign(&ours, typ, input);
        if let Some(claims) = verify_token::<Value>(&token, &keys, ISSUER, typ, expiry) {
            check_accepted(&token, &claims, &public, typ, expiry);
            if let Some(t) = tampered(&token, data.len()) {
                assert!(verify_token::<Value>(&t, &keys, ISSUER, typ, expiry).is_none(), "changed: {t:?}");
            }
        }
        let forged = sign(&theirs, typ, input);
        assert!(verify_token::<Value>(&forged, &keys, ISSUER, typ, expiry).is_none(), "forged: {forged:?}");
    }
});
