//! Deleting nodes so that no race loses data: a node is first turned into a tombstone by a
//! conditional write (the version read, still live), then purged: its edges and every item
//! of its postings partition, the tombstone last.
//!
//! The condition is what decides races. An update that lands between the read and the
//! tombstone fails the condition; the node is then tombstoned at its new version (whose
//! keywords the `node.deleted` event carries). Of two deletes of one node only one write
//! succeeds; the other finds a tombstone and reports "not found". An edge cannot be attached
//! to a tombstone (`insert_edge` checks that both ends are live in its transaction), so the
//! edges a purge lists after the tombstone are all the edges there will ever be.
//!
//! Conditional writes cannot travel in BatchWriteItem: with `batch_writes` on, up to 25
//! tombstones go in one TransactWriteItems (a chunk of one is a plain UpdateItem); off, one
//! UpdateItem per node. Chunks follow `parallel_chunks` like every batch.

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnConsumedCapacity, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update};
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt};

use super::batch::{self, MAX_BATCH_WRITE, TaggedWrite, chunked, is_throttled};
use super::items::{self, Item};
use super::schema::SCHEMA;
use super::{DynamoGraphStore, build_error, delete_request, keys, sdk_error};
use crate::adapters::aws::retry::STORE_RETRY;
use crate::domain::{Node, NodeId, UserId};
use crate::ports::{DeleteOutcome, StoreError, WriteFailure};

/// What became of one node's tombstone write.
enum Attempt {
    Done,
    /// Absent, or tombstoned by someone else.
    Gone,
    /// Live at another version than the one read: try again with this one.
    Changed(Box<Node>),
    /// Not written for a reason that passes (a transaction conflict, a sibling's failure).
    Again,
    Failed(WriteFailure),
}

/// Reads what the condition failed on: `Gone` unless it is a live node, or our own tombstone
/// (a call that succeeded, retried after its answer was lost).
fn judge(old: Option<&Item>, deletion: &str) -> Attempt {
    let Some(item) = old else { return Attempt::Gone };
    if items::is_deleted(item) {
        return if items::string_attribute(item, items::DELETION_ID) == Some(deletion) {
            Attempt::Done
        } else {
            Attempt::Gone
        };
    }
    match items::node_from_item(item.clone()) {
        Ok(node) => Attempt::Changed(Box::new(node)),
        Err(error) => Attempt::Failed(error.into()),
    }
}

impl DynamoGraphStore {
    /// Tombstones the live nodes among `ids` (see the module documentation).
    pub(super) async fn tombstone(
        &self,
        user: &UserId,
        ids: &[NodeId],
        at: DateTime<Utc>,
    ) -> Result<DeleteOutcome, StoreError> {
        let mut unique = Vec::with_capacity(ids.len());
        let mut seen = HashSet::new();
        for id in ids {
            if seen.insert(*id) {
                unique.push(*id);
            }
        }
        let keys = unique.iter().map(|id| items::node_key(user, *id)).collect();
        let mut live: HashMap<NodeId, Node> = HashMap::new();
        for item in batch::get_all(&self.client(), &self.table, keys, self.batch_policy()).await? {
            if !items::is_deleted(&item) {
                let node = items::node_from_item(item)?;
                live.insert(node.id, node);
            }
        }
        let mut outcome = DeleteOutcome::default();
        let mut pending = Vec::with_capacity(live.len());
        for id in unique {
            match live.remove(&id) {
                Some(node) => pending.push(node),
                None => outcome.failed.push((id, WriteFailure::NotFound)),
            }
        }
        let deletion = uuid::Uuid::now_v7().to_string();
        let size = if self.flags.batch_writes { MAX_BATCH_WRITE } else { 1 };
        let chunks: Vec<DeleteOutcome> = stream::iter(chunked(pending, size))
            .map(|chunk| self.tombstone_chunk(chunk, at, &deletion))
            .buffer_unordered(self.batch_policy().concurrency)
            .collect()
            .await;
        for chunk in chunks {
            outcome.deleted.extend(chunk.deleted);
            outcome.failed.extend(chunk.failed);
        }
        Ok(outcome)
    }

