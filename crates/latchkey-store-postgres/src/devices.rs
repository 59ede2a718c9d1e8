//! Devices in PostgreSQL: registration (shared by approval and enrollment), rename,
//! relocation with history, revocation that takes the device's tokens with it.
//!
//! Registration locks the owner's `users` row, so the device cap and the slug
//! choice are decided by one transaction at a time, whichever replica runs it.
//! `FOR NO KEY UPDATE` rather than `FOR UPDATE`: it still queues registrations
//! behind one another, but does not block the key-share locks that inserting
//! rows referencing the user (sessions, grants, token families) takes.
//!
//! Lock order, to keep clear of deadlocks: grant or enrollment key, then owner,
//! then audit head; a device's token families before the device itself (a
//! rotation locks its family, then touches the device's `last_seen_at`).

use crate::audit;
use crate::db::{conflict, DbResult, Tx};
use crate::tokens;
use deadpool_postgres::GenericClient;
use latchkey_domain::device::DeviceStatus;
use latchkey_domain::slug::Slug;
use latchkey_domain::Timestamp;
use latchkey_store::*;
use std::collections::HashSet;
use tokio_postgres::Row;

/// Why a device could not be registered.
pub(crate) enum Refusal {
    /// The owner is at the device cap.
    Limit(i64),
    /// The explicit slug is in use.
    SlugTaken(String),
}

const COLS: &str = "id, owner_id, display_name, slug, location, platform, client_version, created_at,
    last_seen_at, status, revoked_at, public_jwk, jkt";

fn row(r: &Row) -> DbResult<DeviceRecord> {
    let status: String = r.try_get(9)?;
    let Some(status) = DeviceStatus::parse(&status) else {
        return Err(StoreError::Corrupt(format!("unknown device status {status:?}")).into());
    };
    Ok(DeviceRecord {
        id: r.try_get(0)?,
        owner_id: r.try_get(1)?,
        display_name: r.try_get(2)?,
        slug: r.try_get(3)?,
        location: r.try_get(4)?,
        platform: r.try_get(5)?,
        client_version: r.try_get(6)?,
        created_at: Timestamp::from_millis(r.try_get(7)?),
        last_seen_at: r.try_get::<_, Option<i64>>(8)?.map(Timestamp::from_millis),
        status,
        revoked_at: r.try_get::<_, Option<i64>>(10)?.map(Timestamp::from_millis),
        public_jwk: r.try_get(11)?,
        jkt: r.try_get(12)?,
    })
}

/// What a device to register is called and whose it is.
pub(crate) struct NewDevice<'a> {
    pub id: &'a str,
    pub owner_id: &'a str,
    pub name: &'a str,
    pub req: &'a DeviceRequest,
    pub cap: i64,
    /// How it came to be, for the audit entry (`device_login`, `enrollment_key`).
    pub via: &'a str,
}

/// Registers a device inside the caller's transaction, or returns the owner's active
/// device with the same key; refuses (changing nothing) at the device cap or when an
/// explicit slug is taken.
pub(crate) async fn create(tx: &Tx<'_>, n: &NewDevice<'_>, now: Timestamp) -> DbResult<Result<DeviceRecord, Refusal>> {
    // Serialises registrations for this owner across replicas until commit.
    let s = tx.prepare_cached("SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE").await?;
    tx.query_opt(&s, &[&n.owner_id]).await?;
    // The same machine (same key) logging in again is the same device, not a new one.
    if let Some(jkt) = &n.req.jkt {
        let s = tx
            .prepare_cached(&format!(
                "SELECT {COLS} FROM devices WHERE owner_id = $1 AND jkt = $2 AND status = 'active'
                 ORDER BY created_at DESC, id LIMIT 1"
            ))
            .await?;
        if let Some(r) = tx.query_opt(&s, &[&n.owner_id, jkt]).await? {
            return Ok(Ok(row(&r)?));
        }
    }
    let s = tx.prepare_cached("SELECT COUNT(*) FROM devices WHERE owner_id = $1 AND status = 'active'").await?;
    let active: i64 = tx.query_one(&s, &[&n.owner_id]).await?.try_get(0)?;
    if active >= n.cap {
        return Ok(Err(Refusal::Limit(n.cap)));
    }
    // Revoked devices keep their slugs: a slug names one device, ever.
    let s = tx.prepare_cached("SELECT slug FROM devices WHERE owner_id = $1").await?;
    let taken = tx
        .query(&s, &[&n.owner_id])
        .await?
        .iter()
        .map(|r| r.try_get::<_, String>(0))
        .collect::<Result<HashSet<_>, _>>()?;
    let slug = match &n.req.slug {
        Some(explicit) if taken.contains(explicit) => return Ok(Err(Refusal::SlugTaken(explicit.clone()))),
        Some(explicit) => explicit.clone(),
        None => Slug::for_new_device(n.name, n.id, &taken).to_string(),
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
    let s = tx
        .prepare_cached(
            "INSERT INTO devices (id, owner_id, display_name, slug, location, platform, client_version, created_at,
                status, public_jwk, jkt) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'active', $9, $10)",
        )
        .await?;
    tx.execute(
        &s,
        &[
            &device.id,
            &device.owner_id,
            &device.display_name,
            &device.slug,
            &device.location,
            &device.platform,
            &device.client_version,
            &now.as_millis(),
            &device.public_jwk,
            &device.jkt,
        ],
    )
    .await
    .map_err(conflict("a device with this ID"))?;
    record_location(tx, n.id, device.location.as_deref(), now).await?;
    audit::append(tx, &events::device_registered(&device, n.via), now).await?;
    Ok(Ok(device))
}

