//! Passkeys (WebAuthn), with webauthn-rs doing every check: registration on
//! the Security page, discoverable sign-in with user verification on the
//! sign-in page, and re-confirming a signed-in person with one of their
//! passkeys. The relying party is the host of `--public-url`, its origin the
//! URL itself.
//!
//! Each ceremony's challenge state is stored (`Store::start_ceremony`) under
//! the hash of a random ID that only the browser holds, in a short-lived
//! HttpOnly cookie; answering takes it out of the store, so a challenge is
//! answered once, on any replica. The rules (which methods an account may
//! give up, the ceremony's lifetime, `amr`) are `latchkey_domain::passkey`'s.

use crate::error::{ApiError, ApiResult};
use crate::metrics::Limit;
use crate::rate_limit::network_key;
use crate::session::{cookie, set_cookie};
use crate::state::{now, AppState};
use axum::http::HeaderMap;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use latchkey_domain::audit::{AuditEvent, AuditKind};
use latchkey_domain::passkey::{ceremony_expires, CeremonyKind, SignInMethod, CEREMONY_LIFETIME_MS};
use latchkey_domain::secret::{Secret, SecretHash, SecretKind};
use latchkey_store::{NewCeremony, NewPasskey, NewSession, PasskeySignIn, PasskeyUse, StoreError, UserId, UserRecord};
use std::net::IpAddr;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder,
};

/// Name of the cookie that carries a ceremony's ID.
pub const CEREMONY_COOKIE: &str = "latchkey_webauthn";

/// The relying party for `public_url`; `None` when its host is not a domain
/// name (browsers refuse an IP address as a WebAuthn relying party ID).
pub fn relying_party(public_url: &str) -> Option<Webauthn> {
    let url = Url::parse(public_url).ok()?;
    let host = url.domain()?.to_string();
    WebauthnBuilder::new(&host, &url).ok()?.rp_name("Latchkey").build().ok()
}

fn rp(state: &AppState) -> ApiResult<&Webauthn> {
    state.webauthn.as_deref().ok_or_else(|| {
        ApiError::invalid_request("passkeys need the server's public URL to name a host, not an IP address")
    })
}

fn internal(what: &str) -> impl FnOnce(serde_json::Error) -> ApiError + '_ {
    move |e| ApiError::Internal(format!("{what}: {e}"))
}

/// The one refusal a sign-in with a passkey gives, whatever went wrong with it.
fn refused() -> ApiError {
    ApiError::invalid_credentials("the passkey was not accepted; try again")
}

/// A started ceremony: the options for `navigator.credentials`, and the cookie that names it.
pub struct Started {
    /// `Set-Cookie` value carrying the ceremony's ID.
    pub cookie: String,
    /// The options, as webauthn-rs serialises them (`{"publicKey": …}`).
    pub options: serde_json::Value,
}

async fn keep(
    state: &AppState,
    kind: CeremonyKind,
    ceremony: String,
    user_id: Option<String>,
    options: serde_json::Value,
) -> ApiResult<Started> {
    let id = Secret::generate(SecretKind::Ceremony, &mut rand::rngs::OsRng);
    let t = now();
    let new = NewCeremony { id_hash: id.hash(), kind, state: ceremony, user_id, expires_at: ceremony_expires(t) };
    state.store.start_ceremony(new, t).await?;
    let cookie = set_cookie(state, CEREMONY_COOKIE, id.expose(), CEREMONY_LIFETIME_MS / 1000);
    Ok(Started { cookie, options })
}

/// Takes the ceremony the request's cookie names; refused when it is missing,
/// expired, of another kind or answered already.
async fn take(state: &AppState, headers: &HeaderMap, kind: CeremonyKind) -> ApiResult<latchkey_store::CeremonyRecord> {
    let gone = || ApiError::invalid_request("the passkey request expired or was used already; try again");
    let id = cookie(state, headers, CEREMONY_COOKIE).filter(|v| !v.is_empty() && v.len() <= 128).ok_or_else(gone)?;
    state.store.take_ceremony(&SecretHash::of(id), kind, now()).await?.ok_or_else(gone)
}

fn credential_id(raw: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(raw)
}

fn user_handle(user: &UserRecord) -> ApiResult<Uuid> {
    Uuid::parse_str(&user.id).map_err(|e| ApiError::Internal(format!("user ID is not a UUID: {e}")))
}

