//! Password sign-in and sign-out, shared by the JSON API and the sign-in page.

use crate::error::{ApiError, ApiResult};
use crate::metrics::Limit;
use crate::passwords;
use crate::rate_limit::network_key;
use crate::state::{now, AppState};
use latchkey_domain::audit::{AuditEvent, AuditKind};
use latchkey_domain::names::Username;
use latchkey_domain::secret::{Secret, SecretHash, SecretKind};
use latchkey_store::{Actor, NewSession, UserId, UserRecord};
use std::net::IpAddr;

fn busy() -> ApiError {
    ApiError::Protocol {
        status: axum::http::StatusCode::SERVICE_UNAVAILABLE,
        code: "temporarily_unavailable",
        description: "too many sign-ins at once; try again in a few seconds".into(),
    }
}

/// How long a sign-in waits for a free password-hashing slot before answering 503.
const HASH_QUEUE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Checks the password and opens a session; records success or failure.
/// Failures are limited per username and per network; hashing is bounded so
/// a flood of sign-ins cannot exhaust memory (argon2 is memory-hard by design).
///
/// Lockout (the rule is [`LockPolicy`](latchkey_domain::account::LockPolicy)):
/// `--lock-after-failures` wrong passwords for an existing account, each within
/// `--lock-for` of the first, lock it for `--lock-for`. A wrong password always
/// answers 401 "wrong username or password", locked or not, so the lock does not
/// tell a stranger which usernames exist; a correct password while locked answers
/// 403 with the time the lock ends, unless it comes from a network (IPv4
/// address, IPv6 /64: [`network_key`]) that gave no wrong password for this
/// account in the last `--lock-for`: then it lifts the lock and signs in. So an
/// attacker can lock an account only for the networks it fails from, never for
/// its owner elsewhere; the price is that an attacker who moves to a fresh
/// network gets one guess there per network before that network is failing too
/// (and the per-network and per-username rate limits still apply). Networks
/// are recorded in the store, so this holds across replicas.
pub async fn with_password(
    state: &AppState,
    username: &str,
    password: &str,
    ip: IpAddr,
    user_agent: &str,
) -> ApiResult<(UserRecord, Secret)> {
    let refused = || ApiError::invalid_credentials("wrong username or password");
    if password.len() > 1024 || username.len() > 256 {
        return Err(refused());
    }
    let name = Username::parse(username).ok();
    let user = match &name {
        Some(n) => state.store.user_by_name(n.as_str()).await?,
        None => None,
    };
    let net = network_key(ip);
    // An account's budget is per network, so guesses from elsewhere never spend its
    // owner's (the lockout bounds guesses across networks); names nobody has are
    // limited by network alone, so typing random names fills nothing and locks no one.
    let name_key = match (&user, &name) {
        (Some(_), Some(n)) => format!("{n}@{net}"),
        _ => format!("unknown-name@{net}"),
    };
    let keys = [name_key.as_str(), net.as_str()];
    if !state.limits.sign_in.try_take(&keys, now()) {
        state.metrics.rate_limited(Limit::SignIn);
        return Err(ApiError::too_many_requests("too many failed sign-ins; wait a few minutes and try again"));
    }
    let result = check(state, name.as_ref(), user, password, ip, user_agent).await;
    // A right password, or a refusal before any hashing (the hashing queue was
    // full), costs nothing: a flood that only gets 503s spends no one's budget.
    let unhashed = matches!(&result, Err(e) if e.parts().1 == "temporarily_unavailable");
    if result.is_ok() || unhashed {
        state.limits.sign_in.refund(&keys, now());
    }
    result
}