    /// Tombstones one chunk, retrying what did not pass with backoff: nodes changed since the
    /// read at their new version, the others as they were.
    async fn tombstone_chunk(&self, mut chunk: Vec<Node>, at: DateTime<Utc>, deletion: &str) -> DeleteOutcome {
        let mut outcome = DeleteOutcome::default();
        let mut delays = STORE_RETRY.delays();
        loop {
            let mut busy = false;
            let attempts = match self.tombstone_once(&chunk, at, deletion).await {
                Ok(attempts) => attempts,
                Err(error) if is_throttled(&error) => {
                    busy = true;
                    chunk.iter().map(|_| Attempt::Again).collect()
                }
                Err(error) => {
                    let failure = WriteFailure::from(error);
                    outcome.failed.extend(chunk.into_iter().map(|node| (node.id, failure.clone())));
                    return outcome;
                }
            };
            let mut again = Vec::new();
            let mut changed = false;
            for (node, attempt) in chunk.into_iter().zip(attempts) {
                match attempt {
                    Attempt::Done => outcome.deleted.push(node),
                    Attempt::Gone => outcome.failed.push((node.id, WriteFailure::NotFound)),
                    Attempt::Changed(newer) => {
                        changed = true;
                        again.push(*newer);
                    }
                    Attempt::Again => again.push(node),
                    Attempt::Failed(failure) => outcome.failed.push((node.id, failure)),
                }
            }
            chunk = again;
            if chunk.is_empty() {
                return outcome;
            }
            let Some(delay) = delays.next() else {
                // Out of attempts: busy if the store was shedding load, else other writers
                // kept changing these nodes.
                let failure = if busy { batch::busy_after_retries() } else { WriteFailure::Conflict };
                outcome.failed.extend(chunk.into_iter().map(|node| (node.id, failure.clone())));
                return outcome;
            };
            // A node that changed is worth trying at its new version at once; anything else
            // waits, so that the competing write or the load passes.
            if !changed {
                tokio::time::sleep(delay).await;
            }
        }
    }

