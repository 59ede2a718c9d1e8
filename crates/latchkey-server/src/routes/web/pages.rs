//! Server-rendered pages: sign-in, sign-out, and the device verification page.
//!
//! Every page is framing-proof (headers set in `lib.rs`); forms carry a CSRF
//! token; approving takes two deliberate steps even when the code arrives
//! pre-filled in a link (RFC 8628 §5.4, §5.7).

use crate::credential::Caller;
use crate::device_flow;
use crate::error::ApiError;
use crate::extract::Query;
use crate::extract::{ClientIp, Form, UserAgent};
use crate::session::{cookie, set_cookie, SESSION_COOKIE, SIGNIN_CSRF_COOKIE};
use crate::sign_in;
use crate::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use latchkey_domain::device_grant::Decision;
use latchkey_domain::secret::{Secret, SecretKind};
use latchkey_domain::user_code::UserCode;
use latchkey_proto::api::PendingDeviceLogin;
use latchkey_store::AppId;
use serde::Deserialize;
use subtle::ConstantTimeEq;

/// A failure shown as a page instead of JSON; same statuses as the API.
pub struct PageError(ApiError);

impl From<latchkey_store::StoreError> for PageError {
    fn from(e: latchkey_store::StoreError) -> Self {
        PageError(e.into())
    }
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        PageError(e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        self.0.log();
        let (status, _, message) = self.0.parts();
        let page = ErrorPage {
            signed_in_as: None,
            csrf: String::new(),
            is_admin: false,
            heading: "Something went wrong".into(),
            message,
            back: "/".into(),
        };
        render(status, &page)
    }
}

/// What a page handler returns.
pub(crate) type PageResult = Result<Response, PageError>;

/// Renders a page, never cached.
pub(crate) fn render<T: Template>(status: StatusCode, t: &T) -> Response {
    match t.render() {
        Ok(html) => {
            let mut resp = (status, Html(html)).into_response();
            // Pages show codes and decisions: never cache them.
            resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(e) => ApiError::Internal(format!("template failed: {e}")).into_response(),
    }
}

/// A page that only says something went wrong or was refused, and where to go back to.
#[derive(Template)]
#[template(path = "error.html")]
pub(crate) struct ErrorPage {
    pub signed_in_as: Option<String>,
    pub csrf: String,
    pub is_admin: bool,
    pub heading: String,
    pub message: String,
    pub back: String,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    signed_in_as: Option<String>,
    csrf: String,
    is_admin: bool,
    username: String,
    news: Vec<super::sign_ins::NewsItem>,
}

#[derive(Template)]
#[template(path = "signin.html")]
struct SignInPage {
    signed_in_as: Option<String>,
    csrf: String,
    is_admin: bool,
    target: SignInTarget,
    username: String,
    error: Option<String>,
}

/// Where a sign-in form goes and what it continues.
pub(crate) struct SignInTarget {
    /// Where the form posts.
    pub action: &'static str,
    /// Where the passkey form posts.
    pub passkey_action: &'static str,
    /// The local path to return to (`/signin` forms).
    pub next: String,
    /// The authorization request being continued, as a query string (web sign-in forms).
    pub request: Option<String>,
    /// The app the person is signing in to, for the heading.
    pub app_name: Option<String>,
    /// "Sign in with your phone" for this request (web sign-in forms).
    pub phone_url: Option<String>,
}

impl SignInTarget {
    /// Latchkey's own sign-in, returning to `next`.
    fn local(next: String) -> Self {
        SignInTarget {
            action: "/signin",
            passkey_action: "/signin/passkey",
            next,
            request: None,
            app_name: None,
            phone_url: None,
        }
    }
}

#[derive(Template)]
#[template(path = "device_entry.html")]
struct DeviceEntryPage {
    signed_in_as: Option<String>,
    csrf: String,
    is_admin: bool,
    user_code: String,
    prefilled: bool,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "device_confirm.html")]
struct DeviceConfirmPage {
    signed_in_as: Option<String>,
    csrf: String,
    is_admin: bool,
    username: String,
    login: PendingDeviceLogin,
    requested_at: When,
}

/// A page that only says how something ended (a heading and a sentence).
#[derive(Template)]
#[template(path = "device_done.html")]
pub(crate) struct DonePage {
    pub signed_in_as: Option<String>,
    pub csrf: String,
    pub is_admin: bool,
    pub heading: String,
    pub message: String,
}

/// Only local paths may be redirect targets (no open redirects): visible ASCII
/// only (browsers drop tabs and newlines, turning `/\t/evil` into `//evil`),
/// one leading slash, no backslashes anywhere.
pub(crate) fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && n.len() < 512
                && n.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b'\\') =>
        {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

/// Sends a signed-out visitor to sign in, then back to `next`.
pub(crate) fn signin_redirect(next: &str) -> Response {
    let q = serde_urlencoded::to_string([("next", next)]).unwrap_or_default();
    Redirect::to(&format!("/signin?{q}")).into_response()
}

/// A UTC time for pages, from ms since epoch.
pub fn utc(ms: i64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| "unknown".into())
}

