//! RFC 8628 device grants: request, decide, redeem.

use crate::flows::{accounts, devices, tokens};
use crate::records::*;
use crate::txn::{GrantCode, NewFamily, Txn};
use crate::{events, StoreError};
use latchkey_domain::device::{DeviceStatus, RegisteredVia};
use latchkey_domain::device_grant::{default_device_name, plan_redeem, Decision, Presenter, RedeemPlan, Redeemable};
use latchkey_domain::Timestamp;

/// Stores a new pending grant. Its `grant.requested` entry is written when a
/// person decides it ([`decide`]): anyone may ask, so asking alone is no entry.
pub async fn create<T: Txn>(tx: &T, grant: &NewDeviceGrant, now: Timestamp) -> Result<(), T::Error> {
    tx.insert_grant(grant, now).await
}

/// Approves or denies the grant behind a user code. Approving registers the
/// device first; if it cannot be registered, nothing changes.
pub async fn decide<T: Txn>(tx: &T, d: GrantDecision, now: Timestamp) -> Result<DecideResult, T::Error> {
    let Some(mut g) = tx.grant(GrantCode::User, &d.user_code_hash, true).await? else {
        return Ok(DecideResult::NotFound);
    };
    let status = match g.state.decide(d.decision, now) {
        Ok(s) => s,
        Err(e) => return Ok(DecideResult::Refused(e)),
    };
    let may_act = match d.decision {
        Decision::Approve => accounts::check_to_register(tx, &d.user_id, now).await?,
        Decision::Deny => accounts::check(tx, &d.user_id, now).await?,
    };
    if let Err(refusal) = may_act {
        return Ok(DecideResult::AccountStopped(refusal));
    }
    if d.decision == Decision::Approve {
        let name = default_device_name(g.requester.device_name.as_deref(), &g.client_id);
        let new = devices::Registration {
            id: &d.new_device_id,
            owner_id: &d.user_id,
            name: &name,
            req: &g.device,
            cap: d.device_cap,
            via: RegisteredVia::DeviceLogin,
        };
        match devices::register(tx, &new, now).await? {
            devices::Registered::Device(device) => g.device_id = Some(device.id),
            devices::Registered::AtCap(cap) => return Ok(DecideResult::DeviceLimit(cap)),
            devices::Registered::SlugTaken(slug) => return Ok(DecideResult::SlugTaken(slug)),
        }
    }
    g.state.status = status;
    g.user_id = Some(d.user_id.clone());
    g.decided_at = Some(now);
    tx.set_grant_decided(&g).await?;
    tx.append_audit(&events::grant_requested(&g), now).await?;
    tx.append_audit(&events::grant_decided(&d, &g.id), now).await?;
    tx.announce_decided(&g.id).await?;
    Ok(DecideResult::Decided(Box::new(g)))
}

/// Loads the grant behind a device code with what redeeming it needs, and plans.
async fn plan<T: Txn>(
    tx: &T,
    r: &Redeem,
    lock: bool,
    now: Timestamp,
) -> Result<Option<(DeviceGrantRecord, RedeemPlan)>, T::Error> {
    let Some(g) = tx.grant(GrantCode::Device, &r.device_code_hash, lock).await? else {
        return Ok(None);
    };
    let device_revoked = match &g.device_id {
        // Held when redeeming: a revocation racing this redemption either waits for
        // it (and then ends the family it starts, which it can see) or is seen by
        // it. An unlocked read could pass a device whose revocation commits next.
        Some(id) if lock => tx.device(id, true).await?.map(|d| d.status) == Some(DeviceStatus::Revoked),
        Some(id) => tx.device_status(id).await? == Some(DeviceStatus::Revoked),
        None => false,
    };
    let grant = Redeemable { client_id: &g.client_id, jkt: g.device.jkt.as_deref(), state: &g.state, device_revoked };
    let by = Presenter { client_id: &r.client_id, jkt: r.presented_jkt.as_deref(), mode: r.mode };
    let plan = plan_redeem(grant, by, now);
    Ok(Some((g, plan)))
}

