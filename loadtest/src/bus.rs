//! Write-to-bus latency, measured from the events themselves: every event of a profile's
//! bus reaches its `<bus>-events` queue through the rule `<bus>-all-events`; the harness
//! drains that queue around each scenario and sets, for each message, the queue's
//! `SentTimestamp` (when EventBridge delivered the message) against the event's own
//! `detail.occurredAt` (when the write happened).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use serde::Serialize;
use serde_json::Value;

use crate::lambda_emulator::percentile;

/// One message of the events queue: one delivery of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub event_id: String,
    /// `detail.occurredAt`, in milliseconds since the epoch.
    pub occurred_at_ms: i64,
    /// The message's `SentTimestamp`, in milliseconds since the epoch.
    pub sent_at_ms: i64,
}

impl Delivery {
    /// A message of the events queue: its `SentTimestamp` attribute and its body (the
    /// EventBridge envelope, whose `detail` is the event; a `detail` given as a JSON
    /// string is read too).
    pub fn from_message(sent_timestamp: Option<&str>, body: &str) -> Result<Self, String> {
        let sent_at_ms = sent_timestamp
            .ok_or("no SentTimestamp")?
            .trim()
            .parse::<i64>()
            .map_err(|error| format!("SentTimestamp: {error}"))?;
        let envelope: Value = serde_json::from_str(body).map_err(|error| format!("body: {error}"))?;
        let detail = match &envelope["detail"] {
            Value::String(text) => serde_json::from_str(text).map_err(|error| format!("detail: {error}"))?,
            detail => detail.clone(),
        };
        let event_id = detail["eventId"].as_str().ok_or("no detail.eventId")?.to_owned();
        let occurred_at = detail["occurredAt"].as_str().ok_or("no detail.occurredAt")?;
        let occurred_at_ms = chrono::DateTime::parse_from_rfc3339(occurred_at)
            .map_err(|error| format!("detail.occurredAt {occurred_at:?}: {error}"))?
            .timestamp_millis();
        Ok(Self { event_id, occurred_at_ms, sent_at_ms })
    }

    pub fn latency_ms(&self) -> i64 {
        self.sent_at_ms - self.occurred_at_ms
    }

    /// An `occurredAt` on a whole second is taken for a time the relay read from the
    /// stream record (its approximate creation time: rounded down to the second in AWS, to
    /// the minute in DynamoDB Local) rather than the write's own time. The outbox dates
    /// `edge.deleted`, and `node.deleted` of a node removed without a tombstone, that way.
    /// One genuine write time in a thousand falls on a whole second too.
    pub fn is_whole_second(&self) -> bool {
        self.occurred_at_ms.rem_euclid(1_000) == 0
    }
}

/// What one drain of the queue read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Drained {
    pub deliveries: Vec<Delivery>,
    /// Messages without a `SentTimestamp` or whose body is not an event of the service.
    pub unreadable: usize,
    /// Whether the queue was found empty before the drain's time limit.
    pub emptied: bool,
}

impl Drained {
    pub fn messages(&self) -> usize {
        self.deliveries.len() + self.unreadable
    }
}

/// The events a scenario put on the bus, and how long they took to get there.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WriteToBus {
    /// Messages of the scenario's events (those that reached the queue between the drain
    /// before the scenario and the one after its background work): every delivery,
    /// duplicates included (delivery is at least once).
    pub events: usize,
    /// Distinct `detail.eventId`s among them.
    pub distinct_events: usize,
    /// Write-to-bus latency of the distinct events (each at its first delivery), those
    /// with a whole-second `occurredAt` left out: `SentTimestamp` − `detail.occurredAt`,
    /// in milliseconds; `None` without such events.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// Distinct events per second of the scenario's requests.
    pub events_per_second: Option<f64>,
    /// Messages among `events` whose `occurredAt` falls on a whole second
    /// ([`Delivery::is_whole_second`]): counted, but left out of the latency.
    pub whole_second_events: usize,
    /// Messages of events that occurred before the scenario began (the background work of
    /// the previous scenario, published late): left out of every figure above.
    pub earlier_events: usize,
    /// Messages that did not read as events: left out.
    pub unreadable: usize,
    /// Messages drained and thrown away just before the scenario began.
    pub discarded_before: usize,
    /// Whether the queue was found empty after the scenario within the time limit.
    pub drained: bool,
}

