//! A device's channel (`GET /api/v1/channel`): Server-Sent Events, one JSON
//! [`ChannelEvent`] in each event's data. Keep-alive comments are skipped by
//! the parser; the position of the last message or session event is kept so
//! a dropped channel resumes where it stopped (`?after=`).

use crate::trusted::TrustedError;
use eventsource_stream::{EventStreamError, Eventsource};
use futures::{Stream, StreamExt, TryStreamExt};
use latchkey_proto::trust::ChannelEvent;
use std::pin::Pin;

type Events = Pin<Box<dyn Stream<Item = Result<eventsource_stream::Event, EventStreamError<String>>> + Send>>;

/// An open channel.
pub struct Channel {
    events: Events,
    last_id: i64,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Channel(after {})", self.last_id)
    }
}

impl Channel {
    /// A channel over any stream of body chunks (the HTTP response's, or a test's), resuming after `after`.
    pub fn from_stream<S, B, E>(chunks: S, after: i64) -> Self
    where
        S: Stream<Item = Result<B, E>> + Send + 'static,
        B: AsRef<[u8]> + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        let events = chunks.map_err(|e| e.to_string()).eventsource();
        Self { events: Box::pin(events), last_id: after }
    }

    /// The position of the last message or session event seen: pass it as `after` to resume.
    pub fn last_id(&self) -> i64 {
        self.last_id
    }

    /// The next event; `None` when the server ended the stream. An event that
    /// does not parse is an `Err` the caller may skip; the stream goes on.
    pub async fn next(&mut self) -> Option<Result<ChannelEvent, TrustedError>> {
        loop {
            let event = match self.events.next().await? {
                Ok(e) => e,
                Err(e) => return Some(Err(TrustedError::Channel(e.to_string()))),
            };
            match parse_event(&event.data) {
                Ok(None) => continue,
                Ok(Some(ev)) => {
                    if let ChannelEvent::Message { id, .. } | ChannelEvent::Session { id, .. } = &ev {
                        self.last_id = self.last_id.max(*id);
                    }
                    return Some(Ok(ev));
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// One event's data: a [`ChannelEvent`], or nothing when the data is empty.
pub fn parse_event(data: &str) -> Result<Option<ChannelEvent>, TrustedError> {
    if data.trim().is_empty() {
        return Ok(None);
    }
    serde_json::from_str(data)
        .map(Some)
        .map_err(|e| TrustedError::Channel(format!("an event that does not parse ({e}): {}", excerpt(data))))
}

fn excerpt(s: &str) -> String {
    s.chars().take(120).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn chunks(parts: &[&str]) -> Channel {
        let items: Vec<Result<Vec<u8>, std::io::Error>> = parts.iter().map(|p| Ok(p.as_bytes().to_vec())).collect();
        Channel::from_stream(futures::stream::iter(items), 0)
    }

    #[tokio::test]
    async fn events_split_across_chunks_and_keep_alives_are_skipped() {
        let mut ch = chunks(&[
            ": keep-alive\n\n",
            "event: ready\ndata: {\"type\":\"ready\",\"connection\":\"c1\"}\n\n",
            "data: {\"type\":\"message\",\"id\":5,\"session_id\":\"s\",",
            "\"sender\":\"b\",\"seq\":1,\"epoch\":1,\"body\":\"x\"}\r\n\r\n: ping\n\n",
            "data: {\"type\":\"session\",\"id\":6,\"session_id\":\"s\",\"event\":\"rekey_needed\",\"device\":\"c\",\"epoch\":2}\n\n",
            "data: {\"type\":\"gap\",\"oldest\":3}\n\n",
        ]);
        assert_eq!(ch.next().await.unwrap().unwrap(), ChannelEvent::Ready { connection: "c1".into() });
        match ch.next().await.unwrap().unwrap() {
            ChannelEvent::Message { id, sender, seq, .. } => assert_eq!((id, sender.as_str(), seq), (5, "b", 1)),
            other => panic!("{other:?}"),
        }
        assert_eq!(ch.last_id(), 5);
        match ch.next().await.unwrap().unwrap() {
            ChannelEvent::Session { event, device, epoch, .. } => {
                assert_eq!((event.as_str(), device.as_deref(), epoch), ("rekey_needed", Some("c"), 2))
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(ch.next().await.unwrap().unwrap(), ChannelEvent::Gap { oldest: 3 });
        assert_eq!(ch.last_id(), 6, "a gap does not move the resume point");
        assert!(ch.next().await.is_none(), "the stream ended");
    }

    #[tokio::test]
    async fn a_bad_event_is_reported_and_the_stream_goes_on() {
        let mut ch = chunks(&["data: {\"type\":\"nonsense\"}\n\n", "data: {\"type\":\"gap\",\"oldest\":1}\n\n"]);
        assert!(matches!(ch.next().await, Some(Err(TrustedError::Channel(_)))));
        assert_eq!(ch.next().await.unwrap().unwrap(), ChannelEvent::Gap { oldest: 1 });
    }

    #[test]
    fn empty_data_is_no_event() {
        assert_eq!(parse_event("").unwrap(), None);
        assert!(parse_event("{").is_err());
    }
}
