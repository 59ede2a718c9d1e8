//! Minting and checking the tokens handed to apps.
//!
//! Access tokens are JWTs (RFC 9068 `at+jwt`) carrying `sid`, the refresh
//! family they belong to, so revoking the family stops them at once wherever
//! Latchkey checks them (introspection, userinfo), not only at expiry.

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use latchkey_domain::secret::{Secret, SecretKind};
use latchkey_domain::Timestamp;
use latchkey_proto::oauth::TokenResponse;
use latchkey_store::{MintRefresh, TokenSubject};
use serde::{Deserialize, Serialize};

/// `typ` header of access tokens (RFC 9068).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer.
    pub iss: String,
    /// User ID.
    pub sub: String,
    /// Audience: the app.
    pub aud: String,
    /// The app (RFC 9068).
    pub client_id: String,
    /// Expiry (seconds).
    pub exp: i64,
    /// Issued at (seconds).
    pub iat: i64,
    /// Unique token ID.
    pub jti: String,
    /// Granted scope.
    pub scope: String,
    /// Refresh family; revoked families invalidate their access tokens.
    pub sid: String,
    /// The user's sign-in name.
    pub preferred_username: String,
}

#[derive(Serialize)]
struct IdClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
    iat: i64,
    auth_time: i64,
    preferred_username: &'a str,
}

/// A fresh refresh token and the record to store for it.
pub fn new_refresh(state: &AppState, now: Timestamp) -> (Secret, MintRefresh) {
    let secret = Secret::generate(SecretKind::RefreshToken, &mut rand::rngs::OsRng);
    let mint = MintRefresh {
        token_hash: secret.hash(),
        new_family_id: uuid::Uuid::now_v7().to_string(),
        expires_at: now.plus_secs(state.config.refresh_token_lifetime_secs),
    };
    (secret, mint)
}

/// Builds the token response for `subject`; `refresh` is included when the app may refresh.
pub fn respond(
    state: &AppState,
    subject: &TokenSubject,
    refresh: Option<Secret>,
    now: Timestamp,
) -> ApiResult<TokenResponse> {
    let lifetime = state.config.access_token_lifetime_secs;
    let iss = &state.config.public_url;
    let claims = AccessClaims {
        iss: iss.clone(),
        sub: subject.user_id.clone(),
        aud: subject.client_id.clone(),
        client_id: subject.client_id.clone(),
        exp: now.as_secs() + lifetime,
        iat: now.as_secs(),
        jti: uuid::Uuid::new_v4().to_string(),
        scope: subject.scope.clone(),
        sid: subject.family_id.clone(),
        preferred_username: subject.username.clone(),
    };
    let access_token = state.keys.sign(&claims, ACCESS_TOKEN_TYP)?;
    let scopes: Vec<&str> = subject.scope.split(' ').collect();
    let id_token = if scopes.contains(&"openid") {
        let id = IdClaims {
            iss,
            sub: &subject.user_id,
            aud: &subject.client_id,
            exp: now.as_secs() + lifetime,
            iat: now.as_secs(),
            auth_time: subject.auth_time.as_secs(),
            preferred_username: &subject.username,
        };
        Some(state.keys.sign(&id, "JWT")?)
    } else {
        None
    };
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer".into(),
        expires_in: lifetime,
        refresh_token: refresh.map(|s| s.expose().to_string()),
        scope: (!subject.scope.is_empty()).then(|| subject.scope.clone()),
        id_token,
    })
}

/// Verifies an access token: signature, expiry, issuer, and that its family is alive.
pub async fn verify_access(state: &AppState, token: &str) -> ApiResult<Option<AccessClaims>> {
    let Some(claims) =
        state
            .keys
            .verify::<AccessClaims>(token, &state.config.public_url, ACCESS_TOKEN_TYP)
    else {
        return Ok(None);
    };
    if !state.store.family_active(&claims.sid).await? {
        return Ok(None);
    }
    Ok(Some(claims))
}

/// Reads `Authorization: Bearer <token>`.
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    let v = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Maps a missing or invalid bearer token to RFC 6750's `invalid_token`.
pub fn require<T>(v: Option<T>) -> ApiResult<T> {
    v.ok_or_else(|| ApiError::invalid_token("the access token is missing, expired or revoked"))
}
