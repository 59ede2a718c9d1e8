//! QR cross-device sign-in: the one implementation behind "Sign in with your
//! phone" on the web sign-in page, the phone page and the native JSON API
//! (start, wait, collect, decide, cancel).
//!
//! The desktop holds a secret; the QR carries the phone URL with a one-time
//! code derived from it. Only hashes of both are stored. While an app's QR
//! switch is off, every part of the flow answers 404, in-flight ones too.
//! No token is ever put in a URL: a native app collects its tokens in the
//! wait's JSON answer, and a web sign-in's browser collects a Latchkey
//! session and goes on to the authorization code redirect.

use crate::credential::{looks_like_phone_code, Caller, Credential};
use crate::error::{ApiError, ApiResult};
use crate::metrics::{Limit, Outcome};
use crate::state::{now, AppState};
use crate::tokens;
use latchkey_domain::device::DeviceStatus;
use latchkey_domain::pairing::{self, PairingError, PairingState, PairingStatus, PairingView};
use latchkey_domain::secret::{Secret, SecretHash, SecretKind};
use latchkey_proto::pairing::PairingWait;
use latchkey_proto::paths;
use latchkey_store::SessionSeed;
use latchkey_store::{AppId, DeviceId, UserId};
use latchkey_store::{AppRecord, Collected, NewPairing, PairingRecord, PairingResult, Requester};
use std::net::IpAddr;

fn status(s: &str) -> PairingWait {
    PairingWait { status: s.into(), redirect_to: None, tokens: None }
}

/// A pairing just started.
pub struct Started {
    /// The app it signs in to.
    pub app: AppRecord,
    /// The desktop's secret (shown once to the desktop).
    pub secret: Secret,
    /// The URL the QR carries.
    pub phone_url: String,
    /// Seconds until it expires.
    pub expires_in: i64,
}

fn off() -> ApiError {
    ApiError::not_found("QR sign-in is not available for this app")
}

fn no_such_pairing() -> ApiError {
    ApiError::not_found("no such QR sign-in; start a new one")
}

fn expired() -> ApiError {
    ApiError::gone("this QR code has expired; show a new one on the computer")
}

fn used() -> ApiError {
    ApiError::conflict("this QR code was already used")
}

/// The app, if it exists and has QR sign-in switched on. An app that requires
/// DPoP never has: a native QR sign-in collects tokens it cannot bind to a key.
pub async fn enabled_app(state: &AppState, client_id: &str) -> ApiResult<AppRecord> {
    if latchkey_domain::names::ClientId::parse(client_id).is_err() {
        return Err(off());
    }
    match state.store.app(AppId(client_id)).await? {
        Some(app) if app.qr_sign_in && !app.require_dpop => Ok(app),
        _ => Err(off()),
    }
}

/// Whether "Sign in with your phone" is offered in `app`'s web sign-in: its
/// QR switch is on and it may still use web sign-in.
pub fn offers_phone(app: &AppRecord) -> bool {
    app.qr_sign_in && !app.require_dpop && app.allows(latchkey_store::GrantType::AuthorizationCode)
}

/// The phone URL the QR for `secret` carries.
pub fn phone_url(state: &AppState, secret: &str) -> String {
    state.config.url(&paths::with_id(paths::PHONE_PAGE, &pairing::phone_code(secret)))
}

/// Starts a native app's pairing: the app's switch, rate limits, storage.
pub async fn start(state: &AppState, client_id: &str, ip: IpAddr, user_agent: String) -> ApiResult<Started> {
    let app = enabled_app(state, client_id).await?;
    create(state, app, ip, user_agent, None).await
}

/// Starts a QR sign-in that continues the web sign-in `r` in this browser, a
/// method of the sign-in page while the app offers it ([`offers_phone`]). On
/// approval the browser opens a Latchkey session and the authorization request
/// goes on to its code redirect.
pub async fn start_web(
    state: &AppState,
    r: &crate::web_sign_in::Request,
    ip: IpAddr,
    user_agent: String,
) -> ApiResult<Started> {
    if !offers_phone(&r.app) {
        return Err(off());
    }
    create(state, r.app.clone(), ip, user_agent, Some(r.raw.clone())).await
}

