//! Enrollment keys: for machines that can never open a browser.

use crate::flows::{accounts, devices, tokens};
use crate::records::*;
use crate::txn::{NewFamily, Txn};
use crate::{events, StoreError};
use latchkey_domain::device::RegisteredVia;
use latchkey_domain::Timestamp;

/// Stores an enrollment key and records its creation.
pub async fn create<T: Txn>(tx: &T, key: &NewEnrollmentKey, now: Timestamp) -> Result<(), T::Error> {
    tx.insert_enrollment_key(key, now).await?;
    tx.append_audit(&events::enrollment_key_created(key), now).await
}

/// Revokes a key (only `owner_id`'s when given) and records it.
pub async fn revoke<T: Txn>(
    tx: &T,
    id: &str,
    owner_id: Option<&str>,
    actor: &str,
    now: Timestamp,
) -> Result<bool, T::Error> {
    if !tx.set_key_revoked(id, owner_id, now).await? {
        return Ok(false);
    }
    tx.append_audit(&events::enrollment_key_revoked(actor, id), now).await?;
    Ok(true)
}

/// Uses a key: registers the device and starts its first token family together.
pub async fn enroll<T: Txn>(tx: &T, e: Enroll, now: Timestamp) -> Result<Enrolled, T::Error> {
    let Some(key) = tx.usable_key(&e.key_hash, true).await? else {
        return Ok(Enrolled::Unknown);
    };
    if let Err(refusal) = key.state.check(now) {
        return Ok(Enrolled::Refused(refusal));
    }
    if let Err(refusal) = accounts::check_to_register(tx, &key.owner_id, now).await? {
        return Ok(Enrolled::AccountStopped(refusal));
    }
    let new = devices::Registration {
        id: &e.device_id,
        owner_id: &key.owner_id,
        name: &e.name,
        req: &e.device,
        cap: e.device_cap,
        via: RegisteredVia::EnrollmentKey,
    };
    let device = match devices::register(tx, &new, now).await? {
        devices::Registered::Device(d) => d,
        devices::Registered::AtCap(cap) => return Ok(Enrolled::DeviceLimit(cap)),
        devices::Registered::SlugTaken(s) => return Ok(Enrolled::SlugTaken(s)),
    };
    // Conditional on the state just checked, so two racing uses of a single-use key cannot both win.
    if !tx.count_key_use(&key.id).await? {
        return Err(StoreError::Conflict("a concurrent use of this single-use enrollment key").into());
    }
    tx.append_audit(&events::enrollment_key_used(&key.id, &device.id), now).await?;
    let family = NewFamily {
        id: &e.mint.new_family_id,
        client_id: &e.client_id,
        user_id: &key.owner_id,
        scope: &e.scope,
        auth_time: now,
        device_id: Some(&device.id),
        jkt: e.device.jkt.as_deref(),
        ip: None,
        user_agent: None,
    };
    let subject = tokens::start_family(tx, &family, e.mint.refresh.as_ref(), now).await?;
    Ok(Enrolled::Tokens { subject, device })
}
