//! Users, sessions and apps in PostgreSQL.

use crate::audit;
use crate::db::{conflict, DbResult, Tx};
use crate::txn::{all, one};
use deadpool_postgres::GenericClient;
use latchkey_domain::secret::SecretHash;
use latchkey_domain::Timestamp;
use latchkey_store::rows::{self, joined, Columns, APP_COLUMNS, USER_COLUMNS};
use latchkey_store::*;

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
    one(c, &format!("SELECT {USER_COLUMNS} FROM users u WHERE u.username = $1"), &[&name], |r| rows::user(r)).await
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
    let sql = format!(
        "SELECT {USER_COLUMNS}, s.created_at, s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.token_hash = $1 AND s.expires_at > $2"
    );
    one(c, &sql, &[&h.as_str(), &now.as_millis()], |r| rows::session(r)).await
}

pub(crate) async fn delete_session(tx: &Tx<'_>, h: &SecretHash, now: Timestamp) -> DbResult<bool> {
    let user =
        one(tx, "DELETE FROM sessions WHERE token_hash = $1 RETURNING user_id", &[&h.as_str()], |r| r.text(0)).await?;
    if let Some(user) = &user {
        audit::append(tx, &events::signed_out(user), now).await?;
    }
    Ok(user.is_some())
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
            &joined(a.grant_types.iter().map(|g| g.as_str())),
            &joined(a.redirect_uris.iter().map(String::as_str)),
            &now.as_millis(),
            &a.app_url,
            &a.qr_sign_in,
        ],
    )
    .await
    .map_err(conflict("an app with this client ID"))?;
    audit::append(tx, &events::app_created(&a, actor.as_deref()), now).await
}

pub(crate) async fn app(c: &impl GenericClient, id: &str) -> DbResult<Option<AppRecord>> {
    one(c, &format!("SELECT {APP_COLUMNS} FROM apps WHERE client_id = $1"), &[&id], |r| rows::app(r)).await
}

pub(crate) async fn list_apps(c: &impl GenericClient) -> DbResult<Vec<AppRecord>> {
    // Byte order, as SQLite sorts, whatever the database's collation.
    all(c, &format!("SELECT {APP_COLUMNS} FROM apps ORDER BY client_id COLLATE \"C\""), &[], |r| rows::app(r)).await
}

/// Changes an app's settings and records `app.updated`; `None` if there is no such app.
pub(crate) async fn update_app(
    tx: &Tx<'_>,
    client_id: &str,
    u: &AppUpdate,
    actor: &str,
    now: Timestamp,
) -> DbResult<Option<AppRecord>> {
    let sql = format!(
        "UPDATE apps SET display_name = $1, grant_types = $2, app_url = $3, qr_sign_in = $4
         WHERE client_id = $5 RETURNING {APP_COLUMNS}"
    );
    let grants = joined(u.grant_types.iter().map(|g| g.as_str()));
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] =
        [&u.display_name, &grants, &u.app_url, &u.qr_sign_in, &client_id];
    let Some(app) = one(tx, &sql, &params, |r| rows::app(r)).await? else {
        return Ok(None);
    };
    audit::append(tx, &events::app_updated(client_id, u, actor), now).await?;
    Ok(Some(app))
}