impl WriteToBus {
    /// The figures of the messages drained after a scenario that began at `started_at_ms`
    /// and whose requests took `seconds`.
    /// An event with a whole-second `occurredAt` cannot be placed before or after the
    /// scenario's start: it counts for the scenario it was published in.
    pub fn of(drained: &Drained, started_at_ms: i64, seconds: f64) -> Self {
        let (own, earlier): (Vec<&Delivery>, Vec<&Delivery>) = drained
            .deliveries
            .iter()
            .partition(|delivery| delivery.is_whole_second() || delivery.occurred_at_ms >= started_at_ms);
        let mut first: HashMap<&str, &Delivery> = HashMap::new();
        for delivery in &own {
            let kept = first.entry(delivery.event_id.as_str()).or_insert(delivery);
            if delivery.sent_at_ms < kept.sent_at_ms {
                *kept = delivery;
            }
        }
        let latencies: Vec<f64> = first
            .values()
            .filter(|delivery| !delivery.is_whole_second())
            .map(|delivery| delivery.latency_ms() as f64)
            .collect();
        Self {
            events: own.len(),
            distinct_events: first.len(),
            p50_ms: percentile(&latencies, 50.0),
            p99_ms: percentile(&latencies, 99.0),
            max_ms: latencies.iter().copied().reduce(f64::max),
            events_per_second: (seconds > 0.0).then(|| first.len() as f64 / seconds),
            whole_second_events: own.iter().filter(|delivery| delivery.is_whole_second()).count(),
            earlier_events: earlier.len(),
            unreadable: drained.unreadable,
            discarded_before: 0,
            drained: drained.emptied,
        }
    }
}

