//! The apps a person let sign them in on the web (remembered consent), as the
//! Devices page lists them, and withdrawing one: the consent is forgotten and
//! the app's web sign-ins end at once (its devices, if any, are left alone).

use super::pages::{signin_redirect, PageResult, When};
use crate::credential::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::Form;
use crate::state::{now, AppState};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect};
use latchkey_store::{AppId, UserId};
use serde::Deserialize;

/// One remembered consent, as the Devices page shows it.
pub struct ConsentRow {
    /// The app's client ID.
    pub client_id: String,
    /// The app's name.
    pub app: String,
    /// What it may do, space-separated scopes.
    pub scope: String,
    /// When it was last given.
    pub granted: When,
}

/// The caller's remembered consents, newest first.
pub async fn rows(state: &AppState, w: &Caller) -> ApiResult<Vec<ConsentRow>> {
    let mut out = Vec::new();
    for c in state.store.consents_of(UserId(&w.user.id)).await? {
        let app = state.store.app(AppId(&c.client_id)).await?.map(|a| a.display_name);
        out.push(ConsentRow {
            app: app.unwrap_or_else(|| c.client_id.clone()),
            client_id: c.client_id,
            scope: c.scope,
            granted: When::from_now(c.granted_at.as_millis()),
        });
    }
    Ok(out)
}

/// A form with only a CSRF token.
#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// `POST /consents/{client_id}/withdraw`.
pub async fn withdraw(
    State(state): State<AppState>,
    who: Option<Caller>,
    Path(client_id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> PageResult {
    let Some(w) = who else { return Ok(signin_redirect("/devices")) };
    w.check_csrf(Some(&f.csrf))?;
    let none = || ApiError::not_found("you have not let this app sign you in");
    if latchkey_domain::names::ClientId::parse(&client_id).is_err() {
        return Err(none().into());
    }
    state.store.withdraw_consent(UserId(&w.user.id), AppId(&client_id), now()).await?.ok_or_else(none)?;
    Ok(Redirect::to("/devices?done=withdrawn").into_response())
}
