//! QR cross-device sign-in: a desktop shows a QR, a signed-in phone approves,
//! the desktop is signed in and sent back to the app with tokens in the URL fragment.
//!
//! The desktop holds a secret (a cookie on the hosted page, `Authorization:
//! Pairing <secret>` for native apps); the QR carries the phone URL with a
//! one-time code derived from it. Only hashes of both are stored. While an
//! app's switch is off, every part of the flow answers 404, in-flight ones too.

use super::no_store;
use super::pages::PageResult;
use crate::credential::{looks_like_phone_code, AnyApp, Caller};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ClientIp, Form, Json, Query, UserAgent};
use crate::session::{cookie, set_cookie};
use crate::state::{now, AppState};
use crate::tokens;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use latchkey_domain::pairing::{self, check_return_to, PairingState, PairingStatus, PairingView};
use latchkey_domain::secret::{Secret, SecretHash, SecretKind};
use latchkey_store::{AppRecord, Collected, NewPairing, PairingRecord, PairingResult, Requester, UserRecord};
use serde::{Deserialize, Serialize};

/// Cookie that carries the desktop's secret on the hosted page.
pub const PAIRING_COOKIE: &str = "latchkey_pairing";

fn off() -> ApiError {
    ApiError::not_found("QR sign-in is not available for this app")
}

/// The app, if it exists and has QR sign-in switched on.
async fn enabled_app(state: &AppState, client_id: &str) -> ApiResult<AppRecord> {
    if latchkey_domain::names::ClientId::parse(client_id).is_err() {
        return Err(off());
    }
    match state.store.app(client_id).await? {
        Some(app) if app.qr_sign_in && app.app_url.is_some() => Ok(app),
        _ => Err(off()),
    }
}

/// The desktop's secret: `Authorization: Pairing <secret>`, or the hosted page's cookie.
fn desktop_secret(headers: &HeaderMap) -> ApiResult<String> {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(s, _)| s.eq_ignore_ascii_case("pairing"))
        .map(|(_, t)| t.trim().to_string());
    from_header
        .or_else(|| cookie(headers, PAIRING_COOKIE).map(str::to_string))
        .filter(|s| !s.is_empty() && s.len() <= 128)
        .ok_or_else(|| ApiError::unauthenticated("send the pairing secret as Authorization: Pairing <secret>"))
}

fn phone_url(state: &AppState, secret: &str) -> String {
    state.config.url(&format!("/pair/{}", pairing::phone_code(secret)))
}

/// Starts a pairing: rate limits, `return_to` check, storage. Returns the desktop secret and the record.
async fn start(
    state: &AppState,
    app: &AppRecord,
    ip: std::net::IpAddr,
    ua: String,
    return_to: Option<&str>,
) -> ApiResult<(Secret, NewPairing)> {
    let return_to = return_to
        .map(|r| check_return_to(r, app.app_url.as_deref()))
        .transpose()
        .map_err(|e| ApiError::invalid_request(e.to_string()))?;
    let net = crate::rate_limit::network_key(ip);
    if !state.limits.pairing.try_take(&[net.as_str(), app.client_id.as_str()], now()) {
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
        requester: Requester { ip: ip.to_string(), user_agent: ua, device_name: None },
        return_to,
    };
    state.store.create_pairing(p.clone(), t).await?;
    Ok((secret, p))
}

#[derive(Template)]
#[template(path = "qr_desktop.html")]
struct DesktopPage {
    signed_in_as: Option<String>,
    csrf: String,
    is_admin: bool,
    app_name: String,
    svg: String,
    phone_url: String,
    wait_url: String,
    expires_in: i64,
}

/// Query of the hosted desktop page.
#[derive(Deserialize)]
pub struct StartQuery {
    return_to: Option<String>,
}

