//! Asynchronous cleanup of soft-deleted nodes: what a delete leaves behind (edges in both
//! directions, keyword postings, the marked node item) is removed here, off the request path.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use crate::domain::{NodeId, UserId};
use crate::ports::{GraphStore, StoreError};
use crate::telemetry::metric;

/// Entries read from the deletion queue per sweep round.
const SWEEP_BATCH: usize = 100;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepReport {
    pub purged: usize,
    pub failed: usize,
}

pub struct Cleanup {
    store: Arc<dyn GraphStore>,
}

impl Cleanup {
    pub fn new(store: Arc<dyn GraphStore>) -> Self {
        Self { store }
    }

    /// Removes what is left of one deleted node. Idempotent: a re-delivered message, or a
    /// node the sweep got to first, changes nothing. `true` when something was removed.
    pub async fn purge(&self, user: &UserId, node: NodeId) -> Result<bool, StoreError> {
        let purged = self.store.purge_deleted(user, node).await?;
        metric::nodes_purged(usize::from(purged));
        Ok(purged)
    }

    /// Purges every node deleted more than `grace` ago: the safety net for messages that
    /// never arrived. Stops when the queue holds nothing older, or when a round purged
    /// nothing (the rest is failing and is left for the next sweep).
    pub async fn sweep(&self, grace: Duration) -> Result<SweepReport, StoreError> {
        let before = Utc::now() - chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::zero());
        let mut report = SweepReport::default();
        loop {
            let due = self.store.deletion_queue(before, SWEEP_BATCH).await?;
            if due.is_empty() {
                return Ok(report);
            }
            let mut purged_this_round = 0;
            for entry in &due {
                match self.purge(&entry.user_id, entry.node_id).await {
                    Ok(_) => purged_this_round += 1,
                    Err(error) => {
                        tracing::warn!(%error, user = %entry.user_id, node = %entry.node_id, "cleanup failed; will retry");
                        report.failed += 1;
                    }
                }
            }
            report.purged += purged_this_round;
            if purged_this_round == 0 {
                return Ok(report);
            }
        }
    }
}
