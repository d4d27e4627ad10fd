//! Composite health: every dependency checked concurrently, each with its own time budget.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::ports::{EventPublisher, GraphStore};

/// A dependency that takes longer than this counts as down: a health check must answer
/// quickly even when something behind it hangs.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Up,
    Degraded,
    Down,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Degraded => "degraded",
            Self::Down => "down",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ComponentHealth {
    pub name: &'static str,
    pub status: Status,
    pub duration: Duration,
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct HealthReport {
    pub status: Status,
    pub components: Vec<ComponentHealth>,
}

pub struct HealthChecker {
    store: Arc<dyn GraphStore>,
    events: Arc<dyn EventPublisher>,
}

async fn timed<E: std::fmt::Display>(
    name: &'static str,
    check: impl Future<Output = Result<(), E>>,
) -> ComponentHealth {
    let started = Instant::now();
    let result = tokio::time::timeout(CHECK_TIMEOUT, check).await;
    let error = match result {
        Ok(Ok(())) => None,
        Ok(Err(error)) => Some(error.to_string()),
        Err(_) => Some(format!("no answer within {} ms", CHECK_TIMEOUT.as_millis())),
    };
    let status = if error.is_none() { Status::Up } else { Status::Down };
    ComponentHealth { name, status, duration: started.elapsed(), error }
}

impl HealthChecker {
    pub fn new(store: Arc<dyn GraphStore>, events: Arc<dyn EventPublisher>) -> Self {
        Self { store, events }
    }

    /// Down when the table is unreachable (nothing works); degraded when only event
    /// publishing is (reads and writes still work, events are late).
    pub async fn check(&self) -> HealthReport {
        let (dynamodb, eventbridge) =
            tokio::join!(timed("dynamodb", self.store.check()), timed("eventbridge", self.events.check()));
        let status = match (dynamodb.status, eventbridge.status) {
            (Status::Up, Status::Up) => Status::Up,
            (Status::Up, _) => Status::Degraded,
            _ => Status::Down,
        };
        HealthReport { status, components: vec![dynamodb, eventbridge] }
    }
}