fn page<T: Template>(status: StatusCode, t: &T) -> ApiResult<Response> {
    let html = t.render().map_err(|e| ApiError::Internal(format!("template failed: {e}")))?;
    let mut resp = (status, Html(html)).into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// `GET /apps/{client_id}/qr-sign-in?return_to=…`: the hosted desktop page.
pub async fn desktop_page(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    ClientIp(ip): ClientIp,
    UserAgent(ua): UserAgent,
    Query(q): Query<StartQuery>,
) -> PageResult {
    let app = enabled_app(&state, &client_id).await?;
    let (secret, p) = start(&state, &app, ip, ua, q.return_to.as_deref()).await?;
    let url = phone_url(&state, secret.expose());
    let svg = crate::qr::svg(&url, crate::qr::DEFAULT_SIZE).map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut resp = page(
        StatusCode::OK,
        &DesktopPage {
            signed_in_as: None,
            csrf: String::new(),
            is_admin: false,
            app_name: app.display_name,
            // The SVG comes from our own encoder, not from input: safe to embed.
            svg: svg.split_once("?>").map(|(_, s)| s.to_string()).unwrap_or(svg),
            phone_url: url,
            wait_url: "/api/v1/pairings/wait".into(),
            expires_in: p.state.expires_at.millis_since(now()) / 1000,
        },
    )?;
    let c = format!(
        "{}; SameSite=Strict",
        set_cookie(&state, PAIRING_COOKIE, secret.expose(), pairing::LIFETIME_SECS + 30).replace("; SameSite=Lax", "")
    );
    if let Ok(v) = HeaderValue::from_str(&c) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(resp)
}

/// `POST /api/v1/pairings` body.
#[derive(Deserialize)]
pub struct StartRequest {
    client_id: String,
    return_to: Option<String>,
}

/// A started pairing, for native desktop apps.
#[derive(Serialize)]
pub struct Started {
    /// Keep this secret: wait, collect and cancel with it (`Authorization: Pairing <secret>`).
    pub pairing_secret: String,
    /// The URL the QR must carry (or fetch the image from `/api/v1/pairings/qr`).
    pub phone_url: String,
    /// Seconds until it expires.
    pub expires_in: i64,
}

/// `POST /api/v1/pairings`: start a pairing from a native desktop app.
pub async fn start_api(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    UserAgent(ua): UserAgent,
    Json(req): Json<StartRequest>,
) -> ApiResult<Response> {
    let app = enabled_app(&state, &req.client_id).await?;
    let (secret, p) = start(&state, &app, ip, ua, req.return_to.as_deref()).await?;
    Ok(no_store(Started {
        phone_url: phone_url(&state, secret.expose()),
        pairing_secret: secret.expose().to_string(),
        expires_in: p.state.expires_at.millis_since(now()) / 1000,
    }))
}

/// Query of the image endpoint.
#[derive(Deserialize)]
pub struct ImageQuery {
    format: Option<String>,
    size: Option<u32>,
}

/// `GET /api/v1/pairings/qr?format=svg|png&size=N`: the QR for the caller's pairing.
pub async fn image(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ImageQuery>,
) -> ApiResult<Response> {
    let secret = desktop_secret(&headers)?;
    // Only a live pairing of an enabled app gets an image.
    live_pairing(&state, &secret).await?;
    let url = phone_url(&state, &secret);
    let size = q.size.unwrap_or(crate::qr::DEFAULT_SIZE);
    if !crate::qr::SIZE_RANGE.contains(&size) {
        return Err(ApiError::invalid_request(format!(
            "size must be between {} and {} pixels",
            crate::qr::SIZE_RANGE.start(),
            crate::qr::SIZE_RANGE.end()
        )));
    }
    let (body, ctype) = match q.format.as_deref().unwrap_or("svg") {
        "svg" => (crate::qr::svg(&url, size).map(String::into_bytes), "image/svg+xml"),
        "png" => (crate::qr::png(&url, size), "image/png"),
        other => return Err(ApiError::invalid_request(format!("format must be svg or png, not {other:?}"))),
    };
    let body = body.map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut resp = body.into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    // The image carries a one-time code.
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// The caller's pairing, if its app still allows QR sign-in.
async fn live_pairing(state: &AppState, secret: &str) -> ApiResult<PairingRecord> {
    let p = state
        .store
        .pairing_by_desktop_secret(&SecretHash::of(secret))
        .await?
        .ok_or_else(|| ApiError::not_found("no such QR sign-in; start a new one"))?;
    enabled_app(state, &p.client_id).await?;
    Ok(p)
}

/// What the desktop learns from waiting.
#[derive(Serialize)]
pub struct WaitResponse {
    /// `pending`, `approved`, `denied`, `cancelled`, `expired` or `consumed`.
    pub status: String,
    /// Where the hosted page goes next (return URL with tokens in the fragment).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_to: Option<String>,
    /// The tokens, for native apps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens: Option<latchkey_proto::oauth::TokenResponse>,
}

fn status_only(s: &str) -> ApiResult<Response> {
    Ok(no_store(WaitResponse { status: s.into(), redirect_to: None, tokens: None }))
}

/// `POST /api/v1/pairings/wait`: long-poll until the phone decides (or ~25 s pass).
pub async fn wait(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let secret = desktop_secret(&headers)?;
    let p = live_pairing(&state, &secret).await?;
    let deadline = tokio::time::Instant::now() + state.config.wait_timeout.min(std::time::Duration::from_secs(25));
    let mut shutdown = state.shutting_down.clone();
    let mut waiter = state.store.notifier().subscribe(&p.id);
    loop {
        let p = live_pairing(&state, &secret).await?;
        match p.state.seen_at(now()) {
            PairingView::Expired => return status_only("expired"),
            PairingView::Stored(PairingStatus::Approved) => return collect(&state, &secret).await,
            PairingView::Stored(PairingStatus::Pending) => {}
            PairingView::Stored(other) => return status_only(other.as_str()),
        }
        let until_expiry = u64::try_from(p.state.expires_at.millis_since(now()).max(0)).unwrap_or(0);
        let expiry = tokio::time::Instant::now() + std::time::Duration::from_millis(until_expiry + 5);
        tokio::select! {
            _ = waiter.changed() => {}
            _ = tokio::time::sleep_until(deadline.min(expiry)) => {
                if tokio::time::Instant::now() >= deadline {
                    return status_only("pending");
                }
            }
            _ = shutdown.wait_for(|s| *s) => return status_only("pending"),
        }
    }
}

async fn collect(state: &AppState, secret: &str) -> ApiResult<Response> {
    let t = now();
    let (_, mint) = tokens::new_refresh(state, t);
    match state.store.collect_pairing(&SecretHash::of(secret), mint, t).await? {
        Collected::Tokens(subject, p) => {
            // Browser apps get no refresh token in a URL; they come back through QR or their own session.
            let tokens = tokens::respond(state, &subject, None, t)?;
            let redirect_to = p.return_to.as_ref().map(|r| {
                let mut frag = vec![
                    ("access_token", tokens.access_token.clone()),
                    ("token_type", tokens.token_type.clone()),
                    ("expires_in", tokens.expires_in.to_string()),
                ];
                if let Some(id) = &tokens.id_token {
                    frag.push(("id_token", id.clone()));
                }
                format!("{r}#{}", serde_urlencoded::to_string(frag).unwrap_or_default())
            });
            Ok(no_store(WaitResponse { status: "approved".into(), redirect_to, tokens: Some(tokens) }))
        }
        Collected::NotFound => Err(ApiError::not_found("no such QR sign-in; start a new one")),
        Collected::Refused(_) => status_only("consumed"),
    }
}

/// `POST /api/v1/pairings/cancel`: the desktop gives up.
pub async fn cancel(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<StatusCode> {
    let secret = desktop_secret(&headers)?;
    live_pairing(&state, &secret).await?;
    match state.store.cancel_pairing(&SecretHash::of(&secret), now()).await? {
        PairingResult::NotFound => Err(ApiError::not_found("no such QR sign-in")),
        _ => Ok(StatusCode::NO_CONTENT),
    }
}

// ---- the phone ----

#[derive(Template)]
#[template(path = "qr_phone.html")]
struct PhonePage {
    signed_in_as: Option<String>,
    csrf: String,
    is_admin: bool,
    app_name: String,
    client_id: String,
    code: String,
    desktop_ip: String,
    desktop_user_agent: String,
    requested_at: String,
    different_network: bool,
}

#[derive(Template)]
#[template(path = "device_done.html")]
struct DonePage {
    signed_in_as: Option<String>,
    csrf: String,
    is_admin: bool,
    heading: String,
    message: String,
}

/// The pairing behind a phone code, if its app still allows QR sign-in.
async fn by_phone_code(state: &AppState, code: &str) -> ApiResult<(PairingRecord, AppRecord)> {
    let gone = || ApiError::not_found("this QR code is not valid (any more); show a new one on the computer");
    if !looks_like_phone_code(code) {
        return Err(gone());
    }
    let p = state.store.pairing_by_phone_code(&SecretHash::of(code)).await?.ok_or_else(gone)?;
    let app = enabled_app(state, &p.client_id).await?;
    Ok((p, app))
}

/// `GET /pair/{code}`: what the phone shows before approving.
pub async fn phone_page(
    State(state): State<AppState>,
    who: Option<Caller>,
    ClientIp(ip): ClientIp,
    Path(code): Path<String>,
) -> PageResult {
    let (p, app) = by_phone_code(&state, &code).await?;
    let Some(w) = who else {
        let q = serde_urlencoded::to_string([("next", format!("/pair/{code}"))]).unwrap_or_default();
        return Ok(Redirect::to(&format!("/signin?{q}")).into_response());
    };
    match p.state.seen_at(now()) {
        PairingView::Stored(PairingStatus::Pending) => {}
        PairingView::Expired => {
            return Err(ApiError::gone("this QR code has expired; show a new one on the computer").into())
        }
        PairingView::Stored(_) => return Err(ApiError::conflict("this QR code was already used").into()),
    }
    let different_network = match p.requester.ip.parse() {
        Ok(d) => !crate::extract::same_network(d, ip),
        Err(_) => true,
    };
    Ok(page(
        StatusCode::OK,
        &PhonePage {
            signed_in_as: Some(w.user.username.clone()),
            csrf: w.csrf(),
            is_admin: w.user.is_admin,
            app_name: app.display_name,
            client_id: app.client_id,
            code,
            desktop_ip: p.requester.ip,
            desktop_user_agent: p.requester.user_agent,
            requested_at: super::pages::utc(p.created_at.as_millis()),
            different_network,
        },
    )?)
}

/// Phone decision form.
#[derive(Deserialize)]
pub struct DecisionForm {
    csrf: String,
    code: String,
    decision: String,
}

/// `POST /pair/decision`: the phone approves or cancels.
pub async fn phone_decide(
    State(state): State<AppState>,
    who: Option<Caller>,
    Form(f): Form<DecisionForm>,
) -> PageResult {
    let Some(w) = who else { return Err(ApiError::unauthenticated("sign in on this phone first").into()) };
    w.check_csrf(Some(&f.csrf))?;
    let approve = parse_decision(&f.decision)?;
    let (_, app) = by_phone_code(&state, &f.code).await?;
    decide(&state, &f.code, &w.user, approve).await?;
    let (heading, message) = if approve {
        ("Signed in", format!("The computer is now signed in to {} as {}.", app.display_name, w.user.username))
    } else {
        ("Cancelled", "Nothing was signed in. If you did not start this, someone may have shown you their code.".into())
    };
    Ok(page(
        StatusCode::OK,
        &DonePage {
            signed_in_as: Some(w.user.username.clone()),
            csrf: w.csrf(),
            is_admin: w.user.is_admin,
            heading: heading.into(),
            message,
        },
    )?)
}

fn parse_decision(s: &str) -> ApiResult<bool> {
    match s {
        "approve" => Ok(true),
        "deny" | "cancel" => Ok(false),
        other => Err(ApiError::invalid_request(format!("decision must be approve or deny, not {other:?}"))),
    }
}

async fn decide(state: &AppState, code: &str, user: &UserRecord, approve: bool) -> ApiResult<()> {
    match state.store.decide_pairing(&SecretHash::of(code), &user.id, approve, now()).await? {
        PairingResult::Done(_) => Ok(()),
        PairingResult::NotFound => Err(ApiError::not_found("this QR code is not valid")),
        PairingResult::Refused(pairing::PairingError::Expired) => {
            Err(ApiError::gone("this QR code has expired; show a new one on the computer"))
        }
        PairingResult::Refused(_) => Err(ApiError::conflict("this QR code was already used")),
    }
}

/// `POST /api/v1/pairings/decision` body.
#[derive(Deserialize)]
pub struct DecisionRequest {
    phone_code: String,
    decision: String,
}

/// `POST /api/v1/pairings/decision`: a phone app decides. It authenticates with the
/// user's session, or with its own access token, which must belong to the same app:
/// a token of app B never approves a sign-in to app A.
pub async fn decide_api(
    State(state): State<AppState>,
    caller: Caller<AnyApp>,
    Json(req): Json<DecisionRequest>,
) -> ApiResult<Response> {
    if caller.is_browser() {
        return Err(ApiError::forbidden("browsers approve on the /pair page, not through this API"));
    }
    let approve = parse_decision(&req.decision)?;
    let (p, _) = by_phone_code(&state, &req.phone_code).await?;
    if let Some(client_id) = caller.client_id() {
        if client_id != p.client_id {
            return Err(ApiError::forbidden(format!(
                "this token belongs to the app {client_id:?}; it cannot approve a sign-in to {:?}",
                p.client_id
            )));
        }
    }
    decide(&state, &req.phone_code, &caller.user, approve).await?;
    Ok(no_store(serde_json::json!({"status": if approve { "approved" } else { "denied" }})))
}

/// `GET /static/qr-sign-in.js`: the desktop page's waiting loop (no inline scripts: CSP).
pub async fn script() -> Response {
    let mut resp = include_str!("../../static/qr-sign-in.js").into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    resp
}