async fn create(
    state: &AppState,
    app: AppRecord,
    ip: IpAddr,
    user_agent: String,
    continues: Option<String>,
) -> ApiResult<Started> {
    let net = crate::rate_limit::network_key(ip);
    if !state.limits.pairing.try_take(&[net.as_str(), app.client_id.as_str()], now()) {
        state.metrics.rate_limited(Limit::Pairing);
        return Err(ApiError::too_many_requests("too many QR sign-ins started; wait a minute"));
    }
    let secret = Secret::generate(SecretKind::PairingSecret, &mut rand::rngs::OsRng);
    let t = now();
    let p = NewPairing {
        id: uuid::Uuid::now_v7().to_string(),
        client_id: app.client_id.clone(),
        desktop_secret_hash: secret.hash(),
        phone_code_hash: SecretHash::of(&pairing::phone_code(secret.expose())),
        state: PairingState::new(t),
        requester: Requester { ip: ip.to_string(), user_agent, device_name: None },
        continues,
    };
    state.store.create_pairing(p.clone(), t).await?;
    state.metrics.qr_sign_in(Outcome::Started);
    Ok(Started {
        phone_url: phone_url(state, secret.expose()),
        expires_in: p.state.expires_at.millis_since(now()) / 1000,
        app,
        secret,
    })
}

/// The desktop's pairing, if its app still allows it.
pub async fn live_pairing(state: &AppState, secret: &str) -> ApiResult<PairingRecord> {
    let p = state.store.pairing_by_desktop_secret(&SecretHash::of(secret)).await?.ok_or_else(no_such_pairing)?;
    app_of(state, &p).await?;
    Ok(p)
}

/// The app a pairing signs in to, while it still allows that kind of pairing:
/// the QR switch, and web sign-in for one that continues a web sign-in.
async fn app_of(state: &AppState, p: &PairingRecord) -> ApiResult<AppRecord> {
    if p.continues.is_none() {
        return enabled_app(state, &p.client_id).await;
    }
    match state.store.app(AppId(&p.client_id)).await? {
        Some(app) if offers_phone(&app) => Ok(app),
        _ => Err(off()),
    }
}

/// Where the desktop's browser goes once the phone approved a web sign-in's QR (page `tab`).
pub fn continue_url(tab: Option<&str>) -> String {
    match tab {
        Some(t) => {
            format!("{}?{}", paths::AUTHORIZE_PHONE_DONE, serde_urlencoded::to_string([("tab", t)]).unwrap_or_default())
        }
        None => paths::AUTHORIZE_PHONE_DONE.to_string(),
    }
}

/// Waits until the phone decides, the pairing expires, the switch goes off,
/// or `wait_timeout` passes (then `pending`: call again).
pub async fn wait(state: &AppState, ip: IpAddr, secret: &str, tab: Option<&str>) -> ApiResult<PairingWait> {
    let p = live_pairing(state, secret).await?;
    let cap = Some(usize::try_from(state.config.waiters_per_code).unwrap_or(1));
    let answer = crate::long_poll::wait_for(state, ip, &p.id, p.state.expires_at, cap, || async {
        let p = live_pairing(state, secret).await?;
        Ok(match p.state.seen_at(now()) {
            PairingView::Expired => {
                state.metrics.qr_sign_in(Outcome::Expired);
                Some(status("expired"))
            }
            // A web sign-in's browser collects with a navigation, which can carry its new session cookie.
            PairingView::Stored(PairingStatus::Approved) if p.continues.is_some() => {
                Some(PairingWait { status: "approved".into(), redirect_to: Some(continue_url(tab)), tokens: None })
            }
            PairingView::Stored(PairingStatus::Approved) => Some(collect(state, secret).await?),
            PairingView::Stored(PairingStatus::Pending) => None,
            PairingView::Stored(other) => Some(status(other.as_str())),
        })
    })
    .await?;
    Ok(answer.unwrap_or_else(|| status("pending")))
}

