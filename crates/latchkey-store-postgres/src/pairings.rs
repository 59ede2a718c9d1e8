//! QR cross-device sign-in in PostgreSQL. Each transition loads the pairing
//! `FOR UPDATE`, asks `latchkey_domain::pairing`, and writes on the status it
//! read, so concurrent callers on any replica take turns on the row: of any
//! number of desktops collecting one approved pairing, the first consumes it
//! (and alone starts a token family) and the rest see it finished. Decisions
//! and cancellations are announced on the grants channel with the pairing's ID.

use crate::audit;
use crate::db::{conflict, DbResult, Tx};
use crate::grants::CHANNEL;
use crate::tokens::{self, NewFamily};
use deadpool_postgres::GenericClient;
use latchkey_domain::pairing::{PairingAction, PairingError, PairingState, PairingStatus};
use latchkey_domain::secret::SecretHash;
use latchkey_domain::Timestamp;
use latchkey_store::*;
use tokio_postgres::Row;

const COLS: &str = "id, client_id, status, created_at, expires_at, requester_ip, requester_user_agent, return_to,
    user_id, decided_at";

fn row(r: &Row) -> DbResult<PairingRecord> {
    let status: String = r.try_get(2)?;
    let Some(status) = PairingStatus::parse(&status) else {
        return Err(StoreError::Corrupt(format!("unknown pairing status {status:?}")).into());
    };
    Ok(PairingRecord {
        id: r.try_get(0)?,
        client_id: r.try_get(1)?,
        state: PairingState { status, expires_at: Timestamp::from_millis(r.try_get(4)?) },
        created_at: Timestamp::from_millis(r.try_get(3)?),
        requester: Requester { ip: r.try_get(5)?, user_agent: r.try_get(6)?, device_name: None },
        return_to: r.try_get(7)?,
        user_id: r.try_get(8)?,
        decided_at: r.try_get::<_, Option<i64>>(9)?.map(Timestamp::from_millis),
    })
}

/// Which secret identifies the pairing.
#[derive(Clone, Copy)]
pub(crate) enum Code {
    /// The one-time code in the phone's URL.
    Phone,
    /// The desktop's secret.
    Desktop,
}

async fn find(c: &impl GenericClient, code: Code, hash: &SecretHash, lock: bool) -> DbResult<Option<PairingRecord>> {
    let column = match code {
        Code::Phone => "phone_code_hash",
        Code::Desktop => "desktop_secret_hash",
    };
    let lock = if lock { " FOR UPDATE" } else { "" };
    let s = c.prepare_cached(&format!("SELECT {COLS} FROM pairings WHERE {column} = $1{lock}")).await?;
    c.query_opt(&s, &[&hash.as_str()]).await?.map(|r| row(&r)).transpose()
}

pub(crate) async fn by_code(c: &impl GenericClient, code: Code, hash: &SecretHash) -> DbResult<Option<PairingRecord>> {
    find(c, code, hash, false).await
}

pub(crate) async fn create(tx: &Tx<'_>, p: NewPairing, now: Timestamp) -> DbResult<()> {
    let s = tx
        .prepare_cached(
            "INSERT INTO pairings (id, client_id, desktop_secret_hash, phone_code_hash, status, created_at, expires_at,
                requester_ip, requester_user_agent, return_to) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .await?;
    tx.execute(
        &s,
        &[
            &p.id,
            &p.client_id,
            &p.desktop_secret_hash.as_str(),
            &p.phone_code_hash.as_str(),
            &p.state.status.as_str(),
            &now.as_millis(),
            &p.state.expires_at.as_millis(),
            &p.requester.ip,
            &p.requester.user_agent,
            &p.return_to,
        ],
    )
    .await
    .map_err(conflict("a pairing with this code"))?;
    audit::append(tx, &events::pairing_requested(&p), now).await
}