/// Starts registering a passkey for `user`: resident (discoverable) and user-verifying.
pub async fn start_registration(state: &AppState, user: &UserRecord) -> ApiResult<Started> {
    let rp = rp(state)?;
    let mut exclude = Vec::new();
    for p in state.store.passkeys(UserId(&user.id)).await? {
        let key: Passkey = serde_json::from_str(&p.passkey).map_err(internal("stored passkey"))?;
        exclude.push(key.cred_id().clone());
    }
    let (ccr, reg) =
        rp.start_passkey_registration(user_handle(user)?, &user.username, &user.username, Some(exclude))?;
    let ceremony = serde_json::to_string(&reg).map_err(internal("registration state"))?;
    let mut options = serde_json::to_value(&ccr).map_err(internal("registration options"))?;
    // Sign-in finds the account from the passkey itself, so it must live on the authenticator
    // (webauthn-rs 0.5 does not re-export the type that says so; the option is plain JSON).
    if let Some(sel) = options.pointer_mut("/publicKey/authenticatorSelection").and_then(|v| v.as_object_mut()) {
        sel.insert("residentKey".into(), "required".into());
        sel.insert("requireResidentKey".into(), true.into());
    }
    keep(state, CeremonyKind::Register, ceremony, Some(user.id.clone()), options).await
}

/// Finishes a registration `user` started, storing the passkey as `name`.
pub async fn finish_registration(
    state: &AppState,
    headers: &HeaderMap,
    user: &UserRecord,
    credential: &RegisterPublicKeyCredential,
    name: &str,
) -> ApiResult<()> {
    let name = name.trim().to_string();
    if !(1..=100).contains(&name.chars().count()) {
        return Err(ApiError::invalid_request("give the passkey a name of 1 to 100 characters"));
    }
    latchkey_domain::names::check_visible("a passkey name", &name)
        .map_err(|e| ApiError::invalid_request(e.to_string()))?;
    let rp = rp(state)?;
    let taken = take(state, headers, CeremonyKind::Register).await?;
    if taken.user_id.as_deref() != Some(user.id.as_str()) {
        return Err(ApiError::forbidden("this passkey request was started by someone else"));
    }
    let reg: PasskeyRegistration = serde_json::from_str(&taken.state).map_err(internal("registration state"))?;
    let key = rp.finish_passkey_registration(credential, &reg)?;
    let new = NewPasskey {
        id: uuid::Uuid::new_v4().simple().to_string(),
        user_id: user.id.clone(),
        credential_id: credential_id(key.cred_id().as_ref()),
        passkey: serde_json::to_string(&key).map_err(internal("passkey"))?,
        name,
    };
    match state.store.add_passkey(new, now()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(r)) => Err(r.into()),
        Err(StoreError::Conflict(_)) => Err(ApiError::conflict("this passkey is registered already")),
        Err(e) => Err(e.into()),
    }
}

/// Starts a discoverable sign-in: nobody is known until the passkey answers.
/// Anyone may ask, so each network may start only a few a minute.
pub async fn start_sign_in(state: &AppState, ip: IpAddr) -> ApiResult<Started> {
    let net = network_key(ip);
    if !state.limits.passkey_start.try_take(&[net.as_str()], now()) {
        state.metrics.rate_limited(Limit::PasskeyStart);
        return Err(ApiError::too_many_requests("too many passkey sign-ins started; wait a minute"));
    }
    let (mut rcr, auth) = rp(state)?.start_discoverable_authentication()?;
    // A button press, not the autofill (conditional) prompt.
    rcr.mediation = None;
    let ceremony = serde_json::to_string(&auth).map_err(internal("sign-in state"))?;
    let options = serde_json::to_value(&rcr).map_err(internal("sign-in options"))?;
    keep(state, CeremonyKind::SignIn, ceremony, None, options).await
}

/// Finishes a passkey sign-in and opens a session that says so (`amr` "hwk user").
/// Failures count against the same per-network limit as wrong passwords.
pub async fn finish_sign_in(
    state: &AppState,
    headers: &HeaderMap,
    credential: &PublicKeyCredential,
    ip: IpAddr,
    user_agent: &str,
) -> ApiResult<(UserRecord, Secret)> {
    let net = network_key(ip);
    let keys = [net.as_str()];
    if !state.limits.sign_in.try_take(&keys, now()) {
        state.metrics.rate_limited(Limit::SignIn);
        return Err(ApiError::too_many_requests("too many failed sign-ins; wait a few minutes and try again"));
    }
    let result = verify_sign_in(state, headers, credential, ip, user_agent).await;
    if result.is_ok() {
        state.limits.sign_in.refund(&keys, now());
    }
    result
}

