//! Creates the AWS resources the service needs on emulators or a bare account:
//! the table, the event bus, and a queue (with a dead-letter queue) that receives every
//! event through a rule. In AWS the infrastructure stack owns these; this serves local
//! development and tests, and is idempotent.

use aws_sdk_sqs::types::QueueAttributeName;
use aws_smithy_types::error::display::DisplayErrorContext;
use serde_json::json;
use thiserror::Error;

use brain2::adapters::aws::AwsClients;
use brain2::adapters::dynamodb::schema::ensure_table;
use brain2::adapters::eventbridge::EVENT_SOURCE;
use brain2::realtime::protocol::CHANGE_TYPES;

/// Receives a message this many times before it goes to the dead-letter queue.
const MAX_RECEIVES: u32 = 5;

#[derive(Debug, Error)]
#[error("provisioning {what} failed: {reason}")]
pub struct ProvisionError {
    what: &'static str,
    reason: String,
}

fn failed(what: &'static str) -> impl Fn(&dyn std::fmt::Debug) -> ProvisionError {
    move |error| ProvisionError { what, reason: format!("{error:?}") }
}

fn context<E: std::error::Error>(what: &'static str) -> impl Fn(E) -> ProvisionError {
    move |error| ProvisionError { what, reason: DisplayErrorContext(&error).to_string() }
}

/// What was created, for callers that read the events.
#[derive(Debug, Clone)]
pub struct Provisioned {
    /// Every event of the bus (for inspection and tests).
    pub events_queue_url: String,
    /// Events EventBridge would not take after every retry, with the reason.
    pub publish_dlq_url: String,
    /// `node.deleted` events for the cleanup worker.
    pub cleanup_queue_url: String,
    /// Note changes for the similarity worker (deletes lower the keyword counters).
    pub similarity_queue_url: String,
    /// Table stream records the outbox relay could not turn into events.
    pub stream_failures_queue_url: String,
    /// Node and edge changes for the WebSocket clients (`brain2 serve --workers`).
    pub realtime_queue_url: String,
}

/// The queues and rules of the local stack; in AWS the infrastructure stack declares the same.
pub async fn provision(clients: &AwsClients, table: &str, bus: &str) -> Result<Provisioned, ProvisionError> {
    ensure_table(&clients.dynamodb, table).await.map_err(|e| failed("the table")(&e))?;
    if clients.eventbridge.describe_event_bus().name(bus).send().await.is_err() {
        clients.eventbridge.create_event_bus().name(bus).send().await.map_err(context("the event bus"))?;
    }
    let events_queue_url = queue_with_dead_letters(clients, &format!("{bus}-events")).await?;
    subscribe(clients, bus, "all-events", json!({ "source": [EVENT_SOURCE] }), &events_queue_url).await?;
    let cleanup_queue_url = queue_with_dead_letters(clients, &format!("{bus}-cleanup")).await?;
    let deleted = json!({ "source": [EVENT_SOURCE], "detail-type": ["node.deleted"] });
    subscribe(clients, bus, "cleanup", deleted, &cleanup_queue_url).await?;
    let similarity_queue_url = queue_with_dead_letters(clients, &format!("{bus}-similarity")).await?;
    let changed = json!({ "source": [EVENT_SOURCE], "detail-type": ["node.created", "node.updated", "node.deleted"] });
    subscribe(clients, bus, "similarity", changed, &similarity_queue_url).await?;
    let realtime_queue_url = queue_with_dead_letters(clients, &format!("{bus}-realtime")).await?;
    let changes = json!({ "source": [EVENT_SOURCE], "detail-type": CHANGE_TYPES });
    subscribe(clients, bus, "realtime", changes, &realtime_queue_url).await?;
    let publish_dlq_url = create_queue(clients, &format!("{bus}-publish-dlq"), None).await?;
    let stream_failures_queue_url = create_queue(clients, &format!("{bus}-stream-failures"), None).await?;
    Ok(Provisioned {
        events_queue_url,
        publish_dlq_url,
        cleanup_queue_url,
        similarity_queue_url,
        stream_failures_queue_url,
        realtime_queue_url,
    })
}

/// A queue whose messages move to `<name>-dlq` after repeated failed deliveries.
async fn queue_with_dead_letters(clients: &AwsClients, name: &str) -> Result<String, ProvisionError> {
    let dlq_url = create_queue(clients, &format!("{name}-dlq"), None).await?;
    let dlq_arn = queue_arn(clients, &dlq_url).await?;
    let redrive = json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVES.to_string() });
    create_queue(clients, name, Some(redrive.to_string())).await
}

/// A rule on the bus that delivers matching events to the queue.
async fn subscribe(
    clients: &AwsClients,
    bus: &str,
    name: &str,
    pattern: serde_json::Value,
    queue_url: &str,
) -> Result<(), ProvisionError> {
    let rule = format!("{bus}-{name}");
    clients
        .eventbridge
        .put_rule()
        .name(&rule)
        .event_bus_name(bus)
        .event_pattern(pattern.to_string())
        .send()
        .await
        .map_err(context("an event rule"))?;
    let target = aws_sdk_eventbridge::types::Target::builder()
        .id(format!("{name}-queue"))
        .arn(queue_arn(clients, queue_url).await?)
        .build()
        .map_err(context("a rule target"))?;
    clients
        .eventbridge
        .put_targets()
        .rule(&rule)
        .event_bus_name(bus)
        .targets(target)
        .send()
        .await
        .map_err(context("a rule target"))?;
    Ok(())
}

async fn create_queue(clients: &AwsClients, name: &str, redrive: Option<String>) -> Result<String, ProvisionError> {
    let mut request = clients.sqs.create_queue().queue_name(name);
    if let Some(policy) = redrive {
        request = request.attributes(QueueAttributeName::RedrivePolicy, policy);
    }
    let output = request.send().await.map_err(context("a queue"))?;
    output.queue_url.ok_or_else(|| ProvisionError { what: "a queue", reason: "no queue URL returned".into() })
}

async fn queue_arn(clients: &AwsClients, url: &str) -> Result<String, ProvisionError> {
    let output = clients
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(context("a queue ARN"))?;
    output
        .attributes
        .and_then(|mut attributes| attributes.remove(&QueueAttributeName::QueueArn))
        .ok_or_else(|| ProvisionError { what: "a queue ARN", reason: "no ARN returned".into() })
}
