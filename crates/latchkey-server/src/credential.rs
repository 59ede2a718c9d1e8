//! Who is calling: the one credential type of Latchkey's account API and
//! pages, resolved in one extractor.
//!
//! A caller is either a signed-in **session** (a browser's cookie, or the same
//! token as `Authorization: Bearer`) or a **device** using its own access
//! token (DPoP-bound to the device key, or a plain bearer token for apps
//! without keys). This module is the one place that knows how the kinds of
//! token are told apart.
//!
//! Which apps' device tokens a route takes is part of its type: [`Caller`]
//! (the account API) admits only tokens of Latchkey's own CLI app, so another
//! app's token cannot revoke devices; `Caller<AnyApp>` admits any app's token
//! and leaves the check to the route (a phone app approving a QR sign-in to
//! itself: `qr_flow::check_approver` decides which tokens may).

use crate::error::{ApiError, ApiResult};
use crate::session::{cookie, csrf_for, SESSION_COOKIE};
use crate::state::{now, AppState};
use crate::tokens::{authorization, AccessClaims, Scheme};
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use latchkey_domain::secret::SecretHash;
use latchkey_store::UserRecord;
use latchkey_store::{AppId, FamilyId};
use std::marker::PhantomData;
use subtle::ConstantTimeEq;

/// Prefix of session tokens (`SecretKind::Session`): what tells them from access tokens.
const SESSION_TOKEN_PREFIX: &str = "lks_";
/// Prefix of the one-time codes QR codes carry (`pairing::phone_code`).
const PHONE_CODE_PREFIX: &str = "lkp_";
/// Longest session token looked up; anything longer is not one of ours.
const MAX_SESSION_TOKEN_LEN: usize = 128;
/// Header that carries the CSRF token on cookie-authenticated API calls.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Whether `s` has the shape of a phone code (checked before any lookup).
pub fn looks_like_phone_code(s: &str) -> bool {
    s.len() <= 64 && s.starts_with(PHONE_CODE_PREFIX)
}

/// The CSRF token a cookie-authenticated API call sent in `X-CSRF-Token`.
pub fn csrf_header(headers: &HeaderMap) -> Option<&str> {
    headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok())
}

/// What the caller presented.
#[derive(Debug, Clone)]
pub enum Credential {
    /// A browser's session cookie: state changes need the CSRF token.
    Cookie {
        /// The raw session token (CSRF tokens derive from it).
        session_token: String,
        /// The session's ID, as sign-in lists show it.
        session_id: String,
        /// When the person signed in (OIDC `auth_time` of what this session approves).
        signed_in_at: latchkey_domain::Timestamp,
        /// How they signed in (RFC 8176 `amr`, space-separated), for the ID tokens this session leads to.
        amr: String,
    },
    /// A session token as `Authorization: Bearer`: no ambient authority, no CSRF.
    SessionToken {
        /// The raw session token.
        session_token: String,
        /// The session's ID, as sign-in lists show it.
        session_id: String,
    },
    /// A device's own access token, verified with its key binding.
    Device {
        /// The verified claims (app, device, token family).
        claims: Box<AccessClaims>,
    },
}

/// Which apps' device tokens a route accepts (see the module docs).
pub trait Admits: Send + Sync + 'static {
    /// Refuses a verified device token this route does not take.
    fn check(claims: &AccessClaims) -> ApiResult<()>;
}

/// The account API: only tokens of Latchkey's own CLI app.
#[derive(Debug, Clone, Copy)]
pub struct AccountApi;

impl Admits for AccountApi {
    fn check(claims: &AccessClaims) -> ApiResult<()> {
        if claims.client_id == latchkey_proto::CLI_CLIENT_ID {
            return Ok(());
        }
        Err(ApiError::forbidden(format!(
            "tokens of the app {:?} cannot use Latchkey's account API; only {} tokens can",
            claims.client_id,
            latchkey_proto::CLI_CLIENT_ID
        )))
    }
}

/// Any app's token; the route checks which app it must belong to.
#[derive(Debug, Clone, Copy)]
pub struct AnyApp;

impl Admits for AnyApp {
    fn check(_: &AccessClaims) -> ApiResult<()> {
        Ok(())
    }
}

/// An authenticated request: the user and the credential they used.
#[derive(Debug, Clone)]
pub struct Caller<A = AccountApi> {
    /// The user.
    pub user: UserRecord,
    /// How they authenticated.
    pub credential: Credential,
    admits: PhantomData<fn() -> A>,
}

impl<A> Caller<A> {
    /// The device making the request, when it used its own access token.
    pub fn device_id(&self) -> Option<&str> {
        match &self.credential {
            Credential::Device { claims } => claims.device_id.as_deref(),
            _ => None,
        }
    }

