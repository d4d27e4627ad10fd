//! Domain events into the change log and out to the clients: what the broadcaster function
//! does with each batch of its queue, and what `brain2 serve --workers` does with the same
//! queue locally.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
use chrono::Utc;

use super::protocol::live_event_from_bus;
use crate::adapters::aws::LazyClient;
use crate::domain::UserId;
use crate::domain::live::LiveEvent;
use crate::ports::{ChangeLog, Fanout, StoreError};
use crate::telemetry::metric;

/// How long one receive waits for a message locally: long enough not to spin, short enough
/// for the 12 s operation timeout of the SDK.
const LONG_POLL_SECONDS: i32 = 2;
/// Pause after a failed receive or a batch that could not be logged.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

pub struct LiveFeed {
    log: Arc<dyn ChangeLog>,
    fanout: Arc<dyn Fanout>,
}

impl LiveFeed {
    pub fn new(log: Arc<dyn ChangeLog>, fanout: Arc<dyn Fanout>) -> Self {
        Self { log, fanout }
    }

    /// Logs the events, then delivers them, each user's in the order they happened (a
    /// node's changes by time, then version). Nothing is delivered that was not logged
    /// first, so every event id a client has seen can be replayed from; when logging
    /// fails, the caller retries the whole batch.
    pub async fn publish(&self, mut events: Vec<LiveEvent>) -> Result<(), StoreError> {
        let mut seen = HashSet::new();
        events.retain(|event| seen.insert(event.change.event_id));
        events.sort_by(|a, b| {
            (a.change.at, a.change.version, a.change.event_id).cmp(&(b.change.at, b.change.version, b.change.event_id))
        });
        self.log.append(&events).await?;
        let mut users: Vec<&UserId> = Vec::new();
        for event in &events {
            if !users.contains(&&event.user_id) {
                users.push(&event.user_id);
            }
        }
        for user in users {
            let changes: Vec<_> =
                events.iter().filter(|event| event.user_id == *user).map(|event| event.change.clone()).collect();
            self.fanout.deliver(user, &changes).await;
        }
        let now = Utc::now();
        for event in &events {
            metric::realtime_delivery((now - event.change.at).to_std().unwrap_or_default());
        }
        Ok(())
    }

    /// Reads queue message bodies and publishes the events among them; the bodies that are
    /// not events are logged and acknowledged with the rest (no retry can make them readable).
    pub async fn publish_bodies<'a>(&self, bodies: impl IntoIterator<Item = &'a str>) -> Result<(), StoreError> {
        let mut events = Vec::new();
        for body in bodies {
            match live_event_from_bus(body) {
                Ok(event) => events.push(event),
                Err(unrecognised) => tracing::warn!(%unrecognised, "realtime message skipped"),
            }
        }
        self.publish(events).await
    }

    /// Feeds the clients from the realtime queue until the process ends: each batch is
    /// deleted once published, or left to come back after its visibility timeout.
    pub async fn run_from_queue(self: Arc<Self>, sqs: LazyClient<aws_sdk_sqs::Client>, queue_url: String) {
        loop {
            let received = sqs
                .receive_message()
                .queue_url(&queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(LONG_POLL_SECONDS)
                .send()
                .await;
            let messages = match received {
                Ok(output) => output.messages.unwrap_or_default(),
                Err(error) => {
                    let error = aws_smithy_types::error::display::DisplayErrorContext(&error);
                    tracing::warn!(%error, "reading the realtime queue failed");
                    tokio::time::sleep(RETRY_PAUSE).await;
                    continue;
                }
            };
            if messages.is_empty() {
                continue;
            }
            if let Err(error) = self.publish_bodies(messages.iter().map(|m| m.body().unwrap_or_default())).await {
                tracing::warn!(%error, "realtime batch not logged; it will be retried");
                tokio::time::sleep(RETRY_PAUSE).await;
                continue;
            }
            let entries = messages.iter().enumerate().filter_map(|(index, message)| {
                let receipt = message.receipt_handle()?;
                DeleteMessageBatchRequestEntry::builder().id(index.to_string()).receipt_handle(receipt).build().ok()
            });
            let deleted =
                sqs.delete_message_batch().queue_url(&queue_url).set_entries(Some(entries.collect())).send().await;
            if let Err(error) = deleted {
                // The batch comes back and is published again: clients de-duplicate by event id.
                let error = aws_smithy_types::error::display::DisplayErrorContext(&error);
                tracing::warn!(%error, "published realtime messages were not deleted");
            }
        }
    }
}
