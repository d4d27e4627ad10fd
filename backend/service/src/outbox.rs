//! Event delivery through the table's stream (`BRAIN2_EVENT_DELIVERY=outbox`). A write
//! stores its items and nothing else; the stream holds the change for 24 hours whatever
//! happens to the process that made it; the relay turns each change into its domain event
//! and publishes it. In AWS the relay is the `brain2-events` function, fed by Lambda's
//! event source mapping; `brain2 serve --workers` runs it in-process on the same code.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_smithy_types::error::display::DisplayErrorContext;
use serde_json::{Value, json};

use crate::adapters::aws::LazyClient;
use crate::adapters::dynamodb::changes::TableChange;
use crate::adapters::dynamodb::items::Item;
use crate::adapters::dynamodb::stream_reader::TableStream;
use crate::adapters::eventbridge::EventBridgePublisher;
use crate::domain::DomainEvent;
use crate::ports::{EventPublisher, PublishError, StoreError};
use crate::telemetry::metric;

/// How often the in-process relay reads a stream it has caught up with: as often as
/// Lambda polls a shard.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// A record still undelivered after this long goes to the stream failures queue, as
/// Lambda's event source mapping does with its maximum record age.
pub const MAX_RECORD_AGE: Duration = Duration::from_secs(3_600);

/// The event port in `outbox` mode: the write is the event, so there is nothing to send.
pub struct TableOutbox;

#[async_trait]
impl EventPublisher for TableOutbox {
    async fn publish(&self, _events: Vec<DomainEvent>) -> Result<(), PublishError> {
        Ok(())
    }

    /// The request path never reaches the bus in this mode; the relay's own health is its
    /// stream's iterator age.
    async fn check(&self) -> Result<(), PublishError> {
        Ok(())
    }
}

/// What became of a batch of stream records.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RelayOutcome {
    /// Stream records read.
    pub records: usize,
    /// Events published or, when EventBridge kept refusing them, dead-lettered.
    pub events: usize,
    /// Records that could not become events, sent to the stream failures queue.
    pub failed_records: usize,
    /// The first record that must be delivered again (with every later one): an event of
    /// it was neither published nor dead-lettered, or the failures queue refused it.
    pub retry_from: Option<String>,
}

impl RelayOutcome {
    fn add(&mut self, other: &Self) {
        self.records += other.records;
        self.events += other.events;
        self.failed_records += other.failed_records;
        if self.retry_from.is_none() {
            self.retry_from.clone_from(&other.retry_from);
        }
    }
}

/// Turns stream records into events on the bus.
#[derive(Clone)]
pub struct Relay {
    publisher: EventBridgePublisher,
    sqs: LazyClient<aws_sdk_sqs::Client>,
    failures_queue: Option<String>,
}

/// An item image as JSON, for people reading the failures queue.
fn image_json(image: Option<&Item>) -> Value {
    image.map_or(Value::Null, |item| {
        serde_dynamo::from_item::<_, Value>(item.clone()).unwrap_or_else(|error| json!(format!("{error}: {item:?}")))
    })
}

impl Relay {
    /// `publisher` sends in batches of ten and dead-letters what EventBridge keeps refusing.
    pub fn new(
        publisher: EventBridgePublisher,
        sqs: LazyClient<aws_sdk_sqs::Client>,
        failures_queue: Option<String>,
    ) -> Self {
        Self { publisher, sqs, failures_queue }
    }

    pub async fn relay(&self, changes: &[TableChange]) -> RelayOutcome {
        metric::stream_records(changes.len());
        let mut outcome = RelayOutcome { records: changes.len(), ..RelayOutcome::default() };
        let mut first_failed: Option<usize> = None;
        let (mut positions, mut events) = (Vec::new(), Vec::new());
        for (index, change) in changes.iter().enumerate() {
            match change.event() {
                Ok(Some(event)) => {
                    positions.push(index);
                    events.push(event);
                }
                Ok(None) => {}
                Err(undecodable) => match self.set_aside(change, &undecodable.to_string()).await {
                    Ok(()) => outcome.failed_records += 1,
                    Err(()) => {
                        first_failed.get_or_insert(index);
                    }
                },
            }
        }
        let lost = self.publisher.send_reporting_lost(&events).await;
        outcome.events = events.len() - lost.len();
        let first_lost = positions.iter().zip(&events).find(|(_, event)| lost.contains(&event.event_id));
        let first_failed = first_failed.into_iter().chain(first_lost.map(|(index, _)| *index)).min();
        outcome.retry_from = first_failed.map(|index| changes[index].sequence_number.clone());
        outcome
    }

