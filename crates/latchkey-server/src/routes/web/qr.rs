//! QR sign-in's pages: "Sign in with your phone" on the web sign-in page (the
//! desktop page that shows the QR and waits), the phone page that approves,
//! and the retired hosted page's answer. The rules live in `qr_flow.rs`.

use crate::credential::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ClientIp, Form, Query, UserAgent};
use crate::qr_flow;
use crate::routes::api::pairings::{pairing_cookie, PAIRING_COOKIE};
use crate::routes::web::pages::{DonePage, PageResult};
use crate::session::set_cookie;
use crate::state::{now, AppState};
use crate::web_sign_in::{self as web, StepResult, Stop};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use latchkey_domain::pairing;
use serde::Deserialize;

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
    fresh_url: String,
    expires_in: i64,
}

/// A started QR sign-in as the desktop shows it (the page, or a fresh code for it).
#[derive(serde::Serialize)]
struct DesktopCode {
    app_name: String,
    svg: String,
    phone_url: String,
    expires_in: i64,
}

/// What a desktop page shows for a started QR sign-in, and the cookie that carries its secret.
fn show_code(state: &AppState, started: qr_flow::Started, tab: &str) -> ApiResult<(DesktopCode, Option<HeaderValue>)> {
    let url = started.phone_url;
    let svg = crate::qr::svg(&url, crate::qr::DEFAULT_SIZE).map_err(|e| ApiError::Internal(e.to_string()))?;
    let cookie = format!(
        "{}; SameSite=Strict",
        set_cookie(
            state,
            &pairing_cookie(tab).unwrap_or_else(|| PAIRING_COOKIE.into()),
            started.secret.expose(),
            pairing::LIFETIME_SECS + 30
        )
        .replace("; SameSite=Lax", "")
    );
    let code = DesktopCode {
        app_name: started.app.display_name,
        // The SVG comes from our own encoder, not from input: safe to embed.
        svg: svg.split_once("?>").map(|(_, s)| s.to_string()).unwrap_or(svg),
        phone_url: url,
        expires_in: started.expires_in,
    };
    Ok((code, HeaderValue::from_str(&cookie).ok()))
}

/// A new page's handle: 8 hex digits naming its pairing cookie (not a secret).
fn new_tab() -> String {
    format!("{:08x}", rand::random::<u32>())
}

