//! The background publisher: the request path only enqueues; a task sends the events in
//! batches (10 entries, 256 KB), when a batch is full, on a short interval, and whenever
//! someone asks for a flush (after a Lambda response, before the environment freezes; on
//! graceful shutdown of `brain2 serve`).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

use super::{EventBridgePublisher, MAX_ENTRIES_PER_CALL};
use crate::domain::DomainEvent;
use crate::ports::{EventPublisher, PublishError};
use crate::telemetry::metric;

/// Events waiting at most; at a sustained rate above what PutEvents absorbs, requests
/// start publishing their own events (see `publish`).
pub const QUEUE_CAPACITY: usize = 10_000;
/// Longest time an event waits for its batch to fill in a running process.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(100);

enum Command {
    Publish(DomainEvent),
    Flush(oneshot::Sender<()>),
}

#[derive(Clone)]
pub struct BackgroundPublisher {
    commands: mpsc::Sender<Command>,
    sender: Arc<EventBridgePublisher>,
}

impl BackgroundPublisher {
    /// Starts the sending task on the current runtime.
    pub fn start(sender: EventBridgePublisher) -> Self {
        Self::with_capacity(sender, QUEUE_CAPACITY)
    }

    /// As [`BackgroundPublisher::start`], with room for `capacity` waiting events.
    pub fn with_capacity(sender: EventBridgePublisher, capacity: usize) -> Self {
        let sender = Arc::new(sender);
        let (commands, receiver) = mpsc::channel(capacity.max(1));
        tokio::spawn(run(receiver, sender.clone()));
        Self { commands, sender }
    }
}

async fn send(sender: &EventBridgePublisher, pending: &mut Vec<DomainEvent>) {
    if pending.is_empty() {
        return;
    }
    let batch = std::mem::take(pending);
    if let Err(error) = sender.send_all(&batch).await {
        tracing::error!(%error, "background event publishing lost events");
    }
}

async fn run(mut commands: mpsc::Receiver<Command>, sender: Arc<EventBridgePublisher>) {
    let mut pending: Vec<DomainEvent> = Vec::with_capacity(MAX_ENTRIES_PER_CALL);
    let mut ticker = tokio::time::interval(FLUSH_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        metric::event_queue_depth(commands.len() + pending.len());
        tokio::select! {
            command = commands.recv() => match command {
                Some(Command::Publish(event)) => {
                    pending.push(event);
                    if pending.len() >= MAX_ENTRIES_PER_CALL {
                        send(&sender, &mut pending).await;
                    }
                }
                Some(Command::Flush(done)) => {
                    send(&sender, &mut pending).await;
                    let _ = done.send(());
                }
                None => {
                    send(&sender, &mut pending).await;
                    return;
                }
            },
            _ = ticker.tick() => send(&sender, &mut pending).await,
        }
    }
}

#[async_trait]
impl EventPublisher for BackgroundPublisher {
    /// Never waits for EventBridge while the queue has room. When it is full (or the task
    /// is gone), the events are published inline by this caller instead: slower for that
    /// request, but never dropped.
    async fn publish(&self, events: Vec<DomainEvent>) -> Result<(), PublishError> {
        let mut overflow = Vec::new();
        let offered = events.len();
        for event in events {
            if let Err(error) = self.commands.try_send(Command::Publish(event)) {
                let (mpsc::error::TrySendError::Full(command) | mpsc::error::TrySendError::Closed(command)) = error;
                if let Command::Publish(event) = command {
                    overflow.push(event);
                }
            }
        }
        metric::events_enqueued(offered - overflow.len());
        if overflow.is_empty() {
            return Ok(());
        }
        tracing::warn!(events = overflow.len(), "event queue full; publishing inline");
        // As the inline publisher does: to the end even if this request is cut off.
        self.sender.publish(overflow).await
    }

    async fn flush(&self) {
        let (done, flushed) = oneshot::channel();
        if self.commands.send(Command::Flush(done)).await.is_ok() {
            let _ = flushed.await;
        }
    }

    async fn check(&self) -> Result<(), PublishError> {
        self.sender.check().await
    }
}
