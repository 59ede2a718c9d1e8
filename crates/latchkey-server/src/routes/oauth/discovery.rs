//! Discovery: RFC 8414 and OIDC metadata (one document), and the JWK Set.

use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use latchkey_proto::oauth::{Discovery, JwkSet};
use latchkey_proto::paths;

/// Scopes this server grants.
pub const SCOPES: &[&str] = latchkey_domain::authorization::SUPPORTED_SCOPES;

/// `GET /.well-known/openid-configuration` and `/.well-known/oauth-authorization-server`.
pub async fn metadata(State(state): State<AppState>) -> Json<Discovery> {
    let c = &state.config;
    Json(Discovery {
        issuer: c.public_url.clone(),
        authorization_endpoint: c.url(paths::AUTHORIZE),
        end_session_endpoint: c.url(paths::END_SESSION),
        device_authorization_endpoint: c.url(paths::DEVICE_AUTHORIZATION),
        token_endpoint: c.url(paths::TOKEN),
        introspection_endpoint: c.url(paths::INTROSPECT),
        revocation_endpoint: c.url(paths::REVOKE),
        userinfo_endpoint: c.url(paths::USERINFO),
        jwks_uri: c.url(paths::JWKS),
        grant_types_supported: vec![
            "authorization_code".into(),
            latchkey_proto::DEVICE_CODE_GRANT.into(),
            "refresh_token".into(),
        ],
        response_types_supported: vec!["code".into()],
        response_modes_supported: vec!["query".into()],
        code_challenge_methods_supported: vec!["S256".into()],
        prompt_values_supported: ["none", "login", "consent", "select_account"].map(String::from).to_vec(),
        claims_supported: ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "amr", "preferred_username"]
            .map(String::from)
            .to_vec(),
        authorization_response_iss_parameter_supported: true,
        request_parameter_supported: false,
        request_uri_parameter_supported: false,
        scopes_supported: SCOPES.iter().map(|s| s.to_string()).collect(),
        token_endpoint_auth_methods_supported: auth_methods(),
        introspection_endpoint_auth_methods_supported: auth_methods(),
        revocation_endpoint_auth_methods_supported: auth_methods(),

        subject_types_supported: vec!["public".into()],
        id_token_signing_alg_values_supported: vec!["EdDSA".into(), "RS256".into()],
        dpop_signing_alg_values_supported: vec!["EdDSA".into(), "ES256".into()],
        latchkey_device_wait_endpoint: c.url(paths::DEVICE_WAIT),
        latchkey_enroll_endpoint: c.url(paths::ENROLL),
    })
}

fn auth_methods() -> Vec<String> {
    ["none", "client_secret_basic", "client_secret_post"].map(String::from).to_vec()
}

/// `GET /oauth/jwks`.
pub async fn jwks(State(state): State<AppState>) -> Json<JwkSet> {
    Json(state.keys.jwks())
}
