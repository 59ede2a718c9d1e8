//! Users, sessions and apps in PostgreSQL.

use crate::audit;
use crate::db::{DbResult, Tx};
use crate::txn::{all, exec, insert, one};
use deadpool_postgres::GenericClient;
use latchkey_domain::secret::SecretHash;
use latchkey_domain::Timestamp;
use latchkey_store::rows::{self, joined, Columns};
use latchkey_store::{sql, *};

pub(crate) async fn create_user(
    tx: &Tx<'_>,
    u: NewUser,
    actor: Option<String>,
    now: Timestamp,
) -> DbResult<UserRecord> {
    let p: [&(dyn tokio_postgres::types::ToSql + Sync); 5] =
        [&u.id, &u.username, &u.password_hash, &u.is_admin, &now.as_millis()];
    insert(tx, sql::INSERT_USER, &p, "a user with this name").await?;
    audit::append(tx, &events::user_created(&u, actor.as_deref()), now).await?;
    Ok(UserRecord {
        id: u.id,
        username: u.username,
        password_hash: u.password_hash,
        is_admin: u.is_admin,
        created_at: now,
        status: Default::default(),
    })
}

pub(crate) async fn user_by_name(c: &impl GenericClient, name: &str) -> DbResult<Option<UserRecord>> {
    one(c, sql::USER_BY_NAME, &[&name], |r| rows::user(r)).await
}

pub(crate) async fn count_users(c: &impl GenericClient) -> DbResult<i64> {
    Ok(one(c, sql::COUNT_USERS, &[], |r| r.int(0)).await?.unwrap_or(0))
}

pub(crate) async fn create_session(tx: &Tx<'_>, s: NewSession, now: Timestamp) -> DbResult<()> {
    insert_session(tx, &s, now).await?;
    audit::append(tx, &s.audit, now).await
}

/// Stores a session (its audit entry is the caller's).
pub(crate) async fn insert_session(c: &impl GenericClient, s: &NewSession, now: Timestamp) -> DbResult<()> {
    let (created, expires) = (now.as_millis(), s.expires_at.as_millis());
    let p: [&(dyn tokio_postgres::types::ToSql + Sync); 8] =
        [&s.token_hash.as_str(), &s.user_id, &created, &expires, &s.id, &s.ip, &s.user_agent, &s.amr];
    exec(c, sql::INSERT_SESSION, &p).await?;
    Ok(())
}

pub(crate) async fn session(c: &impl GenericClient, h: &SecretHash, now: Timestamp) -> DbResult<Option<SessionRecord>> {
    one(c, sql::SESSION, &[&h.as_str(), &now.as_millis()], |r| rows::session(r)).await
}

pub(crate) async fn delete_session(tx: &Tx<'_>, h: &SecretHash, now: Timestamp) -> DbResult<bool> {
    let user = one(tx, sql::DELETE_SESSION, &[&h.as_str()], |r| r.text(0)).await?;
    if let Some(user) = &user {
        audit::append(tx, &events::signed_out(user), now).await?;
    }
    Ok(user.is_some())
}

pub(crate) async fn create_app(tx: &Tx<'_>, a: AppRecord, actor: Option<String>, now: Timestamp) -> DbResult<()> {
    let (grants, uris) =
        (joined(a.grant_types.iter().map(|g| g.as_str())), joined(a.redirect_uris.iter().map(String::as_str)));
    let logout_uris = joined(a.post_logout_redirect_uris.iter().map(String::as_str));
    let p: [&(dyn tokio_postgres::types::ToSql + Sync); 12] = [
        &a.client_id,
        &a.display_name,
        &a.kind.as_str(),
        &a.secret_hash.as_ref().map(|h| h.as_str()),
        &grants,
        &uris,
        &now.as_millis(),
        &a.app_url,
        &a.qr_sign_in,
        &a.require_dpop,
        &logout_uris,
        &a.id_token_alg.as_str(),
    ];
    insert(tx, sql::INSERT_APP, &p, "an app with this client ID").await?;
    audit::append(tx, &events::app_created(&a, actor.as_deref()), now).await
}

pub(crate) async fn app(c: &impl GenericClient, id: &str) -> DbResult<Option<AppRecord>> {
    one(c, sql::APP, &[&id], |r| rows::app(r)).await
}

pub(crate) async fn list_apps(c: &impl GenericClient) -> DbResult<Vec<AppRecord>> {
    all(c, sql::APPS_BYTE_ORDER_PG, &[], |r| rows::app(r)).await
}

/// Changes an app's settings and records `app.updated`; `None` if there is no such app.
pub(crate) async fn update_app(
    tx: &Tx<'_>,
    client_id: &str,
    u: &AppUpdate,
    actor: &str,
    now: Timestamp,
) -> DbResult<Option<AppRecord>> {
    let grants = joined(u.grant_types.iter().map(|g| g.as_str()));
    let uris = joined(u.redirect_uris.iter().map(String::as_str));
    let logout_uris = joined(u.post_logout_redirect_uris.iter().map(String::as_str));
    let alg = u.id_token_alg.as_str();
    let p: [&(dyn tokio_postgres::types::ToSql + Sync); 9] =
        [&u.display_name, &grants, &u.app_url, &u.qr_sign_in, &u.require_dpop, &uris, &logout_uris, &alg, &client_id];
    let Some(app) = one(tx, sql::UPDATE_APP, &p, |r| rows::app(r)).await? else {
        return Ok(None);
    };
    audit::append(tx, &events::app_updated(client_id, u, actor), now).await?;
    Ok(Some(app))
}
