//! The graph store on one DynamoDB table (see `docs/table-design.md`).

mod batch;
pub mod changes;
mod delete;
mod graph;
pub mod items;
pub mod keys;
pub mod live;
pub mod schema;
pub mod stream_reader;

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, DeleteRequest, Put, PutRequest, ReturnConsumedCapacity, TransactWriteItem,
    Update, WriteRequest,
};
use aws_smithy_types::error::display::DisplayErrorContext;
use chrono::{DateTime, Utc};
use futures::stream::{self, StreamExt, TryStreamExt};

use self::batch::{BatchPolicy, CHUNK_CONCURRENCY, TaggedWrite};
use self::items::{Item, entity_of};
use self::schema::{IndexSchema, SCHEMA};
use crate::adapters::aws::dynamodb_client;
use crate::adapters::aws::retry::STORE_RETRY;
use crate::domain::similarity::DocumentFrequencies;
use crate::domain::{Edge, Node, NodeId, UserId};
use crate::flags::Flags;
use crate::ports::{
    BatchOutcome, DeleteOutcome, DeletedNode, Graph, GraphCursor, GraphStore, ListCursor, Page, StoreError,
    WriteFailure,
};

/// How long an applied-event marker is kept: far longer than any queue redelivers.
const APPLIED_MARKER_TTL_SECONDS: i64 = 7 * 24 * 3600;
/// Rounds of deleting the postings of nodes a bulk create could not write.
const POSTING_REMOVAL_ROUNDS: usize = 3;
/// A node that exists and is not soft-deleted.
const LIVE_NODE: &str = "attribute_exists(#pk) AND attribute_not_exists(deletedAt)";

/// Error codes DynamoDB uses when it sheds load; worth retrying later.
const THROTTLING_CODES: [&str; 4] = [
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TransactionConflictException",
];

pub(crate) fn sdk_error<E, R>(error: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let transient = match &error {
        SdkError::ServiceError(service) => THROTTLING_CODES.contains(&service.err().code().unwrap_or_default()),
        SdkError::TimeoutError(_) => true,
        _ => false,
    };
    // Once the request's deadline has passed, a call that timed out, could not be sent or
    // was shed failed for want of time, and is not retried.
    let cut_short = transient || matches!(error, SdkError::DispatchFailure(_));
    if cut_short && crate::deadline::expired() {
        return StoreError::DeadlineExceeded;
    }
    let message = DisplayErrorContext(&error).to_string();
    if transient { StoreError::Throttled(message) } else { StoreError::Unavailable(message) }
}

fn build_error(error: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Unavailable(format!("invalid request: {error}"))
}