    /// One tombstone write per node of `chunk`, in one call; per node what became of it.
    async fn tombstone_once(
        &self,
        chunk: &[Node],
        at: DateTime<Utc>,
        deletion: &str,
    ) -> Result<Vec<Attempt>, StoreError> {
        if let [node] = chunk {
            return self.tombstone_one(node, at, deletion).await.map(|attempt| vec![attempt]);
        }
        let writes = chunk
            .iter()
            .map(|node| {
                let marks =
                    items::tombstone_marks(&node.user_id, node.id, node.version, at.timestamp_millis(), deletion);
                let update = Update::builder()
                    .table_name(&self.table)
                    .set_key(Some(items::node_key(&node.user_id, node.id)))
                    .update_expression(marks.update)
                    .condition_expression(marks.condition)
                    .set_expression_attribute_names(Some(marks.names))
                    .set_expression_attribute_values(Some(marks.values))
                    .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                    .build()
                    .map_err(build_error)?;
                Ok(TransactWriteItem::builder().update(update).build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let result = self
            .client()
            .transact_write_items()
            .set_transact_items(Some(writes))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        let error = match result {
            Ok(_) => return Ok(chunk.iter().map(|_| Attempt::Done).collect()),
            Err(error) => error,
        };
        let reasons = match &error {
            SdkError::ServiceError(service) => match service.err() {
                TransactWriteItemsError::TransactionCanceledException(cancelled) => {
                    cancelled.cancellation_reasons().to_vec()
                }
                _ => return Err(sdk_error(error)),
            },
            _ => return Err(sdk_error(error)),
        };
        if reasons.len() != chunk.len() {
            return Err(sdk_error(error));
        }
        Ok(reasons
            .iter()
            .map(|reason| match reason.code() {
                Some("ConditionalCheckFailed") => judge(reason.item.as_ref(), deletion),
                // "None": this item was fine, another one cancelled the transaction.
                Some("None") | None => Attempt::Again,
                Some("TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded") => Attempt::Again,
                Some(other) => Attempt::Failed(WriteFailure::Unavailable(format!(
                    "{other}: {}",
                    reason.message().unwrap_or_default()
                ))),
            })
            .collect())
    }

    async fn tombstone_one(&self, node: &Node, at: DateTime<Utc>, deletion: &str) -> Result<Attempt, StoreError> {
        let marks = items::tombstone_marks(&node.user_id, node.id, node.version, at.timestamp_millis(), deletion);
        let result = self
            .client()
            .update_item()
            .table_name(&self.table)
            .set_key(Some(items::node_key(&node.user_id, node.id)))
            .update_expression(marks.update)
            .condition_expression(marks.condition)
            .set_expression_attribute_names(Some(marks.names))
            .set_expression_attribute_values(Some(marks.values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Attempt::Done),
            Err(SdkError::ServiceError(service))
                if matches!(service.err(), UpdateItemError::ConditionalCheckFailedException(_)) =>
            {
                let UpdateItemError::ConditionalCheckFailedException(failed) = service.err() else { unreachable!() };
                Ok(judge(failed.item(), deletion))
            }
            Err(error) => Err(sdk_error(error)),
        }
    }

    /// Removes everything of tombstoned nodes: both copies of each edge, every item of the
    /// postings partition, then the tombstone, only for nodes whose dependents all went (so
    /// a failed purge leaves the tombstone in the deletion queue for the next sweep).
    /// Returns the nodes whose purge did not complete, each with why.
    pub(super) async fn purge_tombstones(
        &self,
        user: &UserId,
        ids: &[NodeId],
    ) -> Result<HashMap<NodeId, WriteFailure>, StoreError> {
        let listed: Vec<(NodeId, Result<Vec<Item>, StoreError>)> = stream::iter(ids.to_vec())
            .map(|id| async move { (id, self.dependents_of(user, id).await) })
            .buffer_unordered(self.batch_policy().concurrency)
            .collect()
            .await;
        let mut failed = HashMap::new();
        let mut dependents = Vec::new();
        for (owner, keys) in listed {
            match keys {
                Ok(keys) => {
                    for key in keys {
                        dependents.push(TaggedWrite { tag: owner, request: delete_request(key)? });
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, node = %owner, "listing a deleted node's edges and postings failed");
                    failed.insert(owner, error.into());
                }
            }
        }
        failed.extend(self.write_phase(dependents).await?);
        let tombstones = ids
            .iter()
            .filter(|id| !failed.contains_key(id))
            .map(|&id| Ok(TaggedWrite { tag: id, request: delete_request(items::node_key(user, id))? }))
            .collect::<Result<Vec<_>, StoreError>>()?;
        failed.extend(self.write_phase(tombstones).await?);
        Ok(failed)
    }

    /// Keys of every item that hangs off a node: both copies of its edges, and every item
    /// of its postings partition, whatever keywords the node had at any time.
    async fn dependents_of(&self, user: &UserId, node: NodeId) -> Result<Vec<Item>, StoreError> {
        let mut dependents = self.edge_keys_of(user, node).await?;
        let mut query = self.query_partition(keys::posting_partition(user, node));
        if self.flags.projections {
            query = query.projection_expression("#pk, #sk").expression_attribute_names("#sk", &SCHEMA.sort_key);
        }
        for item in self.query_all(query).await? {
            let (partition, sort) = items::primary_key_of(&item)
                .ok_or_else(|| StoreError::Unavailable("posting without a primary key".into()))?;
            dependents.push(items::primary_key(partition, sort));
        }
        Ok(dependents)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use aws_sdk_dynamodb::Client;
    use aws_sdk_dynamodb::error::ErrorMetadata;
    use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemOutput;
    use aws_sdk_dynamodb::types::error::{
        ConditionalCheckFailedException, InternalServerError, ProvisionedThroughputExceededException,
    };
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};

    use super::*;
    use crate::app::{GraphService, ServiceError};
    use crate::domain::{KeywordExtractor, NodeDraft};
    use crate::flags::Flags;
    use crate::ports::GraphStore;

    const TABLE: &str = "nodes";

    /// A store whose reads find `node` and whose tombstone write always answers `error`:
    /// errors no emulator produces on demand.
    fn store_failing_with(node: &Node, error: fn() -> UpdateItemError) -> DynamoGraphStore {
        let item = items::node_to_item(node);
        let read: Rule = mock!(Client::batch_get_item)
            .sequence()
            .output(move || BatchGetItemOutput::builder().responses(TABLE, vec![item.clone()]).build())
            .repeatedly()
            .build();
        let write: Rule = mock!(Client::update_item).sequence().error(error).repeatedly().build();
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&read, &write]);
        DynamoGraphStore::new(client, TABLE, Flags::OPTIMIZED)
    }

    fn node() -> Node {
        let user = UserId::parse("alice").unwrap();
        Node::create(user, NodeDraft::new("harbour cranes", &[]).unwrap(), &KeywordExtractor::new(), Utc::now())
    }

    fn internal_error() -> UpdateItemError {
        UpdateItemError::InternalServerError(
            InternalServerError::builder()
                .message("boom")
                .meta(ErrorMetadata::builder().code("InternalServerError").message("boom").build())
                .build(),
        )
    }

    fn throttled() -> UpdateItemError {
        UpdateItemError::ProvisionedThroughputExceededException(
            ProvisionedThroughputExceededException::builder()
                .message("slow down")
                .meta(ErrorMetadata::builder().code("ProvisionedThroughputExceededException").build())
                .build(),
        )
    }

    fn condition_failed_on_nothing() -> UpdateItemError {
        UpdateItemError::ConditionalCheckFailedException(
            ConditionalCheckFailedException::builder()
                .message("The conditional request failed")
                .meta(ErrorMetadata::builder().code("ConditionalCheckFailedException").build())
                .build(),
        )
    }

    async fn failure_of(node: &Node, error: fn() -> UpdateItemError) -> WriteFailure {
        let store = store_failing_with(node, error);
        let outcome = store.mark_deleted(&node.user_id, &[node.id], Utc::now()).await.unwrap();
        assert!(outcome.deleted.is_empty());
        outcome.failed.into_iter().next().expect("the node is reported").1
    }

    #[tokio::test]
    async fn a_failed_tombstone_is_reported_as_what_happened() {
        let node = node();
        assert!(
            matches!(failure_of(&node, internal_error).await, WriteFailure::Unavailable(reason) if reason.contains("boom"))
        );
        assert_eq!(failure_of(&node, throttled).await, WriteFailure::Throttled);
        // The node vanished between the read and the write: someone else deleted it.
        assert_eq!(failure_of(&node, condition_failed_on_nothing).await, WriteFailure::NotFound);
    }

    #[tokio::test]
    async fn a_single_delete_that_fails_says_why_instead_of_throttled() {
        let node = node();
        let service = |error| {
            let store: Arc<dyn GraphStore> = Arc::new(store_failing_with(&node, error));
            GraphService::new(store, Arc::new(crate::outbox::TableOutbox), true)
        };
        let answer = service(internal_error).delete_node(&node.user_id, node.id).await;
        assert!(matches!(answer, Err(ServiceError::Store(StoreError::Unavailable(_)))), "{answer:?}");
        let answer = service(condition_failed_on_nothing).delete_node(&node.user_id, node.id).await;
        assert!(matches!(answer, Err(ServiceError::NodeNotFound(id)) if id == node.id), "{answer:?}");
        let answer = service(throttled).delete_node(&node.user_id, node.id).await;
        assert!(matches!(answer, Err(ServiceError::Store(StoreError::Throttled(_)))), "{answer:?}");
    }

    #[test]
    fn a_failed_condition_is_judged_by_what_the_item_holds() {
        let node = node();
        let mut item = items::node_to_item(&node);
        assert!(matches!(judge(None, "mine"), Attempt::Gone));
        assert!(matches!(judge(Some(&item), "mine"), Attempt::Changed(newer) if newer.id == node.id));
        item.insert(items::DELETED_AT.into(), aws_sdk_dynamodb::types::AttributeValue::N("1".into()));
        item.insert(items::DELETION_ID.into(), super::super::string("theirs"));
        assert!(matches!(judge(Some(&item), "mine"), Attempt::Gone));
        assert!(matches!(judge(Some(&item), "theirs"), Attempt::Done));
    }
}
