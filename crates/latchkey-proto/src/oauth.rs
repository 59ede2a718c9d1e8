//! Standard OAuth 2.0 / OIDC bodies (RFC 6749, 7662, 8414, 8628; OIDC Discovery).

use serde::{Deserialize, Serialize};

/// RFC 6749 §5.2 error body (also used by RFC 8628, 7009 and 7662).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    /// The error code, e.g. `authorization_pending`.
    pub error: String,
    /// Human-readable explanation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

/// RFC 8628 §3.2 device authorization response.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DeviceAuthorization {
    /// Secret the device polls with.
    pub device_code: String,
    /// Short code the person types, shown as `XXXX-XXXX`.
    pub user_code: String,
    /// Page where the person enters the code.
    pub verification_uri: String,
    /// The same page with the code filled in (for QR codes and links).
    pub verification_uri_complete: String,
    /// Seconds until both codes expire.
    pub expires_in: i64,
    /// Seconds to wait between polls.
    pub interval: i64,
}

/// RFC 6749 §5.1 successful token response.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenResponse {
    /// A signed JWT (EdDSA).
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Opaque, single-use refresh token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Granted scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// OIDC ID token, when `openid` was granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

/// RFC 7662 introspection response.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Introspection {
    /// Whether the token is currently valid.
    pub active: bool,
    /// Granted scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// App the token was issued to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The user's sign-in name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// `access_token` or `refresh_token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// Expiry, seconds since epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Issue time, seconds since epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// The user's ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Audience (the client ID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// Issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Key binding (RFC 9449 §6.2): the token only works with proofs from this key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// RFC 7800 confirmation claim, as used by DPoP.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Confirmation {
    /// RFC 7638 thumbprint of the bound key.
    pub jkt: String,
}

/// OIDC `userinfo` response.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserInfo {
    /// Stable user ID.
    pub sub: String,
    /// Sign-in name.
    pub preferred_username: String,
}

/// Authorization server metadata (RFC 8414) and OIDC discovery, one document for both.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Discovery {
    /// The issuer (the server's public URL).
    pub issuer: String,
    /// OIDC authorization endpoint (authorization code with PKCE).
    pub authorization_endpoint: String,
    /// OIDC RP-initiated logout endpoint.
    pub end_session_endpoint: String,
    /// RFC 8628 device authorization endpoint.
    pub device_authorization_endpoint: String,
    /// Token endpoint.
    pub token_endpoint: String,
    /// RFC 7662 introspection endpoint.
    pub introspection_endpoint: String,
    /// RFC 7009 revocation endpoint.
    pub revocation_endpoint: String,
    /// OIDC userinfo endpoint.
    pub userinfo_endpoint: String,
    /// Public signing keys.
    pub jwks_uri: String,
    /// Grant types this server supports.
    pub grant_types_supported: Vec<String>,
    /// Response types: `code` only (no implicit or hybrid flows, RFC 9700).
    pub response_types_supported: Vec<String>,
    /// Response modes: `query` only.
    pub response_modes_supported: Vec<String>,
    /// PKCE methods (RFC 7636): `S256` only, required of every app.
    pub code_challenge_methods_supported: Vec<String>,
    /// `prompt` values understood.
    pub prompt_values_supported: Vec<String>,
    /// Claims ID tokens and userinfo can carry.
    pub claims_supported: Vec<String>,
    /// RFC 9207: authorization responses carry `iss`.
    pub authorization_response_iss_parameter_supported: bool,
    /// `request` objects are not accepted.
    pub request_parameter_supported: bool,
    /// `request_uri` is not accepted.
    pub request_uri_parameter_supported: bool,
    /// Scopes this server knows.
    pub scopes_supported: Vec<String>,
    /// Client authentication methods at the token endpoint.
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// Client authentication at the introspection endpoint (RFC 8414); `none` lets public apps check their own tokens.
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    /// Client authentication at the revocation endpoint (RFC 8414); `none` lets public apps revoke at logout.
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    /// Subject identifier types (OIDC).
    pub subject_types_supported: Vec<String>,
    /// ID token signing algorithms (OIDC).
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// DPoP algorithms accepted (RFC 9449 §5.1).
    pub dpop_signing_alg_values_supported: Vec<String>,
    /// Latchkey extension: the instant-approval endpoint, which answers as soon as a device grant is decided.
    pub latchkey_device_wait_endpoint: String,
    /// Latchkey extension: enrollment with a key, for machines that cannot open a browser.
    pub latchkey_enroll_endpoint: String,
}

/// One public key in a JWK Set (RFC 7517, OKP keys per RFC 8037).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Jwk {
    /// Key type: `OKP` (Ed25519) or `RSA`.
    pub kty: String,
    /// Curve: `Ed25519` (OKP keys).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub crv: String,
    /// Public key, base64url (OKP keys).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub x: String,
    /// Modulus, base64url (RSA keys).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub n: String,
    /// Public exponent, base64url (RSA keys).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub e: String,
    /// Key ID, as in JWT headers.
    pub kid: String,
    /// Algorithm: `EdDSA` or `RS256`.
    pub alg: String,
    /// Use: `sig`.
    #[serde(rename = "use")]
    pub use_: String,
}

/// A JWK Set (RFC 7517 §5).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct JwkSet {
    /// The keys.
    pub keys: Vec<Jwk>,
}
