//! The token endpoint: the RFC 8628 device-code grant and refresh tokens.
//!
//! A DPoP proof (RFC 9449) on the request names the key it was signed with:
//! grants and refresh tokens bound to a key are refused without it; a device
//! code's tokens are bound to it when the grant was not bound yet; a refresh
//! token of an unbound sign-in is refused with one (RFC 9449 §5); and an app
//! that requires DPoP is refused any token request without one.

use crate::client_auth::{authenticate, FormCredentials};
use crate::dpop::CheckedProof;
use crate::error::{ApiError, ApiResult};
use crate::extract::Form;
use crate::routes::no_store;
use crate::state::{now, AppState};
use crate::tokens;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use latchkey_domain::dpop::DpopError;
use latchkey_domain::secret::SecretHash;
use latchkey_domain::Timestamp;
use latchkey_store::{
    AppRecord, CodeRedeemed, GrantType, PresentedCredential, Redeem, RedeemCode, RedeemMode, Redeemed, RotateRefresh,
    Rotated,
};
use serde::Deserialize;

/// The form body (fields of every grant type this endpoint takes).
#[derive(Deserialize)]
pub struct Params {
    #[serde(flatten)]
    creds: FormCredentials,
    grant_type: Option<String>,
    device_code: Option<String>,
    refresh_token: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
}

/// `POST /oauth/token`.
pub async fn handle(State(state): State<AppState>, headers: HeaderMap, Form(p): Form<Params>) -> ApiResult<Response> {
    let grant_type = p.grant_type.as_deref().ok_or_else(|| ApiError::invalid_request("grant_type is required"))?;
    let Some(grant) = GrantType::parse(grant_type) else {
        return Err(ApiError::unsupported_grant_type(format!("grant_type {grant_type:?} is not supported here")));
    };
    let app = authenticate(&state, &headers, &p.creds).await?;
    if !app.allows(grant) {
        return Err(ApiError::unauthorized_client(format!(
            "the app {:?} may not use the {grant_type} grant",
            app.client_id
        )));
    }
    let proof = checked_proof(&state, &headers, latchkey_proto::paths::TOKEN)?;
    match grant {
        GrantType::DeviceCode => {
            let code = p.device_code.as_deref().ok_or_else(|| ApiError::invalid_request("device_code is required"))?;
            let jkt = admit(&state, &app, PresentedCredential::DeviceCode(SecretHash::of(code)), proof).await?;
            match redeem_once(&state, &app, code, RedeemMode::Poll, jkt).await? {
                Step::Tokens(resp) => Ok(resp),
                Step::Pending { .. } => {
                    Err(ApiError::authorization_pending("waiting for the user to approve this sign-in"))
                }
            }
        }
        GrantType::RefreshToken => {
            let token =
                p.refresh_token.as_deref().ok_or_else(|| ApiError::invalid_request("refresh_token is required"))?;
            let jkt = admit(&state, &app, PresentedCredential::RefreshToken(SecretHash::of(token)), proof).await?;
            refresh(&state, &app, token, jkt).await
        }
        GrantType::AuthorizationCode => redeem_code(&state, &app, p, proof).await,
    }
}

/// The authorization code grant (RFC 6749 §4.1.3, RFC 7636 §4.5). A DPoP
/// proof on the request binds the tokens to its key (RFC 9449 §5).
async fn redeem_code(state: &AppState, app: &AppRecord, p: Params, proof: Option<CheckedProof>) -> ApiResult<Response> {
    let code =
        p.code.as_deref().filter(|c| !c.is_empty()).ok_or_else(|| ApiError::invalid_request("code is required"))?;
    if code.len() > 128 {
        return Err(unknown_code());
    }
    let jkt = admit(state, app, PresentedCredential::AuthorizationCode(SecretHash::of(code)), proof).await?;
    let t = now();
    let (refresh, mint) = tokens::new_family(state, t, app.allows(GrantType::RefreshToken));
    let redeem = RedeemCode {
        code_hash: SecretHash::of(code),
        client_id: app.client_id.clone(),
        redirect_uri: p.redirect_uri,
        code_verifier: p.code_verifier,
        jkt,
        mint,
    };
    match state.store.redeem_authorization_code(redeem, t).await? {
        CodeRedeemed::Tokens { subject, nonce, amr } => {
            let extras = tokens::IdTokenExtras { nonce, amr, ..tokens::extras_for(state, app).await? };
            Ok(no_store(tokens::respond_with(state, &subject, refresh, t, &extras)?))
        }
        CodeRedeemed::Unknown => Err(unknown_code()),
        CodeRedeemed::Refused(why) => Err(ApiError::invalid_grant(why.to_string())),
        CodeRedeemed::AccountStopped(r) => Err(ApiError::invalid_grant(r.to_string())),
    }
}

/// The request's DPoP proof, if it carries one: checked, not yet recorded (see [`admit`]).
pub(crate) fn checked_proof(state: &AppState, headers: &HeaderMap, path: &str) -> ApiResult<Option<CheckedProof>> {
    crate::dpop::check(state, headers, &Method::POST, path, None, StatusCode::BAD_REQUEST)
}

