//! RP-initiated logout (`end_session_endpoint`, OpenID Connect RP-Initiated
//! Logout 1.0): an app sends the person here to end their Latchkey session,
//! then they go back to one of the app's registered post-logout URIs. The
//! rules are in `latchkey_domain::logout`; this reads the request, checks the
//! `id_token_hint`, and carries the plan out.

use crate::credential::Caller;
use crate::error::ApiError;
use crate::extract::Form;
use crate::routes::web::pages::{render, DonePage, PageResult};
use crate::session::{set_cookie, SESSION_COOKIE};
use crate::state::AppState;
use crate::web_sign_in::{allow_form_to, pairs_of};
use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use latchkey_domain::logout::{self, Hint, LogoutPlan};
use latchkey_proto::paths;
use latchkey_store::AppId;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "logout.html")]
struct ConfirmPage {
    signed_in_as: Option<String>,
    csrf: String,
    is_admin: bool,
    action: &'static str,
    request: String,
    app_name: Option<String>,
}

/// The claims of an `id_token_hint` that matter here.
#[derive(Deserialize)]
struct HintClaims {
    sub: String,
    aud: String,
}

/// `GET /oauth/logout`.
pub async fn get(State(state): State<AppState>, who: Option<Caller>, RawQuery(q): RawQuery) -> PageResult {
    begin(&state, who, q.unwrap_or_default()).await
}

/// `POST /oauth/logout` (form-encoded parameters, as the specification allows):
/// answered with the same request as a `GET`. A cross-site POST carries no
/// `SameSite=Lax` session cookie, but the top-level GET it is redirected to does,
/// so the person is signed out either way, and asked in the same cases.
pub async fn post(body: String) -> Response {
    // Re-encoded, so only well-formed parameters (repeats kept, to be refused) go in the URL.
    let raw = serde_urlencoded::to_string(pairs_of(&body)).unwrap_or_default();
    Redirect::to(&format!("{}?{raw}", paths::END_SESSION)).into_response()
}

/// The plan for a request and the browser's person; refusals are shown on our own page.
async fn plan_for(state: &AppState, raw: &str, who: Option<&Caller>) -> Result<(LogoutPlan, Option<String>), ApiError> {
    let refused = |e: logout::LogoutRefusal| ApiError::invalid_request(e.to_string());
    let r = logout::read(&pairs_of(raw)).map_err(refused)?;
    let hint = match &r.id_token_hint {
        None => Hint::Absent,
        Some(t) => match state.keys.verify_expired_ok::<HintClaims>(t, &state.config.public_url, "JWT") {
            Some(c) => Hint::Valid { sub: c.sub, aud: c.aud },
            None => Hint::Invalid,
        },
    };
    let app = match logout::client_of(&r, &hint).map_err(refused)? {
        Some(c) => state.store.app(AppId(&c)).await?,
        None => None,
    };
    let registered = app.as_ref().map(|a| a.post_logout_redirect_uris.as_slice());
    // Only a browser session is signed out here; a token in a header is not a browser.
    let me = who.filter(|w| w.is_browser()).map(|w| w.user.id.as_str());
    let plan = logout::plan(&r, &hint, registered, me).map_err(refused)?;
    Ok((plan, app.map(|a| a.display_name)))
}

async fn begin(state: &AppState, who: Option<Caller>, raw: String) -> PageResult {
    let (plan, app_name) = plan_for(state, &raw, who.as_ref()).await?;
    match (plan.confirm, who) {
        (true, Some(w)) => {
            let page = ConfirmPage {
                signed_in_as: Some(w.user.username.clone()),
                csrf: w.csrf(),
                is_admin: w.user.is_admin,
                action: paths::END_SESSION_CONFIRM,
                request: raw,
                app_name,
            };
            let resp = render(StatusCode::OK, &page);
            Ok(match &plan.return_to {
                Some(to) => allow_form_to(resp, to),
                None => resp,
            })
        }
        (_, who) => finish(state, who.filter(Caller::is_browser), &plan).await,
    }
}

/// The confirmation form.
#[derive(Deserialize)]
pub struct ConfirmForm {
    csrf: String,
    request: String,
    decision: String,
}

/// `POST /oauth/logout/confirm`: the person chose to sign out (or to stay).
pub async fn confirm(State(state): State<AppState>, who: Option<Caller>, Form(f): Form<ConfirmForm>) -> PageResult {
    let (plan, _) = plan_for(&state, &f.request, who.as_ref()).await?;
    let who = who.filter(Caller::is_browser);
    if let Some(w) = &who {
        w.check_csrf(Some(&f.csrf))?;
    }
    match f.decision.as_str() {
        "sign_out" => finish(&state, who, &plan).await,
        "stay" => Ok(done(who.as_ref(), "Still signed in", "You are still signed in to Latchkey.")),
        _ => Err(ApiError::invalid_request("decision must be sign_out or stay").into()),
    }
}

/// Ends the browser's session (if any) and sends the person on.
async fn finish(state: &AppState, who: Option<Caller>, plan: &LogoutPlan) -> PageResult {
    let mut resp = match &plan.return_to {
        Some(to) => Redirect::to(to).into_response(),
        None => done(None, "Signed out", "You are signed out of Latchkey. You can close this page."),
    };
    if let Some(w) = &who {
        w.sign_out(state).await?;
        if let Ok(v) = HeaderValue::from_str(&set_cookie(state, SESSION_COOKIE, "", 0)) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(resp)
}

fn done(who: Option<&Caller>, heading: &str, message: &str) -> Response {
    render(
        StatusCode::OK,
        &DonePage {
            signed_in_as: who.map(|w| w.user.username.clone()),
            csrf: who.map(Caller::csrf).unwrap_or_default(),
            is_admin: who.is_some_and(|w| w.user.is_admin),
            heading: heading.into(),
            message: message.into(),
        },
    )
}
