//! Users, sessions and apps in SQLite.

use crate::txn::{all, exec, insert, one};
use crate::{audit, db_err};
use latchkey_domain::secret::SecretHash;
use latchkey_domain::Timestamp;
use latchkey_store::rows::{self, joined, Columns};
use latchkey_store::{sql, *};
use rusqlite::{params, Connection};

pub(crate) fn create_user(
    c: &Connection,
    u: NewUser,
    actor: Option<String>,
    now: Timestamp,
) -> StoreResult<UserRecord> {
    let p = params![u.id, u.username, u.password_hash, u.is_admin, now.as_millis()];
    insert(c, sql::INSERT_USER, p, "a user with this name")?;
    audit::append(c, &events::user_created(&u, actor.as_deref()), now)?;
    Ok(UserRecord {
        id: u.id,
        username: u.username,
        password_hash: u.password_hash,
        is_admin: u.is_admin,
        created_at: now,
        status: Default::default(),
    })
}

pub(crate) fn user_by_name(c: &Connection, name: &str) -> StoreResult<Option<UserRecord>> {
    one(c, sql::USER_BY_NAME, [name], |r| rows::user(r))
}

pub(crate) fn count_users(c: &Connection) -> StoreResult<i64> {
    c.query_row(sql::COUNT_USERS, [], |r| r.get(0)).map_err(db_err)
}

pub(crate) fn create_session(c: &Connection, s: NewSession, now: Timestamp) -> StoreResult<()> {
    insert_session(c, &s, now)?;
    audit::append(c, &s.audit, now)
}

/// Stores a session (its audit entry is the caller's).
pub(crate) fn insert_session(c: &Connection, s: &NewSession, now: Timestamp) -> StoreResult<()> {
    let at = (now.as_millis(), s.expires_at.as_millis());
    let p = params![s.token_hash.as_str(), s.user_id, at.0, at.1, s.id, s.ip, s.user_agent, s.amr];
    exec(c, sql::INSERT_SESSION, p)?;
    Ok(())
}

pub(crate) fn session(c: &Connection, h: &SecretHash, now: Timestamp) -> StoreResult<Option<SessionRecord>> {
    one(c, sql::SESSION, params![h.as_str(), now.as_millis()], |r| rows::session(r))
}

pub(crate) fn delete_session(c: &Connection, h: &SecretHash, now: Timestamp) -> StoreResult<bool> {
    let user = one(c, sql::DELETE_SESSION, [h.as_str()], |r| r.text(0))?;
    if let Some(user) = &user {
        audit::append(c, &events::signed_out(user), now)?;
    }
    Ok(user.is_some())
}

pub(crate) fn create_app(c: &Connection, a: AppRecord, actor: Option<String>, now: Timestamp) -> StoreResult<()> {
    let p = params![
        a.client_id,
        a.display_name,
        a.kind.as_str(),
        a.secret_hash.as_ref().map(|h| h.as_str()),
        joined(a.grant_types.iter().map(|g| g.as_str())),
        joined(a.redirect_uris.iter().map(String::as_str)),
        now.as_millis(),
        a.app_url,
        a.qr_sign_in,
        a.require_dpop,
        joined(a.post_logout_redirect_uris.iter().map(String::as_str)),
        a.id_token_alg.as_str()
    ];
    insert(c, sql::INSERT_APP, p, "an app with this client ID")?;
    audit::append(c, &events::app_created(&a, actor.as_deref()), now)
}

pub(crate) fn app(c: &Connection, id: &str) -> StoreResult<Option<AppRecord>> {
    one(c, sql::APP, [id], |r| rows::app(r))
}

pub(crate) fn list_apps(c: &Connection) -> StoreResult<Vec<AppRecord>> {
    all(c, sql::APPS, [], |r| rows::app(r))
}

/// Changes an app's settings and records `app.updated`; `None` if there is no such app.
pub(crate) fn update_app(
    c: &Connection,
    client_id: &str,
    u: &AppUpdate,
    actor: &str,
    now: Timestamp,
) -> StoreResult<Option<AppRecord>> {
    let grants = joined(u.grant_types.iter().map(|g| g.as_str()));
    let uris = joined(u.redirect_uris.iter().map(String::as_str));
    let logout_uris = joined(u.post_logout_redirect_uris.iter().map(String::as_str));
    let alg = u.id_token_alg.as_str();
    let p = params![u.display_name, grants, u.app_url, u.qr_sign_in, u.require_dpop, uris, logout_uris, alg, client_id];
    let Some(app) = one(c, sql::UPDATE_APP, p, |r| rows::app(r))? else {
        return Ok(None);
    };
    audit::append(c, &events::app_updated(client_id, u, actor), now)?;
    Ok(Some(app))
}
