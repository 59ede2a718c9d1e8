//! Sign-ins on the pages: the "Other sign-ins" list of the Devices page,
//! ending one, and the banner that announces new sign-ins and devices to the
//! user's other browsers for 7 days (the "notify" mitigation of cross-device
//! sign-in), each with a one-click "Not you? Revoke".
//!
//! The work is done by the same functions as the JSON API (`sign_ins::of`,
//! `sign_ins::end_own`); this file only shapes what the pages show.

use super::pages::{signin_redirect, PageResult, When};
use crate::credential::Caller;
use crate::error::ApiResult;
use crate::extract::Form;
use crate::routes::api::sign_ins::{self, NEW_FOR_SECS};
use crate::state::{now, AppState};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect};
use latchkey_domain::device::DeviceStatus;
use latchkey_domain::humanize::{ago, browser};
use latchkey_domain::Timestamp;
use latchkey_proto::api::SignInInfo;
use latchkey_store::UserId;
use serde::Deserialize;

/// At most this many new sign-ins are announced at once; the Devices page lists the rest.
const MAX_NEWS: usize = 5;

/// A sign-in as the Devices page lists it.
pub struct SignInRow {
    /// What the API says of it.
    pub s: SignInInfo,
    /// The browser, in short ("Chrome on Linux").
    pub browser: String,
    /// When it started.
    pub since: When,
}

/// One announcement of the banner.
pub struct NewsItem {
    /// "New sign-in" or "New device".
    pub headline: &'static str,
    /// What and where: "Dashboard on Chrome on Linux from 203.0.113.4, 2 minutes ago".
    pub text: String,
    /// Where "Not you? Revoke" posts.
    pub action: String,
    /// Whether it is a device (its revoke form needs the confirmation field).
    pub device: bool,
    at: Timestamp,
}

/// The user's sign-ins that are not devices, for the Devices page.
pub async fn rows(state: &AppState, w: &Caller) -> ApiResult<Vec<SignInRow>> {
    Ok(sign_ins::of(state, w, None)
        .await?
        .into_iter()
        .map(|s| SignInRow { browser: browser(&s.user_agent), since: When::from_now(s.created_at_ms), s })
        .collect())
}

/// New sign-ins and devices of the last 7 days other than the caller's own, newest first.
pub async fn news(state: &AppState, w: &Caller) -> ApiResult<Vec<NewsItem>> {
    let t = now();
    let since = t.plus_secs(-NEW_FOR_SECS);
    let mut items: Vec<NewsItem> = sign_ins::of(state, w, Some(since))
        .await?
        .into_iter()
        .filter(|s| !s.current)
        .map(|s| {
            let at = Timestamp::from_millis(s.created_at_ms);
            let from = if s.ip.is_empty() { String::new() } else { format!(" from {}", s.ip) };
            NewsItem {
                headline: "New sign-in",
                text: format!("{} on {}{from}, {}", s.app, browser(&s.user_agent), ago(at, t)),
                action: format!("/sign-ins/{}/end", s.id),
                device: false,
                at,
            }
        })
        .collect();
    let devices = state.store.devices(UserId(&w.user.id)).await?;
    items.extend(
        devices
            .into_iter()
            .filter(|d| d.status == DeviceStatus::Active && d.created_at >= since && w.device_id() != Some(&d.id))
            .map(|d| {
                let place = d.location.as_deref().map(|l| format!(" in {l}")).unwrap_or_default();
                let platform = if d.platform.is_empty() { String::new() } else { format!(" ({})", d.platform) };
                NewsItem {
                    headline: "New device",
                    text: format!("{}{platform}{place}, added {}", d.display_name, ago(d.created_at, t)),
                    action: format!("/devices/{}/revoke", d.id),
                    device: true,
                    at: d.created_at,
                }
            }),
    );
    items.sort_by_key(|n| std::cmp::Reverse(n.at));
    items.truncate(MAX_NEWS);
    Ok(items)
}

/// A form with only a CSRF token.
#[derive(Deserialize)]
pub struct EndForm {
    csrf: String,
}

/// `POST /sign-ins/{id}/end`: ends one of the user's sign-ins at once. Ending
/// this browser's own session signs it out.
pub async fn end(
    State(state): State<AppState>,
    who: Option<Caller>,
    Path(id): Path<String>,
    Form(f): Form<EndForm>,
) -> PageResult {
    let Some(w) = who else { return Ok(signin_redirect("/devices")) };
    w.check_csrf(Some(&f.csrf))?;
    let ended = sign_ins::end_own(&state, &w, &id).await?;
    let to = if ended.current { "/signin" } else { "/devices?done=ended" };
    Ok(Redirect::to(to).into_response())
}
