//! Devices: registration (shared by device login and enrollment), rename,
//! relocation with history, revocation that takes the device's tokens with it.

use crate::records::*;
use crate::txn::Txn;
use crate::{events, StoreError};
use latchkey_domain::device::{plan_registration, DeviceStatus, RegisteredVia, RegistrationPlan, Registry};
use latchkey_domain::slug::Slug;
use latchkey_domain::Timestamp;
use std::collections::HashSet;

/// A device to register: what it is called, whose it is, what it asked for.
#[derive(Debug, Clone, Copy)]
pub struct Registration<'a> {
    /// ID for the new device.
    pub id: &'a str,
    /// Whose device it is.
    pub owner_id: &'a str,
    /// Display name.
    pub name: &'a str,
    /// Slug, location, platform and key the device asked for.
    pub req: &'a DeviceRequest,
    /// Most active devices the owner may have.
    pub cap: i64,
    /// How it came to be, for the audit entry.
    pub via: RegisteredVia,
}

/// Outcome of [`register`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registered {
    /// The device (new, or the owner's active device with the same key).
    Device(Box<DeviceRecord>),
    /// The owner is at the cap; nothing changed.
    AtCap(i64),
    /// The explicit slug is in use; nothing changed.
    SlugTaken(String),
}

/// Registers a device inside the caller's transaction, or returns the owner's
/// active device with the same key.
pub async fn register<T: Txn>(tx: &T, n: &Registration<'_>, now: Timestamp) -> Result<Registered, T::Error> {
    // Registrations for one owner take turns, so the cap and the slug choice hold.
    tx.lock_owner(n.owner_id).await?;
    let existing = match &n.req.jkt {
        Some(jkt) => tx.active_device_with_key(n.owner_id, jkt).await?,
        None => None,
    };
    let (active, taken) = match existing {
        Some(_) => (0, HashSet::new()),
        None => (tx.active_device_count(n.owner_id).await?, taken_slugs(tx, n).await?),
    };
    let registry = Registry { same_key_device: existing.is_some(), active, taken_slugs: &taken };
    let slug = match plan_registration(registry, n.cap, n.req.slug.as_deref(), n.name, n.id) {
        RegistrationPlan::Reuse => {
            return existing
                .map(|d| Registered::Device(Box::new(d)))
                .ok_or_else(|| StoreError::Corrupt("registration planned reuse without a device".into()).into())
        }
        RegistrationPlan::AtCap(cap) => return Ok(Registered::AtCap(cap)),
        RegistrationPlan::SlugTaken(slug) => return Ok(Registered::SlugTaken(slug)),
        RegistrationPlan::Create { slug } => slug,
    };
    let device = DeviceRecord {
        id: n.id.to_string(),
        owner_id: n.owner_id.to_string(),
        display_name: n.name.to_string(),
        slug,
        location: n.req.location.clone(),
        platform: n.req.platform.clone(),
        client_version: n.req.client_version.clone(),
        created_at: now,
        last_seen_at: None,
        status: DeviceStatus::Active,
        revoked_at: None,
        public_jwk: n.req.public_jwk.clone(),
        jkt: n.req.jkt.clone(),
    };
    tx.insert_device(&device).await?;
    tx.add_location(&device.id, device.location.as_deref(), now).await?;
    tx.append_audit(&events::device_registered(&device, n.via.as_str()), now).await?;
    Ok(Registered::Device(Box::new(device)))
}

/// Candidate slugs probed one at a time before all of the owner's slugs are read.
const SLUG_PROBES: usize = 8;

/// The owner's slugs that decide this registration's slug: the explicit one
/// if it is taken; else the derived candidates (`laptop`, `laptop-2`, …) that
/// are taken, up to the first free one. Each is one probe of the unique
/// index, so registration costs the same however many devices the owner ever
/// had; only an owner with more than [`SLUG_PROBES`] devices of one name has
/// all of its slugs read.
async fn taken_slugs<T: Txn>(tx: &T, n: &Registration<'_>) -> Result<HashSet<String>, T::Error> {
    let mut taken = HashSet::new();
    if let Some(slug) = n.req.slug.as_deref() {
        if tx.slug_taken(n.owner_id, slug).await? {
            taken.insert(slug.to_string());
        }
        return Ok(taken);
    }
    let base = Slug::base_for_new_device(n.name, n.id);
    for candidate in base.candidates().take(SLUG_PROBES) {
        if !tx.slug_taken(n.owner_id, candidate.as_str()).await? {
            return Ok(taken);
        }
        taken.insert(candidate.to_string());
    }
    tx.device_slugs(n.owner_id).await
}

/// The device `id` if it exists and, when `owner_id` is given, is theirs.
async fn owned<T: Txn>(tx: &T, id: &str, owner_id: Option<&str>, lock: bool) -> Result<Option<DeviceRecord>, T::Error> {
    Ok(tx.device(id, lock).await?.filter(|d| owner_id.is_none_or(|o| o == d.owner_id)))
}

/// Renames an owner's device (the slug stays) and records it.
pub async fn rename<T: Txn>(
    tx: &T,
    id: &str,
    owner_id: &str,
    name: &str,
    now: Timestamp,
) -> Result<Option<DeviceRecord>, T::Error> {
    let Some(mut d) = owned(tx, id, Some(owner_id), true).await? else {
        return Ok(None);
    };
    tx.set_device_name(id, name).await?;
    tx.append_audit(&events::device_renamed(owner_id, id, name), now).await?;
    d.display_name = name.to_string();
    Ok(Some(d))
}

/// Moves an owner's device from now on, keeping the history, and records it.
pub async fn relocate<T: Txn>(
    tx: &T,
    id: &str,
    owner_id: &str,
    location: Option<String>,
    now: Timestamp,
) -> Result<Option<DeviceRecord>, T::Error> {
    let Some(mut d) = owned(tx, id, Some(owner_id), true).await? else {
        return Ok(None);
    };
    tx.set_device_location(id, location.as_deref()).await?;
    tx.add_location(id, location.as_deref(), now).await?;
    tx.append_audit(&events::device_relocated(owner_id, id, location.as_deref()), now).await?;
    d.location = location;
    Ok(Some(d))
}

/// Revokes a device and every token family it holds, at once.
pub async fn revoke<T: Txn>(
    tx: &T,
    id: &str,
    owner_id: Option<&str>,
    actor: &str,
    now: Timestamp,
) -> Result<RevokeDevice, T::Error> {
    if owned(tx, id, owner_id, false).await?.is_none() {
        return Ok(RevokeDevice::NotFound);
    }
    // Families first, then the device: the order a rotation takes them in.
    tx.lock_device_families(id).await?;
    let Some(mut d) = tx.device(id, true).await? else {
        return Ok(RevokeDevice::NotFound);
    };
    if d.status == DeviceStatus::Revoked {
        return Ok(RevokeDevice::AlreadyRevoked);
    }
    tx.set_device_revoked(id, now).await?;
    // After the device's row: sees every family committed while this transaction waited for it.
    let families = tx.set_device_families_revoked(id, now).await?;
    tx.append_audit(&events::device_revoked(actor, id, families), now).await?;
    // Out of its trusted sessions at once; the others get a new key it never sees.
    crate::flows::trusted_sessions::remove_everywhere(
        tx,
        id,
        latchkey_domain::trusted_session::MemberStatus::Removed,
        actor,
        now,
    )
    .await?;
    d.status = DeviceStatus::Revoked;
    d.revoked_at = Some(now);
    Ok(RevokeDevice::Revoked(Box::new(d)))
}
