//! Multi-machine sync: declaring event kinds, ingesting a device's captures
//! (each logical event stored once), and pulling a user's stream.
//!
//! The rules are `latchkey_domain::events`; this file executes them. A batch
//! holds the user's stream head for its whole transaction, so concurrent
//! batches of one user take turns and every change gets the next `seq`.

use crate::events as audit_events;
use crate::records::*;
use crate::txn::{NewEvent, Txn};
use latchkey_domain::events::{
    event_id, plan_declaration, plan_interval, Declaration, Interval, IntervalPlan, MergePolicy, Observers,
};
use latchkey_domain::Timestamp;
use std::collections::HashSet;

/// Declares an app's event kind, or confirms it. A kind's identity never
/// changes once declared (its events' IDs depend on it); its retention may.
pub async fn declare_kind<T: Txn>(
    tx: &T,
    kind: &EventKindRecord,
    actor: &str,
    now: Timestamp,
) -> Result<DeclaredKind, T::Error> {
    let existing = tx.event_kind(&kind.client_id, kind.spec.name.as_str(), true).await?;
    let plan =
        plan_declaration(existing.as_ref().map(|e| (&e.spec, e.retention_secs)), &kind.spec, kind.retention_secs);
    match (plan, existing) {
        (Declaration::Create, _) | (_, None) => {
            tx.insert_event_kind(kind, now).await?;
            tx.append_audit(&audit_events::event_kind_declared(kind, actor), now).await?;
            Ok(DeclaredKind::Created(kind.clone()))
        }
        (Declaration::Conflict, Some(existing)) => Ok(DeclaredKind::Conflict(existing)),
        (Declaration::Unchanged, Some(existing)) => Ok(DeclaredKind::Unchanged(existing)),
        (Declaration::ChangeRetention, Some(existing)) => {
            tx.set_event_kind_retention(&kind.client_id, kind.spec.name.as_str(), kind.retention_secs).await?;
            tx.append_audit(&audit_events::event_kind_declared(kind, actor), now).await?;
            Ok(DeclaredKind::Updated(EventKindRecord { retention_secs: kind.retention_secs, ..existing }))
        }
    }
}

/// The next number in the user's stream.
struct Head {
    seq: i64,
    changed: bool,
}

impl Head {
    /// The next number, for a change being made.
    fn next(&mut self) -> i64 {
        self.changed = true;
        self.reserve()
    }

    /// The next number, for a change that may not happen (an insert that
    /// finds its ID taken); an unused number is a gap, which no cursor minds.
    fn reserve(&mut self) -> i64 {
        self.seq += 1;
        self.seq
    }
}

/// Stores a device's captures for `user_id`, each on its own: created, a
/// duplicate of a stored event, or merged with the interval events it touches.
/// Announces the user's stream if anything changed.
pub async fn ingest<T: Txn>(tx: &T, batch: &IngestBatch, now: Timestamp) -> Result<Vec<Ingested>, T::Error> {
    let user = batch.user_id.as_str();
    tx.ensure_event_head(user).await?;
    let mut head = Head { seq: tx.event_head(user, true).await?, changed: false };
    let mut inserted = insert_exact(tx, batch, &mut head, now).await?;
    let mut out = Vec::with_capacity(batch.captures.len());
    for c in &batch.captures {
        let result = match c.merge {
            MergePolicy::Exact => exact(tx, batch, c, &mut inserted, &mut head, now).await?,
            MergePolicy::Interval => interval(tx, batch, c, &mut head, now).await?,
        };
        out.push(result);
    }
    if head.changed {
        tx.set_event_head(user, head.seq).await?;
        tx.announce_decided(&stream_subject(user)).await?;
    }
    Ok(out)
}

/// The wake-up subject of a user's event stream.
pub fn stream_subject(user_id: &str) -> String {
    format!("events:{user_id}")
}

fn new_event<'a>(
    batch: &'a IngestBatch,
    c: &'a PreparedCapture,
    id: &'a str,
    interval: Option<Interval>,
    observers: &'a Observers,
) -> NewEvent<'a> {
    NewEvent {
        id,
        user_id: &batch.user_id,
        client_id: &batch.client_id,
        kind: &c.kind,
        series: &c.series,
        identity: &c.identity,
        interval,
        observers,
    }
}

/// A stored event's observers; it must exist (its ID was just found taken).
async fn observers_of<T: Txn>(tx: &T, id: &str) -> Result<Observers, T::Error> {
    match tx.event_observers(id).await? {
        Some(o) => Ok(o),
        None => Err(crate::StoreError::Corrupt(format!("event {id} is taken but cannot be read")).into()),
    }
}

