//! RFC 8628 device grants in SQLite. Every transition is decided by
//! `latchkey_domain::device_grant` and written in the writer's transaction.

use crate::devices::{self, Refusal};
use crate::{audit, db_err, is_unique_violation, tokens};
use latchkey_domain::device_grant::{Decision, GrantState, GrantStatus, PollOutcome, WaitOutcome};
use latchkey_domain::secret::SecretHash;
use latchkey_domain::Timestamp;
use latchkey_store::*;
use rusqlite::{params, Connection, OptionalExtension, Row};

const COLS: &str = "id, client_id, scope, status, created_at, expires_at, interval_secs, last_polled_at,
    requester_ip, requester_user_agent, device_name, user_id, decided_at,
    device_slug, device_location, device_platform, device_client_version, device_public_jwk, device_jkt, device_id";

fn row(r: &Row<'_>) -> rusqlite::Result<Result<DeviceGrantRecord, StoreError>> {
    let status: String = r.get(3)?;
    let Some(status) = GrantStatus::parse(&status) else {
        return Ok(Err(StoreError::Corrupt(format!("unknown grant status {status:?}"))));
    };
    Ok(Ok(DeviceGrantRecord {
        id: r.get(0)?,
        client_id: r.get(1)?,
        scope: r.get(2)?,
        state: GrantState {
            status,
            expires_at: Timestamp::from_millis(r.get(5)?),
            interval_secs: r.get(6)?,
            last_polled_at: r.get::<_, Option<i64>>(7)?.map(Timestamp::from_millis),
        },
        created_at: Timestamp::from_millis(r.get(4)?),
        requester: Requester { ip: r.get(8)?, user_agent: r.get(9)?, device_name: r.get(10)? },
        user_id: r.get(11)?,
        decided_at: r.get::<_, Option<i64>>(12)?.map(Timestamp::from_millis),
        device: DeviceRequest {
            slug: r.get(13)?,
            location: r.get(14)?,
            platform: r.get(15)?,
            client_version: r.get(16)?,
            public_jwk: r.get(17)?,
            jkt: r.get(18)?,
        },
        device_id: r.get(19)?,
    }))
}

fn find(c: &Connection, column: &str, hash: &SecretHash) -> StoreResult<Option<DeviceGrantRecord>> {
    c.prepare_cached(&format!("SELECT {COLS} FROM device_grants WHERE {column} = ?1"))
        .and_then(|mut s| s.query_row([hash.as_str()], row).optional())
        .map_err(db_err)?
        .transpose()
}

pub(crate) fn create(c: &Connection, g: NewDeviceGrant, now: Timestamp) -> StoreResult<()> {
    c.prepare_cached(
        "INSERT INTO device_grants (id, client_id, scope, device_code_hash, user_code_hash, status, created_at,
            expires_at, interval_secs, requester_ip, requester_user_agent, device_name,
            device_slug, device_location, device_platform, device_client_version, device_public_jwk, device_jkt)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
    )
    .and_then(|mut s| {
        s.execute(params![
            g.id,
            g.client_id,
            g.scope,
            g.device_code_hash.as_str(),
            g.user_code_hash.as_str(),
            g.state.status.as_str(),
            now.as_millis(),
            g.state.expires_at.as_millis(),
            g.state.interval_secs,
            g.requester.ip,
            g.requester.user_agent,
            g.requester.device_name,
            g.device.slug,
            g.device.location,
            g.device.platform,
            g.device.client_version,
            g.device.public_jwk,
            g.device.jkt,
        ])
    })
    .map_err(|e| if is_unique_violation(&e) { StoreError::Conflict("a grant with this code") } else { db_err(e) })?;
    audit::append(c, &events::grant_requested(&g), now)
}

pub(crate) fn by_user_code(c: &Connection, h: &SecretHash) -> StoreResult<Option<DeviceGrantRecord>> {
    find(c, "user_code_hash", h)
}

pub(crate) fn decide(c: &Connection, d: GrantDecision, now: Timestamp) -> StoreResult<DecideResult> {
    let Some(mut g) = find(c, "user_code_hash", &d.user_code_hash)? else {
        return Ok(DecideResult::NotFound);
    };
    let status = match g.state.decide(d.decision, now) {
        Ok(s) => s,
        Err(e) => return Ok(DecideResult::Refused(e)),
    };
    // Approving registers the device; if it cannot be registered, nothing changes.
    if d.decision == Decision::Approve {
        let name = g.requester.device_name.clone().unwrap_or_else(|| format!("{} device", g.client_id));
        match devices::create(c, &d.new_device_id, &d.user_id, &name, &g.device, d.device_cap, now, "device_login")? {
            Ok(device) => g.device_id = Some(device.id),
            Err(Refusal::Limit(cap)) => return Ok(DecideResult::DeviceLimit(cap)),
            Err(Refusal::SlugTaken(slug)) => return Ok(DecideResult::SlugTaken(slug)),
        }
    }
    c.prepare_cached(
        "UPDATE device_grants SET status = ?1, user_id = ?2, decided_at = ?3, device_id = ?4
         WHERE id = ?5 AND status = 'pending'",
    )
    .and_then(|mut s| s.execute(params![status.as_str(), d.user_id, now.as_millis(), g.device_id, g.id]))
    .map_err(db_err)?;
    audit::append(c, &events::grant_decided(&d, &g.id), now)?;
    g.state.status = status;
    g.user_id = Some(d.user_id);
    g.decided_at = Some(now);
    Ok(DecideResult::Decided(Box::new(g)))
}

