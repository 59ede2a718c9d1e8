//! Signing keys: an Ed25519 key made on first start signs every access token
//! and ID token; an RSA key, made the first time an app whose ID tokens must
//! be RS256 signs in, signs only those. Keys are kept in the store (so
//! replicas share them), published at `jwks_uri`, rotated by `latchkey admin
//! keys rotate`.
//!
//! A retired key stays published until every token it signed has expired.

use crate::error::ApiError;
use crate::state::now;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Header};
use latchkey_domain::Timestamp;
use latchkey_proto::oauth::{Jwk, JwkSet};
use latchkey_store::{IdTokenAlg, SigningKeyRecord, Store, StoreError};
use ring::signature::{Ed25519KeyPair, KeyPair, RsaKeyPair};
use rsa::pkcs1::{DecodeRsaPublicKey, EncodeRsaPublicKey};
use rsa::pkcs8::EncodePrivateKey;
use rsa::traits::PublicKeyParts;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// How long beyond the token lifetime a retired key stays published: covers
/// replicas that have not yet picked up a rotation (they refresh every minute).
const PUBLISH_GRACE_SECS: i64 = 300;

struct Loaded {
    active_kid: String,
    /// Parsed once: `jsonwebtoken` would re-parse the PKCS#8 document, a scalar
    /// multiplication, on every signature (as costly as signing itself).
    active: Ed25519KeyPair,
    /// The active RSA key, once an RS256 app needed one.
    rsa: Option<(String, RsaKeyPair)>,
    verify: HashMap<String, DecodingKey>,
    jwks: JwkSet,
}

/// The server's signing and verification keys.
pub struct KeyRing {
    loaded: RwLock<Arc<Loaded>>,
    /// Longest lifetime of anything signed, so retired keys stay published long enough.
    max_token_lifetime_secs: i64,
}

/// Makes a new Ed25519 key record (private key as PKCS#8 v2).
pub fn generate_key(at: Timestamp) -> Result<SigningKeyRecord, ApiError> {
    let rng = ring::rand::SystemRandom::new();
    let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| ApiError::Internal("key generation failed".into()))?;
    let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref()).map_err(|_| ApiError::Internal("key parse failed".into()))?;
    let public = pair.public_key().as_ref().to_vec();
    Ok(SigningKeyRecord {
        kid: thumbprint(&public),
        private_pkcs8: doc.as_ref().to_vec(),
        public_key: public,
        created_at: at,
        retired_at: None,
        alg: IdTokenAlg::EdDSA,
    })
}

/// Makes a new 2048-bit RSA key record (private key as PKCS#8, public as PKCS#1).
/// Slow (prime search): call it off the async threads.
pub fn generate_rsa_key(at: Timestamp) -> Result<SigningKeyRecord, ApiError> {
    let fail = |what: &str| ApiError::Internal(format!("RSA key {what} failed"));
    let private = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).map_err(|_| fail("generation"))?;
    let public = private.to_public_key();
    let (n, e) = (URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()), URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()));
    Ok(SigningKeyRecord {
        kid: rsa_thumbprint(&n, &e),
        private_pkcs8: private.to_pkcs8_der().map_err(|_| fail("encoding"))?.as_bytes().to_vec(),
        public_key: public.to_pkcs1_der().map_err(|_| fail("encoding"))?.as_bytes().to_vec(),
        created_at: at,
        retired_at: None,
        alg: IdTokenAlg::RS256,
    })
}

