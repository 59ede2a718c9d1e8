//! The verifiable audit log over HTTP (`/api/v1/audit/...`): the latest signed
//! checkpoint, the keys that sign it, consistency proofs between sizes (all
//! public, like a JWK set: they reveal sizes and hashes, not entries), and
//! inclusion proofs for the caller's own entries (admins: any entry).

use crate::audit_log;
use crate::credential::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::Query;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use latchkey_domain::merkle::{Hash, ProofError};
use latchkey_proto::api::{AuditConsistency, AuditInclusion, AuditKeys};
use serde::Deserialize;

fn b64(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(|h| B64.encode(h)).collect()
}

/// The latest signed checkpoint's size and text, or 503 before the first seal.
async fn latest(state: &AppState) -> ApiResult<(u64, String)> {
    let tree = state.store.audit_tree().await?;
    let note = tree.checkpoint.ok_or_else(|| {
        ApiError::unavailable("the audit log has no checkpoint yet: the first one is signed within a second of start")
    })?;
    Ok((tree.size, note))
}

fn proof_refused(e: ProofError) -> ApiError {
    ApiError::invalid_request(format!("no such proof: {e}"))
}

/// `GET /api/v1/audit/checkpoint`: the signed note, as `text/plain`.
pub async fn checkpoint(State(state): State<AppState>) -> ApiResult<Response> {
    let (_, note) = latest(&state).await?;
    let mut resp = note.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(resp)
}

/// `GET /api/v1/audit/keys`: the verifier keys that sign checkpoints now.
pub async fn keys(State(state): State<AppState>) -> ApiResult<Json<AuditKeys>> {
    let keys = state.store.audit_keys().await?;
    let origin = keys.first().map(|k| k.name.clone()).unwrap_or_default();
    Ok(Json(AuditKeys { origin, keys: audit_log::verifiers(&keys).iter().map(|v| v.to_vkey()).collect() }))
}

/// Query of the consistency proof.
#[derive(Deserialize)]
pub struct ConsistencyQuery {
    old: u64,
    new: Option<u64>,
}

/// `GET /api/v1/audit/consistency?old=N[&new=M]`: the tree of `new` (default: the
/// latest checkpoint's size) only added leaves to the tree of `old`.
pub async fn consistency(
    State(state): State<AppState>,
    Query(q): Query<ConsistencyQuery>,
) -> ApiResult<Json<AuditConsistency>> {
    // Read first, so the proof is never for a larger tree than the checkpoint sent with it.
    let (size, note) = latest(&state).await?;
    let (new_size, hashes) =
        state.store.audit_consistency(q.old, Some(q.new.unwrap_or(size))).await?.map_err(proof_refused)?;
    Ok(Json(AuditConsistency { old_size: q.old, new_size, hashes: b64(&hashes), checkpoint: note }))
}

/// Query of the inclusion proof.
#[derive(Deserialize)]
pub struct InclusionQuery {
    seq: i64,
    size: Option<u64>,
}

/// `GET /api/v1/audit/inclusion?seq=S[&size=N]`: where the entry sits in the
/// signed tree. Only for entries the caller may read; 404 otherwise, and 409
/// while the entry waits for its seal.
pub async fn inclusion(
    State(state): State<AppState>,
    who: Caller,
    Query(q): Query<InclusionQuery>,
) -> ApiResult<Json<AuditInclusion>> {
    let entry = state.store.audit_entries(q.seq.saturating_sub(1), 1).await?.into_iter().find(|e| e.seq == q.seq);
    let mine = |e: &latchkey_domain::audit::AuditEntry| {
        who.user.is_admin || e.actor.as_deref() == Some(&who.user.id) || e.subject.as_deref() == Some(&who.user.id)
    };
    let Some(entry) = entry.filter(mine) else {
        return Err(ApiError::not_found("no audit entry of yours has that number"));
    };
    let (size, note) = latest(&state).await?;
    let proofs =
        state.store.audit_inclusions(vec![entry.seq], Some(q.size.unwrap_or(size))).await?.map_err(proof_refused)?;
    let Some(p) = proofs.into_iter().next() else {
        return Err(ApiError::conflict(
            "that entry is not sealed into the tree of that size yet; ask again in a second",
        ));
    };
    Ok(Json(AuditInclusion {
        seq: p.seq,
        leaf: p.leaf,
        tree_size: p.size,
        leaf_hash: B64.encode(p.leaf_hash),
        hashes: b64(&p.hashes),
        checkpoint: note,
    }))
}
