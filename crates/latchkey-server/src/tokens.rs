//! Minting and checking the tokens handed to apps.
//!
//! Access tokens are JWTs (RFC 9068 `at+jwt`) carrying `sid`, the refresh
//! family they belong to, so revoking the family stops them at once wherever
//! Latchkey checks them (introspection, userinfo), not only at expiry.

use crate::dpop;
use crate::error::{ApiError, ApiResult};
use crate::state::{now, AppState};
use axum::http::{HeaderMap, Method, StatusCode};
use latchkey_domain::secret::{Secret, SecretKind};
use latchkey_domain::Timestamp;
use latchkey_proto::oauth::{Confirmation, TokenResponse};
use latchkey_store::FamilyId;
use latchkey_store::{MintRefresh, NewRefreshToken, TokenSubject};
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
    /// The device these tokens belong to (Latchkey claim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    /// DPoP key binding (RFC 9449 §6.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    amr: &'a [String],
}

/// What only the first ID token of a web sign-in carries (OIDC Core §2):
/// the authorization request's `nonce` and how the person authenticated.
#[derive(Debug, Clone, Default)]
pub struct IdTokenExtras {
    /// The authorization request's `nonce`.
    pub nonce: Option<String>,
    /// Authentication methods (RFC 8176), such as `pwd`.
    pub amr: Vec<String>,
    /// How the app wants its ID tokens signed.
    pub alg: latchkey_store::IdTokenAlg,
}

/// What ID tokens for `app` need: its signing algorithm, with an RSA key made
/// first if it is the first RS256 app to sign anyone in.
pub async fn extras_for(state: &AppState, app: &latchkey_store::AppRecord) -> ApiResult<IdTokenExtras> {
    if app.id_token_alg == latchkey_store::IdTokenAlg::RS256 {
        state.keys.ensure_rsa(state.store.as_ref()).await?;
    }
    Ok(IdTokenExtras { alg: app.id_token_alg, ..IdTokenExtras::default() })
}

/// A fresh refresh token and the record to store for it.
pub fn new_refresh_token(state: &AppState, now: Timestamp) -> (Secret, NewRefreshToken) {
    let secret = Secret::generate(SecretKind::RefreshToken, &mut rand::rngs::OsRng);
    let token = NewRefreshToken {
        token_hash: secret.hash(),
        expires_at: now.plus_secs(state.config.refresh_token_lifetime_secs()),
    };
    (secret, token)
}

/// A new sign-in's token family, with a refresh token only when one is
/// delivered: nothing is stored that nobody could ever present.
pub fn new_family(state: &AppState, now: Timestamp, with_refresh: bool) -> (Option<Secret>, MintRefresh) {
    let (secret, refresh) = match with_refresh {
        true => {
            let (secret, token) = new_refresh_token(state, now);
            (Some(secret), Some(token))
        }
        false => (None, None),
    };
    (secret, MintRefresh { new_family_id: uuid::Uuid::now_v7().to_string(), refresh })
}

/// Builds the token response for `subject`; `refresh` is included when the app may refresh.
pub fn respond(
    state: &AppState,
    subject: &TokenSubject,
    refresh: Option<Secret>,
    now: Timestamp,
) -> ApiResult<TokenResponse> {
    respond_with(state, subject, refresh, now, &IdTokenExtras::default())
}

/// [`respond`], with what the ID token of a redeemed authorization code also carries.
pub fn respond_with(
    state: &AppState,
    subject: &TokenSubject,
    refresh: Option<Secret>,
    now: Timestamp,
    extras: &IdTokenExtras,
) -> ApiResult<TokenResponse> {
    let lifetime = state.config.access_token_lifetime_secs();
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
        device_id: subject.device_id.clone(),
        cnf: subject.jkt.clone().map(|jkt| Confirmation { jkt }),
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
            nonce: extras.nonce.as_deref(),
            amr: &extras.amr,
        };
        Some(state.keys.sign_with(&id, "JWT", extras.alg)?)
    } else {
        None
    };
    Ok(TokenResponse {
        access_token,
        token_type: if subject.jkt.is_some() { "DPoP" } else { "Bearer" }.into(),
        expires_in: lifetime,
        refresh_token: refresh.map(|s| s.expose().to_string()),
        scope: (!subject.scope.is_empty()).then(|| subject.scope.clone()),
        id_token,
    })
}

/// Verifies an access token: signature, expiry, issuer, and that its family is alive.
pub async fn verify_access(state: &AppState, token: &str) -> ApiResult<Option<AccessClaims>> {
    let Some(claims) = state.keys.verify::<AccessClaims>(token, &state.config.public_url, ACCESS_TOKEN_TYP) else {
        return Ok(None);
    };
    if !state.store.family_active(FamilyId(&claims.sid), now()).await? {
        return Ok(None);
    }
    Ok(Some(claims))
}

/// How a token was presented in `Authorization`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `Bearer` (RFC 6750).
    Bearer,
    /// `DPoP` (RFC 9449 §7.1): a proof must come along.
    Dpop,
}

/// Reads `Authorization: Bearer <token>` or `Authorization: DPoP <token>`.
pub fn authorization(headers: &HeaderMap) -> Option<(Scheme, &str)> {
    let v = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        Scheme::Bearer
    } else if scheme.eq_ignore_ascii_case("dpop") {
        Scheme::Dpop
    } else {
        return None;
    };
    Some((scheme, token.trim())).filter(|(_, t)| !t.is_empty())
}

/// Reads `Authorization: Bearer <token>` only.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    authorization(headers).filter(|(s, _)| *s == Scheme::Bearer).map(|(_, t)| t)
}

/// The access token on a resource request, verified, with its key binding
/// enforced: a DPoP-bound token works only as `Authorization: DPoP` with a
/// fresh proof from the bound key; a copied token alone is refused.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    method: &Method,
    path: &str,
) -> ApiResult<AccessClaims> {
    let (scheme, token) = require(authorization(headers))?;
    let claims = require(verify_access(state, token).await?)?;
    let proof = dpop::verify(state, headers, method, path, Some(token), StatusCode::UNAUTHORIZED).await?;
    match (&claims.cnf, scheme, proof) {
        (None, Scheme::Bearer, _) => Ok(claims),
        (Some(cnf), Scheme::Dpop, Some(p)) if p.jkt == cnf.jkt => Ok(claims),
        (Some(_), Scheme::Dpop, Some(_)) => {
            Err(dpop::invalid_proof(latchkey_domain::dpop::DpopError::WrongKey, StatusCode::UNAUTHORIZED))
        }
        (Some(_), _, _) => Err(ApiError::invalid_token(
            "this token is bound to a device key: send it as Authorization: DPoP with a DPoP proof from that key",
        )),
        (None, Scheme::Dpop, _) => {
            Err(ApiError::invalid_token("this token is not DPoP-bound; send it as Authorization: Bearer"))
        }
    }
}

/// Maps a missing or invalid bearer token to RFC 6750's `invalid_token`.
pub fn require<T>(v: Option<T>) -> ApiResult<T> {
    v.ok_or_else(|| ApiError::invalid_token("the access token is missing, expired or revoked"))
}