/// An exact time as RFC 3339 (UTC, seconds), for `<time datetime>` and exports.
pub fn rfc3339(ms: i64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_default()
}

/// A moment as pages show it: "3 minutes ago" in a `<time>` element whose
/// `datetime` is exact and whose tooltip gives the exact UTC time. The one way
/// pages show times; write it with `{{ when|safe }}` (its text is only digits and fixed words).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct When {
    /// RFC 3339, for `datetime`.
    pub iso: String,
    /// "2026-11-30 09:00:00", for the tooltip.
    pub exact: String,
    /// "3 minutes ago", "in 12 minutes".
    pub relative: String,
}

impl When {
    /// `ms` (since the epoch) seen from `now`.
    pub fn at(ms: i64, now: latchkey_domain::Timestamp) -> Self {
        let then = latchkey_domain::Timestamp::from_millis(ms);
        When { iso: rfc3339(ms), exact: utc(ms), relative: latchkey_domain::humanize::relative(then, now) }
    }

    /// `ms` seen from the server's clock now.
    pub fn from_now(ms: i64) -> Self {
        Self::at(ms, crate::state::now())
    }
}

impl std::fmt::Display for When {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, r#"<time datetime="{}" title="{} UTC">{}</time>"#, self.iso, self.exact, self.relative)
    }
}

/// `GET /`: who is signed in, and new sign-ins to check.
pub async fn home(State(state): State<AppState>, who: Option<Caller>) -> PageResult {
    let Some(w) = who else { return Ok(signin_redirect("/")) };
    let news = super::sign_ins::news(&state, &w).await?;
    Ok(render(
        StatusCode::OK,
        &HomePage {
            signed_in_as: Some(w.user.username.clone()),
            csrf: w.csrf(),
            is_admin: w.user.is_admin,
            username: w.user.username.clone(),
            news,
        },
    ))
}

/// Query of the sign-in page.
#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

pub(crate) fn signin_page(
    state: &AppState,
    status: StatusCode,
    next: String,
    username: String,
    error: Option<String>,
) -> Response {
    signin_page_for(state, status, SignInTarget::local(next), username, error)
}

/// The sign-in form for `target`, with a fresh CSRF cookie (double submit: see [`signin_csrf_ok`]).
pub(crate) fn signin_page_for(
    state: &AppState,
    status: StatusCode,
    target: SignInTarget,
    username: String,
    error: Option<String>,
) -> Response {
    let csrf = Secret::generate(SecretKind::Session, &mut rand::rngs::OsRng).expose().to_string();
    let mut resp = render(
        status,
        &SignInPage { signed_in_as: None, csrf: csrf.clone(), is_admin: false, target, username, error },
    );
    if let Ok(v) = HeaderValue::from_str(&set_cookie(state, SIGNIN_CSRF_COOKIE, &csrf, 3600)) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

/// `GET /signin`.
pub async fn signin_form(State(state): State<AppState>, who: Option<Caller>, Query(q): Query<NextQuery>) -> Response {
    let next = safe_next(q.next.as_deref());
    if who.is_some() {
        return Redirect::to(&next).into_response();
    }
    signin_page(&state, StatusCode::OK, next, String::new(), None)
}

/// Sign-in form body.
#[derive(Deserialize)]
pub struct SignInForm {
    csrf: String,
    next: Option<String>,
    username: String,
    password: String,
}

/// `POST /signin`.
pub async fn signin_submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    UserAgent(ua): UserAgent,
    headers: HeaderMap,
    Form(f): Form<SignInForm>,
) -> PageResult {
    let next = safe_next(f.next.as_deref());
    if !signin_csrf_ok(&state, &headers, &f.csrf) {
        let msg = "The form expired. Please sign in again.".to_string();
        return Ok(signin_page(&state, StatusCode::FORBIDDEN, next, f.username, Some(msg)));
    }
    match sign_in::with_password(&state, &f.username, &f.password, ip, &ua).await {
        Ok((_, token)) => Ok(with_new_session(&state, Redirect::to(&next).into_response(), &token)),
        Err(e @ ApiError::Protocol { .. }) => {
            let (status, _, msg) = e.parts();
            Ok(signin_page(&state, status, next, f.username, Some(msg)))
        }
        Err(e) => Err(e.into()),
    }
}

/// Whether a sign-in form's CSRF token matches the cookie its page set.
pub(crate) fn signin_csrf_ok(state: &AppState, headers: &HeaderMap, presented: &str) -> bool {
    let expected = cookie(state, headers, SIGNIN_CSRF_COOKIE).unwrap_or("");
    !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}

