//! Enrollment keys in PostgreSQL: for machines that can never open a browser.
//! Using a key locks its row, so of any number of concurrent uses of a
//! single-use key, on any replica, exactly one enrolls and the rest hear it was used.

use crate::audit;
use crate::db::{conflict, DbResult, Tx};
use crate::devices::{self, NewDevice, Refusal};
use crate::tokens::{self, NewFamily};
use deadpool_postgres::GenericClient;
use latchkey_domain::device::EnrollmentKeyState;
use latchkey_domain::Timestamp;
use latchkey_store::*;

pub(crate) async fn create(tx: &Tx<'_>, k: NewEnrollmentKey, now: Timestamp) -> DbResult<()> {
    let s = tx
        .prepare_cached(
            "INSERT INTO enrollment_keys (id, key_hash, owner_id, reusable, expires_at, tag, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .await?;
    tx.execute(
        &s,
        &[
            &k.id,
            &k.key_hash.as_str(),
            &k.owner_id,
            &k.reusable,
            &k.expires_at.as_millis(),
            &k.tag,
            &k.created_by,
            &now.as_millis(),
        ],
    )
    .await
    .map_err(conflict("an enrollment key with this ID"))?;
    audit::append(tx, &events::enrollment_key_created(&k), now).await
}

pub(crate) async fn list(c: &impl GenericClient, owner_id: Option<&str>) -> DbResult<Vec<EnrollmentKeyRecord>> {
    let s = c
        .prepare_cached(
            "SELECT k.id, k.owner_id, u.username, k.reusable, k.expires_at, k.tag, k.created_by, k.created_at,
                k.revoked_at, k.uses
             FROM enrollment_keys k JOIN users u ON u.id = k.owner_id
             WHERE $1::TEXT IS NULL OR k.owner_id = $1 ORDER BY k.created_at DESC, k.id",
        )
        .await?;
    c.query(&s, &[&owner_id])
        .await?
        .iter()
        .map(|r| {
            Ok(EnrollmentKeyRecord {
                id: r.try_get(0)?,
                owner_id: r.try_get(1)?,
                owner_name: r.try_get(2)?,
                reusable: r.try_get(3)?,
                expires_at: Timestamp::from_millis(r.try_get(4)?),
                tag: r.try_get(5)?,
                created_by: r.try_get(6)?,
                created_at: Timestamp::from_millis(r.try_get(7)?),
                revoked_at: r.try_get::<_, Option<i64>>(8)?.map(Timestamp::from_millis),
                uses: r.try_get(9)?,
            })
        })
        .collect()
}

pub(crate) async fn revoke(
    tx: &Tx<'_>,
    id: &str,
    owner_id: Option<&str>,
    actor: &str,
    now: Timestamp,
) -> DbResult<bool> {
    let s = tx
        .prepare_cached(
            "UPDATE enrollment_keys SET revoked_at = $1
             WHERE id = $2 AND revoked_at IS NULL AND ($3::TEXT IS NULL OR owner_id = $3)",
        )
        .await?;
    if tx.execute(&s, &[&now.as_millis(), &id, &owner_id]).await? == 0 {
        return Ok(false);
    }
    audit::append(tx, &events::enrollment_key_revoked(actor, id), now).await?;
    Ok(true)
}

pub(crate) async fn enroll(tx: &Tx<'_>, e: Enroll, now: Timestamp) -> DbResult<Enrolled> {
    // Held until commit: a concurrent use of this key waits here, then reads the count this one wrote.
    let s = tx
        .prepare_cached(
            "SELECT id, owner_id, reusable, uses, expires_at, revoked_at IS NOT NULL
             FROM enrollment_keys WHERE key_hash = $1 FOR UPDATE",
        )
        .await?;
    let Some(r) = tx.query_opt(&s, &[&e.key_hash.as_str()]).await? else {
        return Ok(Enrolled::Unknown);
    };
    let key_id: String = r.try_get(0)?;
    let owner_id: String = r.try_get(1)?;
    let state = EnrollmentKeyState {
        reusable: r.try_get(2)?,
        uses: r.try_get(3)?,
        expires_at: Timestamp::from_millis(r.try_get(4)?),
        revoked: r.try_get(5)?,
    };
    if let Err(refusal) = state.check(now) {
        return Ok(Enrolled::Refused(refusal));
    }
    let new = NewDevice {
        id: &e.device_id,
        owner_id: &owner_id,
        name: &e.name,
        req: &e.device,
        cap: e.device_cap,
        via: "enrollment_key",
    };
    let device = match devices::create(tx, &new, now).await? {
        Ok(d) => d,
        Err(Refusal::Limit(cap)) => return Ok(Enrolled::DeviceLimit(cap)),
        Err(Refusal::SlugTaken(s)) => return Ok(Enrolled::SlugTaken(s)),
    };
    // The key's row is locked, so this cannot miss; the condition is a second line of defence.
    let s = tx
        .prepare_cached("UPDATE enrollment_keys SET uses = uses + 1 WHERE id = $1 AND (reusable OR uses = 0)")
        .await?;
    if tx.execute(&s, &[&key_id]).await? != 1 {
        return Err(StoreError::Conflict("a concurrent use of this single-use enrollment key").into());
    }
    audit::append(tx, &events::enrollment_key_used(&key_id, &device.id), now).await?;
    let family = NewFamily {
        client_id: &e.client_id,
        user_id: &owner_id,
        scope: &e.scope,
        auth_time: now,
        device_id: Some(&device.id),
        jkt: e.device.jkt.as_deref(),
    };
    let subject = tokens::start_family(tx, &e.mint, &family, now).await?;
    Ok(Enrolled::Tokens { subject, device: Box::new(device) })
}