async fn verify_sign_in(
    state: &AppState,
    headers: &HeaderMap,
    credential: &PublicKeyCredential,
    ip: IpAddr,
    user_agent: &str,
) -> ApiResult<(UserRecord, Secret)> {
    let rp = rp(state)?;
    let taken = take(state, headers, CeremonyKind::SignIn).await?;
    let auth: DiscoverableAuthentication = serde_json::from_str(&taken.state).map_err(internal("sign-in state"))?;
    let (handle, raw_id) = rp.identify_discoverable_authentication(credential)?;
    let Some(stored) = state.store.passkey_by_credential(&credential_id(raw_id)).await? else {
        return Err(failed(state, None, ip, "unknown passkey").await);
    };
    // The assertion's user handle must name the passkey's owner: a passkey cannot speak for another account.
    if Uuid::parse_str(&stored.user_id).ok() != Some(handle) {
        return Err(failed(state, Some(&stored.user_id), ip, "user handle of another account").await);
    }
    let mut key: Passkey = serde_json::from_str(&stored.passkey).map_err(internal("stored passkey"))?;
    let result = match rp.finish_discoverable_authentication(credential, auth, &[DiscoverableKey::from(&key)]) {
        Ok(r) if r.user_verified() => r,
        Ok(_) => return Err(failed(state, Some(&stored.user_id), ip, "user not verified").await),
        Err(e) => {
            tracing::info!(error = %e, "a passkey sign-in was refused");
            return Err(failed(state, Some(&stored.user_id), ip, "assertion not valid").await);
        }
    };
    key.update_credential(&result);
    let token = Secret::generate(SecretKind::Session, &mut rand::rngs::OsRng);
    let t = now();
    let detail = serde_json::json!({"ip": ip.to_string(), "method": SignInMethod::Passkey.as_str()}).to_string();
    let who = Some(stored.user_id.as_str());
    let sign_in = PasskeySignIn {
        passkey_id: stored.id.clone(),
        passkey: serde_json::to_string(&key).map_err(internal("passkey"))?,
        session: NewSession {
            token_hash: token.hash(),
            id: uuid::Uuid::new_v4().simple().to_string(),
            ip: ip.to_string(),
            user_agent: user_agent.to_string(),
            user_id: stored.user_id.clone(),
            expires_at: t.plus_secs(state.config.session_lifetime_secs()),
            amr: SignInMethod::Passkey.amr().into(),
            audit: AuditEvent::new(AuditKind::SignInSucceeded, who, who).with_detail(detail),
        },
    };
    match state.store.sign_in_with_passkey(sign_in, t).await? {
        Ok(user) => Ok((user, token)),
        Err(latchkey_store::PasskeyRefusal::Account(a)) => Err(a.into()),
        Err(_) => Err(refused()),
    }
}

/// Records a refused passkey sign-in and returns the refusal to answer with.
/// A passkey nobody registered names no account: like an unknown username, it
/// is counted and logged but not written to the audit log, so anonymous
/// traffic cannot grow the log.
async fn failed(state: &AppState, user_id: Option<&str>, ip: IpAddr, why: &str) -> ApiError {
    if user_id.is_none() {
        state.metrics.unknown_username_sign_in();
        tracing::info!(%ip, why, "a passkey sign-in named no account");
        return refused();
    }
    let detail = serde_json::json!({"ip": ip.to_string(), "method": "passkey", "refused": why}).to_string();
    let event = AuditEvent::new(AuditKind::SignInFailed, user_id, user_id).with_detail(detail);
    match state.store.append_audit(event, now()).await {
        Ok(()) => refused(),
        Err(e) => e.into(),
    }
}

/// Starts re-confirming `user` with one of their own passkeys.
pub async fn start_reauth(state: &AppState, user: &UserRecord) -> ApiResult<Started> {
    let rp = rp(state)?;
    let mut keys = Vec::new();
    for p in state.store.passkeys(UserId(&user.id)).await? {
        keys.push(serde_json::from_str::<Passkey>(&p.passkey).map_err(internal("stored passkey"))?);
    }
    if keys.is_empty() {
        return Err(ApiError::invalid_request("you have no passkey to confirm with"));
    }
    let (rcr, auth) = rp.start_passkey_authentication(&keys)?;
    let ceremony = serde_json::to_string(&auth).map_err(internal("re-confirmation state"))?;
    let options = serde_json::to_value(&rcr).map_err(internal("re-confirmation options"))?;
    keep(state, CeremonyKind::Reauth, ceremony, Some(user.id.clone()), options).await
}

/// Checks that `user` just confirmed with one of their passkeys; returns that
/// passkey's new state (its counter), to be stored with the change it confirms.
pub async fn finish_reauth(
    state: &AppState,
    headers: &HeaderMap,
    user: &UserRecord,
    credential: &PublicKeyCredential,
) -> ApiResult<PasskeyUse> {
    let rp = rp(state)?;
    let taken = take(state, headers, CeremonyKind::Reauth).await?;
    if taken.user_id.as_deref() != Some(user.id.as_str()) {
        return Err(ApiError::forbidden("this passkey request was started by someone else"));
    }
    let auth: PasskeyAuthentication = serde_json::from_str(&taken.state).map_err(internal("re-confirmation state"))?;
    let result = rp.finish_passkey_authentication(credential, &auth)?;
    if !result.user_verified() {
        return Err(refused());
    }
    let answered = credential_id(result.cred_id().as_ref());
    let stored = state.store.passkeys(UserId(&user.id)).await?.into_iter().find(|p| p.credential_id == answered);
    let Some(stored) = stored else { return Err(refused()) };
    let mut key: Passkey = serde_json::from_str(&stored.passkey).map_err(internal("stored passkey"))?;
    key.update_credential(&result);
    Ok(PasskeyUse { passkey_id: stored.id, passkey: serde_json::to_string(&key).map_err(internal("passkey"))? })
}
