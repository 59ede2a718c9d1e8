//! Devices in SQLite: registration (shared by approval and enrollment), rename,
//! relocation with history, revocation that takes the device's tokens with it.

use crate::{audit, db_err, tokens};
use latchkey_domain::device::DeviceStatus;
use latchkey_domain::slug::Slug;
use latchkey_domain::Timestamp;
use latchkey_store::*;
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::collections::HashSet;

/// Why a device could not be registered.
pub(crate) enum Refusal {
    /// The owner is at the device cap.
    Limit(i64),
    /// The explicit slug is in use.
    SlugTaken(String),
}

const COLS: &str = "id, owner_id, display_name, slug, location, platform, client_version, created_at,
    last_seen_at, status, revoked_at, public_jwk, jkt";

fn row(r: &Row<'_>) -> rusqlite::Result<Result<DeviceRecord, StoreError>> {
    let status: String = r.get(9)?;
    let Some(status) = DeviceStatus::parse(&status) else {
        return Ok(Err(StoreError::Corrupt(format!("unknown device status {status:?}"))));
    };
    Ok(Ok(DeviceRecord {
        id: r.get(0)?,
        owner_id: r.get(1)?,
        display_name: r.get(2)?,
        slug: r.get(3)?,
        location: r.get(4)?,
        platform: r.get(5)?,
        client_version: r.get(6)?,
        created_at: Timestamp::from_millis(r.get(7)?),
        last_seen_at: r.get::<_, Option<i64>>(8)?.map(Timestamp::from_millis),
        status,
        revoked_at: r.get::<_, Option<i64>>(10)?.map(Timestamp::from_millis),
        public_jwk: r.get(11)?,
        jkt: r.get(12)?,
    }))
}

/// Registers a device for `owner_id` inside the caller's transaction.
#[allow(clippy::too_many_arguments)]
pub(crate) fn create(
    c: &Connection,
    id: &str,
    owner_id: &str,
    name: &str,
    req: &DeviceRequest,
    cap: i64,
    now: Timestamp,
    via: &str,
) -> StoreResult<Result<DeviceRecord, Refusal>> {
    // The same machine (same key) logging in again is the same device, not a new one.
    if let Some(jkt) = &req.jkt {
        let existing = c
            .prepare_cached(&format!(
                "SELECT {COLS} FROM devices WHERE owner_id = ?1 AND jkt = ?2 AND status = 'active'"
            ))
            .and_then(|mut s| s.query_row(params![owner_id, jkt], row).optional())
            .map_err(db_err)?
            .transpose()?;
        if let Some(d) = existing {
            return Ok(Ok(d));
        }
    }
    let active: i64 = c
        .prepare_cached("SELECT COUNT(*) FROM devices WHERE owner_id = ?1 AND status = 'active'")
        .and_then(|mut s| s.query_row([owner_id], |r| r.get(0)))
        .map_err(db_err)?;
    if active >= cap {
        return Ok(Err(Refusal::Limit(cap)));
    }
    // Revoked devices keep their slugs: a slug names one device, ever.
    let taken: HashSet<String> = {
        let mut s = c.prepare_cached("SELECT slug FROM devices WHERE owner_id = ?1").map_err(db_err)?;
        let rows = s.query_map([owner_id], |r| r.get::<_, String>(0)).map_err(db_err)?;
        rows.collect::<Result<_, _>>().map_err(db_err)?
    };
    let slug = match &req.slug {
        Some(explicit) if taken.contains(explicit) => return Ok(Err(Refusal::SlugTaken(explicit.clone()))),
        Some(explicit) => explicit.clone(),
        None => Slug::for_new_device(name, id, &taken).to_string(),
    };
    let device = DeviceRecord {
        id: id.to_string(),
        owner_id: owner_id.to_string(),
        display_name: name.to_string(),
        slug,
        location: req.location.clone(),
        platform: req.platform.clone(),
        client_version: req.client_version.clone(),
        created_at: now,
        last_seen_at: None,
        status: DeviceStatus::Active,
        revoked_at: None,
        public_jwk: req.public_jwk.clone(),
        jkt: req.jkt.clone(),
    };
    c.prepare_cached(
        "INSERT INTO devices (id, owner_id, display_name, slug, location, platform, client_version, created_at, status,
            public_jwk, jkt) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'active', ?9, ?10)",
    )
    .and_then(|mut s| {
        s.execute(params![
            device.id,
            device.owner_id,
            device.display_name,
            device.slug,
            device.location,
            device.platform,
            device.client_version,
            now.as_millis(),
            device.public_jwk,
            device.jkt
        ])
    })
    .map_err(db_err)?;
    record_location(c, id, device.location.as_deref(), now)?;
    audit::append(c, &events::device_registered(&device, via), now)?;
    Ok(Ok(device))
}

