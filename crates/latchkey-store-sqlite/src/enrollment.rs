//! Enrollment keys in SQLite: for machines that can never open a browser.

use crate::devices::{self, Refusal};
use crate::{audit, db_err, is_unique_violation, tokens};
use latchkey_domain::device::EnrollmentKeyState;
use latchkey_domain::Timestamp;
use latchkey_store::*;
use rusqlite::{params, Connection, OptionalExtension};

pub(crate) fn create(c: &Connection, k: NewEnrollmentKey, now: Timestamp) -> StoreResult<()> {
    c.prepare_cached(
        "INSERT INTO enrollment_keys (id, key_hash, owner_id, reusable, expires_at, tag, created_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .and_then(|mut s| {
        s.execute(params![
            k.id,
            k.key_hash.as_str(),
            k.owner_id,
            k.reusable,
            k.expires_at.as_millis(),
            k.tag,
            k.created_by,
            now.as_millis()
        ])
    })
    .map_err(|e| {
        if is_unique_violation(&e) {
            StoreError::Conflict("an enrollment key with this ID")
        } else {
            db_err(e)
        }
    })?;
    audit::append(c, &events::enrollment_key_created(&k), now)
}

pub(crate) fn list(c: &Connection, owner_id: Option<&str>) -> StoreResult<Vec<EnrollmentKeyRecord>> {
    let mut s = c
        .prepare_cached(
            "SELECT k.id, k.owner_id, u.username, k.reusable, k.expires_at, k.tag, k.created_by, k.created_at,
                k.revoked_at, k.uses
             FROM enrollment_keys k JOIN users u ON u.id = k.owner_id
             WHERE ?1 IS NULL OR k.owner_id = ?1 ORDER BY k.created_at DESC, k.id",
        )
        .map_err(db_err)?;
    let rows = s
        .query_map([owner_id], |r| {
            Ok(EnrollmentKeyRecord {
                id: r.get(0)?,
                owner_id: r.get(1)?,
                owner_name: r.get(2)?,
                reusable: r.get(3)?,
                expires_at: Timestamp::from_millis(r.get(4)?),
                tag: r.get(5)?,
                created_by: r.get(6)?,
                created_at: Timestamp::from_millis(r.get(7)?),
                revoked_at: r.get::<_, Option<i64>>(8)?.map(Timestamp::from_millis),
                uses: r.get(9)?,
            })
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
) -> StoreResult<bool> {
    let changed = c
        .prepare_cached(
            "UPDATE enrollment_keys SET revoked_at = ?1
             WHERE id = ?2 AND revoked_at IS NULL AND (?3 IS NULL OR owner_id = ?3)",
        )
        .and_then(|mut s| s.execute(params![now.as_millis(), id, owner_id]))
        .map_err(db_err)?;
    if changed == 0 {
        return Ok(false);
    }
    audit::append(c, &events::enrollment_key_revoked(actor, id), now)?;
    Ok(true)
}

pub(crate) fn enroll(c: &Connection, e: Enroll, now: Timestamp) -> StoreResult<Enrolled> {
    let key = c
        .prepare_cached(
            "SELECT id, owner_id, reusable, uses, expires_at, revoked_at IS NOT NULL FROM enrollment_keys WHERE key_hash = ?1",
        )
        .and_then(|mut s| {
            s.query_row([e.key_hash.as_str()], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    EnrollmentKeyState {
                        reusable: r.get(2)?,
                        uses: r.get(3)?,
                        expires_at: Timestamp::from_millis(r.get(4)?),
                        revoked: r.get(5)?,
                    },
                ))
            })
            .optional()
        })
        .map_err(db_err)?;
    let Some((key_id, owner_id, state)) = key else {
        return Ok(Enrolled::Unknown);
    };
    if let Err(refusal) = state.check(now) {
        return Ok(Enrolled::Refused(refusal));
    }
    let device =
        match devices::create(c, &e.device_id, &owner_id, &e.name, &e.device, e.device_cap, now, "enrollment_key")? {
            Ok(d) => d,
            Err(Refusal::Limit(cap)) => return Ok(Enrolled::DeviceLimit(cap)),
            Err(Refusal::SlugTaken(s)) => return Ok(Enrolled::SlugTaken(s)),
        };
    // Conditional on the state just checked, so two racing uses of a single-use key cannot both win.
    let used = c
        .prepare_cached("UPDATE enrollment_keys SET uses = uses + 1 WHERE id = ?1 AND (reusable OR uses = 0)")
        .and_then(|mut s| s.execute([&key_id]))
        .map_err(db_err)?;
    if used != 1 {
        return Err(StoreError::Conflict("a concurrent use of this single-use enrollment key"));
    }
    audit::append(c, &events::enrollment_key_used(&key_id, &device.id), now)?;
    let family = tokens::NewFamily {
        client_id: &e.client_id,
        user_id: &owner_id,
        scope: &e.scope,
        auth_time: now,
        device_id: Some(&device.id),
        jkt: e.device.jkt.as_deref(),
    };
    let subject = tokens::start_family(c, &e.mint, &family, now)?;
    Ok(Enrolled::Tokens { subject, device: Box::new(device) })
}
