//! Composite health: every dependency checked concurrently, each with its own time budget.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::ports::{EventPublisher, GraphStore, SharedCache};

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
    /// The shared cache tier, when there is one.
    cache: Option<Arc<dyn SharedCache>>,
    /// How long a report answers every health request: however often `/health` is called,
    /// an instance asks its dependencies at most once per period, so the endpoint cannot be
    /// used to multiply calls to AWS.
    report_ttl: Duration,
    /// The last report and when it was made. An async lock, held across a check: callers
    /// that arrive meanwhile wait for that check instead of starting their own.
    last: tokio::sync::Mutex<Option<(Instant, HealthReport)>>,
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
    pub fn new(
        store: Arc<dyn GraphStore>,
        events: Arc<dyn EventPublisher>,
        cache: Option<Arc<dyn SharedCache>>,
        report_ttl: Duration,
    ) -> Self {
        Self { store, events, cache, report_ttl, last: tokio::sync::Mutex::new(None) }
    }

    /// The last report when it is younger than the report's time to live, a fresh one otherwise.
    pub async fn report(&self) -> HealthReport {
        let mut last = self.last.lock().await;
        if let Some((made, report)) = last.as_ref()
            && made.elapsed() < self.report_ttl
        {
            return report.clone();
        }
        let report = self.check().await;
        *last = Some((Instant::now(), report.clone()));
        report
    }

    /// Down when the table is unreachable (nothing works); degraded when only event
    /// publishing is (reads and writes still work, events are late) or the shared cache
    /// (reads go to the table: slower, still right).
    async fn check(&self) -> HealthReport {
        let cache = async {
            match &self.cache {
                Some(cache) => Some(timed("cache", cache.check()).await),
                None => None,
            }
        };
        let (dynamodb, eventbridge, cache) =
            tokio::join!(timed("dynamodb", self.store.check()), timed("eventbridge", self.events.check()), cache);
        let mut components = vec![dynamodb, eventbridge];
        components.extend(cache);
        let status = if components[0].status != Status::Up {
            Status::Down
        } else if components.iter().all(|component| component.status == Status::Up) {
            Status::Up
        } else {
            Status::Degraded
        };
        HealthReport { status, components }
    }
}