pub(crate) fn redeem(c: &Connection, r: Redeem, now: Timestamp) -> StoreResult<Redeemed> {
    let Some(g) = find(c, "device_code_hash", &r.device_code_hash)? else {
        return Ok(Redeemed::Unknown);
    };
    if g.client_id != r.client_id {
        // A device code is bound to the client it was issued to (RFC 6749 §5.2 invalid_grant).
        return Ok(Redeemed::Unknown);
    }
    if g.device.jkt.is_some() && g.device.jkt != r.presented_jkt {
        // Bound to the device's key: a stolen device code alone is worth nothing.
        return Ok(Redeemed::WrongKey);
    }
    let outcome = match r.mode {
        RedeemMode::Poll => g.state.poll(now),
        RedeemMode::Wait => match g.state.wait_check(now) {
            WaitOutcome::Pending => PollOutcome::Pending,
            WaitOutcome::Ready => PollOutcome::Ready,
            WaitOutcome::Denied => PollOutcome::Denied,
            WaitOutcome::Expired => PollOutcome::Expired,
            WaitOutcome::Spent => PollOutcome::Spent,
        },
    };
    Ok(match outcome {
        PollOutcome::Pending => {
            if r.mode == RedeemMode::Poll {
                c.prepare_cached("UPDATE device_grants SET last_polled_at = ?1 WHERE id = ?2")
                    .and_then(|mut s| s.execute(params![now.as_millis(), g.id]))
                    .map_err(db_err)?;
            }
            Redeemed::Pending { grant_id: g.id, expires_at: g.state.expires_at }
        }
        PollOutcome::SlowDown { new_interval_secs } => {
            c.prepare_cached("UPDATE device_grants SET last_polled_at = ?1, interval_secs = ?2 WHERE id = ?3")
                .and_then(|mut s| s.execute(params![now.as_millis(), new_interval_secs, g.id]))
                .map_err(db_err)?;
            Redeemed::SlowDown { interval_secs: new_interval_secs }
        }
        PollOutcome::Denied => Redeemed::Denied,
        PollOutcome::Expired => Redeemed::Expired,
        PollOutcome::Spent => Redeemed::Spent,
        PollOutcome::Ready => {
            let Some(user_id) = g.user_id.clone() else {
                return Err(StoreError::Corrupt(format!("approved grant {} has no user", g.id)));
            };
            // A device revoked between approval and collection gets nothing.
            if let Some(device_id) = &g.device_id {
                let revoked: bool = c
                    .prepare_cached("SELECT status = 'revoked' FROM devices WHERE id = ?1")
                    .and_then(|mut s| s.query_row([device_id], |r| r.get(0)).optional())
                    .map_err(db_err)?
                    .unwrap_or(false);
                if revoked {
                    return Ok(Redeemed::Denied);
                }
            }
            let changed = c
                .prepare_cached("UPDATE device_grants SET status = 'consumed' WHERE id = ?1 AND status = 'approved'")
                .and_then(|mut s| s.execute([&g.id]))
                .map_err(db_err)?;
            if changed != 1 {
                return Ok(Redeemed::Spent);
            }
            let family = tokens::NewFamily {
                client_id: &g.client_id,
                user_id: &user_id,
                scope: &g.scope,
                auth_time: g.decided_at.unwrap_or(now),
                device_id: g.device_id.as_deref(),
                jkt: g.device.jkt.as_deref(),
            };
            let subject = tokens::start_family(c, &r.mint, &family, now)?;
            audit::append(c, &events::grant_consumed(&g.client_id, &g.id, &subject.family_id), now)?;
            Redeemed::Tokens(subject)
        }
    })
}

/// The instant endpoint's check, answered without the writer when nothing is to
/// be written: only a grant ready to be collected returns `None` (go to the writer).
/// Reads see every committed decision, and the waiter subscribes before its
/// second check, so a decision is never missed.
pub(crate) fn wait_check(c: &Connection, r: &Redeem, now: Timestamp) -> StoreResult<Option<Redeemed>> {
    let Some(g) = find(c, "device_code_hash", &r.device_code_hash)? else {
        return Ok(Some(Redeemed::Unknown));
    };
    if g.client_id != r.client_id {
        return Ok(Some(Redeemed::Unknown));
    }
    if g.device.jkt.is_some() && g.device.jkt != r.presented_jkt {
        return Ok(Some(Redeemed::WrongKey));
    }
    Ok(match g.state.wait_check(now) {
        WaitOutcome::Pending => Some(Redeemed::Pending { grant_id: g.id, expires_at: g.state.expires_at }),
        WaitOutcome::Denied => Some(Redeemed::Denied),
        WaitOutcome::Expired => Some(Redeemed::Expired),
        WaitOutcome::Spent => Some(Redeemed::Spent),
        WaitOutcome::Ready => None,
    })
}