/// Exchanges an approved pairing for tokens, exactly once.
pub async fn collect(state: &AppState, secret: &str) -> ApiResult<PairingWait> {
    let t = now();
    // A QR sign-in gets no refresh token: it lasts as long as its access token,
    // and a machine that should stay signed in registers as a device instead.
    let (_, mint) = tokens::new_family(state, t, false);
    match state.store.collect_pairing(&SecretHash::of(secret), mint, t).await? {
        Collected::Tokens(subject, _) => {
            let tokens = tokens::respond(state, &subject, None, t)?;
            Ok(PairingWait { status: "approved".into(), redirect_to: None, tokens: Some(tokens) })
        }
        Collected::NotFound => Err(no_such_pairing()),
        Collected::Refused(_) | Collected::Session(_) => Ok(status("consumed")),
        Collected::AccountStopped(r) => Err(ApiError::access_denied(r.to_string())),
    }
}

/// Opens the desktop browser's Latchkey session for an approved QR sign-in that
/// continues a web sign-in, exactly once; the pairing (with the request it
/// continues) and the new session's token.
pub async fn collect_session(state: &AppState, secret: &str) -> ApiResult<(PairingRecord, Secret)> {
    live_pairing(state, secret).await?;
    let t = now();
    let token = Secret::generate(SecretKind::Session, &mut rand::rngs::OsRng);
    let seed = SessionSeed {
        token_hash: token.hash(),
        id: uuid::Uuid::new_v4().simple().to_string(),
        expires_at: t.plus_secs(state.config.session_lifetime_secs()),
    };
    match state.store.collect_pairing_session(&SecretHash::of(secret), seed, t).await? {
        Collected::Session(p) => Ok((*p, token)),
        Collected::NotFound => Err(no_such_pairing()),
        Collected::Refused(PairingError::NotApproved) => {
            Err(ApiError::conflict("this QR sign-in has not been approved on the phone"))
        }
        Collected::Refused(PairingError::Expired) => Err(expired()),
        Collected::Refused(_) | Collected::Tokens(..) => Err(used()),
        Collected::AccountStopped(r) => Err(ApiError::access_denied(r.to_string())),
    }
}

/// The QR image for the desktop's pairing: `svg` (default) or `png`, `size` pixels; returns bytes and content type.
pub async fn image(
    state: &AppState,
    secret: &str,
    format: Option<&str>,
    size: Option<u32>,
) -> ApiResult<(Vec<u8>, &'static str)> {
    // Only a live pairing of an enabled app gets an image.
    live_pairing(state, secret).await?;
    let url = phone_url(state, secret);
    let size = size.unwrap_or(crate::qr::DEFAULT_SIZE);
    if !crate::qr::SIZE_RANGE.contains(&size) {
        return Err(ApiError::invalid_request(format!(
            "size must be between {} and {} pixels",
            crate::qr::SIZE_RANGE.start(),
            crate::qr::SIZE_RANGE.end()
        )));
    }
    let (body, ctype) = match format.unwrap_or("svg") {
        "svg" => (crate::qr::svg(&url, size).map(String::into_bytes), "image/svg+xml"),
        "png" => (crate::qr::png(&url, size), "image/png"),
        other => return Err(ApiError::invalid_request(format!("format must be svg or png, not {other:?}"))),
    };
    Ok((body.map_err(|e| ApiError::Internal(e.to_string()))?, ctype))
}

/// The desktop gives up.
pub async fn cancel(state: &AppState, secret: &str) -> ApiResult<()> {
    live_pairing(state, secret).await?;
    match state.store.cancel_pairing(&SecretHash::of(secret), now()).await? {
        PairingResult::NotFound => Err(ApiError::not_found("no such QR sign-in")),
        _ => Ok(()),
    }
}

/// The pairing behind a phone code, if its app still allows QR sign-in.
pub async fn by_phone_code(state: &AppState, code: &str) -> ApiResult<(PairingRecord, AppRecord)> {
    let gone = || ApiError::not_found("this QR code is not valid (any more); show a new one on the computer");
    if !looks_like_phone_code(code) {
        return Err(gone());
    }
    let p = state.store.pairing_by_phone_code(&SecretHash::of(code)).await?.ok_or_else(gone)?;
    let app = app_of(state, &p).await?;
    Ok((p, app))
}

