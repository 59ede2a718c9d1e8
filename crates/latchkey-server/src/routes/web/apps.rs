//! The Apps pages (admins only): list, create and edit OAuth apps, and the
//! hosted QR sign-in URL of each, ready to copy.

use super::admin::Admin;
use super::pages::{render, PageResult, When};
use crate::credential::Caller;
use crate::error::ApiError;
use crate::extract::{Form, Query};
use crate::state::{now, AppState};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use latchkey_domain::app_settings;
use latchkey_domain::names::ClientId;
use latchkey_domain::secret::{Secret, SecretKind};
use latchkey_store::{Actor, AppId};
use latchkey_store::{AppRecord, AppUpdate, ClientKind, GrantType, IdTokenAlg, StoreError};
use serde::Deserialize;

/// An app as the pages show it.
struct AppRow {
    client_id: String,
    display_name: String,
    kind: &'static str,
    grants: Vec<&'static str>,
    redirect_uris: Vec<String>,
    app_url: Option<String>,
    qr_sign_in: bool,
    require_dpop: bool,
    builtin: bool,
    /// When it was registered.
    created: When,
}

impl AppRow {
    fn new(a: AppRecord) -> Self {
        AppRow {
            builtin: a.client_id == latchkey_proto::CLI_CLIENT_ID,
            created: When::from_now(a.created_at.as_millis()),
            kind: a.kind.as_str(),
            grants: a.grant_types.iter().map(|g| g.short_name()).collect(),
            redirect_uris: a.redirect_uris,
            client_id: a.client_id,
            display_name: a.display_name,
            app_url: a.app_url,
            qr_sign_in: a.qr_sign_in,
            require_dpop: a.require_dpop,
        }
    }
}

/// The create and edit forms (checkboxes are absent when unticked).
#[derive(Deserialize, Default)]
pub struct AppForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    kind: String,
    grant_device_code: Option<String>,
    grant_refresh_token: Option<String>,
    grant_authorization_code: Option<String>,
    /// Redirect URIs, one per line.
    #[serde(default)]
    redirect_uris: String,
    /// Post-logout redirect URIs, one per line.
    #[serde(default)]
    post_logout_redirect_uris: String,
    /// `EdDSA` (default) or `RS256`.
    #[serde(default)]
    id_token_alg: String,
    #[serde(default)]
    app_url: String,
    qr_sign_in: Option<String>,
    require_dpop: Option<String>,
}

impl AppForm {
    fn from_app(a: &AppRecord) -> Self {
        let on = |b: bool| b.then(|| "yes".to_string());
        AppForm {
            csrf: String::new(),
            client_id: a.client_id.clone(),
            display_name: a.display_name.clone(),
            kind: a.kind.as_str().into(),
            grant_device_code: on(a.allows(GrantType::DeviceCode)),
            grant_refresh_token: on(a.allows(GrantType::RefreshToken)),
            grant_authorization_code: on(a.allows(GrantType::AuthorizationCode)),
            redirect_uris: a.redirect_uris.join("\n"),
            post_logout_redirect_uris: a.post_logout_redirect_uris.join("\n"),
            id_token_alg: a.id_token_alg.as_str().into(),
            app_url: a.app_url.clone().unwrap_or_default(),
            qr_sign_in: on(a.qr_sign_in),
            require_dpop: on(a.require_dpop),
        }
    }

    fn confidential(&self) -> bool {
        self.kind == "confidential"
    }

    fn device_code(&self) -> bool {
        self.grant_device_code.is_some()
    }

    fn refresh_token(&self) -> bool {
        self.grant_refresh_token.is_some()
    }

    fn authorization_code(&self) -> bool {
        self.grant_authorization_code.is_some()
    }

    fn qr(&self) -> bool {
        self.qr_sign_in.is_some()
    }

    fn dpop(&self) -> bool {
        self.require_dpop.is_some()
    }

