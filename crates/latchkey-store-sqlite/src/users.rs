//! Users, sessions and apps in SQLite.

use crate::txn::{all, one};
use crate::{audit, db_err, is_unique_violation};
use latchkey_domain::secret::SecretHash;
use latchkey_domain::Timestamp;
use latchkey_store::rows::{self, joined, Columns, APP_COLUMNS, USER_COLUMNS};
use latchkey_store::*;
use rusqlite::{params, Connection};

pub(crate) fn create_user(
    c: &Connection,
    u: NewUser,
    actor: Option<String>,
    now: Timestamp,
) -> StoreResult<UserRecord> {
    c.prepare_cached(
        "INSERT INTO users (id, username, password_hash, is_admin, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut s| s.execute(params![u.id, u.username, u.password_hash, u.is_admin, now.as_millis()]))
    .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict("a user with this name") } else { db_err(e) })?;
    audit::append(c, &events::user_created(&u, actor.as_deref()), now)?;
    Ok(UserRecord {
        id: u.id,
        username: u.username,
        password_hash: u.password_hash,
        is_admin: u.is_admin,
        created_at: now,
    })
}

pub(crate) fn user_by_name(c: &Connection, name: &str) -> StoreResult<Option<UserRecord>> {
    one(c, &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.username = ?1"), [name], |r| rows::user(r))
}

pub(crate) fn count_users(c: &Connection) -> StoreResult<i64> {
    c.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0)).map_err(db_err)
}

pub(crate) fn create_session(c: &Connection, s: NewSession, now: Timestamp) -> StoreResult<()> {
    c.prepare_cached("INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)")
        .and_then(|mut st| {
            st.execute(params![s.token_hash.as_str(), s.user_id, now.as_millis(), s.expires_at.as_millis()])
        })
        .map_err(db_err)?;
    audit::append(c, &s.audit, now)
}

pub(crate) fn session(c: &Connection, h: &SecretHash, now: Timestamp) -> StoreResult<Option<SessionRecord>> {
    let sql = format!(
        "SELECT {USER_COLUMNS}, s.created_at, s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.token_hash = ?1 AND s.expires_at > ?2"
    );
    one(c, &sql, params![h.as_str(), now.as_millis()], |r| rows::session(r))
}

pub(crate) fn delete_session(c: &Connection, h: &SecretHash, now: Timestamp) -> StoreResult<bool> {
    let user = one(c, "DELETE FROM sessions WHERE token_hash = ?1 RETURNING user_id", [h.as_str()], |r| r.text(0))?;
    if let Some(user) = &user {
        audit::append(c, &events::signed_out(user), now)?;
    }
    Ok(user.is_some())
}

pub(crate) fn create_app(c: &Connection, a: AppRecord, actor: Option<String>, now: Timestamp) -> StoreResult<()> {
    c.prepare_cached(
        "INSERT INTO apps (client_id, display_name, kind, secret_hash, grant_types, redirect_uris, created_at, app_url, qr_sign_in)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .and_then(|mut s| {
        s.execute(params![
            a.client_id,
            a.display_name,
            a.kind.as_str(),
            a.secret_hash.as_ref().map(|h| h.as_str()),
            joined(a.grant_types.iter().map(|g| g.as_str())),
            joined(a.redirect_uris.iter().map(String::as_str)),
            now.as_millis(),
            a.app_url,
            a.qr_sign_in
        ])
    })
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Conflict("an app with this client ID")
        } else {
            db_err(e)
        }
    })?;
    audit::append(c, &events::app_created(&a, actor.as_deref()), now)
}

pub(crate) fn app(c: &Connection, id: &str) -> StoreResult<Option<AppRecord>> {
    one(c, &format!("SELECT {APP_COLUMNS} FROM apps WHERE client_id = ?1"), [id], |r| rows::app(r))
}

pub(crate) fn list_apps(c: &Connection) -> StoreResult<Vec<AppRecord>> {
    all(c, &format!("SELECT {APP_COLUMNS} FROM apps ORDER BY client_id"), [], |r| rows::app(r))
}

pub(crate) fn update_app(
    c: &Connection,
    client_id: &str,
    u: &AppUpdate,
    actor: &str,
    now: Timestamp,
) -> StoreResult<Option<AppRecord>> {
    let changed = c
        .prepare_cached(
            "UPDATE apps SET display_name = ?1, grant_types = ?2, app_url = ?3, qr_sign_in = ?4 WHERE client_id = ?5",
        )
        .and_then(|mut s| {
            s.execute(params![
                u.display_name,
                joined(u.grant_types.iter().map(|g| g.as_str())),
                u.app_url,
                u.qr_sign_in,
                client_id
            ])
        })
        .map_err(db_err)?;
    if changed == 0 {
        return Ok(None);
    }
    audit::append(c, &events::app_updated(client_id, u, actor), now)?;
    app(c, client_id)
}
