//! Users, sessions and apps in SQLite.

use crate::{audit, db_err, is_unique_violation};
use latchkey_domain::secret::SecretHash;
use latchkey_domain::Timestamp;
use latchkey_store::*;
use rusqlite::{params, Connection, OptionalExtension, Row};

const USER_COLS: &str = "u.id, u.username, u.password_hash, u.is_admin, u.created_at";

fn user_row(r: &Row<'_>, at: usize) -> rusqlite::Result<UserRecord> {
    Ok(UserRecord {
        id: r.get(at)?,
        username: r.get(at + 1)?,
        password_hash: r.get(at + 2)?,
        is_admin: r.get(at + 3)?,
        created_at: Timestamp::from_millis(r.get(at + 4)?),
    })
}

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
    c.prepare_cached(&format!("SELECT {USER_COLS} FROM users u WHERE u.username = ?1"))
        .and_then(|mut s| s.query_row([name], |r| user_row(r, 0)).optional())
        .map_err(db_err)
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
    c.prepare_cached(&format!(
        "SELECT {USER_COLS}, s.created_at, s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.token_hash = ?1 AND s.expires_at > ?2"
    ))
    .and_then(|mut st| {
        st.query_row(params![h.as_str(), now.as_millis()], |r| {
            Ok(SessionRecord {
                user: user_row(r, 0)?,
                created_at: Timestamp::from_millis(r.get(5)?),
                expires_at: Timestamp::from_millis(r.get(6)?),
            })
        })
        .optional()
    })
    .map_err(db_err)
}

pub(crate) fn delete_session(c: &Connection, h: &SecretHash, now: Timestamp) -> StoreResult<bool> {
    let user: Option<String> = c
        .prepare_cached("DELETE FROM sessions WHERE token_hash = ?1 RETURNING user_id")
        .and_then(|mut s| s.query_row([h.as_str()], |r| r.get(0)).optional())
        .map_err(db_err)?;
    if let Some(user) = &user {
        audit::append(c, &events::signed_out(user), now)?;
    }
    Ok(user.is_some())
}

fn join<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.collect::<Vec<_>>().join(" ")
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
            join(a.grant_types.iter().map(|g| g.as_str())),
            join(a.redirect_uris.iter().map(String::as_str)),
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

const APP_COLS: &str =
    "client_id, display_name, kind, secret_hash, grant_types, redirect_uris, created_at, app_url, qr_sign_in";

fn app_row(r: &Row<'_>) -> rusqlite::Result<Result<AppRecord, StoreError>> {
    let kind: String = r.get(2)?;
    let grants: String = r.get(4)?;
    let uris: String = r.get(5)?;
    let secret: Option<String> = r.get(3)?;
    let Some(kind) = ClientKind::parse(&kind) else {
        return Ok(Err(StoreError::Corrupt(format!("unknown client kind {kind:?}"))));
    };
    let mut grant_types = Vec::new();
    for g in grants.split(' ').filter(|g| !g.is_empty()) {
        match GrantType::parse(g) {
            Some(g) => grant_types.push(g),
            None => return Ok(Err(StoreError::Corrupt(format!("unknown grant type {g:?}")))),
        }
    }
    Ok(Ok(AppRecord {
        client_id: r.get(0)?,
        display_name: r.get(1)?,
        kind,
        secret_hash: secret.map(SecretHash::from_stored),
        grant_types,
        redirect_uris: uris.split(' ').filter(|u| !u.is_empty()).map(str::to_string).collect(),
        created_at: Timestamp::from_millis(r.get(6)?),
        app_url: r.get(7)?,
        qr_sign_in: r.get(8)?,
    }))
}

pub(crate) fn app(c: &Connection, id: &str) -> StoreResult<Option<AppRecord>> {
    c.prepare_cached(&format!("SELECT {APP_COLS} FROM apps WHERE client_id = ?1"))
        .and_then(|mut s| s.query_row([id], app_row).optional())
        .map_err(db_err)?
        .transpose()
}

pub(crate) fn list_apps(c: &Connection) -> StoreResult<Vec<AppRecord>> {
    let mut s = c.prepare_cached(&format!("SELECT {APP_COLS} FROM apps ORDER BY client_id")).map_err(db_err)?;
    let rows = s.query_map([], app_row).map_err(db_err)?;
    rows.map(|r| r.map_err(db_err)?).collect()
}

pub(crate) fn update_app(
    c: &Connection,
    client_id: &str,
    u: AppUpdate,
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
                join(u.grant_types.iter().map(|g| g.as_str())),
                u.app_url,
                u.qr_sign_in,
                client_id
            ])
        })
        .map_err(db_err)?;
    if changed == 0 {
        return Ok(None);
    }
    audit::append(c, &events::app_updated(client_id, &u, actor), now)?;
    app(c, client_id)
}
