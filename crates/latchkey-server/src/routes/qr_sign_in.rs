//! QR cross-device sign-in: a desktop shows a QR, a signed-in phone approves,
//! the desktop is signed in and sent back to the app with tokens in the URL fragment.
//!
//! The desktop holds a secret (a cookie on the hosted page, `Authorization:
//! Pairing <secret>` for native apps); the QR carries the phone URL with a
//! one-time code derived from it. Only hashes of both are stored. While an
//! app's switch is off, every part of the flow answers 404, in-flight ones too.

use super::no_store;
use super::pages::PageResult;
use crate::credential::{AnyApp, Caller};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ClientIp, Form, Json, Query, UserAgent};
use crate::qr_flow;
use crate::session::{cookie, set_cookie};
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use latchkey_domain::pairing;
use serde::{Deserialize, Serialize};

/// Cookie that carries the desktop's secret on the hosted page.
pub const PAIRING_COOKIE: &str = "latchkey_pairing";

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
    let started = qr_flow::start(&state, &client_id, ip, ua, q.return_to.as_deref()).await?;
    let secret = started.secret;
    let url = started.phone_url;
    let svg = crate::qr::svg(&url, crate::qr::DEFAULT_SIZE).map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut resp = page(
        StatusCode::OK,
        &DesktopPage {
            signed_in_as: None,
            csrf: String::new(),
            is_admin: false,
            app_name: started.app.display_name,
            // The SVG comes from our own encoder, not from input: safe to embed.
            svg: svg.split_once("?>").map(|(_, s)| s.to_string()).unwrap_or(svg),
            phone_url: url,
            wait_url: "/api/v1/pairings/wait".into(),
            expires_in: started.expires_in,
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
    let started = qr_flow::start(&state, &req.client_id, ip, ua, req.return_to.as_deref()).await?;
    Ok(no_store(Started {
        pairing_secret: started.secret.expose().to_string(),
        phone_url: started.phone_url,
        expires_in: started.expires_in,
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
    let (body, ctype) = qr_flow::image(&state, &secret, q.format.as_deref(), q.size).await?;
    let mut resp = body.into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    // The image carries a one-time code.
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// `POST /api/v1/pairings/wait`: long-poll until the phone decides (or `wait_timeout` passes).
pub async fn wait(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let secret = desktop_secret(&headers)?;
    Ok(no_store(qr_flow::wait(&state, &secret).await?))
}

/// `POST /api/v1/pairings/cancel`: the desktop gives up.
pub async fn cancel(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<StatusCode> {
    let secret = desktop_secret(&headers)?;
    qr_flow::cancel(&state, &secret).await?;
    Ok(StatusCode::NO_CONTENT)
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

/// `GET /pair/{code}`: what the phone shows before approving.
pub async fn phone_page(
    State(state): State<AppState>,
    who: Option<Caller>,
    ClientIp(ip): ClientIp,
    Path(code): Path<String>,
) -> PageResult {
    let (p, app) = qr_flow::by_phone_code(&state, &code).await?;
    let Some(w) = who else {
        let q = serde_urlencoded::to_string([("next", format!("/pair/{code}"))]).unwrap_or_default();
        return Ok(Redirect::to(&format!("/signin?{q}")).into_response());
    };
    qr_flow::still_pending(&p)?;
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
    let approve = qr_flow::parse_decision(&f.decision)?;
    let app = qr_flow::decide(&state, &f.code, &w.user, approve, None).await?;
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
    let approve = qr_flow::parse_decision(&req.decision)?;
    qr_flow::decide(&state, &req.phone_code, &caller.user, approve, caller.client_id()).await?;
    Ok(no_store(serde_json::json!({"status": if approve { "approved" } else { "denied" }})))
}

/// `GET /static/qr-sign-in.js`: the desktop page's waiting loop (no inline scripts: CSP).
pub async fn script() -> Response {
    let mut resp = include_str!("../../static/qr-sign-in.js").into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    resp
}
