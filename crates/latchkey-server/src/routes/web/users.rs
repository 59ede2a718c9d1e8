//! The Users page (admins only): every account with its status, and the web
//! form of `latchkey admin user`: disable, enable (which also lifts a lock),
//! reset password, and, after a confirmation step, revoke everything and delete.
//!
//! The store does the work and records each action in the audit log, with the
//! signed-in admin's user ID as actor (as every other page records its user).
//! An admin cannot disable or delete their own account here, so nobody locks
//! themselves out by a slip; their own password is changed on the Password
//! page, which asks for the current one.

use super::admin::Admin;
use super::pages::{render, PageError, PageResult, When};
use crate::credential::Caller;
use crate::error::ApiError;
use crate::extract::{Form, Query};
use crate::sign_in;
use crate::state::{now, AppState};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use latchkey_domain::account::AccountRefusal;
use latchkey_store::{Actor, UserId, UserRecord};
use serde::Deserialize;

/// An account as the pages show it.
struct UserRow {
    id: String,
    username: String,
    is_admin: bool,
    /// `active`, `disabled` or `locked` (then `locked_until` says until when).
    status: String,
    /// When a lock ends.
    locked_until: Option<When>,
    disabled: bool,
    locked: bool,
    created: When,
    /// Whether this is the signed-in admin's own account.
    me: bool,
}

impl UserRow {
    fn new(u: UserRecord, me: &Caller) -> Self {
        let t = now();
        let (status, disabled, locked_until) = match u.status.check(t) {
            Ok(()) => ("active".to_string(), false, None),
            Err(AccountRefusal::Disabled) => ("disabled".to_string(), true, None),
            Err(AccountRefusal::Locked { until }) => {
                ("locked".to_string(), false, Some(When::at(until.as_millis(), t)))
            }
        };
        let locked = locked_until.is_some();
        UserRow {
            me: u.id == me.user.id,
            created: When::from_now(u.created_at.as_millis()),
            id: u.id,
            username: u.username,
            is_admin: u.is_admin,
            status,
            locked_until,
            disabled,
            locked,
        }
    }
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    signed_in_as: Option<String>,
    csrf: String,
    is_admin: bool,
    users: Vec<UserRow>,
    notice: Option<&'static str>,
}

/// The two actions that go through a confirmation page.
#[derive(Clone, Copy)]
enum Drastic {
    RevokeAll,
    Delete,
}

impl Drastic {
    /// The last segment of its URL.
    fn path(self) -> &'static str {
        match self {
            Drastic::RevokeAll => "revoke-all",
            Drastic::Delete => "delete",
        }
    }
}

#[derive(Template)]
#[template(path = "user_confirm.html")]
struct ConfirmPage {
    signed_in_as: Option<String>,
    csrf: String,
    is_admin: bool,
    row: UserRow,
    action: &'static str,
    heading: String,
    warning: &'static str,
    tick: String,
    button: &'static str,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "user_password.html")]
struct PasswordPage {
    signed_in_as: Option<String>,
    csrf: String,
    is_admin: bool,
    row: UserRow,
    error: Option<String>,
}

/// `?done=` after a change: which fixed message to show (never echoed text).
#[derive(Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

fn notice(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "disabled" => Some("Account disabled. It gets nothing, by any sign-in or token, until it is enabled again."),
        "enabled" => Some("Account enabled. Any lock from wrong passwords is lifted."),
        "password" => {
            Some("Password set. The account's browser and API sessions were signed out; its devices stay signed in.")
        }
        "revoked" => Some(
            "Everything the account held was ended: sessions, device and app sign-ins, logins and QR sign-ins \
             approved but not yet collected, and enrollment keys. It can still sign in.",
        ),
        "deleted" => Some("Account deleted, with every device, session and token it held."),
        _ => None,
    }
}

/// The account with this ID (admins only see this page, so the whole list is fine to search).
async fn account(state: &AppState, w: &Caller, id: &str) -> Result<UserRow, PageError> {
    let found = state.store.users().await?.into_iter().find(|u| u.id == id);
    let u = found.ok_or_else(|| ApiError::not_found("there is no account with this ID"))?;
    Ok(UserRow::new(u, w))
}

