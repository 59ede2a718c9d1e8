//! Password sign-in and sign-out, shared by the JSON API and the sign-in page.

use crate::error::{ApiError, ApiResult};
use crate::passwords;
use crate::state::{now, AppState};
use latchkey_domain::audit::{AuditEvent, AuditKind};
use latchkey_domain::names::Username;
use latchkey_domain::secret::{Secret, SecretHash, SecretKind};
use latchkey_store::{NewSession, UserRecord};
use std::net::IpAddr;

/// Checks the password and opens a session; records success or failure.
pub async fn with_password(
    state: &AppState,
    username: &str,
    password: &str,
    ip: IpAddr,
) -> ApiResult<(UserRecord, Secret)> {
    let refused = || ApiError::invalid_credentials("wrong username or password");
    if password.len() > 1024 {
        return Err(refused());
    }
    let name = Username::parse(username).ok();
    let user = match &name {
        Some(n) => state.store.user_by_name(n.as_str()).await?,
        None => None,
    };
    let ok = passwords::verify(password.to_string(), user.as_ref().map(|u| u.password_hash.clone())).await?;
    let t = now();
    let Some(user) = user.filter(|_| ok) else {
        let attempted: String = username.chars().take(64).collect();
        let detail = serde_json::json!({"username": attempted, "ip": ip.to_string()}).to_string();
        state.store.append_audit(AuditEvent::new(AuditKind::SignInFailed, None, None).with_detail(detail), t).await?;
        return Err(refused());
    };
    let token = Secret::generate(SecretKind::Session, &mut rand::rngs::OsRng);
    let detail = serde_json::json!({"ip": ip.to_string()}).to_string();
    state
        .store
        .create_session(
            NewSession {
                token_hash: token.hash(),
                user_id: user.id.clone(),
                expires_at: t.plus_secs(state.config.session_lifetime_secs),
                audit: AuditEvent::new(AuditKind::SignInSucceeded, Some(&user.id), Some(&user.id)).with_detail(detail),
            },
            t,
        )
        .await?;
    Ok((user, token))
}

/// Ends the session behind `token`.
pub async fn sign_out(state: &AppState, token: &str) -> ApiResult<()> {
    state.store.delete_session(&SecretHash::of(token), now()).await?;
    Ok(())
}