/// The answer for a plan that hands out nothing.
fn answer(g: DeviceGrantRecord, plan: RedeemPlan) -> Option<Redeemed> {
    Some(match plan {
        RedeemPlan::Unknown => Redeemed::Unknown,
        RedeemPlan::WrongKey => Redeemed::WrongKey,
        RedeemPlan::Pending { .. } => Redeemed::Pending { grant_id: g.id, expires_at: g.state.expires_at },
        RedeemPlan::SlowDown { new_interval_secs } => Redeemed::SlowDown { interval_secs: new_interval_secs },
        RedeemPlan::Denied => Redeemed::Denied,
        RedeemPlan::Expired => Redeemed::Expired,
        RedeemPlan::Spent => Redeemed::Spent,
        RedeemPlan::Consume => return None,
    })
}

/// Redeems a device code (a poll or an instant-endpoint check). On consume the
/// grant is marked consumed, the token family started and `grant.consumed`
/// recorded together, so of any number of concurrent callers exactly one gets tokens.
pub async fn redeem<T: Txn>(tx: &T, r: Redeem, now: Timestamp) -> Result<Redeemed, T::Error> {
    let Some((g, plan)) = plan(tx, &r, true, now).await? else {
        return Ok(Redeemed::Unknown);
    };
    match plan {
        RedeemPlan::Pending { record_poll: true } => tx.set_grant_polled(&g.id, g.state.interval_secs, now).await?,
        RedeemPlan::SlowDown { new_interval_secs } => tx.set_grant_polled(&g.id, new_interval_secs, now).await?,
        RedeemPlan::Consume => return consume(tx, g, &r.mint, r.presented_jkt.as_deref(), now).await,
        _ => {}
    }
    Ok(answer(g, plan).unwrap_or(Redeemed::Spent))
}

/// Consumes an approved grant and starts its token family. The family is bound
/// to the device's registered key, or else to the key of the proof the token
/// request carries (RFC 9449 §5: the token endpoint binds what it issues to the
/// proof's key), so a client that proves a key never gets bearer tokens.
async fn consume<T: Txn>(
    tx: &T,
    g: DeviceGrantRecord,
    mint: &MintRefresh,
    presented_jkt: Option<&str>,
    now: Timestamp,
) -> Result<Redeemed, T::Error> {
    let Some(user_id) = g.user_id.as_deref() else {
        return Err(StoreError::Corrupt(format!("approved grant {} has no user", g.id)).into());
    };
    // Checked before anything is consumed: a stopped account's grant stays as it is.
    if let Err(refusal) = accounts::check(tx, user_id, now).await? {
        return Ok(Redeemed::AccountStopped(refusal));
    }
    // Conditional even where the row is locked: a second line of defence.
    if !tx.set_grant_consumed(&g.id).await? {
        return Ok(Redeemed::Spent);
    }
    let family = NewFamily {
        id: &mint.new_family_id,
        client_id: &g.client_id,
        user_id,
        scope: &g.scope,
        auth_time: g.decided_at.unwrap_or(now),
        device_id: g.device_id.as_deref(),
        jkt: g.device.jkt.as_deref().or(presented_jkt),
        ip: Some(&g.requester.ip),
        user_agent: Some(&g.requester.user_agent),
    };
    let subject = tokens::start_family(tx, &family, mint.refresh.as_ref(), now).await?;
    tx.append_audit(&events::grant_consumed(&g.client_id, &g.id, &subject.family_id), now).await?;
    Ok(Redeemed::Tokens(subject))
}

/// The instant endpoint's check without writing: `None` when the grant is
/// ready to be collected (run [`redeem`] then). Backends whose reads see every
/// committed decision can answer waiting devices with this off the write path.
pub async fn wait_check<T: Txn>(tx: &T, r: &Redeem, now: Timestamp) -> Result<Option<Redeemed>, T::Error> {
    let Some((g, plan)) = plan(tx, r, false, now).await? else {
        return Ok(Some(Redeemed::Unknown));
    };
    Ok(answer(g, plan))
}
