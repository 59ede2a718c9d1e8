//! RFC 7662 token introspection, for apps and resource servers.
//!
//! Confidential apps may introspect any token (they are typically resource
//! servers); public apps only tokens issued to themselves. Anything else,
//! and anything invalid, revoked or expired, is `{"active": false}`.

use crate::client_auth::authenticate;
use crate::error::{ApiError, ApiResult};
use crate::extract::Form;
use crate::routes::no_store;
use crate::state::{now, AppState};
use crate::tokens;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use latchkey_domain::secret::SecretHash;
use latchkey_proto::oauth::Introspection;
use latchkey_store::FamilyId;
use latchkey_store::{AppRecord, ClientKind};

/// The form body (RFC 7662 §2.1 and RFC 7009 §2.1 take the same one).
pub use crate::routes::TokenParams as Params;

fn may_see(app: &AppRecord, client_id: &str) -> bool {
    app.kind == ClientKind::Confidential || app.client_id == client_id
}

/// `POST /oauth/introspect`.
pub async fn handle(State(state): State<AppState>, headers: HeaderMap, Form(p): Form<Params>) -> ApiResult<Response> {
    let app = authenticate(&state, &headers, &p.creds).await?;
    let token = p.token.as_deref().ok_or_else(|| ApiError::invalid_request("token is required"))?;
    let inactive = || Ok(no_store(Introspection::default()));
    if let Some(c) = tokens::verify_access(&state, token).await? {
        if !may_see(&app, &c.client_id) {
            return inactive();
        }
        return Ok(no_store(Introspection {
            active: true,
            scope: Some(c.scope),
            client_id: Some(c.client_id),
            username: Some(c.preferred_username),
            // RFC 7662 §2.2: the OAuth token type (RFC 6749 §5.1), not the kind of token.
            token_type: Some(if c.cnf.is_some() { "DPoP" } else { "Bearer" }.into()),
            exp: Some(c.exp),
            iat: Some(c.iat),
            sub: Some(c.sub),
            aud: Some(c.aud),
            iss: Some(c.iss),
            cnf: c.cnf,
        }));
    }
    if token.len() > 128 {
        return inactive();
    }
    let Some(r) = state.store.refresh_token(&SecretHash::of(token)).await? else {
        return inactive();
    };
    let t = now();
    if r.rotated_at.is_some() || t >= r.expires_at || !may_see(&app, &r.client_id) {
        return inactive();
    }
    // Revoked, or its account stopped.
    if !state.store.family_active(FamilyId(&r.family_id), t).await? {
        return inactive();
    }
    Ok(no_store(Introspection {
        active: true,
        scope: Some(r.scope),
        client_id: Some(r.client_id.clone()),
        username: Some(r.username),
        token_type: None,
        exp: Some(r.expires_at.as_secs()),
        iat: Some(r.created_at.as_secs()),
        sub: Some(r.user_id),
        aud: Some(r.client_id),
        iss: Some(state.config.public_url.clone()),
        cnf: r.jkt.map(|jkt| latchkey_proto::oauth::Confirmation { jkt }),
    }))
}