fn string(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// Which transaction items failed their condition, by position.
fn failed_conditions(error: &SdkError<TransactWriteItemsError, impl std::fmt::Debug>) -> Option<Vec<usize>> {
    let SdkError::ServiceError(service) = error else {
        return None;
    };
    let TransactWriteItemsError::TransactionCanceledException(cancelled) = service.err() else {
        return None;
    };
    Some(
        cancelled
            .cancellation_reasons()
            .iter()
            .enumerate()
            .filter(|(_, reason)| reason.code() == Some("ConditionalCheckFailed"))
            .map(|(index, _)| index)
            .collect(),
    )
}

fn put_request(item: Item) -> Result<WriteRequest, StoreError> {
    let put = PutRequest::builder().set_item(Some(item)).build().map_err(build_error)?;
    Ok(WriteRequest::builder().put_request(put).build())
}

fn delete_request(key: Item) -> Result<WriteRequest, StoreError> {
    let delete = DeleteRequest::builder().set_key(Some(key)).build().map_err(build_error)?;
    Ok(WriteRequest::builder().delete_request(delete).build())
}

#[derive(Clone)]
pub struct DynamoGraphStore {
    client: Client,
    table: String,
    flags: Flags,
}

impl DynamoGraphStore {
    pub fn new(client: Client, table: impl Into<String>, flags: Flags) -> Self {
        Self { client, table: table.into(), flags }
    }

    /// The request's own client when `client_reuse` is off, else the process-wide one.
    fn client(&self) -> Client {
        dynamodb_client(&self.client)
    }

    fn batch_policy(&self) -> BatchPolicy {
        BatchPolicy {
            batch_writes: self.flags.batch_writes,
            batch_reads: self.flags.batch_reads,
            concurrency: if self.flags.parallel_chunks { CHUNK_CONCURRENCY } else { 1 },
        }
    }

    fn put(&self, item: Item, condition: Option<&str>) -> Result<TransactWriteItem, StoreError> {
        let mut put = Put::builder().table_name(&self.table).set_item(Some(item));
        if let Some(condition) = condition {
            // DynamoDB rejects attribute names that no expression uses, so only name `#pk` here.
            put = put.condition_expression(condition).expression_attribute_names("#pk", &SCHEMA.partition_key);
        }
        Ok(TransactWriteItem::builder().put(put.build().map_err(build_error)?).build())
    }

    fn delete(&self, key: Item, must_exist: bool) -> Result<TransactWriteItem, StoreError> {
        let mut delete = Delete::builder().table_name(&self.table).set_key(Some(key));
        if must_exist {
            delete = delete
                .condition_expression("attribute_exists(#pk)")
                .expression_attribute_names("#pk", &SCHEMA.partition_key);
        }
        Ok(TransactWriteItem::builder().delete(delete.build().map_err(build_error)?).build())
    }

    fn node_exists(&self, user: &UserId, node: NodeId) -> Result<TransactWriteItem, StoreError> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(items::node_key(user, node)))
            .condition_expression(LIVE_NODE)
            .expression_attribute_names("#pk", &SCHEMA.partition_key)
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    async fn transact(&self, writes: Vec<TransactWriteItem>) -> Result<Result<(), Vec<usize>>, StoreError> {
        match self
            .client()
            .transact_write_items()
            .set_transact_items(Some(writes))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await
        {
            Ok(_) => Ok(Ok(())),
            Err(error) => match failed_conditions(&error) {
                Some(failed) if !failed.is_empty() => Ok(Err(failed)),
                _ => Err(sdk_error(error)),
            },
        }
    }

    /// Every item of a query, following `LastEvaluatedKey` to the end.
    async fn query_all(&self, query: QueryFluentBuilder) -> Result<Vec<Item>, StoreError> {
        STORE_RETRY.run(|| self.query_all_once(query.clone()), batch::is_throttled).await
    }

    async fn query_all_once(&self, query: QueryFluentBuilder) -> Result<Vec<Item>, StoreError> {
        query.into_paginator().items().send().try_collect().await.map_err(sdk_error)
    }

    fn query_partition(&self, partition: String) -> QueryFluentBuilder {
        self.client()
            .query()
            .table_name(&self.table)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", &SCHEMA.partition_key)
            .expression_attribute_values(":pk", string(partition))
    }

    /// A newest-first Query of one partition of a secondary index, at most `limit` items.
    fn query_index_newest_first(&self, index: &IndexSchema, partition: String, limit: usize) -> QueryFluentBuilder {
        self.client()
            .query()
            .table_name(&self.table)
            .index_name(&index.name)
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", &index.partition_key)
            .expression_attribute_values(":pk", string(partition))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
    }

    /// One write request per keyword posting of `node`, tagged with the node.
    fn posting_requests(
        node: &Node,
        request: impl Fn(&str) -> Result<WriteRequest, StoreError>,
    ) -> Result<Vec<TaggedWrite<NodeId>>, StoreError> {
        node.keywords.iter().map(|keyword| Ok(TaggedWrite { tag: node.id, request: request(keyword)? })).collect()
    }

    /// One Put per keyword posting of `node`.
    fn posting_writes(node: &Node) -> Result<Vec<TaggedWrite<NodeId>>, StoreError> {
        Self::posting_requests(node, |keyword| put_request(items::posting_to_item(&node.user_id, node.id, keyword)))
    }

    /// Writes `writes`, then reports which owners failed, and why.
    async fn write_phase(&self, writes: Vec<TaggedWrite<NodeId>>) -> Result<HashMap<NodeId, WriteFailure>, StoreError> {
        Ok(batch::write_all(&self.client(), &self.table, writes, self.batch_policy()).await?.into_iter().collect())
    }

    /// Deletes the postings of the nodes of a bulk create that failed (some were written
    /// before their node failed): a retry of such a node writes new ones under a new id.
    /// A few rounds, each with the store's retries, while the deadline allows; what is
    /// still left then is logged (searches skip postings whose node does not exist).
    async fn remove_postings_of_failed(
        &self,
        nodes: &[Node],
        failed: &HashMap<NodeId, WriteFailure>,
    ) -> Result<(), StoreError> {
        let mut left: Vec<&Node> = nodes.iter().filter(|node| failed.contains_key(&node.id)).collect();
        for _ in 0..POSTING_REMOVAL_ROUNDS {
            if left.is_empty() || crate::deadline::expired() {
                break;
            }
            let mut deletes = Vec::new();
            for node in &left {
                deletes.extend(Self::posting_requests(node, |keyword| {
                    delete_request(items::posting_key(&node.user_id, node.id, keyword))
                })?);
            }
            let still = self.write_phase(deletes).await?;
            left.retain(|node| still.contains_key(&node.id));
        }
        if !left.is_empty() {
            let ids: Vec<NodeId> = left.iter().map(|node| node.id).collect();
            tracing::warn!(nodes = ?ids, "postings of nodes that failed to be created were left behind");
        }
        Ok(())
    }

    /// Keys of both directions of every edge of `node`.
    async fn edge_keys_of(&self, user: &UserId, node: NodeId) -> Result<Vec<Item>, StoreError> {
        let mut query = self
            .query_partition(keys::user_partition(user))
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#sk", &SCHEMA.sort_key)
            .expression_attribute_values(":prefix", string(keys::edge_prefix(node)));
        if self.flags.projections {
            // The sort key names the other end; nothing else of the edge is needed to delete it.
            query = query.projection_expression("#sk");
        }
        let mut edge_keys = Vec::new();
        for item in self.query_all(query).await? {
            let other = items::string_attribute(&item, &SCHEMA.sort_key)
                .and_then(keys::parse_edge_sort_key)
                .filter(|(owner, _)| *owner == node)
                .map(|(_, other)| other)
                .ok_or_else(|| StoreError::Unavailable("malformed edge sort key".into()))?;
            edge_keys.push(items::edge_key(user, node, other));
            edge_keys.push(items::edge_key(user, other, node));
        }
        Ok(edge_keys)
    }

    /// The raw node item, soft-deleted or not.
    async fn node_item(&self, user: &UserId, id: NodeId) -> Result<Option<Item>, StoreError> {
        let client = self.client();
        let output = batch::retry_transient(|| {
            client
                .get_item()
                .table_name(&self.table)
                .set_key(Some(items::node_key(user, id)))
                .consistent_read(true)
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
        })
        .await?;
        Ok(output.item)
    }
}

