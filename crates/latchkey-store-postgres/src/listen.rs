//! Cross-replica wake-ups: one dedicated connection `LISTEN`s on the grants
//! channel and feeds every decided grant ID (and every decided or cancelled
//! QR pairing ID) into the local [`DecisionNotifier`].
//!
//! If the connection drops, the task logs a warning and reconnects with
//! backoff. Decisions committed while it was away are not replayed (NOTIFY
//! is not queued for absent listeners), so once listening again it wakes
//! every local waiter: each re-checks its grant, and any decided meanwhile
//! is answered at once instead of at the wait timeout.

use crate::db::{describe, pg_err, target, PgConfig};
use crate::txn::CHANNEL;
use futures::stream::{self, BoxStream, StreamExt};
use latchkey_store::{DecisionNotifier, StoreError, StoreResult};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, Client};

/// First pause before reconnecting; doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Probe an idle listener often: a silently dead one would only cost latency, but for everyone.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);

/// A connection that is listening, and the stream its notifications arrive on.
struct Listening {
    // Dropping the client would close the connection, so it is kept though never used again.
    _client: Client,
    messages: BoxStream<'static, Result<AsyncMessage, tokio_postgres::Error>>,
}

/// Opens a connection and subscribes it to the channel.
async fn subscribe(config: &PgConfig) -> StoreResult<Listening> {
    let (client, mut connection) = config.connect().await.map_err(|e| {
        StoreError::Unavailable(format!(
            "cannot open the PostgreSQL listener connection to {}: {}",
            target(&config.pg),
            describe(&e)
        ))
    })?;
    let mut messages = stream::poll_fn(move |cx| connection.poll_message(cx)).boxed();
    {
        // The connection only makes progress while polled, so drive it alongside LISTEN.
        let sql = format!("LISTEN {CHANNEL}");
        let listen = client.batch_execute(&sql);
        tokio::pin!(listen);
        loop {
            tokio::select! {
                done = &mut listen => {
                    done.map_err(|e| pg_err(&e))?;
                    break;
                }
                message = messages.next() => match message {
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(pg_err(&e)),
                    // Closed: LISTEN will fail with the reason next.
                    None => {
                        (&mut listen).await.map_err(|e| pg_err(&e))?;
                        return Err(StoreError::Unavailable("the listener connection closed".into()));
                    }
                },
            }
        }
    }
    Ok(Listening { _client: client, messages })
}

/// Forwards notifications until the connection ends; returns why it ended.
async fn forward(mut l: Listening, notifier: &DecisionNotifier) -> String {
    while let Some(message) = l.messages.next().await {
        match message {
            Ok(AsyncMessage::Notification(n)) if n.channel() == CHANNEL => {
                notifier.notify(n.payload());
            }
            Ok(AsyncMessage::Notice(notice)) => {
                tracing::debug!(%notice, "PostgreSQL notice on the listener connection");
            }
            Ok(_) => {}
            Err(e) => return pg_err(&e).to_string(),
        }
    }
    "the connection closed".to_string()
}

/// Subscribes once (so `connect` fails loudly if it cannot), then keeps
/// listening in the background, reconnecting as needed.
pub(crate) async fn start(mut config: PgConfig, notifier: DecisionNotifier) -> StoreResult<JoinHandle<()>> {
    config.pg.keepalives(true).keepalives_idle(KEEPALIVE_IDLE);
    let first = subscribe(&config).await?;
    Ok(tokio::spawn(run(config, notifier, first)))
}

async fn run(config: PgConfig, notifier: DecisionNotifier, first: Listening) {
    let mut listening = first;
    loop {
        let why = forward(listening, &notifier).await;
        tracing::warn!(reason = %why, "lost the PostgreSQL grant listener; reconnecting");
        let mut backoff = MIN_BACKOFF;
        listening = loop {
            tokio::time::sleep(backoff).await;
            match subscribe(&config).await {
                Ok(l) => {
                    tracing::info!("PostgreSQL grant listener reconnected");
                    notifier.notify_all();
                    break l;
                }
                Err(e) => {
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    tracing::warn!(error = %e, retry_in = ?backoff, "cannot reconnect the PostgreSQL grant listener");
                }
            }
        };
    }
}