/// Inserts the batch's exact events whose IDs are not stored yet, all at once,
/// each at its place in the stream in batch order; the IDs inserted.
async fn insert_exact<T: Txn>(
    tx: &T,
    batch: &IngestBatch,
    head: &mut Head,
    now: Timestamp,
) -> Result<HashSet<String>, T::Error> {
    let observers = Observers::first(&batch.device_id, now);
    let mut in_batch = HashSet::new();
    let rows: Vec<(NewEvent<'_>, i64)> = batch
        .captures
        .iter()
        .filter(|c| c.merge == MergePolicy::Exact && in_batch.insert(c.series.as_str()))
        .map(|c| (new_event(batch, c, &c.series, None, &observers), head.reserve()))
        .collect();
    let inserted: HashSet<String> = tx.insert_events(&rows, now).await?.into_iter().collect();
    head.changed |= !inserted.is_empty();
    Ok(inserted)
}

async fn exact<T: Txn>(
    tx: &T,
    batch: &IngestBatch,
    c: &PreparedCapture,
    inserted: &mut HashSet<String>,
    head: &mut Head,
    now: Timestamp,
) -> Result<Ingested, T::Error> {
    let id = c.series.as_str();
    let device = batch.device_id.as_str();
    // Its first capture in the batch, if new, was inserted with the others.
    if inserted.remove(id) {
        return Ok(Ingested::Created(id.to_string()));
    }
    // The observers live in the event's own row: a second device costs one
    // update of that row, and a repeat from the same device costs a read.
    let mut observers = observers_of(tx, id).await?;
    if observers.observe(device, now) {
        tx.set_event_observers(id, &observers, head.next()).await?;
    }
    Ok(Ingested::Duplicate(id.to_string()))
}

async fn interval<T: Txn>(
    tx: &T,
    batch: &IngestBatch,
    c: &PreparedCapture,
    head: &mut Head,
    now: Timestamp,
) -> Result<Ingested, T::Error> {
    let Some(capture) = c.interval else {
        return Err(
            crate::StoreError::Corrupt(format!("interval capture of kind {} without an interval", c.kind)).into()
        );
    };
    let existing = tx.series_events(&c.series).await?;
    let intervals: Vec<Interval> = existing.iter().map(|(_, i)| *i).collect();
    let device = batch.device_id.as_str();
    match plan_interval(&intervals, capture) {
        IntervalPlan::Within(i) => {
            let id = existing[i].0.as_str();
            let mut observers = observers_of(tx, id).await?;
            let observed = observers.observe(device, now);
            let part = tx.add_part(id, device, capture).await?;
            if observed {
                tx.set_event_observers(id, &observers, head.next()).await?;
            } else if part {
                tx.set_event_seq(id, head.next()).await?;
            }
            Ok(Ingested::Duplicate(id.to_string()))
        }
        IntervalPlan::New(iv) => {
            let id = event_id(&c.series, Some(iv), c.precision);
            let observers = Observers::first(device, now);
            if !tx.insert_event(&new_event(batch, c, &id, Some(iv), &observers), head.next(), now).await? {
                return Err(crate::StoreError::Corrupt(format!("interval event {id} exists but is not live")).into());
            }
            tx.add_part(&id, device, capture).await?;
            Ok(Ingested::Created(id))
        }
        IntervalPlan::Merge { absorbed, merged } => {
            let id = event_id(&c.series, Some(merged), c.precision);
            // The union keeps the ID of an absorbed event that starts where it
            // does, and every observer of every event it absorbs.
            let mut observers = Observers::first(device, now);
            for &i in &absorbed {
                observers.absorb(&observers_of(tx, &existing[i].0).await?);
            }
            if absorbed.iter().any(|&i| existing[i].0 == id) {
                tx.set_event_interval(&id, merged, &observers, head.next()).await?;
            } else if !tx.insert_event(&new_event(batch, c, &id, Some(merged), &observers), head.next(), now).await? {
                return Err(crate::StoreError::Corrupt(format!("interval event {id} exists but is not live")).into());
            }
            for &i in &absorbed {
                let old = existing[i].0.as_str();
                if old != id {
                    tx.move_parts(old, &id).await?;
                    tx.set_merged_into(old, &id, head.next()).await?;
                }
            }
            tx.add_part(&id, device, capture).await?;
            Ok(Ingested::Merged(id))
        }
    }
}

/// The user's stream of one app's events after `after`, at most `limit`, with their observers and parts.
pub async fn pull<T: Txn>(tx: &T, user_id: &str, client_id: &str, after: i64, limit: i64) -> Result<Pulled, T::Error> {
    let mut events = tx.events_after(user_id, client_id, after, limit).await?;
    let Some(last) = events.last().map(|e| e.seq) else {
        return Ok(Pulled { events, cursor: after });
    };
    let parts = tx.parts_between(user_id, after, last).await?;
    let index: std::collections::HashMap<String, usize> =
        events.iter().enumerate().map(|(i, e)| (e.id.clone(), i)).collect();
    for (event_id, p) in parts {
        if let Some(&i) = index.get(&event_id) {
            events[i].parts.push(p);
        }
    }
    Ok(Pulled { events, cursor: last })
}