fn outcome(ids: impl Iterator<Item = NodeId>, failed: &HashMap<NodeId, WriteFailure>) -> BatchOutcome {
    let mut result = BatchOutcome::default();
    for id in ids {
        match failed.get(&id) {
            Some(failure) => result.failed.push((id, failure.clone())),
            None => result.succeeded.push(id),
        }
    }
    result
}

#[async_trait]
impl GraphStore for DynamoGraphStore {
    async fn insert_node(&self, node: &Node) -> Result<(), StoreError> {
        let mut writes = vec![self.put(items::node_to_item(node), Some("attribute_not_exists(#pk)"))?];
        for keyword in &node.keywords {
            writes.push(self.put(items::posting_to_item(&node.user_id, node.id, keyword), None)?);
        }
        self.transact(writes).await?.map_err(|_| StoreError::VersionConflict)
    }

    async fn insert_nodes(&self, nodes: &[Node]) -> Result<BatchOutcome, StoreError> {
        // Postings first, node items second: a node becomes visible only once it is
        // searchable, and a failed node leaves at most postings that no read returns.
        let mut posting_writes = Vec::new();
        for node in nodes {
            posting_writes.extend(Self::posting_writes(node)?);
        }
        let mut failed = self.write_phase(posting_writes).await?;
        let node_writes = nodes
            .iter()
            .filter(|node| !failed.contains_key(&node.id))
            .map(|node| Ok(TaggedWrite { tag: node.id, request: put_request(items::node_to_item(node))? }))
            .collect::<Result<Vec<_>, StoreError>>()?;
        failed.extend(self.write_phase(node_writes).await?);
        self.remove_postings_of_failed(nodes, &failed).await?;
        Ok(outcome(nodes.iter().map(|n| n.id), &failed))
    }