/// `resp`, setting the cookie of the session just opened and clearing the sign-in form's.
pub(crate) fn with_new_session(state: &AppState, mut resp: Response, token: &Secret) -> Response {
    let session = set_cookie(state, SESSION_COOKIE, token.expose(), state.config.session_lifetime_secs());
    let clear = set_cookie(state, SIGNIN_CSRF_COOKIE, "", 0);
    for c in [session, clear] {
        if let Ok(v) = HeaderValue::from_str(&c) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    resp
}

/// A form with only a CSRF token.
#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// `POST /signout`.
pub async fn signout(State(state): State<AppState>, who: Option<Caller>, Form(f): Form<CsrfForm>) -> PageResult {
    if let Some(w) = who {
        w.check_csrf(Some(&f.csrf))?;
        w.sign_out(&state).await?;
    }
    let mut resp = Redirect::to("/signin").into_response();
    if let Ok(v) = HeaderValue::from_str(&set_cookie(&state, SESSION_COOKIE, "", 0)) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(resp)
}

/// Query of the verification page (`verification_uri_complete` carries `user_code`).
#[derive(Deserialize)]
pub struct CodeQuery {
    user_code: Option<String>,
}

fn entry_page(w: &Caller, status: StatusCode, user_code: String, prefilled: bool, error: Option<String>) -> Response {
    render(
        status,
        &DeviceEntryPage {
            signed_in_as: Some(w.user.username.clone()),
            csrf: w.csrf(),
            is_admin: w.user.is_admin,
            user_code,
            prefilled,
            error,
        },
    )
}

/// `GET /device`.
pub async fn device_form(who: Option<Caller>, Query(q): Query<CodeQuery>) -> Response {
    let Some(w) = who else {
        let back = match &q.user_code {
            Some(c) => format!("/device?{}", serde_urlencoded::to_string([("user_code", c)]).unwrap_or_default()),
            None => "/device".into(),
        };
        return signin_redirect(&back);
    };
    match q.user_code.as_deref().map(UserCode::parse) {
        Some(Ok(code)) => entry_page(&w, StatusCode::OK, code.to_string(), true, None),
        Some(Err(_)) => entry_page(
            &w,
            StatusCode::OK,
            String::new(),
            false,
            Some("The link carried a code that is not valid; type the code from your device.".into()),
        ),
        None => entry_page(&w, StatusCode::OK, String::new(), false, None),
    }
}

/// Code entry form body.
#[derive(Deserialize)]
pub struct CodeForm {
    csrf: String,
    user_code: String,
}

/// `POST /device`: look the code up and show what approving it means.
pub async fn device_lookup(
    State(state): State<AppState>,
    who: Option<Caller>,
    ClientIp(ip): ClientIp,
    Form(f): Form<CodeForm>,
) -> PageResult {
    let Some(w) = who else {
        return Ok(signin_redirect("/device"));
    };
    w.check_csrf(Some(&f.csrf))?;
    match device_flow::lookup(&state, &w, ip, &f.user_code).await {
        Ok(login) => {
            let requested_at = When::from_now(login.requested_at_ms);
            Ok(render(
                StatusCode::OK,
                &DeviceConfirmPage {
                    signed_in_as: Some(w.user.username.clone()),
                    csrf: w.csrf(),
                    is_admin: w.user.is_admin,
                    username: w.user.username.clone(),
                    login,
                    requested_at,
                },
            ))
        }
        Err(e @ ApiError::Protocol { .. }) => {
            let (status, _, msg) = e.parts();
            Ok(entry_page(&w, status, f.user_code.chars().take(20).collect(), false, Some(msg)))
        }
        Err(e) => Err(e.into()),
    }
}

/// Decision form body.
#[derive(Deserialize)]
pub struct DecisionForm {
    csrf: String,
    user_code: String,
    decision: String,
    confirm: Option<String>,
}

/// `POST /device/decision`.
pub async fn device_decide(
    State(state): State<AppState>,
    who: Option<Caller>,
    ClientIp(ip): ClientIp,
    Form(f): Form<DecisionForm>,
) -> PageResult {
    let Some(w) = who else {
        return Ok(signin_redirect("/device"));
    };
    w.check_csrf(Some(&f.csrf))?;
    let decision = device_flow::parse_decision(&f.decision)?;
    if decision == Decision::Approve && f.confirm.as_deref() != Some("yes") {
        return Err(
            ApiError::invalid_request("tick the box confirming you started this sign-in and the code matches").into()
        );
    }
    let done = device_flow::decide(&state, &w, ip, &f.user_code, decision).await?;
    let (heading, message) = match decision {
        Decision::Approve => {
            let app = state.store.app(AppId(&done.client_id)).await?.map(|a| a.display_name).unwrap_or(done.client_id);
            ("Device approved", format!("{app} is signing in. You can close this page and return to your device."))
        }
        Decision::Deny => ("Sign-in denied", "The device was refused. If you did not start this sign-in, someone may have tried to trick you; nothing was shared.".to_string()),
    };
    Ok(render(
        StatusCode::OK,
        &DonePage {
            signed_in_as: Some(w.user.username.clone()),
            csrf: w.csrf(),
            is_admin: w.user.is_admin,
            heading: heading.into(),
            message,
        },
    ))
}

/// `GET /static/latchkey.css`.
pub async fn stylesheet() -> Response {
    let mut resp = include_str!("../../../static/latchkey.css").into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8"));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    resp
}