/// Reads and deletes every message of the queue until a receive finds it empty (moto
/// answers a short poll exactly), or until `limit`.
pub async fn drain(sqs: &aws_sdk_sqs::Client, queue_url: &str, limit: Duration) -> anyhow::Result<Drained> {
    let deadline = Instant::now() + limit;
    let mut drained = Drained::default();
    while Instant::now() < deadline {
        let received = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .send()
            .await
            .context("reading the events queue")?;
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            drained.emptied = true;
            break;
        }
        let mut receipts = Vec::with_capacity(messages.len());
        for (index, message) in messages.into_iter().enumerate() {
            let sent = message
                .attributes
                .as_ref()
                .and_then(|attributes| attributes.get(&MessageSystemAttributeName::SentTimestamp))
                .map(String::as_str);
            match Delivery::from_message(sent, message.body.as_deref().unwrap_or_default()) {
                Ok(delivery) => drained.deliveries.push(delivery),
                Err(_) => drained.unreadable += 1,
            }
            if let Some(receipt) = message.receipt_handle {
                receipts.push(
                    DeleteMessageBatchRequestEntry::builder().id(index.to_string()).receipt_handle(receipt).build()?,
                );
            }
        }
        if !receipts.is_empty() {
            let deleted = sqs
                .delete_message_batch()
                .queue_url(queue_url)
                .set_entries(Some(receipts))
                .send()
                .await
                .context("deleting from the events queue")?;
            if let Some(failure) = deleted.failed.first() {
                anyhow::bail!("deleting from the events queue failed: {failure:?}");
            }
        }
    }
    Ok(drained)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(event_id: &str, occurred_at: &str) -> String {
        serde_json::json!({
            "version": "0",
            "source": "brain2.backend",
            "detail-type": "node.created",
            "time": "2026-11-24T10:00:00Z",
            "detail": {"eventId": event_id, "userId": "alice", "occurredAt": occurred_at},
        })
        .to_string()
    }

    fn delivery(event_id: &str, occurred_at_ms: i64, sent_at_ms: i64) -> Delivery {
        Delivery { event_id: event_id.to_owned(), occurred_at_ms, sent_at_ms }
    }

    #[test]
    fn latency_is_the_sent_timestamp_less_the_time_of_the_write() {
        let read = Delivery::from_message(Some("1764000000250"), &body("e-1", "2025-11-24T16:00:00.123Z")).unwrap();
        assert_eq!(read, delivery("e-1", 1_764_000_000_123, 1_764_000_000_250));
        assert_eq!(read.latency_ms(), 127);
        // An offset is honoured; a detail sent as a JSON string is read too.
        let as_string = serde_json::json!({
            "detail": serde_json::json!({"eventId": "e-2", "occurredAt": "2025-11-24T17:00:00.100+01:00"}).to_string()
        });
        let read = Delivery::from_message(Some("1764000000100"), &as_string.to_string()).unwrap();
        assert_eq!(read.latency_ms(), 0);
    }

    #[test]
    fn messages_that_are_not_events_are_refused() {
        let event = body("e-1", "2025-11-24T16:00:00.123Z");
        assert!(Delivery::from_message(None, &event).is_err());
        assert!(Delivery::from_message(Some("soon"), &event).is_err());
        assert!(Delivery::from_message(Some("1"), "not json").is_err());
        assert!(Delivery::from_message(Some("1"), r#"{"detail": {"eventId": "e"}}"#).is_err());
        assert!(Delivery::from_message(Some("1"), &body("e", "yesterday")).is_err());
        assert!(Delivery::from_message(Some("1"), r#"{"detail": {"occurredAt": "2025-11-24T16:00:00Z"}}"#).is_err());
    }

    #[test]
    fn figures_of_distinct_events_at_their_first_delivery() {
        let started = 1_700_000_000_001;
        let mut deliveries: Vec<Delivery> =
            (1..=100).map(|n| delivery(&format!("e-{n}"), started + 1, started + 1 + n)).collect();
        // A second, later delivery of e-100 and an event written before the scenario began:
        // neither changes the figures.
        deliveries.push(delivery("e-100", started + 1, started + 9_000));
        deliveries.push(delivery("earlier", started - 500, started + 200));
        // Dated from a stream record, rounded down before the start: counted, but no latency.
        deliveries.push(delivery("stream-dated", 1_700_000_000_000, started + 30_000));
        let drained = Drained { deliveries, unreadable: 2, emptied: true };
        assert_eq!(drained.messages(), 105);
        let figures = WriteToBus::of(&drained, started, 4.0);
        assert_eq!(
            figures,
            WriteToBus {
                events: 102,
                distinct_events: 101,
                p50_ms: Some(50.0),
                p99_ms: Some(99.0),
                max_ms: Some(100.0),
                events_per_second: Some(25.25),
                whole_second_events: 1,
                earlier_events: 1,
                unreadable: 2,
                discarded_before: 0,
                drained: true,
            }
        );
    }

    #[test]
    fn whole_seconds_are_told_apart() {
        assert!(delivery("a", 1_700_000_000_000, 0).is_whole_second());
        assert!(delivery("a", -2_000, 0).is_whole_second());
        assert!(!delivery("a", 1_700_000_000_001, 0).is_whole_second());
        assert!(!delivery("a", -1_999, 0).is_whole_second());
    }

    #[test]
    fn no_events_no_latency() {
        let figures = WriteToBus::of(&Drained::default(), 0, 0.0);
        assert_eq!((figures.events, figures.distinct_events), (0, 0));
        assert_eq!(
            (figures.p50_ms, figures.p99_ms, figures.max_ms, figures.events_per_second),
            (None, None, None, None)
        );
        assert!(!figures.drained);
    }
}
