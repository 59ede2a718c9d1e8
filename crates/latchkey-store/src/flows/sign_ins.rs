//! Sign-ins that are not devices (browser sessions, QR and other web sign-ins
//! of apps): listed for their user, and ended one at a time.

use crate::events;
use crate::records::{SignInKind, SignInRecord};
use crate::txn::Txn;
use latchkey_domain::Timestamp;

/// A user's live sign-ins that are not devices, newest first. App sign-ins count
/// as live while started since `live_since` or while they hold a working refresh token.
pub async fn list<T: Txn>(
    tx: &T,
    user_id: &str,
    live_since: Timestamp,
    now: Timestamp,
) -> Result<Vec<SignInRecord>, T::Error> {
    tx.sign_ins(user_id, live_since, now).await
}

/// Ends one of `user_id`'s sign-ins (a session or an app's token family) and
/// records who ended it. Which kind it was, or `None` if the user has no such live sign-in.
pub async fn end<T: Txn>(
    tx: &T,
    user_id: &str,
    id: &str,
    actor: &str,
    now: Timestamp,
) -> Result<Option<SignInKind>, T::Error> {
    if tx.delete_session_of(id, user_id).await? {
        tx.append_audit(&events::session_ended(user_id, id, actor), now).await?;
        return Ok(Some(SignInKind::Browser));
    }
    if let Some(client_id) = tx.revoke_web_family(id, user_id, now).await? {
        tx.append_audit(&events::sign_in_ended(user_id, id, &client_id, actor), now).await?;
        return Ok(Some(SignInKind::App));
    }
    Ok(None)
}
