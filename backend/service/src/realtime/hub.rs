//! The local fan-out: one bounded broadcast channel per connected user, which every socket
//! of that user reads. A socket that falls behind by the channel's capacity is told it
//! lagged and closes itself (`socket`): memory per user stays bounded, whatever a client does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::domain::UserId;
use crate::domain::live::LiveChange;
use crate::ports::Fanout;
use crate::telemetry::metric::{self, PostOutcome};

pub struct LocalHub {
    users: Mutex<HashMap<UserId, broadcast::Sender<Arc<LiveChange>>>>,
    capacity: usize,
}

impl LocalHub {
    /// `capacity`: changes a socket may fall behind by before it is closed.
    pub fn new(capacity: usize) -> Self {
        Self { users: Mutex::new(HashMap::new()), capacity: capacity.max(1) }
    }

    /// The changes of `user` from now on.
    pub fn subscribe(&self, user: &UserId) -> broadcast::Receiver<Arc<LiveChange>> {
        let mut users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        users.entry(user.clone()).or_insert_with(|| broadcast::channel(self.capacity).0).subscribe()
    }
}

#[async_trait]
impl Fanout for LocalHub {
    async fn deliver(&self, user: &UserId, changes: &[LiveChange]) {
        let mut users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(sender) = users.get(user) else { return };
        for change in changes {
            match sender.send(Arc::new(change.clone())) {
                Ok(receivers) => metric::realtime_posts(PostOutcome::Delivered, receivers),
                // Nobody of this user is connected any more: forget the channel.
                Err(_) => {
                    users.remove(user);
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::domain::NodeId;
    use crate::domain::live::Subject;

    fn change() -> LiveChange {
        LiveChange {
            kind: "node.created".into(),
            event_id: uuid::Uuid::now_v7(),
            subject: Subject::Node { node_id: NodeId::generate() },
            version: 1,
            at: Utc::now(),
            data: serde_json::json!({}),
        }
    }

    #[tokio::test]
    async fn each_user_receives_only_their_own_changes() {
        let hub = LocalHub::new(8);
        let (alice, bob) = (UserId::parse("alice").unwrap(), UserId::parse("bob").unwrap());
        let (mut to_alice, mut to_bob) = (hub.subscribe(&alice), hub.subscribe(&bob));
        let sent = change();
        hub.deliver(&alice, std::slice::from_ref(&sent)).await;
        assert_eq!(*to_alice.recv().await.unwrap(), sent);
        assert!(to_bob.try_recv().is_err());
    }

    #[tokio::test]
    async fn a_reader_that_falls_behind_by_the_capacity_is_told_it_lagged() {
        let hub = LocalHub::new(2);
        let alice = UserId::parse("alice").unwrap();
        let mut slow = hub.subscribe(&alice);
        hub.deliver(&alice, &[change(), change(), change()]).await;
        assert!(matches!(slow.recv().await, Err(broadcast::error::RecvError::Lagged(1))));
    }

    #[tokio::test]
    async fn a_user_nobody_listens_to_any_more_is_forgotten() {
        let hub = LocalHub::new(2);
        let alice = UserId::parse("alice").unwrap();
        drop(hub.subscribe(&alice));
        hub.deliver(&alice, &[change()]).await;
        assert!(hub.users.lock().unwrap().is_empty());
    }
}