fn record_location(c: &Connection, id: &str, location: Option<&str>, now: Timestamp) -> StoreResult<()> {
    c.prepare_cached("INSERT INTO device_locations (device_id, location, effective_at) VALUES (?1, ?2, ?3)")
        .and_then(|mut s| s.execute(params![id, location, now.as_millis()]))
        .map_err(db_err)?;
    Ok(())
}

pub(crate) fn list(c: &Connection, owner_id: &str) -> StoreResult<Vec<DeviceRecord>> {
    let mut s = c
        .prepare_cached(&format!("SELECT {COLS} FROM devices WHERE owner_id = ?1 ORDER BY created_at DESC, id"))
        .map_err(db_err)?;
    let rows = s.query_map([owner_id], row).map_err(db_err)?;
    rows.map(|r| r.map_err(db_err)?).collect()
}

pub(crate) fn get(c: &Connection, id: &str) -> StoreResult<Option<DeviceRecord>> {
    c.prepare_cached(&format!("SELECT {COLS} FROM devices WHERE id = ?1"))
        .and_then(|mut s| s.query_row([id], row).optional())
        .map_err(db_err)?
        .transpose()
}

fn owned(c: &Connection, id: &str, owner_id: Option<&str>) -> StoreResult<Option<DeviceRecord>> {
    Ok(get(c, id)?.filter(|d| owner_id.is_none_or(|o| o == d.owner_id)))
}

pub(crate) fn rename(
    c: &Connection,
    id: &str,
    owner_id: &str,
    name: &str,
    now: Timestamp,
) -> StoreResult<Option<DeviceRecord>> {
    let Some(mut d) = owned(c, id, Some(owner_id))? else {
        return Ok(None);
    };
    c.prepare_cached("UPDATE devices SET display_name = ?1 WHERE id = ?2")
        .and_then(|mut s| s.execute(params![name, id]))
        .map_err(db_err)?;
    audit::append(c, &events::device_renamed(owner_id, id, name), now)?;
    d.display_name = name.to_string();
    Ok(Some(d))
}

pub(crate) fn relocate(
    c: &Connection,
    id: &str,
    owner_id: &str,
    location: Option<String>,
    now: Timestamp,
) -> StoreResult<Option<DeviceRecord>> {
    let Some(mut d) = owned(c, id, Some(owner_id))? else {
        return Ok(None);
    };
    c.prepare_cached("UPDATE devices SET location = ?1 WHERE id = ?2")
        .and_then(|mut s| s.execute(params![location, id]))
        .map_err(db_err)?;
    record_location(c, id, location.as_deref(), now)?;
    audit::append(c, &events::device_relocated(owner_id, id, location.as_deref()), now)?;
    d.location = location;
    Ok(Some(d))
}

pub(crate) fn history(c: &Connection, id: &str) -> StoreResult<Vec<LocationChange>> {
    let mut s = c
        .prepare_cached(
            "SELECT location, effective_at FROM device_locations WHERE device_id = ?1 ORDER BY effective_at, rowid",
        )
        .map_err(db_err)?;
    let rows = s
        .query_map([id], |r| {
            Ok(LocationChange { location: r.get(0)?, effective_at: Timestamp::from_millis(r.get(1)?) })
        })
        .map_err(db_err)?;
    rows.map(|r| r.map_err(db_err)).collect()
}

pub(crate) fn revoke(
    c: &Connection,
    id: &str,
    owner_id: Option<&str>,
    actor: &str,
    now: Timestamp,
) -> StoreResult<RevokeDevice> {
    let Some(mut d) = owned(c, id, owner_id)? else {
        return Ok(RevokeDevice::NotFound);
    };
    if d.status == DeviceStatus::Revoked {
        return Ok(RevokeDevice::AlreadyRevoked);
    }
    c.prepare_cached("UPDATE devices SET status = 'revoked', revoked_at = ?1 WHERE id = ?2")
        .and_then(|mut s| s.execute(params![now.as_millis(), id]))
        .map_err(db_err)?;
    let families = tokens::revoke_device_families(c, id, now)?;
    audit::append(c, &events::device_revoked(actor, id, families as u64), now)?;
    d.status = DeviceStatus::Revoked;
    d.revoked_at = Some(now);
    Ok(RevokeDevice::Revoked(Box::new(d)))
}