fn page<T: Template>(status: StatusCode, t: &T) -> ApiResult<Response> {
    let html = t.render().map_err(|e| ApiError::Internal(format!("template failed: {e}")))?;
    let mut resp = (status, Html(html)).into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// The desktop page for a started code of page `tab`, setting its pairing cookie.
fn desktop_page_for(
    code: DesktopCode,
    cookie: Option<HeaderValue>,
    tab: &str,
    fresh_url: String,
) -> ApiResult<Response> {
    let mut resp = page(
        StatusCode::OK,
        &DesktopPage {
            signed_in_as: None,
            csrf: String::new(),
            is_admin: false,
            app_name: code.app_name,
            svg: code.svg,
            phone_url: code.phone_url,
            wait_url: format!("{}?tab={tab}", latchkey_proto::paths::PAIRING_WAIT),
            fresh_url,
            expires_in: code.expires_in,
        },
    )?;
    if let Some(v) = cookie {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(resp)
}

/// `GET /apps/{client_id}/qr-sign-in`: the retired hosted desktop page, which
/// put tokens in the URL fragment. Old links get 410 and a way on: QR sign-in
/// is now "Sign in with your phone" on the sign-in page an app opens.
pub async fn retired_desktop_page(who: Option<Caller>) -> PageResult {
    let message = "This sign-in link is out of date. To sign in with your phone, open the app again and choose \
                   \"Sign in with your phone\" on the sign-in page it shows. If the app still sends you here, \
                   tell its developers that the hosted QR page was replaced by OpenID Connect sign-in."
        .to_string();
    Ok(page(
        StatusCode::GONE,
        &DonePage {
            csrf: who.as_ref().map(|w| w.csrf()).unwrap_or_default(),
            is_admin: who.as_ref().is_some_and(|w| w.user.is_admin),
            signed_in_as: who.map(|w| w.user.username),
            heading: "This sign-in link was retired".into(),
            message,
        },
    )?)
}

// ---- "Sign in with your phone" on the web sign-in page ----

/// Query of the web sign-in's QR page: the authorization request it continues (and which page).
#[derive(Deserialize)]
pub struct WebQuery {
    request: String,
    #[serde(default)]
    tab: Option<String>,
}

/// The QR page's fresh-code URL for `request` and page `tab`.
fn web_fresh_url(request: &str, tab: &str) -> String {
    let q = serde_urlencoded::to_string([("request", request), ("tab", tab)]).unwrap_or_default();
    format!("{}?{q}", latchkey_proto::paths::AUTHORIZE_PHONE_FRESH)
}

/// `GET /oauth/authorize/phone?request=…`: the QR for signing in with a phone,
/// as a method of the web sign-in page. The request is checked like any other.
pub async fn web_page(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    UserAgent(ua): UserAgent,
    Query(q): Query<WebQuery>,
) -> StepResult {
    let r = web::read(&state, web::pairs_of(&q.request)).await?;
    let tab = new_tab();
    let (code, cookie) = show_code(&state, qr_flow::start_web(&state, &r, ip, ua).await?, &tab)?;
    Ok(desktop_page_for(code, cookie, &tab, web_fresh_url(&r.raw, &tab))?)
}

/// `POST /oauth/authorize/phone/fresh?request=…&tab=…`: a new code for that page.
pub async fn web_fresh(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    UserAgent(ua): UserAgent,
    Query(q): Query<WebQuery>,
) -> StepResult {
    let r = web::read(&state, web::pairs_of(&q.request)).await?;
    let tab = q.tab.filter(|t| pairing_cookie(t).is_some()).unwrap_or_else(new_tab);
    let (code, cookie) = show_code(&state, qr_flow::start_web(&state, &r, ip, ua).await?, &tab)?;
    let mut resp = crate::routes::no_store(code);
    if let Some(v) = cookie {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(resp)
}

/// Which page collects.
#[derive(Deserialize)]
pub struct TabOnly {
    #[serde(default)]
    tab: Option<String>,
}

/// `GET /oauth/authorize/phone/done?tab=…`: the phone approved. The browser
/// collects the QR sign-in with its page's cookie, which opens its Latchkey
/// session, and the authorization request goes on (consent, then the code
/// redirect), as freshly signed in.
pub async fn web_done(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    UserAgent(ua): UserAgent,
    headers: axum::http::HeaderMap,
    Query(q): Query<TabOnly>,
) -> StepResult {
    let tab = crate::routes::api::pairings::TabQuery::of(q.tab);
    let secret = crate::routes::api::pairings::desktop_secret(&state, &headers, &tab)?;
    let (p, token) = qr_flow::collect_session(&state, &secret).await?;
    let continues = p.continues.unwrap_or_default();
    let r = web::read(&state, web::pairs_of(&continues)).await?;
    // The session just opened, read back as every request reads it: whose it is, and that they may act.
    let session = state
        .store
        .session(&token.hash(), now())
        .await?
        .ok_or_else(|| ApiError::access_denied("the account that approved this sign-in cannot sign in"))?;
    let browser = web::Browser {
        user: session.user,
        signed_in_at: now(),
        csrf: crate::session::csrf_for(token.expose()),
        amr: session.amr,
    };
    let resp = match web::proceed(&state, &r, Some(&browser), true, ip, &ua).await {
        Ok(resp) => resp,
        Err(Stop::App(resp)) => resp,
        Err(stop) => return Err(stop),
    };
    let mut resp = crate::routes::web::pages::with_new_session(&state, resp, &token);
    let name = tab.cookie_name();
    if let Ok(v) = HeaderValue::from_str(&set_cookie(&state, &name, "", 0)) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(resp)
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

/// `GET /pair/{code}`: what the phone shows before approving.
pub async fn phone_page(
    State(state): State<AppState>,
    who: Option<Caller>,
    ClientIp(ip): ClientIp,
    Path(code): Path<String>,
) -> PageResult {
    let (p, app) = qr_flow::by_phone_code(&state, &code).await?;
    let Some(w) = who else {
        let q = serde_urlencoded::to_string([(
            "next",
            latchkey_proto::paths::with_id(latchkey_proto::paths::PHONE_PAGE, &code),
        )])
        .unwrap_or_default();
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
            requested_at: crate::routes::web::pages::utc(p.created_at.as_millis()),
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
    let app = qr_flow::decide(&state, &f.code, &w, approve).await?;
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

/// `GET /static/qr-sign-in.js`: the desktop page's waiting loop (no inline scripts: CSP).
pub async fn script() -> Response {
    let mut resp = include_str!("../../../static/qr-sign-in.js").into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    resp
}