    async fn get_node(&self, user: &UserId, id: NodeId) -> Result<Option<Node>, StoreError> {
        match self.node_item(user, id).await? {
            Some(item) if !items::is_deleted(&item) => items::node_from_item(item).map(Some),
            _ => Ok(None),
        }
    }

    async fn get_nodes(&self, user: &UserId, ids: &[NodeId]) -> Result<Vec<Node>, StoreError> {
        let unique: HashSet<NodeId> = ids.iter().copied().collect();
        let keys = unique.into_iter().map(|id| items::node_key(user, id)).collect();
        batch::get_all(&self.client(), &self.table, keys, self.batch_policy())
            .await?
            .into_iter()
            .filter(|item| !items::is_deleted(item))
            .map(items::node_from_item)
            .collect()
    }

    async fn replace_node(&self, previous: &Node, next: &Node) -> Result<(), StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(items::node_to_item(next)))
            .condition_expression("#version = :expected AND attribute_not_exists(deletedAt)")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":expected", AttributeValue::N(previous.version.to_string()))
            .build()
            .map_err(build_error)?;
        let mut writes = vec![TransactWriteItem::builder().put(put).build()];
        for gone in previous.keywords.iter().filter(|k| !next.keywords.contains(k)) {
            writes.push(self.delete(items::posting_key(&next.user_id, next.id, gone), false)?);
        }
        for added in next.keywords.iter().filter(|k| !previous.keywords.contains(k)) {
            writes.push(self.put(items::posting_to_item(&next.user_id, next.id, added), None)?);
        }
        self.transact(writes).await?.map_err(|_| StoreError::VersionConflict)
    }

    async fn delete_nodes(
        &self,
        user: &UserId,
        ids: &[NodeId],
        at: DateTime<Utc>,
    ) -> Result<DeleteOutcome, StoreError> {
        let outcome = self.tombstone(user, ids, at).await?;
        let deleted: Vec<NodeId> = outcome.deleted.iter().map(|node| node.id).collect();
        // The nodes are deleted once tombstoned, and the caller must hear so (it announces
        // them): a purge that fails here, in part or as a whole, is finished by the cleanup
        // sweep, which finds the tombstones in the deletion queue.
        match self.purge_tombstones(user, &deleted).await {
            Ok(failed) => {
                for (id, failure) in failed {
                    tracing::warn!(node = %id, %failure, "purge left to the deletion queue");
                }
            }
            Err(error) => tracing::warn!(%error, nodes = ?deleted, "purge left to the deletion queue"),
        }
        Ok(outcome)
    }

    async fn mark_deleted(
        &self,
        user: &UserId,
        ids: &[NodeId],
        at: DateTime<Utc>,
    ) -> Result<DeleteOutcome, StoreError> {
        self.tombstone(user, ids, at).await
    }

    async fn deletion_queue(&self, before: DateTime<Utc>, limit: usize) -> Result<Vec<DeletedNode>, StoreError> {
        let index = &SCHEMA.indexes.deletion_queue;
        let cutoff = format!("{:013}", before.timestamp_millis());
        let per_shard = i32::try_from(limit).unwrap_or(i32::MAX);
        let shards: Vec<Vec<Item>> = stream::iter(0..items::DELETION_SHARDS)
            .map(|shard| {
                self.client()
                    .query()
                    .table_name(&self.table)
                    .index_name(&index.name)
                    .key_condition_expression("#pk = :shard AND #sk < :cutoff")
                    .expression_attribute_names("#pk", &index.partition_key)
                    .expression_attribute_names("#sk", &index.sort_key)
                    .expression_attribute_values(":shard", string(keys::deletion_shard(shard)))
                    .expression_attribute_values(":cutoff", string(cutoff.clone()))
                    .limit(per_shard)
                    .return_consumed_capacity(ReturnConsumedCapacity::Total)
                    .send()
            })
            .buffer_unordered(CHUNK_CONCURRENCY)
            .map(|result| result.map(|output| output.items.unwrap_or_default()).map_err(sdk_error))
            .try_collect()
            .await?;
        let mut queue = Vec::new();
        for item in shards.into_iter().flatten() {
            let entry = items::string_attribute(&item, &index.sort_key).unwrap_or_default();
            if let Some((_, user_id, node_id)) = keys::parse_deletion_sort_key(entry) {
                queue.push(DeletedNode { user_id, node_id });
            }
        }
        queue.truncate(limit);
        Ok(queue)
    }

    async fn purge_deleted(&self, user: &UserId, id: NodeId) -> Result<bool, StoreError> {
        let Some(item) = self.node_item(user, id).await? else { return Ok(false) };
        if !items::is_deleted(&item) {
            // Only a node that was soft-deleted may be purged; a live one is left alone.
            return Ok(false);
        }
        match self.purge_tombstones(user, &[id]).await?.remove(&id) {
            None => Ok(true),
            Some(WriteFailure::Unavailable(reason)) => Err(StoreError::Unavailable(reason)),
            Some(failure) => Err(StoreError::Throttled(failure.to_string())),
        }
    }

    async fn list_nodes(
        &self,
        user: &UserId,
        limit: usize,
        after: Option<ListCursor>,
    ) -> Result<Page<Node>, StoreError> {
        let index = &SCHEMA.indexes.user_time;
        let start = after.map(|cursor| {
            let mut key = items::node_key(user, cursor.node_id);
            key.insert(index.partition_key.clone(), string(keys::user_partition(user)));
            key.insert(index.sort_key.clone(), string(keys::time_sort_key(cursor.created_at_ms, cursor.node_id)));
            key
        });
        // One item more than asked tells whether another page exists without a wasted call.
        let output = self
            .query_index_newest_first(index, keys::user_partition(user), limit + 1)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(sdk_error)?;
        let more_in_table = output.last_evaluated_key.is_some();
        let mut nodes: Vec<Node> =
            output.items.unwrap_or_default().into_iter().map(items::node_from_item).collect::<Result<_, _>>()?;
        let has_more = nodes.len() > limit || more_in_table;
        nodes.truncate(limit);
        let next = match nodes.last() {
            Some(last) if has_more => {
                Some(ListCursor { created_at_ms: last.created_at.timestamp_millis(), node_id: last.id })
            }
            _ => None,
        };
        Ok(Page { items: nodes, next })
    }

    async fn graph(&self, user: &UserId, limit: usize, after: Option<GraphCursor>) -> Result<Graph, StoreError> {
        self.graph_page(user, limit, after).await
    }

    async fn insert_edge(&self, edge: &Edge) -> Result<(), StoreError> {
        let [forward, reverse] = items::edge_to_items(edge);
        let writes = vec![
            self.node_exists(&edge.user_id, edge.source)?,
            self.node_exists(&edge.user_id, edge.target)?,
            self.put(forward, Some("attribute_not_exists(#pk)"))?,
            self.put(reverse, Some("attribute_not_exists(#pk)"))?,
        ];
        match self.transact(writes).await? {
            Ok(()) => Ok(()),
            Err(failed) if failed.iter().any(|&index| index < 2) => Err(StoreError::NodeMissing),
            Err(_) => Err(StoreError::EdgeExists),
        }
    }

    async fn delete_edge(&self, user: &UserId, a: NodeId, b: NodeId) -> Result<bool, StoreError> {
        let writes =
            vec![self.delete(items::edge_key(user, a, b), true)?, self.delete(items::edge_key(user, b, a), false)?];
        Ok(self.transact(writes).await?.is_ok())
    }

    async fn node_edges(&self, user: &UserId, id: NodeId) -> Result<Option<Vec<Edge>>, StoreError> {
        // `NODE#<id>` prefixes exactly the node item and its edges (ids have a fixed length),
        // so one Query says whether the node exists and lists its adjacency.
        let query = self
            .query_partition(keys::user_partition(user))
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#sk", &SCHEMA.sort_key)
            .expression_attribute_values(":prefix", string(keys::node_sort_key(id)));
        let mut node_found = false;
        let mut edges = Vec::new();
        for item in self.query_all(query).await? {
            match entity_of(&item) {
                Some(items::ENTITY_NODE) => node_found = !items::is_deleted(&item),
                Some(items::ENTITY_EDGE) => edges.push(items::edge_from_item(user, item)?.0),
                _ => {}
            }
        }
        Ok(node_found.then_some(edges))
    }

    async fn nodes_with_keyword(&self, user: &UserId, keyword: &str, limit: usize) -> Result<Vec<NodeId>, StoreError> {
        let index = &SCHEMA.indexes.keyword;
        let mut query = self.query_index_newest_first(index, keys::keyword_partition(user, keyword), limit);
        if self.flags.projections {
            query = query.projection_expression("nodeId");
        }
        let output = query.send().await.map_err(sdk_error)?;
        output
            .items
            .unwrap_or_default()
            .iter()
            .map(|item| {
                let raw = items::string_attribute(item, "nodeId").unwrap_or_default();
                NodeId::parse(raw).map_err(|e| StoreError::Unavailable(format!("malformed posting: {e}")))
            })
            .collect()
    }

    async fn apply_frequency_change(
        &self,
        user: &UserId,
        event_id: uuid::Uuid,
        added: &[String],
        removed: &[String],
        documents_delta: i64,
    ) -> Result<bool, StoreError> {
        let partition = keys::frequency_partition(user);
        // The marker makes the transaction happen once per event, however often the event
        // is delivered; it expires long after any redelivery could arrive.
        let mut marker = items::primary_key(partition.clone(), keys::applied_event_sort_key(event_id));
        let expires = Utc::now().timestamp() + APPLIED_MARKER_TTL_SECONDS;
        marker.insert(SCHEMA.ttl_attribute.clone(), AttributeValue::N(expires.to_string()));
        let mut writes = vec![self.put(marker, Some("attribute_not_exists(#pk)"))?];
        let mut deltas: Vec<(String, i64)> = Vec::new();
        for keyword in added.iter().filter(|k| !removed.contains(k)) {
            deltas.push((keys::frequency_sort_key(keyword), 1));
        }
        for keyword in removed.iter().filter(|k| !added.contains(k)) {
            deltas.push((keys::frequency_sort_key(keyword), -1));
        }
        if documents_delta != 0 {
            deltas.push((keys::FREQUENCY_TOTAL.to_owned(), documents_delta));
        }
        for (sort_key, delta) in deltas {
            let update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(items::primary_key(partition.clone(), sort_key)))
                .update_expression("ADD #count :delta")
                .expression_attribute_names("#count", "count")
                .expression_attribute_values(":delta", AttributeValue::N(delta.to_string()))
                .build()
                .map_err(build_error)?;
            writes.push(TransactWriteItem::builder().update(update).build());
        }
        Ok(self.transact(writes).await?.is_ok())
    }

    async fn document_frequencies(
        &self,
        user: &UserId,
        keywords: &[String],
    ) -> Result<DocumentFrequencies, StoreError> {
        let partition = keys::frequency_partition(user);
        let mut sort_keys: Vec<String> = keywords.iter().map(|k| keys::frequency_sort_key(k)).collect();
        sort_keys.push(keys::FREQUENCY_TOTAL.to_owned());
        sort_keys.sort();
        sort_keys.dedup();
        let requested = sort_keys.into_iter().map(|sk| items::primary_key(partition.clone(), sk)).collect();
        let mut frequencies = DocumentFrequencies::default();
        for item in batch::get_all(&self.client(), &self.table, requested, self.batch_policy()).await? {
            // Counters can dip below zero for a moment when a delete is counted before
            // the create it undoes; a frequency is never negative.
            let count = match item.get("count") {
                Some(AttributeValue::N(raw)) => raw.parse::<i64>().unwrap_or(0).max(0) as u64,
                _ => 0,
            };
            match items::string_attribute(&item, &SCHEMA.sort_key) {
                Some(keys::FREQUENCY_TOTAL) => frequencies.total_documents = count,
                Some(sort_key) => {
                    if let Some(keyword) = sort_key.strip_prefix("KW#") {
                        frequencies.per_keyword.insert(keyword.to_owned(), count);
                    }
                }
                None => {}
            }
        }
        Ok(frequencies)
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.client().describe_table().table_name(&self.table).send().await.map_err(sdk_error)?;
        Ok(())
    }
}
