//! Users, sessions and apps in PostgreSQL.

use crate::audit;
use crate::db::{conflict, DbResult, Tx};
use deadpool_postgres::GenericClient;
use latchkey_domain::secret::SecretHash;
use latchkey_domain::Timestamp;
use latchkey_store::*;
use tokio_postgres::Row;

const USER_COLS: &str = "u.id, u.username, u.password_hash, u.is_admin, u.created_at";

fn user_row(r: &Row, at: usize) -> DbResult<UserRecord> {
    Ok(UserRecord {
        id: r.try_get(at)?,
        username: r.try_get(at + 1)?,
        password_hash: r.try_get(at + 2)?,
        is_admin: r.try_get(at + 3)?,
        created_at: Timestamp::from_millis(r.try_get(at + 4)?),
    })
}

pub(crate) async fn create_user(
    tx: &Tx<'_>,
    u: NewUser,
    actor: Option<String>,
    now: Timestamp,
) -> DbResult<UserRecord> {
    let s = tx
        .prepare_cached(
            "INSERT INTO users (id, username, password_hash, is_admin, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .await?;
    tx.execute(&s, &[&u.id, &u.username, &u.password_hash, &u.is_admin, &now.as_millis()])
        .await
        .map_err(conflict("a user with this name"))?;
    audit::append(tx, &events::user_created(&u, actor.as_deref()), now).await?;
    Ok(UserRecord {
        id: u.id,
        username: u.username,
        password_hash: u.password_hash,
        is_admin: u.is_admin,
        created_at: now,
    })
}

pub(crate) async fn user_by_name(c: &impl GenericClient, name: &str) -> DbResult<Option<UserRecord>> {
    let s = c.prepare_cached(&format!("SELECT {USER_COLS} FROM users u WHERE u.username = $1")).await?;
    c.query_opt(&s, &[&name]).await?.map(|r| user_row(&r, 0)).transpose()
}

pub(crate) async fn count_users(c: &impl GenericClient) -> DbResult<i64> {
    let s = c.prepare_cached("SELECT COUNT(*) FROM users").await?;
    Ok(c.query_one(&s, &[]).await?.try_get(0)?)
}

pub(crate) async fn create_session(tx: &Tx<'_>, s: NewSession, now: Timestamp) -> DbResult<()> {
    let st = tx
        .prepare_cached("INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
        .await?;
    tx.execute(&st, &[&s.token_hash.as_str(), &s.user_id, &now.as_millis(), &s.expires_at.as_millis()]).await?;
    audit::append(tx, &s.audit, now).await
}

pub(crate) async fn session(c: &impl GenericClient, h: &SecretHash, now: Timestamp) -> DbResult<Option<SessionRecord>> {
    let s = c
        .prepare_cached(&format!(
            "SELECT {USER_COLS}, s.created_at, s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = $1 AND s.expires_at > $2"
        ))
        .await?;
    let Some(r) = c.query_opt(&s, &[&h.as_str(), &now.as_millis()]).await? else {
        return Ok(None);
    };
    Ok(Some(SessionRecord {
        user: user_row(&r, 0)?,
        created_at: Timestamp::from_millis(r.try_get(5)?),
        expires_at: Timestamp::from_millis(r.try_get(6)?),
    }))
}

pub(crate) async fn delete_session(tx: &Tx<'_>, h: &SecretHash, now: Timestamp) -> DbResult<bool> {
    let s = tx.prepare_cached("DELETE FROM sessions WHERE token_hash = $1 RETURNING user_id").await?;
    let user: Option<String> = match tx.query_opt(&s, &[&h.as_str()]).await? {
        Some(r) => Some(r.try_get(0)?),
        None => None,
    };
    if let Some(user) = &user {
        audit::append(tx, &events::signed_out(user), now).await?;
    }
    Ok(user.is_some())
}

fn join<'a>(items: impl Iterator<Item = &'a str>) -> String {
    items.collect::<Vec<_>>().join(" ")
}

pub(crate) async fn create_app(tx: &Tx<'_>, a: AppRecord, actor: Option<String>, now: Timestamp) -> DbResult<()> {
    let s = tx
        .prepare_cached(
            "INSERT INTO apps (client_id, display_name, kind, secret_hash, grant_types, redirect_uris, created_at,
                app_url, qr_sign_in)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .await?;
    tx.execute(
        &s,
        &[
            &a.client_id,
            &a.display_name,
            &a.kind.as_str(),
            &a.secret_hash.as_ref().map(|h| h.as_str()),
            &join(a.grant_types.iter().map(|g| g.as_str())),
            &join(a.redirect_uris.iter().map(String::as_str)),
            &now.as_millis(),
            &a.app_url,
            &a.qr_sign_in,
        ],
    )
    .await
    .map_err(conflict("an app with this client ID"))?;
    audit::append(tx, &events::app_created(&a, actor.as_deref()), now).await
}

const APP_COLS: &str =
    "client_id, display_name, kind, secret_hash, grant_types, redirect_uris, created_at, app_url, qr_sign_in";

fn app_row(r: &Row) -> DbResult<AppRecord> {
    let kind: String = r.try_get(2)?;
    let grants: String = r.try_get(4)?;
    let uris: String = r.try_get(5)?;
    let secret: Option<String> = r.try_get(3)?;
    let Some(kind) = ClientKind::parse(&kind) else {
        return Err(StoreError::Corrupt(format!("unknown client kind {kind:?}")).into());
    };
    let mut grant_types = Vec::new();
    for g in grants.split(' ').filter(|g| !g.is_empty()) {
        match GrantType::parse(g) {
            Some(g) => grant_types.push(g),
            None => return Err(StoreError::Corrupt(format!("unknown grant type {g:?}")).into()),
        }
    }
    Ok(AppRecord {
        client_id: r.try_get(0)?,
        display_name: r.try_get(1)?,
        kind,
        secret_hash: secret.map(SecretHash::from_stored),
        grant_types,
        redirect_uris: uris.split(' ').filter(|u| !u.is_empty()).map(str::to_string).collect(),
        created_at: Timestamp::from_millis(r.try_get(6)?),
        app_url: r.try_get(7)?,
        qr_sign_in: r.try_get(8)?,
    })
}

pub(crate) async fn app(c: &impl GenericClient, id: &str) -> DbResult<Option<AppRecord>> {
    let s = c.prepare_cached(&format!("SELECT {APP_COLS} FROM apps WHERE client_id = $1")).await?;
    c.query_opt(&s, &[&id]).await?.map(|r| app_row(&r)).transpose()
}

pub(crate) async fn list_apps(c: &impl GenericClient) -> DbResult<Vec<AppRecord>> {
    // Byte order, as SQLite sorts, whatever the database's collation.
    let s = c.prepare_cached(&format!("SELECT {APP_COLS} FROM apps ORDER BY client_id COLLATE \"C\"")).await?;
    c.query(&s, &[]).await?.iter().map(app_row).collect()
}

/// Changes an app's settings and records `app.updated`; `None` if there is no such app.
pub(crate) async fn update_app(
    tx: &Tx<'_>,
    client_id: &str,
    u: &AppUpdate,
    actor: &str,
    now: Timestamp,
) -> DbResult<Option<AppRecord>> {
    let s = tx
        .prepare_cached(&format!(
            "UPDATE apps SET display_name = $1, grant_types = $2, app_url = $3, qr_sign_in = $4
             WHERE client_id = $5 RETURNING {APP_COLS}"
        ))
        .await?;
    let grants = join(u.grant_types.iter().map(|g| g.as_str()));
    let Some(row) = tx.query_opt(&s, &[&u.display_name, &grants, &u.app_url, &u.qr_sign_in, &client_id]).await? else {
        return Ok(None);
    };
    let app = app_row(&row)?;
    audit::append(tx, &events::app_updated(client_id, u, actor), now).await?;
    Ok(Some(app))
}
