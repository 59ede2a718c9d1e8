//! `GET /api/v1/channel`: a device's channel, as Server-Sent Events.
//!
//! While a device holds it, the device is online (a row in the store, seen
//! every [`BEAT`], so every replica counts it). The channel delivers the
//! device's invitations and what it may see of its user's relay log, in log
//! order, resuming after `?after=`. It ends when the device's token stops
//! working (revoked, signed out), when the client goes away, or at shutdown.

use super::trust::calling_device;
use crate::credential::{AnyApp, Caller, Credential};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ClientIp, Query};
use crate::state::{now, AppState};
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use latchkey_proto::trust::ChannelEvent;
use latchkey_store::{ChannelBatch, DeviceId, FamilyId, LogEntry, UserId};
use std::collections::HashSet;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::mpsc;

/// How often an open channel is marked seen (well inside the store's presence lease).
const BEAT: Duration = Duration::from_secs(15);
/// Log entries read per round.
const BATCH: i64 = 200;

/// Where to resume.
#[derive(Debug, serde::Deserialize)]
pub struct ChannelQuery {
    /// The last log position the device has seen (0: from what is kept).
    #[serde(default)]
    after: i64,
}

fn to_event(e: LogEntry) -> ChannelEvent {
    match (e.message, e.event) {
        (Some((sender, seq, body)), _) => {
            ChannelEvent::Message { id: e.pos, session_id: e.session_id, sender, seq, epoch: e.epoch, body }
        }
        (None, Some((event, device))) => {
            ChannelEvent::Session { id: e.pos, session_id: e.session_id, event, device, epoch: e.epoch }
        }
        (None, None) => ChannelEvent::Session {
            id: e.pos,
            session_id: e.session_id,
            event: "unknown".into(),
            device: None,
            epoch: e.epoch,
        },
    }
}

/// `GET /api/v1/channel?after=N`.
pub async fn channel(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    who: Caller<AnyApp>,
    Query(q): Query<ChannelQuery>,
) -> ApiResult<Sse<impl futures::Stream<Item = Result<Event, Infallible>>>> {
    let device = calling_device(&who)?.to_string();
    let Credential::Device { claims } = &who.credential else {
        return Err(ApiError::Internal("a device credential without claims".into()));
    };
    let family = claims.sid.clone();
    let user = who.user.id.clone();
    let channel_id = uuid::Uuid::new_v4().to_string();
    // Held by the feed task, so it is given back whenever the channel ends.
    let slot = crate::long_poll::hold(&state, ip)?;
    // Subscribed before the channel opens, so nothing committed after this is missed.
    let wait = state.store.notifier().subscribe(&latchkey_store::flows::trusted_sessions::channel_subject(&user));
    state.store.open_channel(UserId(&user), DeviceId(&device), &channel_id, now()).await?;
    let (tx, rx) = mpsc::channel::<Event>(64);
    let feed = Feed { state, user, device, family, channel_id, cursor: q.after.max(0), tx, wait, _slot: slot };
    tokio::spawn(feed.run());
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(BEAT)))
}

/// Why a channel's wait ended.
enum Woke {
    /// Something changed in the user's sessions.
    Changed,
    /// Time to mark the channel seen.
    Beat,
    /// The client went away, or the server is stopping.
    Gone,
}

/// The task behind one channel.
struct Feed {
    state: AppState,
    user: String,
    device: String,
    family: String,
    channel_id: String,
    cursor: i64,
    tx: mpsc::Sender<Event>,
    wait: latchkey_store::DecisionWait,
    /// This channel's place among its network's waiters, given back when the task ends.
    _slot: crate::long_poll::WaiterSlot,
}

impl Feed {
    async fn run(mut self) {
        if let Err(e) = self.serve().await {
            e.log();
        }
        if let Err(e) = self.state.store.close_channel(&self.channel_id).await {
            tracing::warn!(error = %e, "could not close a device channel; it lapses with its lease");
        }
    }

    async fn send(&self, e: ChannelEvent) -> bool {
        match Event::default().json_data(&e) {
            Ok(ev) => self.tx.send(ev).await.is_ok(),
            Err(_) => true,
        }
    }

    async fn serve(&mut self) -> ApiResult<()> {
        if !self.send(ChannelEvent::Ready { connection: self.channel_id.clone() }).await {
            return Ok(());
        }
        let mut sent_invitations: HashSet<String> = HashSet::new();
        let mut gap_told = 0;
        let mut shutdown = self.state.shutting_down.clone();
        let mut beat = tokio::time::interval(BEAT);
        beat.tick().await;
        loop {
            // The token must still work: a revoked device or sign-in loses its channel at once.
            if !self.state.store.family_active(FamilyId(&self.family), now()).await? {
                return Ok(());
            }
            let batch = self
                .state
                .store
                .channel_batch(UserId(&self.user), DeviceId(&self.device), self.cursor, BATCH, now())
                .await?;
            let full = batch.entries.len() as i64 >= BATCH;
            let seen = batch.seen_up_to;
            if !self.deliver(batch, &mut sent_invitations, &mut gap_told).await {
                return Ok(());
            }
            // Past what this device may not see, too, so the next wake reads only what is new.
            self.cursor = self.cursor.max(seen);
            if full {
                continue;
            }
            let woke = tokio::select! {
                _ = self.wait.changed() => Woke::Changed,
                _ = beat.tick() => Woke::Beat,
                _ = self.tx.closed() => Woke::Gone,
                _ = shutdown.wait_for(|s| *s) => Woke::Gone,
            };
            match woke {
                Woke::Changed => {}
                Woke::Beat => self.state.store.touch_channel(&self.channel_id, now()).await?,
                Woke::Gone => return Ok(()),
            }
        }
    }

    /// Sends a batch; false when the client has gone.
    async fn deliver(&mut self, batch: ChannelBatch, sent: &mut HashSet<String>, gap_told: &mut i64) -> bool {
        // Each drop is told once per channel.
        if let Some(oldest) = batch.gap.filter(|o| *o > *gap_told) {
            *gap_told = oldest;
            if !self.send(ChannelEvent::Gap { oldest }).await {
                return false;
            }
        }
        for inv in batch.invitations {
            if sent.insert(inv.invitation.nonce.clone())
                && !self.send(ChannelEvent::Invitation { invitation: Box::new(inv) }).await
            {
                return false;
            }
        }
        for e in batch.entries {
            self.cursor = self.cursor.max(e.pos);
            if !self.send(to_event(e)).await {
                return false;
            }
        }
        true
    }
}