/// Makes an RSA signing key if the store has no active one, off the async
/// threads. Called when an admin chooses RS256 for an app, so the key is in the
/// published JWKS before any relying party reads it (some read it only once).
pub async fn ensure_rsa_key(store: &dyn Store) -> Result<(), ApiError> {
    let keys = store.signing_keys().await?;
    if keys.iter().any(|k| k.alg == IdTokenAlg::RS256 && k.retired_at.is_none()) {
        return Ok(());
    }
    let key = tokio::task::spawn_blocking(|| generate_rsa_key(now()))
        .await
        .map_err(|e| ApiError::Internal(format!("RSA key generation stopped: {e}")))??;
    match store.add_signing_key(key, None, now()).await {
        // Another replica may have made one at the same moment; either is fine.
        Ok(()) | Err(StoreError::Conflict(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// RFC 7638 JWK thumbprint of an RSA public key (`n`, `e` base64url).
fn rsa_thumbprint(n: &str, e: &str) -> String {
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// RFC 7638 JWK thumbprint of an Ed25519 public key: a `kid` anyone can recompute.
fn thumbprint(public: &[u8]) -> String {
    let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, URL_SAFE_NO_PAD.encode(public));
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

impl KeyRing {
    /// Loads keys from the store, creating the first one if there is none.
    pub async fn load(store: &dyn Store, max_token_lifetime_secs: i64) -> Result<Self, ApiError> {
        let loaded = Self::read(store, max_token_lifetime_secs).await?;
        Ok(Self { loaded: RwLock::new(Arc::new(loaded)), max_token_lifetime_secs })
    }

    async fn read(store: &dyn Store, max_lifetime: i64) -> Result<Loaded, ApiError> {
        let mut records = store.signing_keys().await?;
        if !records.iter().any(|k| k.retired_at.is_none() && k.alg == IdTokenAlg::EdDSA) {
            let key = generate_key(now())?;
            match store.add_signing_key(key, None, now()).await {
                // Another replica may have made one at the same moment; either is fine.
                Ok(()) | Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
            records = store.signing_keys().await?;
        }
        build(&records, now(), max_lifetime)
    }

    /// Re-reads keys from the store (after a rotation elsewhere).
    pub async fn refresh(&self, store: &dyn Store) -> Result<(), ApiError> {
        let loaded = Self::read(store, self.max_token_lifetime_secs).await?;
        *self.loaded.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(loaded);
        Ok(())
    }

    fn current(&self) -> Arc<Loaded> {
        self.loaded.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The published key set.
    pub fn jwks(&self) -> JwkSet {
        self.current().jwks.clone()
    }

    /// Makes sure this ring holds an RSA key for RS256 ID tokens: one made
    /// elsewhere (when an admin chose RS256 for an app) is read in, and one is
    /// made only if the store has none.
    pub async fn ensure_rsa(&self, store: &dyn Store) -> Result<(), ApiError> {
        if self.current().rsa.is_some() {
            return Ok(());
        }
        ensure_rsa_key(store).await?;
        self.refresh(store).await
    }

    /// Signs `claims` with the active Ed25519 key; `typ` goes in the header (`at+jwt` for access tokens).
    pub fn sign<C: Serialize>(&self, claims: &C, typ: &str) -> Result<String, ApiError> {
        self.sign_with(claims, typ, IdTokenAlg::EdDSA)
    }

    /// Signs `claims` with the active key of `alg` (RS256 needs [`KeyRing::ensure_rsa`] first).
    pub fn sign_with<C: Serialize>(&self, claims: &C, typ: &str, alg: IdTokenAlg) -> Result<String, ApiError> {
        let k = self.current();
        let (algorithm, kid) = match (alg, &k.rsa) {
            (IdTokenAlg::EdDSA, _) => (Algorithm::EdDSA, k.active_kid.clone()),
            (IdTokenAlg::RS256, Some((kid, _))) => (Algorithm::RS256, kid.clone()),
            (IdTokenAlg::RS256, None) => return Err(ApiError::Internal("no RSA signing key yet".into())),
        };
        let mut header = Header::new(algorithm);
        header.kid = Some(kid);
        header.typ = Some(typ.to_string());
        let fail = |e: serde_json::Error| ApiError::Internal(format!("signing failed: {e}"));
        // RFC 7515 compact serialisation: base64url(header) "." base64url(claims) "." base64url(signature).
        let mut out = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).map_err(fail)?);
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).map_err(fail)?));
        let sig = match &k.rsa {
            Some((_, pair)) if alg == IdTokenAlg::RS256 => {
                let mut sig = vec![0; pair.public().modulus_len()];
                let rng = ring::rand::SystemRandom::new();
                pair.sign(&ring::signature::RSA_PKCS1_SHA256, &rng, out.as_bytes(), &mut sig)
                    .map_err(|_| ApiError::Internal("RSA signing failed".into()))?;
                sig
            }
            _ => k.active.sign(out.as_bytes()).as_ref().to_vec(),
        };
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(sig));
        Ok(out)
    }

    /// Verifies a JWT's signature, expiry, issuer and `typ`; `None` for anything invalid.
    pub fn verify<C: DeserializeOwned>(&self, token: &str, issuer: &str, typ: &str) -> Option<C> {
        self.check(token, issuer, typ, true)
    }

    /// [`KeyRing::verify`] for a token that may have expired: an `id_token_hint`
    /// names whom an app signed in, long after the ID token's own lifetime.
    pub fn verify_expired_ok<C: DeserializeOwned>(&self, token: &str, issuer: &str, typ: &str) -> Option<C> {
        self.check(token, issuer, typ, false)
    }

    fn check<C: DeserializeOwned>(&self, token: &str, issuer: &str, typ: &str, expiry: bool) -> Option<C> {
        crate::jws::verify_token(token, &self.current().verify, issuer, typ, expiry)
    }
}

fn build(records: &[SigningKeyRecord], at: Timestamp, max_lifetime: i64) -> Result<Loaded, ApiError> {
    let active_of = |alg: IdTokenAlg| records.iter().find(|k| k.retired_at.is_none() && k.alg == alg);
    let active = active_of(IdTokenAlg::EdDSA).ok_or_else(|| ApiError::Internal("no active signing key".into()))?;
    let unparsable = |kid: &str| ApiError::Internal(format!("signing key {kid} does not parse"));
    let rsa = match active_of(IdTokenAlg::RS256) {
        Some(k) => Some((k.kid.clone(), RsaKeyPair::from_pkcs8(&k.private_pkcs8).map_err(|_| unparsable(&k.kid))?)),
        None => None,
    };
    let mut verify = HashMap::new();
    let mut keys = Vec::new();
    for k in records {
        // Keep a retired key until the last token it could have signed has expired.
        // Replicas notice a rotation only at their next key refresh and sign with the old key
        // until then, so the window covers that too.
        let published = k.retired_at.is_none_or(|r| r.plus_secs(max_lifetime + PUBLISH_GRACE_SECS) > at);
        if !published {
            continue;
        }
        let bad = |e: jsonwebtoken::errors::Error| ApiError::Internal(format!("bad public key {}: {e}", k.kid));
        let (dk, jwk) = match k.alg {
            IdTokenAlg::EdDSA => {
                let x = URL_SAFE_NO_PAD.encode(&k.public_key);
                let dk = DecodingKey::from_ed_components(&x).map_err(bad)?;
                (dk, Jwk { kty: "OKP".into(), crv: "Ed25519".into(), x, ..jwk(&k.kid, "EdDSA") })
            }
            IdTokenAlg::RS256 => {
                let public = rsa::RsaPublicKey::from_pkcs1_der(&k.public_key).map_err(|_| unparsable(&k.kid))?;
                let n = URL_SAFE_NO_PAD.encode(public.n().to_bytes_be());
                let e = URL_SAFE_NO_PAD.encode(public.e().to_bytes_be());
                let dk = DecodingKey::from_rsa_components(&n, &e).map_err(bad)?;
                (dk, Jwk { kty: "RSA".into(), n, e, ..jwk(&k.kid, "RS256") })
            }
        };
        verify.insert(k.kid.clone(), dk);
        keys.push(jwk);
    }
    Ok(Loaded {
        active_kid: active.kid.clone(),
        active: Ed25519KeyPair::from_pkcs8(&active.private_pkcs8).map_err(|_| unparsable(&active.kid))?,
        rsa,
        verify,
        jwks: JwkSet { keys },
    })
}

/// A published signing key's common members; the key material is filled in by its type.
fn jwk(kid: &str, alg: &str) -> Jwk {
    Jwk {
        kty: String::new(),
        crv: String::new(),
        x: String::new(),
        n: String::new(),
        e: String::new(),
        kid: kid.into(),
        alg: alg.into(),
        use_: "sig".into(),
    }
}
