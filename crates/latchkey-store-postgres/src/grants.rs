//! RFC 8628 device grants in PostgreSQL. Each transition loads the grant
//! `FOR UPDATE`, asks `latchkey_domain::device_grant`, and writes, so
//! concurrent callers on any replica take turns on the row: of any number of
//! redeemers of an approved grant, the first consumes it and the rest see it spent.

use crate::audit;
use crate::db::{conflict, DbResult, Tx};
use crate::devices::{self, NewDevice, Refusal};
use crate::tokens::{self, NewFamily};
use deadpool_postgres::GenericClient;
use latchkey_domain::device_grant::{Decision, GrantState, GrantStatus, PollOutcome, WaitOutcome};
use latchkey_domain::secret::SecretHash;
use latchkey_domain::Timestamp;
use latchkey_store::*;
use tokio_postgres::Row;

/// The channel decided grant IDs are announced on, to every replica's listener.
pub(crate) const CHANNEL: &str = "latchkey_grants";

const COLS: &str = "id, client_id, scope, status, created_at, expires_at, interval_secs, last_polled_at,
    requester_ip, requester_user_agent, device_name, user_id, decided_at,
    device_slug, device_location, device_platform, device_client_version, device_public_jwk, device_jkt, device_id";

fn row(r: &Row) -> DbResult<DeviceGrantRecord> {
    let status: String = r.try_get(3)?;
    let Some(status) = GrantStatus::parse(&status) else {
        return Err(StoreError::Corrupt(format!("unknown grant status {status:?}")).into());
    };
    Ok(DeviceGrantRecord {
        id: r.try_get(0)?,
        client_id: r.try_get(1)?,
        scope: r.try_get(2)?,
        state: GrantState {
            status,
            expires_at: Timestamp::from_millis(r.try_get(5)?),
            interval_secs: r.try_get(6)?,
            last_polled_at: r.try_get::<_, Option<i64>>(7)?.map(Timestamp::from_millis),
        },
        created_at: Timestamp::from_millis(r.try_get(4)?),
        requester: Requester { ip: r.try_get(8)?, user_agent: r.try_get(9)?, device_name: r.try_get(10)? },
        user_id: r.try_get(11)?,
        decided_at: r.try_get::<_, Option<i64>>(12)?.map(Timestamp::from_millis),
        device: DeviceRequest {
            slug: r.try_get(13)?,
            location: r.try_get(14)?,
            platform: r.try_get(15)?,
            client_version: r.try_get(16)?,
            public_jwk: r.try_get(17)?,
            jkt: r.try_get(18)?,
        },
        device_id: r.try_get(19)?,
    })
}

/// Which code identifies the grant.
#[derive(Clone, Copy)]
enum Code {
    Device,
    User,
}

async fn find(
    c: &impl GenericClient,
    code: Code,
    hash: &SecretHash,
    lock: bool,
) -> DbResult<Option<DeviceGrantRecord>> {
    let column = match code {
        Code::Device => "device_code_hash",
        Code::User => "user_code_hash",
    };
    let lock = if lock { " FOR UPDATE" } else { "" };
    let s = c.prepare_cached(&format!("SELECT {COLS} FROM device_grants WHERE {column} = $1{lock}")).await?;
    c.query_opt(&s, &[&hash.as_str()]).await?.map(|r| row(&r)).transpose()
}

pub(crate) async fn create(tx: &Tx<'_>, g: NewDeviceGrant, now: Timestamp) -> DbResult<()> {
    let s = tx
        .prepare_cached(
            "INSERT INTO device_grants (id, client_id, scope, device_code_hash, user_code_hash, status, created_at,
                expires_at, interval_secs, requester_ip, requester_user_agent, device_name,
                device_slug, device_location, device_platform, device_client_version, device_public_jwk, device_jkt)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
        )
        .await?;
    tx.execute(
        &s,
        &[
            &g.id,
            &g.client_id,
            &g.scope,
            &g.device_code_hash.as_str(),
            &g.user_code_hash.as_str(),
            &g.state.status.as_str(),
            &now.as_millis(),
            &g.state.expires_at.as_millis(),
            &g.state.interval_secs,
            &g.requester.ip,
            &g.requester.user_agent,
            &g.requester.device_name,
            &g.device.slug,
            &g.device.location,
            &g.device.platform,
            &g.device.client_version,
            &g.device.public_jwk,
            &g.device.jkt,
        ],
    )
    .await
    .map_err(conflict("a grant with this code"))?;
    audit::append(tx, &events::grant_requested(&g), now).await
}

pub(crate) async fn by_user_code(c: &impl GenericClient, h: &SecretHash) -> DbResult<Option<DeviceGrantRecord>> {
    find(c, Code::User, h, false).await
}

