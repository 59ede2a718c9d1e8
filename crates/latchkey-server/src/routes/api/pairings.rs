//! QR sign-in's JSON API (`/api/v1/pairings`): a native desktop app starts,
//! shows the QR, waits and cancels with `Authorization: Pairing <secret>` (the
//! hosted page sends the same secret as a cookie); a phone app decides with
//! its own credential. The rules live in `qr_flow.rs`.

use crate::credential::{AnyApp, Caller};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ClientIp, Json, Query, UserAgent};
use crate::qr_flow;
use crate::routes::no_store;
use crate::session::cookie;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use latchkey_proto::pairing::{
    PairingDecided, PairingDecision, PairingQrQuery, PairingStarted, StartPairing, AUTH_SCHEME,
};

/// Cookie that carries the desktop's secret on the hosted page; each page (tab)
/// has its own, `latchkey_pairing_<tab>`, so a second QR tab does not replace the first.
pub const PAIRING_COOKIE: &str = "latchkey_pairing";

/// The cookie of one hosted page (tab): its handle is 8 hex digits, not a secret.
pub fn pairing_cookie(tab: &str) -> Option<String> {
    (tab.len() == 8 && tab.bytes().all(|b| b.is_ascii_hexdigit())).then(|| format!("{PAIRING_COOKIE}_{tab}"))
}

/// Which hosted page (tab) a request comes from.
#[derive(Debug, Default, serde::Deserialize)]
pub struct TabQuery {
    /// The page's handle.
    #[serde(default)]
    tab: Option<String>,
}

impl TabQuery {
    /// The page `tab` names.
    pub fn of(tab: Option<String>) -> Self {
        TabQuery { tab }
    }

    /// The name of that page's pairing cookie.
    pub fn cookie_name(&self) -> String {
        self.tab.as_deref().and_then(pairing_cookie).unwrap_or_else(|| PAIRING_COOKIE.into())
    }
}

/// The desktop's secret: `Authorization: Pairing <secret>`, or the hosted page's cookie.
pub(crate) fn desktop_secret(state: &AppState, headers: &HeaderMap, tab: &TabQuery) -> ApiResult<String> {
    let cookie_name = tab.cookie_name();
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(s, _)| s.eq_ignore_ascii_case(AUTH_SCHEME))
        .map(|(_, t)| t.trim().to_string());
    from_header
        .or_else(|| cookie(state, headers, &cookie_name).map(str::to_string))
        .filter(|s| !s.is_empty() && s.len() <= 128)
        .ok_or_else(|| ApiError::unauthenticated("send the pairing secret as Authorization: Pairing <secret>"))
}

/// Why `return_to` is refused, and what to do instead.
pub const RETURN_TO_RETIRED: &str = "return_to is no longer supported: tokens are never put in a URL. A web app signs \
     in with OpenID Connect at /oauth/authorize, where people can pick \"Sign in with your phone\"; a native app reads \
     its tokens from the answer to POST /api/v1/pairings/wait";

/// `POST /api/v1/pairings`: start a pairing from a native desktop app.
pub async fn start_api(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    UserAgent(ua): UserAgent,
    Json(req): Json<StartPairing>,
) -> ApiResult<Response> {
    if req.return_to.is_some() {
        return Err(ApiError::invalid_request(RETURN_TO_RETIRED));
    }
    let started = qr_flow::start(&state, &req.client_id, ip, ua).await?;
    Ok(no_store(PairingStarted {
        pairing_secret: started.secret.expose().to_string(),
        phone_url: started.phone_url,
        expires_in: started.expires_in,
    }))
}

/// `GET /api/v1/pairings/qr?format=svg|png&size=N`: the QR for the caller's pairing.
pub async fn image(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<PairingQrQuery>,
    Query(tab): Query<TabQuery>,
) -> ApiResult<Response> {
    let secret = desktop_secret(&state, &headers, &tab)?;
    let (body, ctype) = qr_flow::image(&state, &secret, q.format.as_deref(), q.size).await?;
    let mut resp = body.into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    // The image carries a one-time code.
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// `POST /api/v1/pairings/wait`: long-poll until the phone decides (or `wait_timeout` passes).
pub async fn wait(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Query(tab): Query<TabQuery>,
) -> ApiResult<Response> {
    let secret = desktop_secret(&state, &headers, &tab)?;
    Ok(no_store(qr_flow::wait(&state, ip, &secret, tab.tab.as_deref()).await?))
}

/// `POST /api/v1/pairings/cancel`: the desktop gives up.
pub async fn cancel(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(tab): Query<TabQuery>,
) -> ApiResult<StatusCode> {
    let secret = desktop_secret(&state, &headers, &tab)?;
    qr_flow::cancel(&state, &secret).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/pairings/decision`: a phone app decides. It authenticates with the
/// user's session token, or with a registered device's DPoP-bound token; who
/// may decide is `qr_flow::check_approver`'s one rule.
pub async fn decide_api(
    State(state): State<AppState>,
    caller: Caller<AnyApp>,
    Json(req): Json<PairingDecision>,
) -> ApiResult<Response> {
    if caller.is_browser() {
        return Err(ApiError::forbidden("browsers approve on the /pair page, not through this API"));
    }
    let approve = qr_flow::parse_decision(&req.decision)?;
    qr_flow::decide(&state, &req.phone_code, &caller, approve).await?;
    Ok(no_store(PairingDecided { status: if approve { "approved" } else { "denied" }.into() }))
}
