//! Domain events to EventBridge.

use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_smithy_types::error::display::DisplayErrorContext;
use serde_json::{Value, json};

use crate::adapters::aws::eventbridge_client;
use crate::domain::DomainEvent;
use crate::domain::events::EventKind;
use crate::ports::{EventPublisher, PublishError};

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
        EventKind::NodeCreated { keywords } | EventKind::NodeUpdated { keywords } => {
            json!({ "keywords": keywords })
        }
        EventKind::NodeDeleted => json!({}),
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

#[derive(Clone)]
pub struct EventBridgePublisher {
    client: Client,
    bus: String,
    entries_per_call: usize,
}

impl EventBridgePublisher {
    /// `batched`: up to ten entries per PutEvents; otherwise one call per event, as the
    /// old backend did.
    pub fn new(client: Client, bus: impl Into<String>, batched: bool) -> Self {
        let entries_per_call = if batched { MAX_ENTRIES_PER_CALL } else { 1 };
        Self { client, bus: bus.into(), entries_per_call }
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
}

#[async_trait]
impl EventPublisher for EventBridgePublisher {
    async fn publish(&self, events: Vec<DomainEvent>) -> Result<(), PublishError> {
        for chunk in events.chunks(self.entries_per_call) {
            let entries = chunk.iter().map(|event| self.entry(event)).collect();
            let output = self
                .client()
                .put_events()
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| PublishError(DisplayErrorContext(&e).to_string()))?;
            if output.failed_entry_count > 0 {
                let reasons: Vec<String> = output
                    .entries()
                    .iter()
                    .filter_map(|entry| {
                        entry.error_code().map(|code| format!("{code}: {}", entry.error_message().unwrap_or_default()))
                    })
                    .collect();
                return Err(PublishError(format!(
                    "{} entries failed: {}",
                    output.failed_entry_count,
                    reasons.join("; ")
                )));
            }
        }
        Ok(())
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