    /// Everything but the ID and kind, checked by the one set of rules
    /// (`latchkey_domain::app_settings`); the error is for a person.
    fn settings(&self) -> Result<AppUpdate, String> {
        let input = app_settings::AppSettingsInput {
            display_name: &self.display_name,
            app_url: &self.app_url,
            authorization_code: self.authorization_code(),
            qr_sign_in: self.qr(),
            require_dpop: self.dpop(),
            redirect_uris: self.redirect_uris.lines().collect(),
            post_logout_redirect_uris: self.post_logout_redirect_uris.lines().collect(),
            id_token_alg: &self.id_token_alg,
        };
        let s = app_settings::check(&input).map_err(|e| sentence(&e.to_string()))?;
        let grant_types = [
            (self.authorization_code(), GrantType::AuthorizationCode),
            (self.device_code(), GrantType::DeviceCode),
            (self.refresh_token(), GrantType::RefreshToken),
        ]
        .into_iter()
        .filter_map(|(on, g)| on.then_some(g))
        .collect();
        Ok(AppUpdate {
            display_name: s.display_name.to_string(),
            grant_types,
            app_url: s.app_url,
            qr_sign_in: self.qr(),
            require_dpop: self.dpop(),
            redirect_uris: s.redirect_uris,
            post_logout_redirect_uris: s.post_logout_redirect_uris,
            id_token_alg: s.id_token_alg,
        })
    }
}

/// A rule's message as a sentence on the page: capitalised, with a full stop.
fn sentence(msg: &str) -> String {
    let mut c = msg.chars();
    match c.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), c.as_str()),
        None => String::new(),
    }
}

#[derive(Template)]
#[template(path = "apps.html")]
struct AppsPage {
    signed_in_as: Option<String>,
    csrf: String,
    is_admin: bool,
    apps: Vec<AppRow>,
    form: AppForm,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "app_created.html")]
struct CreatedPage {
    signed_in_as: Option<String>,
    csrf: String,
    is_admin: bool,
    app: AppRow,
    secret: Option<String>,
}

#[derive(Template)]
#[template(path = "app_edit.html")]
struct EditPage {
    signed_in_as: Option<String>,
    csrf: String,
    is_admin: bool,
    app: AppRow,
    form: AppForm,
    error: Option<String>,
    saved: bool,
}

async fn list_page(
    state: &AppState,
    w: &Caller,
    status: StatusCode,
    form: AppForm,
    error: Option<String>,
) -> PageResult {
    let apps = state.store.list_apps().await.map_err(ApiError::from)?;
    Ok(render(
        status,
        &AppsPage {
            signed_in_as: Some(w.user.username.clone()),
            csrf: w.csrf(),
            is_admin: true,
            apps: apps.into_iter().map(AppRow::new).collect(),
            form,
            error,
        },
    ))
}

/// `GET /apps`.
pub async fn list(State(state): State<AppState>, Admin(w): Admin) -> PageResult {
    let form = AppForm { kind: "public".into(), ..AppForm::default() };
    list_page(&state, &w, StatusCode::OK, form, None).await
}

