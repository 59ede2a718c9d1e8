//! Who is calling an OAuth endpoint: `client_id` in the form (public apps) or
//! a client secret by HTTP Basic or in the form (confidential apps).

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use latchkey_domain::secret::SecretHash;
use latchkey_store::AppId;
use latchkey_store::{AppRecord, ClientKind};

/// Client credentials as they appear in a form body.
#[derive(Debug, Default, serde::Deserialize)]
pub struct FormCredentials {
    /// `client_id`.
    pub client_id: Option<String>,
    /// `client_secret` (RFC 6749 §2.3.1 `client_secret_post`).
    pub client_secret: Option<String>,
}

fn basic(headers: &HeaderMap) -> ApiResult<Option<(String, String)>> {
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || ApiError::invalid_client("the Authorization header is not valid HTTP Basic");
    let v = v.to_str().map_err(|_| bad())?;
    let Some((scheme, rest)) = v.split_once(' ') else {
        return Err(bad());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = STANDARD.decode(rest.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = text.split_once(':').ok_or_else(bad)?;
    // RFC 6749 §2.3.1: both parts are form-urlencoded inside Basic.
    let dec = |s: &str| {
        serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={s}"))
            .ok()
            .and_then(|v| v.into_iter().next())
            .map(|(_, v)| v)
    };
    Ok(Some((dec(id).ok_or_else(bad)?, dec(secret).ok_or_else(bad)?)))
}

/// Authenticates the calling app.
pub async fn authenticate(state: &AppState, headers: &HeaderMap, form: &FormCredentials) -> ApiResult<AppRecord> {
    let (client_id, secret) = match basic(headers)? {
        Some((id, secret)) => {
            if form.client_id.as_deref().is_some_and(|f| f != id) {
                return Err(ApiError::invalid_request("client_id in the body differs from the Authorization header"));
            }
            (id, Some(secret))
        }
        None => match &form.client_id {
            Some(id) => (id.clone(), form.client_secret.clone()),
            None => return Err(ApiError::invalid_client("send client_id (and client_secret for confidential apps)")),
        },
    };
    let unknown = || ApiError::invalid_client(format!("no app is registered with client_id {client_id:?}"));
    // Parse before the lookup: a NUL byte or 10 KB of text never reaches the database.
    if latchkey_domain::names::ClientId::parse(&client_id).is_err() {
        return Err(unknown());
    }
    // Many libraries send an empty secret for public clients; that is no secret.
    let secret = secret.filter(|s| !s.is_empty());
    let app = state.store.app(AppId(&client_id)).await?.ok_or_else(unknown)?;
    match (app.kind, &app.secret_hash, secret) {
        (ClientKind::Public, _, None) => Ok(app),
        (ClientKind::Public, _, Some(_)) => {
            Err(ApiError::invalid_client("this app is public and has no secret; do not send one"))
        }
        (ClientKind::Confidential, Some(stored), Some(given)) if stored.ct_eq(&SecretHash::of(&given)) => Ok(app),
        (ClientKind::Confidential, _, _) => Err(ApiError::invalid_client("the client secret is missing or wrong")),
    }
}