    /// Whether this is a browser's cookie session.
    pub fn is_browser(&self) -> bool {
        matches!(self.credential, Credential::Cookie { .. })
    }

    /// The app whose token this is (`None` for sessions).
    pub fn client_id(&self) -> Option<&str> {
        match &self.credential {
            Credential::Device { claims } => Some(&claims.client_id),
            _ => None,
        }
    }

    /// The ID of the sign-in this credential stands for, as sign-in lists show it:
    /// the session's, or the token family's (`sid`).
    pub fn sign_in_id(&self) -> &str {
        match &self.credential {
            Credential::Cookie { session_id, .. } | Credential::SessionToken { session_id, .. } => session_id,
            Credential::Device { claims } => &claims.sid,
        }
    }

    /// The CSRF token to put in this caller's forms (empty for device tokens, which need none).
    pub fn csrf(&self) -> String {
        match &self.credential {
            Credential::Cookie { session_token, .. } | Credential::SessionToken { session_token, .. } => {
                csrf_for(session_token)
            }
            Credential::Device { .. } => String::new(),
        }
    }

    /// Checks a presented CSRF token; only cookie sessions need one.
    pub fn check_csrf(&self, presented: Option<&str>) -> ApiResult<()> {
        let Credential::Cookie { session_token, .. } = &self.credential else {
            return Ok(());
        };
        match presented {
            Some(p) if bool::from(p.as_bytes().ct_eq(csrf_for(session_token).as_bytes())) => Ok(()),
            _ => Err(ApiError::forbidden("the form is stale or came from another site; reload the page and try again")),
        }
    }

    /// Ends what this credential stands for: the session, or the device's
    /// sign-in (its whole token family, so the refresh token dies with it).
    pub async fn sign_out(&self, state: &AppState) -> ApiResult<()> {
        match &self.credential {
            Credential::Cookie { session_token, .. } | Credential::SessionToken { session_token, .. } => {
                crate::sign_in::sign_out(state, session_token).await
            }
            Credential::Device { claims } => {
                state.store.revoke_family(FamilyId(&claims.sid), AppId(&claims.client_id), now()).await?;
                Ok(())
            }
        }
    }
}

/// Resolves the request's credential, if it presents one.
async fn resolve<A: Admits>(parts: &Parts, state: &AppState) -> ApiResult<Option<Caller<A>>> {
    let headers = &parts.headers;
    let (token, is_cookie) = match authorization(headers) {
        Some((Scheme::Bearer, t)) if t.starts_with(SESSION_TOKEN_PREFIX) => (t, false),
        Some(_) => return device(parts, state).await.map(Some),
        None => match cookie(state, headers, SESSION_COOKIE) {
            Some(t) => (t, true),
            None => return Ok(None),
        },
    };
    if token.len() > MAX_SESSION_TOKEN_LEN {
        return Ok(None);
    }
    let Some(s) = state.store.session(&SecretHash::of(token), now()).await? else {
        return Ok(None);
    };
    let (session_token, session_id) = (token.to_string(), s.id);
    let credential = if is_cookie {
        Credential::Cookie { session_token, session_id, signed_in_at: s.created_at, amr: s.amr }
    } else {
        Credential::SessionToken { session_token, session_id }
    };
    Ok(Some(Caller { user: s.user, credential, admits: PhantomData }))
}

/// A device acting with its own access token (key binding enforced).
async fn device<A: Admits>(parts: &Parts, state: &AppState) -> ApiResult<Caller<A>> {
    let claims = crate::tokens::authenticate(state, &parts.headers, &parts.method, parts.uri.path()).await?;
    A::check(&claims)?;
    let user = state
        .store
        .user_by_name(&claims.preferred_username)
        .await?
        .filter(|u| u.id == claims.sub)
        .ok_or_else(|| ApiError::invalid_token("the account behind this token no longer exists"))?;
    Ok(Caller { user, credential: Credential::Device { claims: Box::new(claims) }, admits: PhantomData })
}

impl<A: Admits> FromRequestParts<AppState> for Caller<A> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        resolve(parts, state).await?.ok_or_else(|| {
            ApiError::unauthenticated(
                "sign in first: send Authorization: Bearer <session token>, or log in with `latchkey login`",
            )
        })
    }
}

/// Pages take `Option<Caller>`: they decide what to show to someone signed out.
impl<A: Admits> OptionalFromRequestParts<AppState> for Caller<A> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Option<Self>, Self::Rejection> {
        resolve(parts, state).await
    }
}
