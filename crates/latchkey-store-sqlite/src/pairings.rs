//! QR cross-device sign-in in SQLite. Transitions come from `latchkey_domain::pairing`
//! and are written with a status condition, inside the writer's transaction.

use crate::{audit, db_err, is_unique_violation, tokens};
use latchkey_domain::pairing::{PairingAction, PairingState, PairingStatus};
use latchkey_domain::secret::SecretHash;
use latchkey_domain::Timestamp;
use latchkey_store::*;
use rusqlite::{params, Connection, OptionalExtension, Row};

const COLS: &str = "id, client_id, status, created_at, expires_at, requester_ip, requester_user_agent, return_to,
    user_id, decided_at";

fn row(r: &Row<'_>) -> rusqlite::Result<Result<PairingRecord, StoreError>> {
    let status: String = r.get(2)?;
    let Some(status) = PairingStatus::parse(&status) else {
        return Ok(Err(StoreError::Corrupt(format!("unknown pairing status {status:?}"))));
    };
    Ok(Ok(PairingRecord {
        id: r.get(0)?,
        client_id: r.get(1)?,
        state: PairingState { status, expires_at: Timestamp::from_millis(r.get(4)?) },
        created_at: Timestamp::from_millis(r.get(3)?),
        requester: Requester { ip: r.get(5)?, user_agent: r.get(6)?, device_name: None },
        return_to: r.get(7)?,
        user_id: r.get(8)?,
        decided_at: r.get::<_, Option<i64>>(9)?.map(Timestamp::from_millis),
    }))
}

pub(crate) fn find(c: &Connection, column: &str, hash: &SecretHash) -> StoreResult<Option<PairingRecord>> {
    c.prepare_cached(&format!("SELECT {COLS} FROM pairings WHERE {column} = ?1"))
        .and_then(|mut s| s.query_row([hash.as_str()], row).optional())
        .map_err(db_err)?
        .transpose()
}

pub(crate) fn create(c: &Connection, p: NewPairing, now: Timestamp) -> StoreResult<()> {
    c.prepare_cached(
        "INSERT INTO pairings (id, client_id, desktop_secret_hash, phone_code_hash, status, created_at, expires_at,
            requester_ip, requester_user_agent, return_to) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )
    .and_then(|mut s| {
        s.execute(params![
            p.id,
            p.client_id,
            p.desktop_secret_hash.as_str(),
            p.phone_code_hash.as_str(),
            p.state.status.as_str(),
            now.as_millis(),
            p.state.expires_at.as_millis(),
            p.requester.ip,
            p.requester.user_agent,
            p.return_to,
        ])
    })
    .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict("a pairing with this code") } else { db_err(e) })?;
    audit::append(c, &events::pairing_requested(&p), now)
}

/// Applies `action` to the pairing found by `column = hash`, conditionally on its status.
fn transition(
    c: &Connection,
    column: &str,
    hash: &SecretHash,
    action: PairingAction,
    user_id: Option<&str>,
    now: Timestamp,
) -> StoreResult<Result<(PairingRecord, PairingStatus), PairingResult>> {
    let Some(mut p) = find(c, column, hash)? else { return Ok(Err(PairingResult::NotFound)) };
    let next = match p.state.apply(action, now) {
        Ok(s) => s,
        Err(e) => return Ok(Err(PairingResult::Refused(e))),
    };
    let changed = c
        .prepare_cached(
            "UPDATE pairings SET status = ?1, user_id = COALESCE(?2, user_id),
                decided_at = CASE WHEN ?2 IS NULL THEN decided_at ELSE ?3 END
             WHERE id = ?4 AND status = ?5",
        )
        .and_then(|mut s| s.execute(params![next.as_str(), user_id, now.as_millis(), p.id, p.state.status.as_str()]))
        .map_err(db_err)?;
    if changed != 1 {
        return Ok(Err(PairingResult::Refused(latchkey_domain::pairing::PairingError::Finished)));
    }
    let before = p.state.status;
    p.state.status = next;
    if let Some(u) = user_id {
        p.user_id = Some(u.to_string());
        p.decided_at = Some(now);
    }
    Ok(Ok((p, before)))
}

pub(crate) fn decide(
    c: &Connection,
    phone: &SecretHash,
    user_id: &str,
    approve: bool,
    now: Timestamp,
) -> StoreResult<PairingResult> {
    let action = if approve { PairingAction::Approve } else { PairingAction::Deny };
    Ok(match transition(c, "phone_code_hash", phone, action, Some(user_id), now)? {
        Ok((p, _)) => {
            audit::append(c, &events::pairing_decided(&p.id, user_id, approve), now)?;
            PairingResult::Done(Box::new(p))
        }
        Err(r) => r,
    })
}

pub(crate) fn cancel(c: &Connection, desktop: &SecretHash, now: Timestamp) -> StoreResult<PairingResult> {
    Ok(match transition(c, "desktop_secret_hash", desktop, PairingAction::Cancel, None, now)? {
        Ok((p, _)) => {
            audit::append(c, &events::pairing_cancelled(&p.client_id, &p.id), now)?;
            PairingResult::Done(Box::new(p))
        }
        Err(r) => r,
    })
}

pub(crate) fn collect(
    c: &Connection,
    desktop: &SecretHash,
    mint: MintRefresh,
    now: Timestamp,
) -> StoreResult<Collected> {
    let (p, _) = match transition(c, "desktop_secret_hash", desktop, PairingAction::Consume, None, now)? {
        Ok(done) => done,
        Err(PairingResult::NotFound) => return Ok(Collected::NotFound),
        Err(PairingResult::Refused(e)) => return Ok(Collected::Refused(e)),
        Err(PairingResult::Done(_)) => return Ok(Collected::NotFound),
    };
    let Some(user_id) = p.user_id.clone() else {
        return Err(StoreError::Corrupt(format!("approved pairing {} has no user", p.id)));
    };
    let family = tokens::NewFamily {
        client_id: &p.client_id,
        user_id: &user_id,
        scope: "openid",
        auth_time: p.decided_at.unwrap_or(now),
        device_id: None,
        jkt: None,
    };
    let subject = tokens::start_family(c, &mint, &family, now)?;
    audit::append(c, &events::pairing_consumed(&p.client_id, &p.id, &subject.family_id), now)?;
    Ok(Collected::Tokens(subject, Box::new(p)))
}
