//! DPoP proofs (RFC 9449) on requests: signature checked here with the key the
//! proof carries, everything else by `latchkey_domain::dpop`.

use crate::error::{ApiError, ApiResult};
use crate::state::{now, AppState};
use axum::http::{HeaderMap, Method, StatusCode};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use latchkey_domain::dpop::{self, DpopError, Expected, ProofClaims};
use sha2::{Digest, Sha256};

/// A proof that verified: the key it was signed with.
#[derive(Debug, Clone)]
pub struct VerifiedProof {
    /// RFC 7638 thumbprint of the proof's key.
    pub jkt: String,
    /// The public key as JWK JSON text.
    pub jwk: String,
}

/// The error RFC 9449 §7.1 names, with the status the endpoint kind calls for.
pub fn invalid_proof(e: DpopError, status: StatusCode) -> ApiError {
    ApiError::Protocol { status, code: "invalid_dpop_proof", description: e.to_string() }
}

/// The key behind a token request's proof, refusing a request without one when
/// `app` requires DPoP: every token such an app gets is bound to a key.
pub fn required_by(app: &latchkey_store::AppRecord, jkt: Option<String>) -> ApiResult<Option<String>> {
    if app.require_dpop && jkt.is_none() {
        return Err(ApiError::invalid_dpop_proof(format!(
            "the app {:?} requires DPoP: send a DPoP proof (RFC 9449) signed by the device's key with this request",
            app.client_id
        )));
    }
    Ok(jkt)
}

/// A proof whose signature and claims checked out, not yet recorded as used.
#[derive(Debug, Clone)]
pub struct CheckedProof {
    /// What it proves.
    pub proof: VerifiedProof,
    jti: String,
    checked_at: latchkey_domain::Timestamp,
    status: StatusCode,
}

/// Verifies the request's `DPoP` header, if it has one, and records it as used
/// (a replay is refused). `access_token` is the token the proof must name
/// (`ath`) at resource endpoints. `status` is what a bad proof answers: 400 at
/// the token endpoint, 401 at resources.
pub async fn verify(
    state: &AppState,
    headers: &HeaderMap,
    method: &Method,
    path: &str,
    access_token: Option<&str>,
    status: StatusCode,
) -> ApiResult<Option<VerifiedProof>> {
    match check(state, headers, method, path, access_token, status)? {
        Some(checked) => Ok(Some(record(state, checked).await?)),
        None => Ok(None),
    }
}

/// Verifies the request's `DPoP` header, if it has one, without recording it:
/// the caller must [`record`] it before acting on the request.
pub fn check(
    state: &AppState,
    headers: &HeaderMap,
    method: &Method,
    path: &str,
    access_token: Option<&str>,
    status: StatusCode,
) -> ApiResult<Option<CheckedProof>> {
    let mut values = headers.get_all("dpop").iter();
    let Some(value) = values.next() else { return Ok(None) };
    let bad = |e: DpopError| invalid_proof(e, status);
    if values.next().is_some() {
        return Err(bad(DpopError::Malformed("send exactly one DPoP header".into())));
    }
    let proof = value.to_str().map_err(|_| bad(DpopError::Malformed("the header is not text".into())))?;
    if proof.len() > 4096 {
        return Err(bad(DpopError::Malformed("the proof is too long".into())));
    }
    let header = jsonwebtoken::decode_header(proof).map_err(|e| bad(DpopError::Malformed(e.to_string())))?;
    if header.typ.as_deref() != Some("dpop+jwt") {
        return Err(bad(DpopError::Malformed("typ must be dpop+jwt".into())));
    }
    if !matches!(header.alg, Algorithm::EdDSA | Algorithm::ES256) {
        return Err(bad(DpopError::Malformed("alg must be EdDSA or ES256".into())));
    }
    let jwk = header.jwk.ok_or_else(|| bad(DpopError::Malformed("the proof carries no jwk".into())))?;
    let jwk_json = serde_json::to_value(&jwk).map_err(|e| bad(DpopError::Malformed(e.to_string())))?;
    let jkt = dpop::thumbprint(&jwk_json).map_err(bad)?;
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| bad(DpopError::Malformed(format!("unusable key: {e}"))))?;
    let mut v = Validation::new(header.alg);
    v.validate_exp = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<ProofClaims>(proof, &key, &v)
        .map_err(|e| bad(DpopError::Malformed(format!("signature or claims: {e}"))))?
        .claims;
    let t = now();
    let url = state.config.url(path);
    dpop::check(&claims, &Expected { method: method.as_str(), url: &url, access_token, now: t }).map_err(bad)?;
    Ok(Some(CheckedProof {
        proof: VerifiedProof { jkt, jwk: jwk_json.to_string() },
        jti: claims.jti,
        checked_at: t,
        status,
    }))
}

/// Records a checked proof as used; `Err(Replayed)` when it was already. The
/// memory admit and the database insert are each atomic (one lock, one
/// primary key), so of two requests racing with the same proof exactly one
/// gets past this call.
pub async fn record(state: &AppState, checked: CheckedProof) -> ApiResult<VerifiedProof> {
    let CheckedProof { proof, jti, checked_at: t, status } = checked;
    let bad = |e: DpopError| invalid_proof(e, status);
    state.dpop_replay.lock().unwrap_or_else(|p| p.into_inner()).admit(&proof.jkt, &jti, t).map_err(bad)?;
    if state.store.shared_by_processes() {
        // Another replica may have seen it: the database remembers for all of them.
        let key: [u8; 32] = Sha256::digest(format!("dpop:{}:{jti}", proof.jkt)).into();
        let until = t.plus_secs(dpop::MAX_AGE_SECS + dpop::MAX_SKEW_SECS);
        if !state.store.first_use(key, until, t).await? {
            return Err(bad(DpopError::Replayed));
        }
    }
    Ok(proof)
}