/// Applies `action` to the pairing behind `code = hash` with its row locked;
/// `Err` carries the outcome when there is nothing to write.
async fn transition(
    tx: &Tx<'_>,
    code: Code,
    hash: &SecretHash,
    action: PairingAction,
    user_id: Option<&str>,
    now: Timestamp,
) -> DbResult<Result<PairingRecord, PairingResult>> {
    let Some(mut p) = find(tx, code, hash, true).await? else { return Ok(Err(PairingResult::NotFound)) };
    let next = match p.state.apply(action, now) {
        Ok(s) => s,
        Err(e) => return Ok(Err(PairingResult::Refused(e))),
    };
    // The row is locked, so this cannot miss; the condition is a second line of defence.
    let s = tx
        .prepare_cached(
            "UPDATE pairings SET status = $1, user_id = COALESCE($2, user_id),
                decided_at = CASE WHEN $2::TEXT IS NULL THEN decided_at ELSE $3 END
             WHERE id = $4 AND status = $5",
        )
        .await?;
    let changed =
        tx.execute(&s, &[&next.as_str(), &user_id, &now.as_millis(), &p.id, &p.state.status.as_str()]).await?;
    if changed != 1 {
        return Ok(Err(PairingResult::Refused(PairingError::Finished)));
    }
    p.state.status = next;
    if let Some(u) = user_id {
        p.user_id = Some(u.to_string());
        p.decided_at = Some(now);
    }
    Ok(Ok(p))
}

/// Queues a wake-up for the pairing's waiters on every replica; delivered only if the transaction commits.
async fn announce(tx: &Tx<'_>, pairing_id: &str) -> DbResult<()> {
    let s = tx.prepare_cached("SELECT pg_notify($1, $2)").await?;
    tx.execute(&s, &[&CHANNEL, &pairing_id]).await?;
    Ok(())
}

pub(crate) async fn decide(
    tx: &Tx<'_>,
    phone: &SecretHash,
    user_id: &str,
    approve: bool,
    now: Timestamp,
) -> DbResult<PairingResult> {
    let action = if approve { PairingAction::Approve } else { PairingAction::Deny };
    Ok(match transition(tx, Code::Phone, phone, action, Some(user_id), now).await? {
        Ok(p) => {
            audit::append(tx, &events::pairing_decided(&p.id, user_id, approve), now).await?;
            announce(tx, &p.id).await?;
            PairingResult::Done(Box::new(p))
        }
        Err(r) => r,
    })
}

pub(crate) async fn cancel(tx: &Tx<'_>, desktop: &SecretHash, now: Timestamp) -> DbResult<PairingResult> {
    Ok(match transition(tx, Code::Desktop, desktop, PairingAction::Cancel, None, now).await? {
        Ok(p) => {
            audit::append(tx, &events::pairing_cancelled(&p.client_id, &p.id), now).await?;
            announce(tx, &p.id).await?;
            PairingResult::Done(Box::new(p))
        }
        Err(r) => r,
    })
}

pub(crate) async fn collect(
    tx: &Tx<'_>,
    desktop: &SecretHash,
    mint: MintRefresh,
    now: Timestamp,
) -> DbResult<Collected> {
    let p = match transition(tx, Code::Desktop, desktop, PairingAction::Consume, None, now).await? {
        Ok(p) => p,
        Err(PairingResult::Refused(e)) => return Ok(Collected::Refused(e)),
        Err(PairingResult::NotFound | PairingResult::Done(_)) => return Ok(Collected::NotFound),
    };
    let Some(user_id) = p.user_id.clone() else {
        return Err(StoreError::Corrupt(format!("approved pairing {} has no user", p.id)).into());
    };
    let family = NewFamily {
        client_id: &p.client_id,
        user_id: &user_id,
        scope: "openid",
        auth_time: p.decided_at.unwrap_or(now),
        device_id: None,
        jkt: None,
    };
    let subject = tokens::start_family(tx, &mint, &family, now).await?;
    audit::append(tx, &events::pairing_consumed(&p.client_id, &p.id, &subject.family_id), now).await?;
    Ok(Collected::Tokens(subject, Box::new(p)))
}
