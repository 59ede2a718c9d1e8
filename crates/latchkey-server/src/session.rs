//! Signed-in users: a session cookie for browsers, the same token as
//! `Authorization: Bearer` for the CLI and other non-browser clients.
//!
//! CSRF: a cookie-authenticated state change must carry a token derived from
//! the session secret (as a form field or `X-CSRF-Token`), which another site
//! cannot read. Bearer requests carry no ambient credentials and need none.

use crate::error::{ApiError, ApiResult};
use crate::state::{now, AppState};
use crate::tokens::{authorization, Scheme};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use latchkey_domain::secret::SecretHash;
use latchkey_store::UserRecord;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Prefix of session tokens (see `SecretKind::Session`).
const SESSION_PREFIX: &str = "lks_";

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "latchkey_session";
/// Name of the pre-sign-in CSRF cookie (double submit on the sign-in form).
pub const SIGNIN_CSRF_COOKIE: &str = "latchkey_signin_csrf";

/// How the session was presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Browser cookie: state changes need the CSRF token.
    Cookie,
    /// `Authorization: Bearer` with a session token: no CSRF needed.
    Bearer,
    /// A device's own access token (Bearer or DPoP): no CSRF needed.
    Device,
}

/// A request from a signed-in user.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The user.
    pub user: UserRecord,
    /// The raw session token (to derive CSRF tokens and key rate limits).
    pub token: String,
    /// How it was presented.
    pub via: Via,
    /// The device making the request, when it used its own access token.
    pub device_id: Option<String>,
}

impl SignedIn {
    /// The CSRF token for this session.
    pub fn csrf(&self) -> String {
        csrf_for(&self.token)
    }

    /// Checks a presented CSRF token (always passes for bearer sessions).
    pub fn check_csrf(&self, presented: Option<&str>) -> ApiResult<()> {
        if self.via != Via::Cookie {
            return Ok(());
        }
        match presented {
            Some(p) if bool::from(p.as_bytes().ct_eq(self.csrf().as_bytes())) => Ok(()),
            _ => Err(ApiError::forbidden("the form is stale or came from another site; reload the page and try again")),
        }
    }
}

/// The CSRF token bound to a session token.
pub fn csrf_for(session_token: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"latchkey-csrf-v1:");
    h.update(session_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&h.finalize()[..24])
}

/// Reads one cookie from the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, Secure on https.
pub fn set_cookie(state: &AppState, name: &str, value: &str, max_age_secs: i64) -> String {
    let secure = if state.config.secure_cookies() { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}")
}

async fn from_parts(parts: &Parts, state: &AppState) -> ApiResult<Option<SignedIn>> {
    let headers = &parts.headers;
    let (token, via) = match authorization(headers) {
        // Session tokens are opaque and carry our prefix; anything else is an access token.
        Some((Scheme::Bearer, t)) if t.starts_with(SESSION_PREFIX) => (t, Via::Bearer),
        Some(_) => return from_access_token(parts, state).await.map(Some),
        None => match cookie(headers, SESSION_COOKIE) {
            Some(t) => (t, Via::Cookie),
            None => return Ok(None),
        },
    };
    if token.len() > 128 {
        return Ok(None);
    }
    let session = state.store.session(&SecretHash::of(token), now()).await?;
    Ok(session.map(|s| SignedIn { user: s.user, token: token.to_string(), via, device_id: None }))
}

/// A device acting with its own tokens. Only tokens issued to Latchkey's own
/// CLI app may manage the account: another app's token must not revoke devices.
async fn from_access_token(parts: &Parts, state: &AppState) -> ApiResult<SignedIn> {
    let claims = crate::tokens::authenticate(state, &parts.headers, &parts.method, parts.uri.path()).await?;
    if claims.client_id != latchkey_proto::CLI_CLIENT_ID {
        return Err(ApiError::forbidden(format!(
            "tokens of the app {:?} cannot use Latchkey's account API; only {} tokens can",
            claims.client_id,
            latchkey_proto::CLI_CLIENT_ID
        )));
    }
    let user = state
        .store
        .user_by_name(&claims.preferred_username)
        .await?
        .filter(|u| u.id == claims.sub)
        .ok_or_else(|| ApiError::invalid_token("the account behind this token no longer exists"))?;
    let token = crate::tokens::authorization(&parts.headers).map(|(_, t)| t.to_string()).unwrap_or_default();
    Ok(SignedIn { user, token, via: Via::Device, device_id: claims.device_id })
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        from_parts(parts, state).await?.ok_or_else(|| {
            ApiError::unauthenticated(
                "sign in first: send Authorization: Bearer <session token>, or log in with `latchkey login`",
            )
        })
    }
}

/// A request that may or may not be signed in (pages decide what to show).
pub struct MaybeSignedIn(pub Option<SignedIn>);

impl FromRequestParts<AppState> for MaybeSignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(MaybeSignedIn(from_parts(parts, state).await?))
    }
}
