//! Wake-ups for requests waiting on a decision: a device on the instant-approval
//! endpoint (keyed by grant ID) or a desktop on a QR sign-in (keyed by pairing ID).
//!
//! Within one process this is a map from subject ID to a broadcast channel.
//! A backend that spans processes (PostgreSQL's LISTEN/NOTIFY) feeds remote
//! decisions into the same map, so waiters never care where a decision came from.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// Fan-out of "grant or pairing X was decided" to the requests waiting on X.
#[derive(Clone, Default)]
pub struct DecisionNotifier {
    waiters: Arc<Mutex<HashMap<String, broadcast::Sender<()>>>>,
}

/// A registration for one grant or pairing; dropping it cleans up when it was the last waiter.
pub struct DecisionWait {
    notifier: DecisionNotifier,
    subject_id: String,
    rx: broadcast::Receiver<()>,
}

impl DecisionNotifier {
    /// Starts listening for decisions on `subject_id`. Register before checking the
    /// subject's state, so a decision landing in between is not missed.
    pub fn subscribe(&self, subject_id: &str) -> DecisionWait {
        let mut map = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        let rx = map.entry(subject_id.to_string()).or_insert_with(|| broadcast::channel(1).0).subscribe();
        DecisionWait { notifier: self.clone(), subject_id: subject_id.to_string(), rx }
    }

    /// Like [`DecisionNotifier::subscribe`], unless `cap` requests already wait on
    /// `subject_id` here (checked and taken under one lock): then `None`.
    pub fn subscribe_capped(&self, subject_id: &str, cap: usize) -> Option<DecisionWait> {
        let mut map = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        let tx = map.entry(subject_id.to_string()).or_insert_with(|| broadcast::channel(1).0);
        if tx.receiver_count() >= cap {
            return None;
        }
        let rx = tx.subscribe();
        Some(DecisionWait { notifier: self.clone(), subject_id: subject_id.to_string(), rx })
    }

    /// Wakes every local waiter on `subject_id`.
    pub fn notify(&self, subject_id: &str) {
        let map = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = map.get(subject_id) {
            let _ = tx.send(());
        }
    }

    /// Wakes every local waiter, so each re-checks its grant (after missed notifications).
    pub fn notify_all(&self) {
        let map = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        for tx in map.values() {
            let _ = tx.send(());
        }
    }

    /// How many grants and pairings have waiters right now.
    pub fn waiting_subjects(&self) -> usize {
        self.waiters.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

impl DecisionWait {
    /// Resolves when the subject is decided (or its channel closes).
    pub async fn changed(&mut self) {
        let _ = self.rx.recv().await;
    }
}

impl Drop for DecisionWait {
    fn drop(&mut self) {
        let mut map = self.notifier.waiters.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = map.get(&self.subject_id) {
            // Our own receiver is still alive during drop, so 1 means "only us".
            if tx.receiver_count() <= 1 {
                map.remove(&self.subject_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn wakes_subscribers_and_cleans_up() {
        let n = DecisionNotifier::default();
        let mut a = n.subscribe("g1");
        let mut b = n.subscribe("g1");
        n.notify("g1");
        tokio::time::timeout(Duration::from_secs(1), a.changed()).await.ok();
        tokio::time::timeout(Duration::from_secs(1), b.changed()).await.ok();
        assert_eq!(n.waiting_subjects(), 1);
        drop(a);
        assert_eq!(n.waiting_subjects(), 1);
        drop(b);
        assert_eq!(n.waiting_subjects(), 0);
    }

    #[tokio::test]
    async fn notification_for_another_grant_does_not_wake() {
        let n = DecisionNotifier::default();
        let mut a = n.subscribe("g1");
        n.notify("g2");
        let woke = tokio::time::timeout(Duration::from_millis(50), a.changed()).await;
        assert!(woke.is_err());
    }
}