    /// Sends a record no retry can deliver to the stream failures queue, images included,
    /// so that someone can replay it by hand. Without that queue (or when it refuses), the
    /// record is logged whole at error level; `Err` means it must be tried again.
    pub async fn set_aside(&self, change: &TableChange, reason: &str) -> Result<(), ()> {
        let body = json!({
            "reason": reason,
            "recordId": change.record_id,
            "sequenceNumber": change.sequence_number,
            "kind": format!("{:?}", change.kind),
            "recordedAt": change.recorded_at.to_rfc3339(),
            "oldImage": image_json(change.old_image.as_ref()),
            "newImage": image_json(change.new_image.as_ref()),
        });
        let Some(queue) = &self.failures_queue else {
            tracing::error!(record = %body, "stream record not delivered and no failures queue is configured");
            metric::stream_records_failed(1);
            return Ok(());
        };
        match self.sqs.send_message().queue_url(queue).message_body(body.to_string()).send().await {
            Ok(_) => {
                tracing::warn!(reason, record_id = change.record_id, "stream record sent to the failures queue");
                metric::stream_records_failed(1);
                Ok(())
            }
            Err(error) => {
                let error = DisplayErrorContext(&error);
                tracing::error!(record = %body, %error, "the stream failures queue refused a record; it will be retried");
                Err(())
            }
        }
    }
}

/// Reads what the stream has now and delivers it.
pub async fn relay_once(stream: &mut TableStream, relay: &Relay) -> Result<RelayOutcome, StoreError> {
    let mut total = RelayOutcome::default();
    for batch in stream.read().await? {
        let outcome = relay.relay(&batch.changes).await;
        total.add(&outcome);
        let Some(retry_at) = outcome.retry_from else {
            if let Some(last) = batch.changes.last() {
                stream.acknowledge(&batch, &last.sequence_number).await?;
            }
            continue;
        };
        let failed = batch.changes.iter().position(|change| change.sequence_number == retry_at).unwrap_or_default();
        if let Some(before) = failed.checked_sub(1) {
            stream.acknowledge(&batch, &batch.changes[before].sequence_number).await?;
        }
        let change = &batch.changes[failed];
        let age = chrono::Utc::now().signed_duration_since(change.recorded_at).to_std().unwrap_or_default();
        if age >= MAX_RECORD_AGE && relay.set_aside(change, "undelivered past the maximum record age").await.is_ok() {
            stream.acknowledge(&batch, &change.sequence_number).await?;
            stream.read_after_delivered(&batch.shard_id);
        } else {
            stream.retry_from(&batch.shard_id, &retry_at);
        }
    }
    Ok(total)
}

/// Delivers until the stream has nothing more (tests and one-off runs).
pub async fn drain(stream: &mut TableStream, relay: &Relay) -> Result<RelayOutcome, StoreError> {
    let mut total = RelayOutcome::default();
    loop {
        let round = relay_once(stream, relay).await?;
        total.add(&round);
        if round.records == 0 || total.retry_from.is_some() {
            return Ok(total);
        }
    }
}

/// The relay of `brain2 serve --workers`, until the process ends.
pub async fn run_in_process(mut stream: TableStream, relay: Arc<Relay>) {
    loop {
        match relay_once(&mut stream, &relay).await {
            // More may be waiting right behind what was read.
            Ok(outcome) if outcome.retry_from.is_none() && outcome.records > 0 => continue,
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "reading the table's stream failed"),
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