fn gone() -> PageError {
    ApiError::not_found("there is no account with this ID; it may have just been deleted").into()
}

fn done(what: &str) -> Response {
    Redirect::to(&format!("/users?done={what}")).into_response()
}

/// `GET /users`.
pub async fn list(State(state): State<AppState>, Admin(w): Admin, Query(q): Query<DoneQuery>) -> PageResult {
    let users = state.store.users().await?.into_iter().map(|u| UserRow::new(u, &w)).collect();
    Ok(render(
        StatusCode::OK,
        &UsersPage {
            signed_in_as: Some(w.user.username.clone()),
            csrf: w.csrf(),
            is_admin: true,
            users,
            notice: notice(q.done.as_deref()),
        },
    ))
}

/// A form with only a CSRF token.
#[derive(Deserialize)]
pub struct CsrfForm {
    csrf: String,
}

/// `POST /users/{id}/disable`: the account gets nothing until enabled. Not one's own.
pub async fn disable(
    State(state): State<AppState>,
    Admin(w): Admin,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> PageResult {
    w.check_csrf(Some(&f.csrf))?;
    let row = account(&state, &w, &id).await?;
    if row.me {
        return Err(ApiError::conflict(
            "you cannot disable your own account: you would lock yourself out. Another administrator can, \
             or `latchkey admin user disable` on the server",
        )
        .into());
    }
    if state.store.set_user_disabled(UserId(&row.id), true, Actor(&w.user.id), now()).await?.is_none() {
        return Err(gone());
    }
    Ok(done("disabled"))
}

/// `POST /users/{id}/enable`: enables the account and lifts any lock.
pub async fn enable(
    State(state): State<AppState>,
    Admin(w): Admin,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> PageResult {
    w.check_csrf(Some(&f.csrf))?;
    let row = account(&state, &w, &id).await?;
    if state.store.set_user_disabled(UserId(&row.id), false, Actor(&w.user.id), now()).await?.is_none() {
        return Err(gone());
    }
    Ok(done("enabled"))
}

/// Refuses a password reset of one's own account: the Password page asks for the current password.
fn not_own_password(row: &UserRow) -> Result<(), PageError> {
    if row.me {
        return Err(ApiError::conflict(
            "change your own password on the Password page (/password): it asks for your current one",
        )
        .into());
    }
    Ok(())
}

fn password_page(w: &Caller, status: StatusCode, row: UserRow, error: Option<String>) -> Response {
    render(
        status,
        &PasswordPage { signed_in_as: Some(w.user.username.clone()), csrf: w.csrf(), is_admin: true, row, error },
    )
}

/// `GET /users/{id}/password`: the reset form.
pub async fn password_form(State(state): State<AppState>, Admin(w): Admin, Path(id): Path<String>) -> PageResult {
    let row = account(&state, &w, &id).await?;
    not_own_password(&row)?;
    Ok(password_page(&w, StatusCode::OK, row, None))
}

/// The reset form's body.
#[derive(Deserialize)]
pub struct PasswordForm {
    csrf: String,
    new_password: String,
    repeat_password: String,
}

/// `POST /users/{id}/password`: sets a new password and ends the account's sessions.
pub async fn password(
    State(state): State<AppState>,
    Admin(w): Admin,
    Path(id): Path<String>,
    Form(f): Form<PasswordForm>,
) -> PageResult {
    w.check_csrf(Some(&f.csrf))?;
    let row = account(&state, &w, &id).await?;
    not_own_password(&row)?;
    if f.new_password != f.repeat_password {
        let msg = "The two passwords differ; type the same new password twice.".to_string();
        return Ok(password_page(&w, StatusCode::BAD_REQUEST, row, Some(msg)));
    }
    let hash = match sign_in::hash_new_password(&state, &f.new_password).await {
        Ok(h) => h,
        Err(e @ ApiError::Protocol { .. }) => {
            let (status, _, msg) = e.parts();
            return Ok(password_page(&w, status, row, Some(msg)));
        }
        Err(e) => return Err(e.into()),
    };
    if !state.store.change_password(UserId(&row.id), &hash, None, Actor(&w.user.id), now()).await? {
        return Err(gone());
    }
    Ok(done("password"))
}

/// Refuses deleting one's own account.
fn not_own_delete(what: Drastic, row: &UserRow) -> Result<(), PageError> {
    if matches!(what, Drastic::Delete) && row.me {
        return Err(ApiError::conflict(
            "you cannot delete your own account: you would lock yourself out. Another administrator can, \
             or `latchkey admin user delete` on the server",
        )
        .into());
    }
    Ok(())
}

fn confirm_page(w: &Caller, status: StatusCode, what: Drastic, row: UserRow, error: Option<String>) -> Response {
    let name = row.username.clone();
    let (heading, warning, tick, button) = match what {
        Drastic::RevokeAll => (
            format!("Revoke everything {name} holds?"),
            "Every sign-in of the account ends at once: its browser and API sessions, the tokens of every device \
             and app, logins and QR sign-ins approved but not yet collected, and its enrollment keys. The account \
             itself stays and can sign in again; its devices and apps must sign in again too.",
            format!("Yes, end every sign-in of {name} now."),
            "Revoke everything",
        ),
        Drastic::Delete => (
            format!("Delete {name}?"),
            "The account is removed with every device, session and token it holds; they stop working at once. \
             This cannot be undone: the name can be given to a new account later, with nothing of this one's.",
            format!("Yes, delete {name} and everything it holds."),
            "Delete account",
        ),
    };
    render(
        status,
        &ConfirmPage {
            signed_in_as: Some(w.user.username.clone()),
            csrf: w.csrf(),
            is_admin: true,
            row,
            action: what.path(),
            heading,
            warning,
            tick,
            button,
            error,
        },
    )
}

async fn drastic_form(state: &AppState, w: Caller, id: &str, what: Drastic) -> PageResult {
    let row = account(state, &w, id).await?;
    not_own_delete(what, &row)?;
    Ok(confirm_page(&w, StatusCode::OK, what, row, None))
}

/// The confirmation form's body.
#[derive(Deserialize)]
pub struct ConfirmForm {
    csrf: String,
    confirm: Option<String>,
}

async fn drastic(state: &AppState, w: Caller, id: &str, what: Drastic, f: ConfirmForm) -> PageResult {
    w.check_csrf(Some(&f.csrf))?;
    let row = account(state, &w, id).await?;
    not_own_delete(what, &row)?;
    if f.confirm.as_deref() != Some("yes") {
        let msg = "Tick the box to confirm, or go back to keep the account as it is.".to_string();
        return Ok(confirm_page(&w, StatusCode::BAD_REQUEST, what, row, Some(msg)));
    }
    let (user, actor) = (UserId(&row.id), Actor(&w.user.id));
    let found = match what {
        Drastic::RevokeAll => state.store.revoke_everything(user, actor, now()).await?.is_some(),
        Drastic::Delete => state.store.delete_user(user, actor, now()).await?,
    };
    if !found {
        return Err(gone());
    }
    Ok(done(match what {
        Drastic::RevokeAll => "revoked",
        Drastic::Delete => "deleted",
    }))
}

/// `GET /users/{id}/revoke-all`: what revoking everything means, and a confirmation form.
pub async fn revoke_all_form(State(state): State<AppState>, Admin(w): Admin, Path(id): Path<String>) -> PageResult {
    drastic_form(&state, w, &id, Drastic::RevokeAll).await
}

/// `POST /users/{id}/revoke-all`: ends every sign-in of the account; needs the box ticked.
pub async fn revoke_all(
    State(state): State<AppState>,
    Admin(w): Admin,
    Path(id): Path<String>,
    Form(f): Form<ConfirmForm>,
) -> PageResult {
    drastic(&state, w, &id, Drastic::RevokeAll, f).await
}

/// `GET /users/{id}/delete`: what deleting means, and a confirmation form. Not one's own.
pub async fn delete_form(State(state): State<AppState>, Admin(w): Admin, Path(id): Path<String>) -> PageResult {
    drastic_form(&state, w, &id, Drastic::Delete).await
}

/// `POST /users/{id}/delete`: deletes the account and all it holds; needs the box ticked.
pub async fn delete(
    State(state): State<AppState>,
    Admin(w): Admin,
    Path(id): Path<String>,
    Form(f): Form<ConfirmForm>,
) -> PageResult {
    drastic(&state, w, &id, Drastic::Delete, f).await
}
