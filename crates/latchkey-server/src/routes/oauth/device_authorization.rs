//! RFC 8628 §3.1–3.2: a device asks to sign in and gets its codes.

use super::discovery::SCOPES;
use crate::client_auth::{authenticate, FormCredentials};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ClientIp, Form, UserAgent};
use crate::metrics::{Limit, Outcome};
use crate::routes::no_store;
use crate::state::{now, AppState};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use latchkey_domain::device::{parse_tag, Location};
use latchkey_domain::device_grant::GrantState;
use latchkey_domain::names::DisplayName;
use latchkey_domain::scope::Scope;
use latchkey_domain::secret::{Secret, SecretKind};
use latchkey_domain::slug::Slug;
use latchkey_domain::user_code::UserCode;
use latchkey_proto::oauth::DeviceAuthorization;
use latchkey_store::{DeviceRequest, GrantType, NewDeviceGrant, Requester, StoreError};
use serde::Deserialize;

/// The form body.
#[derive(Deserialize)]
pub struct Params {
    #[serde(flatten)]
    creds: FormCredentials,
    scope: Option<String>,
    /// Latchkey extension: a name for the device, shown to the approver.
    device_name: Option<String>,
    /// Latchkey extension: an explicit slug instead of one derived from the name.
    device_slug: Option<String>,
    /// Latchkey extension: where the device is (`later` to defer).
    device_location: Option<String>,
    /// Latchkey extension: operating system and architecture.
    device_platform: Option<String>,
    /// Latchkey extension: client software version.
    client_version: Option<String>,
}

/// Reads the Latchkey device parameters; a DPoP proof on this request binds the grant to its key.
fn device_request(p: &Params, proof: Option<crate::dpop::VerifiedProof>) -> ApiResult<DeviceRequest> {
    let bad = |what: &str, e: String| ApiError::invalid_request(format!("{what}: {e}"));
    let slug = p
        .device_slug
        .as_deref()
        .map(|s| Slug::parse(s).map(|s| s.to_string()).map_err(|e| bad("device_slug", e.to_string())))
        .transpose()?;
    // A device that says nothing about its location is recorded as "later", visibly;
    // one that sends an empty value is told to choose.
    let location = match p.device_location.as_deref() {
        None => None,
        Some(l) => Location::parse(l).map_err(|e| bad("device_location", e.to_string()))?.name().map(str::to_string),
    };
    let tag = |what: &'static str, v: &Option<String>| {
        parse_tag(what, v.as_deref().unwrap_or("")).map_err(|e| ApiError::invalid_request(e.to_string()))
    };
    Ok(DeviceRequest {
        slug,
        location,
        platform: tag("device_platform", &p.device_platform)?,
        client_version: tag("client_version", &p.client_version)?,
        jkt: proof.as_ref().map(|p| p.jkt.clone()),
        public_jwk: proof.map(|p| p.jwk),
    })
}

/// `POST /oauth/device_authorization`.
pub async fn handle(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    UserAgent(ua): UserAgent,
    headers: HeaderMap,
    Form(p): Form<Params>,
) -> ApiResult<Response> {
    let net = crate::rate_limit::network_key(ip);
    if !state.limits.device_authorization.try_take(&[net.as_str()], now()) {
        state.metrics.rate_limited(Limit::DeviceAuthorization);
        return Err(ApiError::too_many_requests("too many sign-in requests from this network; wait a minute"));
    }
    let app = authenticate(&state, &headers, &p.creds).await?;
    if !app.allows(GrantType::DeviceCode) {
        return Err(ApiError::unauthorized_client(format!(
            "the app {:?} is not allowed to use device login; an admin can enable it",
            app.client_id
        )));
    }
    let scope = Scope::parse(p.scope.as_deref().unwrap_or("")).map_err(|e| ApiError::invalid_scope(e.to_string()))?;
    if let Some(unknown) = scope.iter().find(|s| !SCOPES.contains(s)) {
        return Err(ApiError::invalid_scope(format!("unknown scope {unknown:?}; supported: {}", SCOPES.join(" "))));
    }
    let device_name = p
        .device_name
        .as_deref()
        .map(DisplayName::parse)
        .transpose()
        .map_err(|e| ApiError::invalid_request(format!("device_name: {e}")))?;
    let proof = crate::dpop::verify(
        &state,
        &headers,
        &Method::POST,
        latchkey_proto::paths::DEVICE_AUTHORIZATION,
        None,
        StatusCode::BAD_REQUEST,
    )
    .await?;
    let device = device_request(&p, proof)?;
    let c = &state.config;

    // User codes are stored as an HMAC under the server secret key.
    let secret = state.store.secret_key()?;
    // A user code may collide with a live one (20^8 codes); draw again.
    for _ in 0..4 {
        let t = now();
        let device_code = Secret::generate(SecretKind::DeviceCode, &mut rand::rngs::OsRng);
        let user_code = UserCode::generate(&mut rand::rngs::OsRng);
        let grant = NewDeviceGrant {
            id: uuid::Uuid::now_v7().to_string(),
            client_id: app.client_id.clone(),
            scope: scope.to_string(),
            device_code_hash: device_code.hash(),
            user_code_hash: user_code.stored_hash(&secret),
            state: GrantState::new(t, c.device_code_lifetime_secs(), c.poll_interval_secs()),
            requester: Requester {
                ip: ip.to_string(),
                user_agent: ua.clone(),
                device_name: device_name.as_ref().map(|n| n.to_string()),
            },
            device: device.clone(),
        };
        match state.store.create_device_grant(grant, t).await {
            Ok(()) => {
                state.metrics.device_login(Outcome::Started);
                let verification_uri = c.url(latchkey_proto::VERIFICATION_PATH);
                return Ok(no_store(DeviceAuthorization {
                    device_code: device_code.expose().to_string(),
                    user_code: user_code.to_string(),
                    verification_uri_complete: format!("{verification_uri}?user_code={user_code}"),
                    verification_uri,
                    expires_in: c.device_code_lifetime_secs(),
                    interval: c.poll_interval_secs(),
                }));
            }
            Err(StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Internal("could not draw a unique user code".into()))
}