/// `POST /apps`: register an app; a confidential app's secret is shown once.
pub async fn create(State(state): State<AppState>, Admin(w): Admin, Form(f): Form<AppForm>) -> PageResult {
    w.check_csrf(Some(&f.csrf))?;
    let checked = ClientId::parse(&f.client_id).map_err(|e| format!("Client ID: {e}.")).and_then(|id| {
        let kind = ClientKind::parse(&f.kind).ok_or("Choose public or confidential.")?;
        Ok((id, kind, f.settings()?))
    });
    let (id, kind, settings) = match checked {
        Ok(c) => c,
        Err(msg) => return list_page(&state, &w, StatusCode::BAD_REQUEST, f, Some(msg)).await,
    };
    let secret =
        (kind == ClientKind::Confidential).then(|| Secret::generate(SecretKind::ClientSecret, &mut rand::rngs::OsRng));
    let app = AppRecord {
        client_id: id.to_string(),
        display_name: settings.display_name,
        kind,
        secret_hash: secret.as_ref().map(Secret::hash),
        grant_types: settings.grant_types,
        redirect_uris: settings.redirect_uris,
        app_url: settings.app_url,
        qr_sign_in: settings.qr_sign_in,
        require_dpop: settings.require_dpop,
        created_at: now(),
        post_logout_redirect_uris: settings.post_logout_redirect_uris,
        id_token_alg: settings.id_token_alg,
    };
    if app.id_token_alg == IdTokenAlg::RS256 {
        state.keys.ensure_rsa(state.store.as_ref()).await?;
    }
    match state.store.create_app(app.clone(), Some(w.user.id.clone()), now()).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            let msg = format!("An app with the client ID {id} already exists.");
            return list_page(&state, &w, StatusCode::CONFLICT, f, Some(msg)).await;
        }
        Err(e) => return Err(ApiError::from(e).into()),
    }
    Ok(render(
        StatusCode::CREATED,
        &CreatedPage {
            signed_in_as: Some(w.user.username.clone()),
            csrf: w.csrf(),
            is_admin: true,
            app: AppRow::new(app),
            secret: secret.map(|s| s.expose().to_string()),
        },
    ))
}

/// An app that may be edited here: it exists and is not Latchkey's own CLI app.
async fn editable(state: &AppState, client_id: &str) -> Result<AppRecord, ApiError> {
    let none = || ApiError::not_found("there is no app with this client ID");
    if ClientId::parse(client_id).is_err() {
        return Err(none());
    }
    let app = state.store.app(AppId(client_id)).await?.ok_or_else(none)?;
    if app.client_id == latchkey_proto::CLI_CLIENT_ID {
        return Err(ApiError::forbidden(
            "the built-in app latchkey-cli cannot be changed: Latchkey's own CLI relies on it",
        ));
    }
    Ok(app)
}

fn edit_page(
    w: &Caller,
    status: StatusCode,
    app: AppRecord,
    form: AppForm,
    error: Option<String>,
    saved: bool,
) -> Response {
    render(
        status,
        &EditPage {
            signed_in_as: Some(w.user.username.clone()),
            csrf: w.csrf(),
            is_admin: true,
            app: AppRow::new(app),
            form,
            error,
            saved,
        },
    )
}

/// `?saved=1` after an edit.
#[derive(Deserialize)]
pub struct SavedQuery {
    saved: Option<String>,
}

/// `GET /apps/{client_id}/edit`.
pub async fn edit_form(
    State(state): State<AppState>,
    Admin(w): Admin,
    Path(client_id): Path<String>,
    Query(q): Query<SavedQuery>,
) -> PageResult {
    let app = editable(&state, &client_id).await?;
    let form = AppForm::from_app(&app);
    Ok(edit_page(&w, StatusCode::OK, app, form, None, q.saved.is_some()))
}

/// `POST /apps/{client_id}/edit`. Switching QR sign-in off stops pairings in flight:
/// their waiting desktops are woken to re-check the switch.
pub async fn edit(
    State(state): State<AppState>,
    Admin(w): Admin,
    Path(client_id): Path<String>,
    Form(f): Form<AppForm>,
) -> PageResult {
    w.check_csrf(Some(&f.csrf))?;
    let app = editable(&state, &client_id).await?;
    let update = match f.settings() {
        Ok(u) => u,
        Err(msg) => return Ok(edit_page(&w, StatusCode::BAD_REQUEST, app, f, Some(msg), false)),
    };
    if update.id_token_alg == IdTokenAlg::RS256 {
        state.keys.ensure_rsa(state.store.as_ref()).await?;
    }
    let updated =
        state.store.update_app(AppId(&client_id), update, Actor(&w.user.id), now()).await.map_err(ApiError::from)?;
    state.store.notifier().notify_all();
    if updated.is_none() {
        return Err(ApiError::not_found("there is no app with this client ID").into());
    }
    Ok(Redirect::to(&format!("/apps/{client_id}/edit?saved=1")).into_response())
}