async fn check(
    state: &AppState,
    name: Option<&Username>,
    user: Option<UserRecord>,
    password: &str,
    ip: IpAddr,
    user_agent: &str,
) -> ApiResult<(UserRecord, Secret)> {
    let permit = tokio::time::timeout(HASH_QUEUE_WAIT, state.password_checks.clone().acquire_owned())
        .await
        .map_err(|_| busy())?
        .map_err(|_| busy())?;
    let ok = passwords::verify(password.to_string(), user.as_ref().map(|u| u.password_hash.clone())).await?;
    drop(permit);
    let t = now();
    let user = match user {
        Some(u) if ok => u,
        user => {
            match &user {
                // Counted towards a lock in the transaction that records it (the
                // per-username limit bounds how many entries one account gets).
                Some(u) => {
                    let detail = serde_json::json!({"username": name.map(|n| n.as_str()), "ip": ip.to_string()});
                    let who = Some(u.id.as_str());
                    let failure = AuditEvent::new(AuditKind::SignInFailed, who, who).with_detail(detail.to_string());
                    let policy = state.config.lock_policy();
                    let net = network_key(ip);
                    if let Some(until) =
                        state.store.record_sign_in_failure(UserId(&u.id), &net, failure, policy, t).await?
                    {
                        tracing::info!(user = %u.id, until = until.as_millis(), "account locked after repeated wrong passwords");
                    }
                }
                // No account, so nothing of value changed: counted and logged, never
                // audited. Anyone can send these, and the audit log is never pruned;
                // the name itself is not logged either (people type passwords into it).
                None => {
                    state.metrics.unknown_username_sign_in();
                    tracing::info!(ip = %ip, "sign-in refused: no such username");
                }
            }
            return Err(ApiError::invalid_credentials("wrong username or password"));
        }
    };
    // Said only to someone who knows the password: a stopped account is no secret to its owner.
    let policy = state.config.lock_policy();
    let lifted = match state.store.record_sign_in_success(UserId(&user.id), &network_key(ip), policy, t).await? {
        Ok(lifted) => lifted,
        Err(refusal) => {
            let detail = serde_json::json!({"ip": ip.to_string(), "refused": refusal.to_string()}).to_string();
            let who = Some(user.id.as_str());
            state.store.append_audit(AuditEvent::new(AuditKind::SignInFailed, who, who).with_detail(detail), t).await?;
            return Err(refusal.into());
        }
    };
    let token = Secret::generate(SecretKind::Session, &mut rand::rngs::OsRng);
    let detail = if lifted {
        serde_json::json!({"ip": ip.to_string(), "lifted_lock": true}).to_string()
    } else {
        serde_json::json!({"ip": ip.to_string()}).to_string()
    };
    state
        .store
        .create_session(
            NewSession {
                token_hash: token.hash(),
                id: uuid::Uuid::new_v4().simple().to_string(),
                ip: ip.to_string(),
                user_agent: user_agent.to_string(),
                user_id: user.id.clone(),
                expires_at: t.plus_secs(state.config.session_lifetime_secs()),
                amr: latchkey_domain::passkey::SignInMethod::Password.amr().into(),
                audit: AuditEvent::new(AuditKind::SignInSucceeded, Some(&user.id), Some(&user.id)).with_detail(detail),
            },
            t,
        )
        .await?;
    Ok((user, token))
}

/// Changes `user`'s own password after checking the current one, and ends
/// every other session (all of them when `keep` is `None`, as for a device
/// token). Wrong current passwords count against the sign-in rate limits, so a
/// stolen session cannot be used to guess the password faster than sign-in can.
pub async fn change_password(
    state: &AppState,
    user: &UserRecord,
    keep: Option<&SecretHash>,
    current: &str,
    new: &str,
    ip: IpAddr,
) -> ApiResult<()> {
    latchkey_domain::names::check_password(new).map_err(|e| ApiError::invalid_request(e.to_string()))?;
    let permit = check_current(state, user, current, ip).await?;
    let hash = passwords::hash(new.to_string()).await?;
    drop(permit);
    let me = UserId(&user.id);
    if !state.store.change_password(me, &hash, keep, Actor(&user.id), now()).await? {
        return Err(ApiError::Internal("the signed-in account no longer exists".into()));
    }
    Ok(())
}

/// Checks `user`'s current password to re-confirm them (before removing it);
/// wrong ones count against the sign-in rate limits, as for a password change.
pub async fn confirm_password(state: &AppState, user: &UserRecord, current: &str, ip: IpAddr) -> ApiResult<()> {
    check_current(state, user, current, ip).await.map(drop)
}

/// Checks that `current` is `user`'s password. A wrong one counts against the
/// sign-in rate limits (so a stolen session guesses no faster than sign-in);
/// a right one is refunded. The hashing slot is handed back to the caller, so a
/// new password's hash is made inside the same slot.
async fn check_current(
    state: &AppState,
    user: &UserRecord,
    current: &str,
    ip: IpAddr,
) -> ApiResult<tokio::sync::OwnedSemaphorePermit> {
    let wrong = || ApiError::forbidden("the current password is wrong");
    if current.len() > 1024 {
        return Err(wrong());
    }
    let net = network_key(ip);
    let keys = [user.username.as_str(), net.as_str()];
    if !state.limits.sign_in.try_take(&keys, now()) {
        state.metrics.rate_limited(Limit::SignIn);
        return Err(ApiError::too_many_requests("too many wrong passwords; wait a few minutes and try again"));
    }
    let permit = tokio::time::timeout(HASH_QUEUE_WAIT, state.password_checks.clone().acquire_owned())
        .await
        .map_err(|_| busy())?
        .map_err(|_| busy())?;
    if !passwords::verify(current.to_string(), Some(user.password_hash.clone())).await? {
        return Err(wrong());
    }
    state.limits.sign_in.refund(&keys, now());
    Ok(permit)
}

/// Checks a password someone else chose for an account (an admin's reset) against
/// the password rules and hashes it, in a hashing slot like every other password.
pub async fn hash_new_password(state: &AppState, new: &str) -> ApiResult<String> {
    latchkey_domain::names::check_password(new).map_err(|e| ApiError::invalid_request(e.to_string()))?;
    let _permit = tokio::time::timeout(HASH_QUEUE_WAIT, state.password_checks.clone().acquire_owned())
        .await
        .map_err(|_| busy())?
        .map_err(|_| busy())?;
    passwords::hash(new.to_string()).await
}

/// Ends the session behind `token`.
pub async fn sign_out(state: &AppState, token: &str) -> ApiResult<()> {
    state.store.delete_session(&SecretHash::of(token), now()).await?;
    Ok(())
}
