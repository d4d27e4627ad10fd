//! Per-request cost accounting: AWS calls by operation, consumed capacity, SDK clients built.
//! The AWS adapters record into the ledger of the request they run in (a task-local); the
//! HTTP layer opens one ledger per request and reports it in headers, logs and metrics.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CostReport {
    /// `Service.Operation` (e.g. `DynamoDB.BatchWriteItem`) to number of calls.
    pub calls: BTreeMap<String, u64>,
    /// Sum of DynamoDB `ConsumedCapacity.CapacityUnits`.
    pub capacity_units: f64,
    /// SDK clients constructed while serving the request.
    pub clients_built: u64,
}

impl CostReport {
    pub fn total_calls(&self) -> u64 {
        self.calls.values().sum()
    }

    /// `DynamoDB.BatchWriteItem=4,DynamoDB.Query=1`: sorted by name.
    pub fn operations_header(&self) -> String {
        self.calls.iter().map(|(name, count)| format!("{name}={count}")).collect::<Vec<_>>().join(",")
    }
}

tokio::task_local! {
    static LEDGER: Arc<Mutex<CostReport>>;
}

/// Runs `work` with a fresh ledger and returns what it cost.
pub async fn measure<F: Future>(work: F) -> (F::Output, CostReport) {
    let ledger = Arc::new(Mutex::new(CostReport::default()));
    let output = LEDGER.scope(ledger.clone(), work).await;
    let report = ledger.lock().map(|report| report.clone()).unwrap_or_default();
    (output, report)
}

/// `work` recording into the current request's ledger wherever it runs, such as on a task
/// spawned for the request: the calls it makes are the request's.
pub fn carried<F: Future>(work: F) -> impl Future<Output = F::Output> {
    let ledger = LEDGER.try_with(Arc::clone).ok();
    async move {
        match ledger {
            Some(ledger) => LEDGER.scope(ledger, work).await,
            None => work.await,
        }
    }
}

fn with_ledger(update: impl FnOnce(&mut CostReport)) {
    // Outside a measured request (start-up, background work) there is nothing to record.
    let _ = LEDGER.try_with(|ledger| {
        if let Ok(mut report) = ledger.lock() {
            update(&mut report);
        }
    });
}

pub fn record_call(operation: String) {
    with_ledger(|report| *report.calls.entry(operation).or_insert(0) += 1);
}

pub fn record_capacity(units: f64) {
    with_ledger(|report| report.capacity_units += units);
}

pub fn record_client_built() {
    with_ledger(|report| report.clients_built += 1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_only_inside_a_measured_scope() {
        record_call("DynamoDB.GetItem".into());
        let ((), report) = measure(async {
            record_call("DynamoDB.Query".into());
            record_call("DynamoDB.BatchWriteItem".into());
            record_call("DynamoDB.BatchWriteItem".into());
            record_capacity(2.5);
            record_client_built();
        })
        .await;
        assert_eq!(report.total_calls(), 3);
        assert_eq!(report.operations_header(), "DynamoDB.BatchWriteItem=2,DynamoDB.Query=1");
        assert_eq!(report.capacity_units, 2.5);
        assert_eq!(report.clients_built, 1);
        assert!(!report.calls.contains_key("DynamoDB.GetItem"), "a call outside the scope was recorded");
    }
}
