//! The inbound side of the background workers: bus events delivered through SQS (polled
//! locally, pushed by Lambda in AWS) into the cleanup and similarity use cases.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use clap::Args;

use crate::adapters::aws::LazyClient;
use crate::app::cleanup::Cleanup;
use crate::app::similarity::{NoteChange, SimilarityWorker};
use crate::config::seconds;
use crate::domain::{NodeId, UserId};
use crate::ports::StoreError;
use crate::telemetry::metric::{self, MessageOutcome};

/// An SQS message body that is not a Brain2 event a worker understands. Such messages are
/// acknowledged (logged, not retried): no retry can make them understandable.
#[derive(Debug, thiserror::Error)]
#[error("unrecognised message: {0}")]
pub struct UnrecognisedMessage(pub(crate) String);

pub(crate) fn field<'a>(detail: &'a Value, name: &str) -> Result<&'a str, UnrecognisedMessage> {
    detail.get(name).and_then(Value::as_str).ok_or_else(|| UnrecognisedMessage(format!("no {name}")))
}

fn keywords(detail: &Value, name: &str) -> Vec<String> {
    detail
        .get(name)
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Reads an EventBridge envelope (`detail-type`, `detail`) as a note change.
pub fn parse_note_change(body: &str) -> Result<NoteChange, UnrecognisedMessage> {
    let envelope: Value = serde_json::from_str(body).map_err(|e| UnrecognisedMessage(e.to_string()))?;
    let detail = &envelope["detail"];
    let event_id = uuid::Uuid::parse_str(field(detail, "eventId")?).map_err(|e| UnrecognisedMessage(e.to_string()))?;
    let user_id = UserId::parse(field(detail, "userId")?).map_err(|e| UnrecognisedMessage(e.to_string()))?;
    let node_id = NodeId::parse(field(detail, "aggregateId")?).map_err(|e| UnrecognisedMessage(e.to_string()))?;
    let keywords_now = keywords(detail, "keywords");
    match envelope["detail-type"].as_str() {
        Some("node.created") => Ok(NoteChange::Created { event_id, user_id, node_id, keywords: keywords_now }),
        Some("node.updated") => Ok(NoteChange::Updated {
            event_id,
            user_id,
            node_id,
            keywords: keywords_now,
            previous_keywords: keywords(detail, "previousKeywords"),
        }),
        Some("node.deleted") => Ok(NoteChange::Deleted { event_id, user_id, node_id, keywords: keywords_now }),
        other => Err(UnrecognisedMessage(format!("detail-type {other:?}"))),
    }
}

/// The queues the workers read, and when the sweep takes over from them.
#[derive(Debug, Clone, Args)]
pub struct WorkerSettings {
    /// SQS queue of `node.deleted` events for the cleanup worker.
    #[arg(long, env = "BRAIN2_CLEANUP_QUEUE_URL")]
    pub cleanup_queue_url: Option<String>,
    /// SQS queue of note changes for the similarity worker.
    #[arg(long, env = "BRAIN2_SIMILARITY_QUEUE_URL")]
    pub similarity_queue_url: Option<String>,
    /// Age in seconds after which the sweep purges a soft-deleted node without a message.
    #[arg(long = "cleanup-grace-seconds", env = "BRAIN2_CLEANUP_GRACE_SECONDS", value_name = "SECONDS", value_parser = seconds, default_value = "300")]
    pub cleanup_grace: Duration,
}

/// What a worker does with one message: `Ok` acknowledges it, `Err` leaves it on the
/// queue to come back (and, after repeated failures, to go to the dead-letter queue).
#[derive(Clone)]
pub enum Worker {
    Cleanup(Arc<Cleanup>),
    Similarity(Arc<SimilarityWorker>),
}

impl Worker {
    /// The worker's name in logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Cleanup(_) => "cleanup",
            Self::Similarity(_) => "similarity",
        }
    }

    pub async fn handle(&self, body: &str) -> Result<(), StoreError> {
        let change = match parse_note_change(body) {
            Ok(change) => change,
            Err(unrecognised) => {
                tracing::warn!(%unrecognised, worker = self.name(), "message skipped");
                metric::worker_message(self.name(), MessageOutcome::Skipped);
                return Ok(());
            }
        };
        let result = match (self, &change) {
            (Self::Cleanup(cleanup), NoteChange::Deleted { user_id, node_id, .. }) => {
                cleanup.purge(user_id, *node_id).await.map(|_| ())
            }
            (Self::Cleanup(_), _) => Ok(()),
            (Self::Similarity(similarity), change) => similarity.handle(change).await.map(|_| ()),
        };
        let outcome = if result.is_ok() { MessageOutcome::Handled } else { MessageOutcome::Failed };
        metric::worker_message(self.name(), outcome);
        result
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DrainReport {
    pub handled: usize,
    pub failed: usize,
}

/// Receives and handles messages until the queue answers empty. Failed messages are left
/// alone and counted; they come back after their visibility timeout.
pub async fn drain(worker: &Worker, sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Result<DrainReport, String> {
    let mut report = DrainReport::default();
    loop {
        let output = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .send()
            .await
            .map_err(|e| aws_smithy_types::error::display::DisplayErrorContext(&e).to_string())?;
        let messages = output.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(report);
        }
        let mut handled_any = false;
        for message in messages {
            match worker.handle(message.body().unwrap_or_default()).await {
                Ok(()) => {
                    handled_any = true;
                    report.handled += 1;
                    if let Some(receipt) = message.receipt_handle() {
                        let _ = sqs.delete_message().queue_url(queue_url).receipt_handle(receipt).send().await;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "message failed; it will be retried");
                    report.failed += 1;
                }
            }
        }
        if !handled_any {
            return Ok(report);
        }
    }
}

/// How often the in-process workers poll their queues, and sweep the deletion queue.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// Runs the workers inside `brain2 serve` until the process ends.
pub async fn run_in_process(
    workers: Vec<(Worker, String)>,
    cleanup: Arc<Cleanup>,
    sqs: LazyClient<aws_sdk_sqs::Client>,
    grace: Duration,
) {
    let mut poll = tokio::time::interval(POLL_INTERVAL);
    let mut sweep = tokio::time::interval(SWEEP_INTERVAL);
    loop {
        tokio::select! {
            _ = poll.tick() => {
                for (worker, queue) in &workers {
                    if let Err(error) = drain(worker, &sqs, queue).await {
                        tracing::warn!(%error, queue, "polling failed");
                    }
                }
            }
            _ = sweep.tick() => match cleanup.sweep(grace).await {
                Ok(report) if report.purged + report.failed > 0 => tracing::info!(?report, "deletion queue swept"),
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "sweep failed"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bus_envelopes() {
        let id = NodeId::generate();
        let body = serde_json::json!({
            "detail-type": "node.updated",
            "source": "brain2.backend",
            "detail": {"eventId": uuid::Uuid::now_v7().to_string(), "userId": "alice", "aggregateId": id.to_string(),
                       "version": 2, "keywords": ["river"], "previousKeywords": ["lake"]}
        })
        .to_string();
        match parse_note_change(&body).unwrap() {
            NoteChange::Updated { node_id, keywords, previous_keywords, .. } => {
                assert_eq!(node_id, id);
                assert_eq!(keywords, vec!["river"]);
                assert_eq!(previous_keywords, vec!["lake"]);
            }
            other => panic!("{other:?}"),
        }
        assert!(parse_note_change("not json").is_err());
        assert!(parse_note_change(r#"{"detail-type":"edge.created","detail":{}}"#).is_err());
    }
}
