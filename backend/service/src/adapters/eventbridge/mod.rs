//! Domain events to EventBridge: sent inline, or handed to the background publisher.

pub mod background;

use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_smithy_types::error::display::DisplayErrorContext;
use serde_json::{Value, json};

use crate::adapters::aws::retry::EVENT_RETRY;
use crate::adapters::aws::{LazyClient, carried_request_clients, eventbridge_client};
use crate::domain::DomainEvent;
use crate::domain::events::EventKind;
use crate::ports::{EventPublisher, PublishError};
use crate::telemetry::metric;
use crate::{costs, deadline};

pub const EVENT_SOURCE: &str = "brain2.backend";
/// PutEvents accepts at most ten entries per call.
pub const MAX_ENTRIES_PER_CALL: usize = 10;

/// The `detail` of an event as consumers receive it (documented in `docs/events.md`).
pub fn event_detail(event: &DomainEvent) -> Value {
    let mut detail = json!({
        "eventId": event.event_id.to_string(),
        "userId": event.user_id.as_str(),
        "aggregateId": event.aggregate_id.to_string(),
        "version": event.version,
        "occurredAt": event.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    });
    let extra = match &event.kind {
        EventKind::NodeCreated { keywords } | EventKind::NodeDeleted { keywords } => json!({ "keywords": keywords }),
        EventKind::NodeUpdated { keywords, previous_keywords } => {
            json!({ "keywords": keywords, "previousKeywords": previous_keywords })
        }
        EventKind::EdgeCreated { target, weight, edge_kind } => {
            json!({ "targetId": target.to_string(), "weight": weight, "kind": edge_kind })
        }
        EventKind::EdgeDeleted { target } => json!({ "targetId": target.to_string() }),
    };
    if let (Some(detail), Value::Object(extra)) = (detail.as_object_mut(), extra) {
        detail.extend(extra);
    }
    detail
}

/// PutEvents takes at most 256 KB per call; entries are measured like EventBridge does
/// (detail, detail type, source, bus name, plus a margin for the time and overhead).
pub const MAX_BYTES_PER_CALL: usize = 256 * 1024;
const ENTRY_OVERHEAD_BYTES: usize = 64;

pub fn entry_size(entry: &PutEventsRequestEntry) -> usize {
    [entry.detail(), entry.detail_type(), entry.source(), entry.event_bus_name()]
        .iter()
        .map(|part| part.map_or(0, str::len))
        .sum::<usize>()
        + ENTRY_OVERHEAD_BYTES
}

/// Groups entries into PutEvents calls of at most `per_call` entries and 256 KB.
pub fn into_calls(entries: Vec<PutEventsRequestEntry>, per_call: usize) -> Vec<Vec<PutEventsRequestEntry>> {
    let mut calls: Vec<Vec<PutEventsRequestEntry>> = Vec::new();
    let mut bytes = 0;
    for entry in entries {
        let size = entry_size(&entry);
        match calls.last_mut() {
            Some(call) if call.len() < per_call && bytes + size <= MAX_BYTES_PER_CALL => {
                bytes += size;
                call.push(entry);
            }
            _ => {
                bytes = size;
                calls.push(vec![entry]);
            }
        }
    }
    calls
}

/// Sends events to the bus. Entries EventBridge reports as failed are retried alone with
/// jittered backoff; after the last attempt they go to the dead-letter queue with the
/// reason. Nothing is dropped without a trace: if even the dead-letter queue refuses, the
/// whole event is logged at error level.
#[derive(Clone)]
pub struct EventBridgePublisher {
    client: Client,
    sqs: LazyClient<aws_sdk_sqs::Client>,
    bus: String,
    dead_letter_queue: Option<String>,
    entries_per_call: usize,
}

impl EventBridgePublisher {
    /// `batched`: up to ten entries per PutEvents; otherwise one call per event, as the
    /// old backend did.
    pub fn new(
        client: Client,
        sqs: LazyClient<aws_sdk_sqs::Client>,
        bus: impl Into<String>,
        dead_letter_queue: Option<String>,
        batched: bool,
    ) -> Self {
        let entries_per_call = if batched { MAX_ENTRIES_PER_CALL } else { 1 };
        Self { client, sqs, bus: bus.into(), dead_letter_queue, entries_per_call }
    }

    /// The request's own client when `client_reuse` is off, else the process-wide one.
    fn client(&self) -> Client {
        eventbridge_client(&self.client)
    }

    fn entry(&self, event: &DomainEvent) -> PutEventsRequestEntry {
        PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(EVENT_SOURCE)
            .detail_type(event.kind.detail_type())
            .detail(event_detail(event).to_string())
            .build()
    }

    /// One PutEvents call; returns the entries that failed, with their reasons.
    async fn put(&self, call: Vec<PutEventsRequestEntry>) -> Vec<(PutEventsRequestEntry, String)> {
        match self.client().put_events().set_entries(Some(call.clone())).send().await {
            Ok(output) if output.failed_entry_count == 0 => Vec::new(),
            Ok(output) => call
                .into_iter()
                .zip(output.entries().iter().map(Some).chain(std::iter::repeat(None)))
                .filter_map(|(entry, result)| match result {
                    Some(result) if result.error_code().is_none() => None,
                    Some(result) => Some((
                        entry,
                        format!(
                            "{}: {}",
                            result.error_code().unwrap_or_default(),
                            result.error_message().unwrap_or_default()
                        ),
                    )),
                    None => Some((entry, "no result for this entry".to_owned())),
                })
                .collect(),
            Err(error) => {
                let reason = DisplayErrorContext(&error).to_string();
                call.into_iter().map(|entry| (entry, reason.clone())).collect()
            }
        }
    }