async fn record_location(tx: &Tx<'_>, id: &str, location: Option<&str>, now: Timestamp) -> DbResult<()> {
    let s = tx
        .prepare_cached("INSERT INTO device_locations (device_id, location, effective_at) VALUES ($1, $2, $3)")
        .await?;
    tx.execute(&s, &[&id, &location, &now.as_millis()]).await?;
    Ok(())
}

pub(crate) async fn list(c: &impl GenericClient, owner_id: &str) -> DbResult<Vec<DeviceRecord>> {
    let s = c
        .prepare_cached(&format!("SELECT {COLS} FROM devices WHERE owner_id = $1 ORDER BY created_at DESC, id"))
        .await?;
    c.query(&s, &[&owner_id]).await?.iter().map(row).collect()
}

pub(crate) async fn get(c: &impl GenericClient, id: &str) -> DbResult<Option<DeviceRecord>> {
    let s = c.prepare_cached(&format!("SELECT {COLS} FROM devices WHERE id = $1")).await?;
    c.query_opt(&s, &[&id]).await?.map(|r| row(&r)).transpose()
}

pub(crate) async fn rename(
    tx: &Tx<'_>,
    id: &str,
    owner_id: &str,
    name: &str,
    now: Timestamp,
) -> DbResult<Option<DeviceRecord>> {
    let s = tx
        .prepare_cached(&format!(
            "UPDATE devices SET display_name = $1 WHERE id = $2 AND owner_id = $3 RETURNING {COLS}"
        ))
        .await?;
    let Some(r) = tx.query_opt(&s, &[&name, &id, &owner_id]).await? else {
        return Ok(None);
    };
    let d = row(&r)?;
    audit::append(tx, &events::device_renamed(owner_id, id, name), now).await?;
    Ok(Some(d))
}

pub(crate) async fn relocate(
    tx: &Tx<'_>,
    id: &str,
    owner_id: &str,
    location: Option<String>,
    now: Timestamp,
) -> DbResult<Option<DeviceRecord>> {
    // The update holds the device's row until commit, so concurrent moves land in the history in turn.
    let s = tx
        .prepare_cached(&format!("UPDATE devices SET location = $1 WHERE id = $2 AND owner_id = $3 RETURNING {COLS}"))
        .await?;
    let Some(r) = tx.query_opt(&s, &[&location, &id, &owner_id]).await? else {
        return Ok(None);
    };
    let d = row(&r)?;
    record_location(tx, id, location.as_deref(), now).await?;
    audit::append(tx, &events::device_relocated(owner_id, id, location.as_deref()), now).await?;
    Ok(Some(d))
}

pub(crate) async fn history(c: &impl GenericClient, id: &str) -> DbResult<Vec<LocationChange>> {
    let s = c
        .prepare_cached(
            "SELECT location, effective_at FROM device_locations WHERE device_id = $1 ORDER BY effective_at, seq",
        )
        .await?;
    c.query(&s, &[&id])
        .await?
        .iter()
        .map(|r| Ok(LocationChange { location: r.try_get(0)?, effective_at: Timestamp::from_millis(r.try_get(1)?) }))
        .collect()
}

pub(crate) async fn revoke(
    tx: &Tx<'_>,
    id: &str,
    owner_id: Option<&str>,
    actor: &str,
    now: Timestamp,
) -> DbResult<RevokeDevice> {
    let owned = |d: &DeviceRecord| owner_id.is_none_or(|o| o == d.owner_id);
    if !get(tx, id).await?.is_some_and(|d| owned(&d)) {
        return Ok(RevokeDevice::NotFound);
    }
    // Families first, then the device: the order a rotation takes them in.
    tokens::lock_device_families(tx, id).await?;
    let s = tx.prepare_cached(&format!("SELECT {COLS} FROM devices WHERE id = $1 FOR UPDATE")).await?;
    let Some(r) = tx.query_opt(&s, &[&id]).await? else {
        return Ok(RevokeDevice::NotFound);
    };
    let mut d = row(&r)?;
    if d.status == DeviceStatus::Revoked {
        return Ok(RevokeDevice::AlreadyRevoked);
    }
    let s = tx.prepare_cached("UPDATE devices SET status = 'revoked', revoked_at = $1 WHERE id = $2").await?;
    tx.execute(&s, &[&now.as_millis(), &id]).await?;
    // A fresh statement sees every family committed before it, including ones that were
    // being started while this transaction waited for the device's row.
    let families = tokens::revoke_device_families(tx, id, now).await?;
    audit::append(tx, &events::device_revoked(actor, id, families), now).await?;
    d.status = DeviceStatus::Revoked;
    d.revoked_at = Some(now);
    Ok(RevokeDevice::Revoked(Box::new(d)))
}

/// Records that a device used its tokens.
pub(crate) async fn touch(tx: &Tx<'_>, id: &str, now: Timestamp) -> DbResult<()> {
    let s = tx.prepare_cached("UPDATE devices SET last_seen_at = $1 WHERE id = $2").await?;
    tx.execute(&s, &[&now.as_millis(), &id]).await?;
    Ok(())
}
