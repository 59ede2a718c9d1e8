//! `POST /api/v1/enroll`: a machine that can never open a browser provisions
//! itself with an enrollment key.

use super::devices::info;
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::routes::no_store;
use crate::state::{now, AppState};
use crate::tokens;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use latchkey_domain::device::{parse_tag, Location};
use latchkey_domain::names::DisplayName;
use latchkey_domain::scope::Scope;
use latchkey_domain::secret::SecretHash;
use latchkey_domain::slug::Slug;
use latchkey_proto::api::{EnrollRequest, EnrollResponse};
use latchkey_store::{DeviceRequest, Enroll, Enrolled};

fn bad(e: impl std::fmt::Display) -> ApiError {
    ApiError::invalid_request(e.to_string())
}

/// `POST /api/v1/enroll`: provision a device with an enrollment key, no browser.
/// A DPoP proof on the request binds the device and its tokens to the proof's key.
pub async fn enroll(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(req): Json<EnrollRequest>,
) -> ApiResult<Response> {
    let proof = crate::dpop::verify(
        &state,
        &headers,
        &Method::POST,
        latchkey_proto::paths::ENROLL,
        None,
        StatusCode::BAD_REQUEST,
    )
    .await?;
    let name = DisplayName::parse(&req.name).map_err(|e| bad(format!("name: {e}")))?;
    let location = Location::parse(&req.location).map_err(bad)?;
    let slug = req.slug.as_deref().map(Slug::parse).transpose().map_err(|e| bad(format!("slug: {e}")))?;
    let scope = Scope::parse(&req.scope).map_err(|e| ApiError::invalid_scope(e.to_string()))?;
    if let Some(unknown) = scope.iter().find(|s| !crate::routes::oauth::discovery::SCOPES.contains(s)) {
        return Err(ApiError::invalid_scope(format!("unknown scope {unknown:?}")));
    }
    if req.enrollment_key.len() > 128 {
        return Err(ApiError::invalid_grant("unknown enrollment key"));
    }
    let cli = state.store.app(latchkey_store::AppId(latchkey_proto::CLI_CLIENT_ID)).await?;
    let cli = cli.ok_or_else(|| ApiError::Internal("the built-in app latchkey-cli is missing".into()))?;
    crate::dpop::required_by(&cli, proof.as_ref().map(|p| p.jkt.clone()))?;
    let t = now();
    let (refresh, mint) = tokens::new_family(&state, t, true);
    let enroll = Enroll {
        key_hash: SecretHash::of(&req.enrollment_key),
        device_id: uuid::Uuid::now_v7().to_string(),
        name: name.to_string(),
        device: DeviceRequest {
            slug: slug.map(|s| s.to_string()),
            location: location.name().map(str::to_string),
            platform: parse_tag("platform", &req.platform).map_err(bad)?,
            client_version: parse_tag("client_version", &req.client_version).map_err(bad)?,
            jkt: proof.as_ref().map(|p| p.jkt.clone()),
            public_jwk: proof.map(|p| p.jwk),
        },
        client_id: latchkey_proto::CLI_CLIENT_ID.into(),
        scope: scope.to_string(),
        mint,
        device_cap: state.config.device_cap,
    };
    match state.store.enroll_device(enroll, t).await? {
        Enrolled::Tokens { subject, device } => {
            let tokens = tokens::respond(&state, &subject, refresh, t)?;
            let device = info(*device, subject.device_id.as_deref());
            Ok(no_store(EnrollResponse { tokens, device }))
        }
        Enrolled::Unknown => Err(ApiError::invalid_grant("unknown enrollment key; check it, or ask for a new one")),
        Enrolled::Refused(e) => Err(ApiError::invalid_grant(e.to_string())),
        Enrolled::AccountStopped(r) => {
            Err(ApiError::invalid_grant(format!("the key's owner cannot enroll devices: {r}")))
        }
        Enrolled::DeviceLimit(cap) => Err(ApiError::conflict(format!(
            "the key's owner already has {cap} active devices, the most allowed; revoke one first"
        ))),
        Enrolled::SlugTaken(s) => Err(ApiError::conflict(format!(
            "another device of this owner is already called {s:?}; choose another --slug"
        ))),
    }
}
