//! Ed25519 signing keys: made on first start, kept in the store (so replicas
//! share them), published at `jwks_uri`, rotated by `latchkey admin keys rotate`.
//!
//! A retired key stays published until every token it signed has expired.

use crate::error::ApiError;
use crate::state::now;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use latchkey_domain::Timestamp;
use latchkey_proto::oauth::{Jwk, JwkSet};
use latchkey_store::{SigningKeyRecord, Store, StoreError};
use ring::signature::{Ed25519KeyPair, KeyPair};
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
    })
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
        if !records.iter().any(|k| k.retired_at.is_none()) {
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

    /// Signs `claims` with the active key; `typ` goes in the header (`at+jwt` for access tokens).
    pub fn sign<C: Serialize>(&self, claims: &C, typ: &str) -> Result<String, ApiError> {
        let k = self.current();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(k.active_kid.clone());
        header.typ = Some(typ.to_string());
        let fail = |e: serde_json::Error| ApiError::Internal(format!("signing failed: {e}"));
        // RFC 7515 compact serialisation: base64url(header) "." base64url(claims) "." base64url(signature).
        let mut out = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).map_err(fail)?);
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).map_err(fail)?));
        let sig = k.active.sign(out.as_bytes());
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(sig.as_ref()));
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
        let header = jsonwebtoken::decode_header(token).ok()?;
        if header.alg != Algorithm::EdDSA || header.typ.as_deref() != Some(typ) {
            return None;
        }
        let k = self.current();
        let key = k.verify.get(header.kid.as_deref()?)?;
        let mut v = Validation::new(Algorithm::EdDSA);
        v.set_issuer(&[issuer]);
        v.validate_aud = false;
        v.validate_exp = expiry;
        if !expiry {
            v.required_spec_claims.remove("exp");
        }
        v.leeway = 0;
        jsonwebtoken::decode::<C>(token, key, &v).ok().map(|d| d.claims)
    }
}

fn build(records: &[SigningKeyRecord], at: Timestamp, max_lifetime: i64) -> Result<Loaded, ApiError> {
    let active = records
        .iter()
        .find(|k| k.retired_at.is_none())
        .ok_or_else(|| ApiError::Internal("no active signing key".into()))?;
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
        let x = URL_SAFE_NO_PAD.encode(&k.public_key);
        let dk = DecodingKey::from_ed_components(&x).map_err(|e| ApiError::Internal(format!("bad public key: {e}")))?;
        verify.insert(k.kid.clone(), dk);
        keys.push(Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x,
            kid: k.kid.clone(),
            alg: "EdDSA".into(),
            use_: "sig".into(),
        });
    }
    Ok(Loaded {
        active_kid: active.kid.clone(),
        active: Ed25519KeyPair::from_pkcs8(&active.private_pkcs8)
            .map_err(|_| ApiError::Internal(format!("signing key {} does not parse", active.kid)))?,
        verify,
        jwks: JwkSet { keys },
    })
}