pub(crate) async fn decide(tx: &Tx<'_>, d: GrantDecision, now: Timestamp) -> DbResult<DecideResult> {
    let Some(mut g) = find(tx, Code::User, &d.user_code_hash, true).await? else {
        return Ok(DecideResult::NotFound);
    };
    let status = match g.state.decide(d.decision, now) {
        Ok(s) => s,
        Err(e) => return Ok(DecideResult::Refused(e)),
    };
    // Approving registers the device; if it cannot be registered, nothing changes.
    if d.decision == Decision::Approve {
        let name = g.requester.device_name.clone().unwrap_or_else(|| format!("{} device", g.client_id));
        let new = NewDevice {
            id: &d.new_device_id,
            owner_id: &d.user_id,
            name: &name,
            req: &g.device,
            cap: d.device_cap,
            via: "device_login",
        };
        match devices::create(tx, &new, now).await? {
            Ok(device) => g.device_id = Some(device.id),
            Err(Refusal::Limit(cap)) => return Ok(DecideResult::DeviceLimit(cap)),
            Err(Refusal::SlugTaken(slug)) => return Ok(DecideResult::SlugTaken(slug)),
        }
    }
    let s = tx
        .prepare_cached(
            "UPDATE device_grants SET status = $1, user_id = $2, decided_at = $3, device_id = $4
             WHERE id = $5 AND status = 'pending'",
        )
        .await?;
    tx.execute(&s, &[&status.as_str(), &d.user_id, &now.as_millis(), &g.device_id, &g.id]).await?;
    audit::append(tx, &events::grant_decided(&d, &g.id), now).await?;
    // Queued by PostgreSQL and delivered to every listener only if this transaction commits.
    let s = tx.prepare_cached("SELECT pg_notify($1, $2)").await?;
    tx.execute(&s, &[&CHANNEL, &g.id]).await?;
    g.state.status = status;
    g.user_id = Some(d.user_id);
    g.decided_at = Some(now);
    Ok(DecideResult::Decided(Box::new(g)))
}

pub(crate) async fn redeem(tx: &Tx<'_>, r: Redeem, now: Timestamp) -> DbResult<Redeemed> {
    let Some(g) = find(tx, Code::Device, &r.device_code_hash, true).await? else {
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
                let s = tx.prepare_cached("UPDATE device_grants SET last_polled_at = $1 WHERE id = $2").await?;
                tx.execute(&s, &[&now.as_millis(), &g.id]).await?;
            }
            Redeemed::Pending { grant_id: g.id, expires_at: g.state.expires_at }
        }
        PollOutcome::SlowDown { new_interval_secs } => {
            let s = tx
                .prepare_cached("UPDATE device_grants SET last_polled_at = $1, interval_secs = $2 WHERE id = $3")
                .await?;
            tx.execute(&s, &[&now.as_millis(), &new_interval_secs, &g.id]).await?;
            Redeemed::SlowDown { interval_secs: new_interval_secs }
        }
        PollOutcome::Denied => Redeemed::Denied,
        PollOutcome::Expired => Redeemed::Expired,
        PollOutcome::Spent => Redeemed::Spent,
        PollOutcome::Ready => {
            let Some(user_id) = g.user_id.clone() else {
                return Err(StoreError::Corrupt(format!("approved grant {} has no user", g.id)).into());
            };
            // A device revoked between approval and collection gets nothing.
            if let Some(device_id) = &g.device_id {
                let s = tx.prepare_cached("SELECT status = 'revoked' FROM devices WHERE id = $1").await?;
                if tx.query_opt(&s, &[device_id]).await?.map(|r| r.get::<_, bool>(0)).unwrap_or(false) {
                    return Ok(Redeemed::Denied);
                }
            }
            // The row is locked, so this cannot miss; the condition is a second line of defence.
            let s = tx
                .prepare_cached("UPDATE device_grants SET status = 'consumed' WHERE id = $1 AND status = 'approved'")
                .await?;
            if tx.execute(&s, &[&g.id]).await? != 1 {
                return Ok(Redeemed::Spent);
            }
            let family = NewFamily {
                client_id: &g.client_id,
                user_id: &user_id,
                scope: &g.scope,
                auth_time: g.decided_at.unwrap_or(now),
                device_id: g.device_id.as_deref(),
                jkt: g.device.jkt.as_deref(),
            };
            let subject = tokens::start_family(tx, &r.mint, &family, now).await?;
            audit::append(tx, &events::grant_consumed(&g.client_id, &g.id, &subject.family_id), now).await?;
            Redeemed::Tokens(subject)
        }
    })
}
