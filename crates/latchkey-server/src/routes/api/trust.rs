//! Trust between a user's devices (`/api/v1/trusts`, `/api/v1/devices/{id}/keys`,
//! `/api/v1/device/key`, `/api/v1/device/session-key`).
//!
//! A device signs on its own machine; these routes only store what verifies.

use crate::credential::{AnyApp, Caller, Credential};
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::routes::no_store;
use crate::state::{now, AppState};
use crate::tokens;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use latchkey_domain::trust::PublicKey;
use latchkey_domain::Timestamp;
use latchkey_proto::trust::{
    DeviceKeys, KeyRotation, RotateKeyRequest, SessionKey, TrustInfo, TrustList, TrustRequest,
};
use latchkey_store::{Actor, DeviceId, DeviceKeysRecord, NewTrust, RotateKey, SessionKeyRecord, TrustRecord, UserId};

/// The calling device, when it acts with its own key-bound token: trust and
/// sessions are signed with device keys, so nothing else may act here.
pub fn calling_device(who: &Caller<AnyApp>) -> ApiResult<&str> {
    match &who.credential {
        Credential::Device { claims } if claims.cnf.is_some() => claims.device_id.as_deref().ok_or_else(refused),
        _ => Err(refused()),
    }
}

fn refused() -> ApiError {
    ApiError::credential_refused(
        "only a device acting with its own key-bound (DPoP) token can do this; log in with `latchkey login` first",
    )
}

/// How the API shows a device's keys.
pub fn keys_info(k: DeviceKeysRecord) -> ApiResult<DeviceKeys> {
    let public_key =
        k.public_key.ok_or_else(|| ApiError::not_found("this device has no key; it cannot take part in trust"))?;
    let fingerprint = PublicKey::from_b64(&public_key).map(|p| p.fingerprint().to_string()).unwrap_or_default();
    Ok(DeviceKeys {
        device_id: k.device.id,
        name: k.device.display_name,
        slug: k.device.slug,
        status: k.device.status.as_str().into(),
        public_key,
        fingerprint,
        session_key: k.session_key.map(|s| SessionKey { protocol: s.protocol, key: s.key, signature: s.signature }),
        rotations: k
            .rotations
            .into_iter()
            .map(|r| KeyRotation { old: r.old_key, new: r.new_key, signature: r.signature })
            .collect(),
    })
}

/// How the API and the Devices page show a trust statement.
pub fn trust_info(t: TrustRecord) -> TrustInfo {
    let trustee_fingerprint =
        PublicKey::from_b64(&t.trustee_key).map(|p| p.fingerprint().to_string()).unwrap_or_default();
    TrustInfo {
        truster: t.truster,
        truster_name: t.truster_name,
        trustee: t.trustee,
        trustee_name: t.trustee_name,
        trustee_fingerprint,
        created_at_ms: t.created_at.as_millis(),
        holds: t.holds,
    }
}

/// `GET /api/v1/devices/{id}/keys`: another device's keys, to compare and seal to.
pub async fn device_keys(
    State(state): State<AppState>,
    who: Caller<AnyApp>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<DeviceKeys>> {
    let found = state.store.device_keys(UserId(&who.user.id), DeviceId(&id)).await?;
    let found = found.ok_or_else(|| ApiError::not_found(format!("you have no device {id:?}")))?;
    Ok(axum::Json(keys_info(found)?))
}

/// `PUT /api/v1/device/session-key`: the calling device publishes the key sessions are sealed to.
pub async fn publish_session_key(
    State(state): State<AppState>,
    who: Caller<AnyApp>,
    Json(req): Json<SessionKey>,
) -> ApiResult<StatusCode> {
    let device = calling_device(&who)?;
    let key =
        SessionKeyRecord { protocol: req.protocol, key: req.key, signed_by: String::new(), signature: req.signature };
    state.store.publish_session_key(UserId(&who.user.id), DeviceId(device), key, now()).await??;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/trusts`: every trust statement between the user's devices.
pub async fn list(State(state): State<AppState>, who: Caller<AnyApp>) -> ApiResult<axum::Json<TrustList>> {
    let trusts = state.store.trusts(UserId(&who.user.id)).await?;
    Ok(axum::Json(TrustList { trusts: trusts.into_iter().map(trust_info).collect() }))
}

/// `POST /api/v1/trusts`: the calling device's signed trust in another device.
pub async fn add(
    State(state): State<AppState>,
    who: Caller<AnyApp>,
    Json(req): Json<TrustRequest>,
) -> ApiResult<Response> {
    let device = calling_device(&who)?;
    let trust = NewTrust {
        user_id: who.user.id.clone(),
        truster: device.to_string(),
        trustee: req.trustee,
        trustee_key: req.trustee_key,
        issued_at: Timestamp::from_millis(req.issued_at_ms),
        signature: req.signature,
    };
    let stored = state.store.add_trust(trust, now()).await??;
    Ok((StatusCode::CREATED, axum::Json(trust_info(stored))).into_response())
}

/// `DELETE /api/v1/trusts/{id}`: the calling device no longer trusts device `id`.
pub async fn remove(
    State(state): State<AppState>,
    who: Caller<AnyApp>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let device = calling_device(&who)?;
    remove_statement(&state, &who.user.id, device, &id).await
}

/// Removes one statement of the user's devices (the API and the Devices page).
pub async fn remove_statement(state: &AppState, user_id: &str, truster: &str, trustee: &str) -> ApiResult<StatusCode> {
    let removed =
        state.store.remove_trust(UserId(user_id), DeviceId(truster), DeviceId(trustee), Actor(user_id), now()).await?;
    if removed {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("device {truster:?} has no trust in {trustee:?} to remove")))
    }
}

/// `POST /api/v1/device/key`: the calling device replaces its key; answered
/// with tokens bound to the new key (the old ones end at once).
pub async fn rotate(
    State(state): State<AppState>,
    who: Caller<AnyApp>,
    Json(req): Json<RotateKeyRequest>,
) -> ApiResult<Response> {
    let device = calling_device(&who)?.to_string();
    let Credential::Device { claims } = &who.credential else { return Err(refused()) };
    let new_jkt = latchkey_domain::dpop::thumbprint(&req.public_jwk)
        .map_err(|e| ApiError::invalid_request(format!("public_jwk: {e}")))?;
    let new_key = PublicKey::from_jwk(&req.public_jwk)
        .map_err(|e| ApiError::invalid_request(format!("public_jwk: {e}")))?
        .to_b64();
    let t = now();
    let (refresh, mint) = tokens::new_family(&state, t, true);
    let rotate = RotateKey {
        user_id: who.user.id.clone(),
        device_id: device,
        new_jwk: req.public_jwk.to_string(),
        new_jkt,
        new_key,
        chain_signature: req.chain_signature,
        client_id: claims.client_id.clone(),
        scope: claims.scope.clone(),
        mint,
    };
    let subject = state.store.rotate_device_key(rotate, t).await??;
    Ok(no_store(tokens::respond(&state, &subject, refresh, t)?))
}