    /// Sends every event, retrying failures alone and dead-lettering what never gets
    /// through. Fails only for events that could not even be dead-lettered.
    pub async fn send_all(&self, events: &[DomainEvent]) -> Result<(), PublishError> {
        let lost = self.send_reporting_lost(events).await;
        match lost.len() {
            0 => Ok(()),
            count => Err(PublishError(format!("{count} events could not be dead-lettered"))),
        }
    }

    /// As [`EventBridgePublisher::send_all`], naming the events that were neither published
    /// nor dead-lettered (each logged at error level with its whole detail).
    pub async fn send_reporting_lost(&self, events: &[DomainEvent]) -> Vec<uuid::Uuid> {
        let entries = events.iter().map(|event| self.entry(event)).collect();
        let mut failed = Vec::new();
        for call in into_calls(entries, self.entries_per_call) {
            failed.extend(self.put(call).await);
        }
        metric::events_published(events.len() - failed.len());
        let (mut lost, mut lost_count) = (Vec::new(), 0);
        for (entry, reason) in failed {
            let Some(reason) = self.retry_alone(entry.clone(), reason).await else {
                metric::events_published(1);
                continue;
            };
            if let Err(error) = self.dead_letter(&entry, &reason).await {
                lost_count += 1;
                // The detail is this publisher's own JSON: it always names its event.
                let detail = entry.detail().unwrap_or_default();
                tracing::error!(detail, %reason, %error, "event lost: not published, not dead-lettered");
                let id = serde_json::from_str::<Value>(detail)
                    .ok()
                    .and_then(|detail| detail["eventId"].as_str().and_then(|id| uuid::Uuid::parse_str(id).ok()));
                lost.extend(id);
            }
        }
        metric::events_lost(lost_count);
        lost
    }

    /// `None` once the entry is published; the last failure reason otherwise.
    async fn retry_alone(&self, entry: PutEventsRequestEntry, mut reason: String) -> Option<String> {
        for delay in EVENT_RETRY.delays() {
            tokio::time::sleep(delay).await;
            metric::event_retried();
            match self.put(vec![entry.clone()]).await.pop() {
                None => return None,
                Some((_, again)) => reason = again,
            }
        }
        Some(reason)
    }

    async fn dead_letter(&self, entry: &PutEventsRequestEntry, reason: &str) -> Result<(), String> {
        let queue = self.dead_letter_queue.as_deref().ok_or("no dead-letter queue is configured")?;
        let detail: Value = serde_json::from_str(entry.detail().unwrap_or("null")).unwrap_or(Value::Null);
        let body = json!({
            "reason": reason,
            "attempts": EVENT_RETRY.attempts,
            "bus": entry.event_bus_name(),
            "source": entry.source(),
            "detailType": entry.detail_type(),
            "detail": detail,
        });
        self.sqs
            .send_message()
            .queue_url(queue)
            .message_body(body.to_string())
            .send()
            .await
            .map_err(|e| DisplayErrorContext(&e).to_string())?;
        metric::event_dead_lettered();
        tracing::warn!(%reason, detail_type = entry.detail_type().unwrap_or_default(), "event dead-lettered");
        Ok(())
    }
}

#[async_trait]
impl EventPublisher for EventBridgePublisher {
    /// Sends on a task of its own, with the request's clients and cost ledger: the task
    /// runs to the end (every event delivered or dead-lettered) even when the request is
    /// cut off at its deadline. Once the request's time is up, it stops waiting for it.
    async fn publish(&self, events: Vec<DomainEvent>) -> Result<(), PublishError> {
        let sender = self.clone();
        let work = async move { sender.send_all(&events).await };
        let sending = tokio::spawn(costs::carried(carried_request_clients(work)));
        let finished = match deadline::remaining() {
            Some(left) => tokio::time::timeout(left, sending).await.ok(),
            None => Some(sending.await),
        };
        match finished {
            Some(Ok(result)) => result,
            Some(Err(error)) => Err(PublishError(format!("the publishing task failed: {error}"))),
            None => {
                tracing::warn!("the request ran out of time; its events are still being sent");
                Ok(())
            }
        }
    }

    async fn check(&self) -> Result<(), PublishError> {
        self.client()
            .describe_event_bus()
            .name(&self.bus)
            .send()
            .await
            .map_err(|e| PublishError(DisplayErrorContext(&e).to_string()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(detail_bytes: usize) -> PutEventsRequestEntry {
        PutEventsRequestEntry::builder().detail("x".repeat(detail_bytes)).source(EVENT_SOURCE).build()
    }

    #[test]
    fn calls_hold_at_most_ten_entries() {
        let calls = into_calls((0..23).map(|_| entry(100)).collect(), MAX_ENTRIES_PER_CALL);
        assert_eq!(calls.iter().map(Vec::len).collect::<Vec<_>>(), vec![10, 10, 3]);
        let single = into_calls((0..3).map(|_| entry(100)).collect(), 1);
        assert_eq!(single.len(), 3);
    }

    #[test]
    fn calls_stay_under_256_kilobytes() {
        let calls = into_calls((0..5).map(|_| entry(100 * 1024)).collect(), MAX_ENTRIES_PER_CALL);
        assert_eq!(calls.iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 2, 1]);
        for call in calls {
            assert!(call.iter().map(entry_size).sum::<usize>() <= MAX_BYTES_PER_CALL);
        }
    }
}