/// Records the request's DPoP proof once the credential it came with is known
/// to be this app's, and gives the key it proves (refusing a request without
/// one when the app requires DPoP).
///
/// Not recorded before the lookup: anyone can sign proofs with keys of their
/// own, and each recorded proof takes room in the replay memory and a row of
/// PostgreSQL's `once_used` for 65 s. A proof sent with a code or token that
/// does not exist (or is another app's) now costs nothing, so recorded proofs
/// are bounded by the credentials that exist.
///
/// Not recorded after the redemption either: the redemption is the change the
/// proof guards. The lookup only reads, so nothing has changed when the proof
/// is recorded, and recording is atomic (one lock in memory, one primary key
/// in the database). Of two requests racing with one proof, both may pass the
/// lookup, but exactly one is recorded and goes on to redeem; the other is
/// refused as a replay before it touches anything. A credential spent or
/// revoked between the lookup and the redemption is refused by the
/// redemption's own transaction, as ever.
pub(crate) async fn admit(
    state: &AppState,
    app: &AppRecord,
    credential: PresentedCredential,
    proof: Option<CheckedProof>,
) -> ApiResult<Option<String>> {
    let Some(proof) = proof else { return crate::dpop::required_by(app, None) };
    let unknown = match &credential {
        PresentedCredential::DeviceCode(_) => unknown_device_code(),
        PresentedCredential::RefreshToken(_) => unknown_refresh_token(),
        PresentedCredential::AuthorizationCode(_) => unknown_code(),
    };
    if state.store.issued_to(credential).await?.as_deref() != Some(app.client_id.as_str()) {
        return Err(unknown);
    }
    Ok(Some(crate::dpop::record(state, proof).await?.jkt))
}

fn unknown_device_code() -> ApiError {
    ApiError::invalid_grant("unknown device code for this client")
}

fn unknown_refresh_token() -> ApiError {
    ApiError::invalid_grant("the refresh token is unknown, expired or revoked")
}

fn unknown_code() -> ApiError {
    ApiError::invalid_grant("unknown authorization code")
}

/// Where one redemption left a device code.
pub(crate) enum Step {
    /// Tokens issued: the response to send.
    Tokens(Response),
    /// Not decided yet; the grant to wait on.
    Pending {
        /// Grant ID, for wake-ups.
        grant_id: String,
        /// When the grant expires.
        expires_at: Timestamp,
    },
}

/// One redemption; every final refusal (denied, expired, spent, unknown) is an error.
/// A proof from a key binds the tokens to it when the grant was not bound to a
/// device key already; a proof from another key than the grant's is refused.
pub(crate) async fn redeem_once(
    state: &AppState,
    app: &AppRecord,
    code: &str,
    mode: RedeemMode,
    presented_jkt: Option<String>,
) -> ApiResult<Step> {
    let t = now();
    let (refresh, mint) = tokens::new_family(state, t, app.allows(GrantType::RefreshToken));
    let redeem =
        Redeem { device_code_hash: SecretHash::of(code), client_id: app.client_id.clone(), mode, presented_jkt, mint };
    match state.store.redeem_device_grant(redeem, t).await? {
        Redeemed::Tokens(subject) => {
            let extras = tokens::extras_for(state, app).await?;
            Ok(Step::Tokens(no_store(tokens::respond_with(state, &subject, refresh, t, &extras)?)))
        }
        Redeemed::Pending { grant_id, expires_at } => Ok(Step::Pending { grant_id, expires_at }),
        Redeemed::SlowDown { interval_secs } => Err(ApiError::slow_down(format!(
            "polling too fast; wait at least {interval_secs} seconds between requests"
        ))),
        Redeemed::Denied => Err(ApiError::access_denied("the user denied this sign-in")),
        Redeemed::Expired => {
            state.metrics.device_login(crate::metrics::Outcome::Expired);
            Err(ApiError::expired_token("the code expired before it was approved; start again"))
        }
        Redeemed::Spent => Err(ApiError::invalid_grant("tokens were already issued for this device code")),
        Redeemed::Unknown => Err(unknown_device_code()),
        Redeemed::WrongKey => Err(wrong_key()),
        Redeemed::AccountStopped(r) => Err(ApiError::access_denied(r.to_string())),
    }
}

/// A token request for a key-bound grant without a proof from that key.
fn wrong_key() -> ApiError {
    crate::dpop::invalid_proof(DpopError::WrongKey, StatusCode::BAD_REQUEST)
}

/// A DPoP proof sent with a grant that was not bound to a key at sign-in
/// (RFC 9449 §5, §10): binding happens when the sign-in starts, so the server
/// cannot bind now, and answering with bearer tokens would let the client
/// believe its tokens are key-bound when they are not.
fn not_key_bound(what: &str) -> ApiError {
    ApiError::invalid_dpop_proof(format!(
        "{what} was not started with a DPoP key, so it cannot be redeemed with one; \
         send the request without a DPoP proof, or sign in again with the key"
    ))
}

async fn refresh(state: &AppState, app: &AppRecord, token: &str, presented_jkt: Option<String>) -> ApiResult<Response> {
    let t = now();
    let (secret, replacement) = tokens::new_refresh_token(state, t);
    let rotate = RotateRefresh {
        token_hash: SecretHash::of(token),
        client_id: app.client_id.clone(),
        replacement,
        presented_jkt,
    };
    match state.store.rotate_refresh_token(rotate, t).await? {
        Rotated::Tokens(subject) => {
            let extras = tokens::extras_for(state, app).await?;
            Ok(no_store(tokens::respond_with(state, &subject, Some(secret), t, &extras)?))
        }
        Rotated::ReuseDetected => Err(ApiError::invalid_grant(
            "this refresh token was already used; every token of this sign-in is now revoked, sign in again",
        )),
        Rotated::Invalid => Err(unknown_refresh_token()),
        Rotated::WrongKey => Err(wrong_key()),
        Rotated::NotKeyBound => Err(not_key_bound("the sign-in behind this refresh token")),
        Rotated::AccountStopped(r) => Err(ApiError::invalid_grant(r.to_string())),
    }
}