/// Refuses a pairing that no longer waits for the phone's decision.
pub fn still_pending(p: &PairingRecord) -> ApiResult<()> {
    match p.state.seen_at(now()) {
        PairingView::Stored(PairingStatus::Pending) => Ok(()),
        PairingView::Expired => Err(expired()),
        PairingView::Stored(_) => Err(used()),
    }
}

/// Parses the phone's `approve` / `deny` (`cancel` is a denial).
pub fn parse_decision(s: &str) -> ApiResult<bool> {
    match s {
        "approve" => Ok(true),
        "deny" | "cancel" => Ok(false),
        other => Err(ApiError::invalid_request(format!("decision must be approve or deny, not {other:?}"))),
    }
}

/// Records the phone user's decision; returns the app it was for. Only a
/// caller that [`check_approver`] accepts may decide, whichever route it came through.
pub async fn decide<A>(state: &AppState, code: &str, caller: &Caller<A>, approve: bool) -> ApiResult<AppRecord> {
    let (_, app) = by_phone_code(state, code).await?;
    check_approver(state, caller, &app).await?;
    match state.store.decide_pairing(&SecretHash::of(code), UserId(&caller.user.id), approve, now()).await? {
        PairingResult::Done(_) => {
            state.metrics.qr_sign_in(if approve { Outcome::Approved } else { Outcome::Denied });
            Ok(app)
        }
        PairingResult::NotFound => Err(ApiError::not_found("this QR code is not valid")),
        PairingResult::Refused(PairingError::Expired) => Err(expired()),
        PairingResult::Refused(_) => Err(used()),
        PairingResult::AccountStopped(r) => Err(r.into()),
    }
}

/// The one rule for who may approve (or deny) a QR sign-in: a person signed in
/// on the phone (a session: the page's cookie, CSRF-checked by the page, or a
/// session token), or a registered device of that person proving its key.
///
/// Never a bare bearer access token: that is exactly what a QR sign-in hands
/// to a desktop (in a URL fragment), so accepting one would let its holder
/// approve a new pairing with it, collect a fresh sign-in, and repeat forever.
/// A device token counts only when it is DPoP-bound (so the request carried a
/// fresh proof from the key, checked by `tokens::authenticate`) and its
/// `device_id` names an active device of the token's own user with that key:
/// revoking the device ends its approvals at once.
///
/// Which app's token: the pairing's own app (a phone app approving sign-ins to
/// itself), or Latchkey's CLI app, whose DPoP-bound tokens belong only to
/// registered devices: that is "the phone (or computer) already signed in",
/// and it may vouch for any app its user signs in to, just as a session may.
/// A token of some third app never approves a sign-in to another app.
pub async fn check_approver<A>(state: &AppState, caller: &Caller<A>, app: &AppRecord) -> ApiResult<()> {
    let claims = match &caller.credential {
        Credential::Cookie { .. } | Credential::SessionToken { .. } => return Ok(()),
        Credential::Device { claims } => claims,
    };
    let not_a_device = || {
        ApiError::credential_refused(
            "this token cannot approve QR sign-ins: approve QR sign-ins from a signed-in browser or a registered device",
        )
    };
    let (Some(cnf), Some(device_id)) = (&claims.cnf, claims.device_id.as_deref()) else {
        return Err(not_a_device());
    };
    if claims.client_id != app.client_id && claims.client_id != latchkey_proto::CLI_CLIENT_ID {
        return Err(ApiError::forbidden(format!(
            "this token belongs to the app {:?}; it cannot approve a sign-in to {:?}",
            claims.client_id, app.client_id
        )));
    }
    match state.store.device(DeviceId(device_id)).await? {
        Some(d)
            if d.status == DeviceStatus::Active
                && d.owner_id == claims.sub
                && d.jkt.as_deref() == Some(cnf.jkt.as_str()) =>
        {
            Ok(())
        }
        _ => Err(not_a_device()),
    }
}
