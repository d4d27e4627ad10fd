//! The change log that reconnecting clients replay from, and the WebSocket connections
//! API Gateway holds for each user, on the service's table (keys in [`super::keys`]).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, PutRequest, TransactWriteItem, WriteRequest};
use chrono::Utc;

use super::batch::{self, BatchPolicy, TaggedWrite};
use super::items::{self, Item, primary_key};
use super::schema::SCHEMA;
use super::{build_error, keys, sdk_error, string};
use crate::adapters::aws::dynamodb_client;
use crate::domain::live::{LiveChange, LiveEvent, Subscription};
use crate::domain::{NodeId, UserId};
use crate::ports::{ChangeLog, Connection, ConnectionRegistry, Replay, StoreError};

/// How long a change stays replayable.
pub const CHANGE_LOG_RETENTION: Duration = Duration::from_secs(3600);
/// A replay longer than this is a reload: the client is better served by the graph itself.
pub const MAX_REPLAY: usize = 1_000;
/// API Gateway closes a WebSocket after two hours at most; an entry outliving that (its
/// `$disconnect` never came) expires on its own.
pub const CONNECTION_RETENTION: Duration = Duration::from_secs(2 * 3600);

const CHANGE_ATTRIBUTE: &str = "change";
const POSITION_ATTRIBUTE: &str = "position";
const USER_ATTRIBUTE: &str = "userId";
const NODES_ATTRIBUTE: &str = "nodeIds";

fn expires_in(retention: Duration) -> AttributeValue {
    let seconds = i64::try_from(retention.as_secs()).unwrap_or(i64::MAX);
    AttributeValue::N((Utc::now().timestamp() + seconds).to_string())
}

fn decode_error(what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("unreadable {what}: {error}"))
}

/// Both on one table client; cheap to clone.
#[derive(Clone)]
pub struct DynamoLive {
    client: Client,
    table: String,
}

impl DynamoLive {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    fn client(&self) -> Client {
        dynamodb_client(&self.client)
    }

    /// The change under its place in the log, and the marker that finds that place by the
    /// change's event id.
    fn change_items(event: &LiveEvent, logged: uuid::Uuid) -> Result<[Item; 2], StoreError> {
        let partition = keys::change_log_partition(&event.user_id);
        let position = keys::change_sort_key(logged);
        let mut change = primary_key(partition.clone(), position.clone());
        let json = serde_json::to_string(&event.change).map_err(|e| decode_error("change", e))?;
        change.insert(CHANGE_ATTRIBUTE.into(), string(json));
        let mut marker = primary_key(partition, keys::change_marker_sort_key(event.change.event_id));
        marker.insert(POSITION_ATTRIBUTE.into(), string(position));
        let expires = expires_in(CHANGE_LOG_RETENTION);
        change.insert(SCHEMA.ttl_attribute.clone(), expires.clone());
        marker.insert(SCHEMA.ttl_attribute.clone(), expires);
        Ok([change, marker])
    }

    /// Whether an item's time to live has passed: DynamoDB deletes expired items lazily.
    fn expired(item: &Item) -> bool {
        let expires = item.get(&SCHEMA.ttl_attribute).and_then(|value| value.as_n().ok()?.parse::<i64>().ok());
        expires.is_some_and(|expires| expires <= Utc::now().timestamp())
    }

    /// A connection item and its owner item are written and deleted together.
    async fn transact(&self, writes: Vec<TransactWriteItem>) -> Result<(), StoreError> {
        batch::retry_transient(|| self.client().transact_write_items().set_transact_items(Some(writes.clone())).send())
            .await
            .map(|_| ())
    }

    fn connection_key(user: &UserId, connection_id: &str) -> Item {
        primary_key(keys::connections_partition(user), keys::connection_sort_key(connection_id))
    }

    fn owner_key(connection_id: &str) -> Item {
        primary_key(keys::connection_owner_partition(connection_id), keys::CONNECTION_OWNER.to_owned())
    }

    fn connection_from_item(item: &Item) -> Option<Connection> {
        let sort_key = items::string_attribute(item, &SCHEMA.sort_key)?;
        let id = sort_key.strip_prefix(keys::CONNECTION_PREFIX)?.to_owned();
        let subscription = match item.get(NODES_ATTRIBUTE) {
            Some(AttributeValue::L(nodes)) => Subscription::nodes(
                nodes.iter().filter_map(|node| node.as_s().ok()).filter_map(|node| NodeId::parse(node).ok()),
            ),
            _ => Subscription::everything(),
        };
        Some(Connection { id, subscription })
    }
}

#[async_trait]
impl ChangeLog for DynamoLive {
    async fn append(&self, events: &[LiveEvent]) -> Result<(), StoreError> {
        let mut writes = Vec::with_capacity(events.len() * 2);
        for event in events {
            // Made one after the other, so that their order is the order of `events`.
            for item in Self::change_items(event, uuid::Uuid::now_v7())? {
                let put = PutRequest::builder().set_item(Some(item)).build().map_err(build_error)?;
                let request = WriteRequest::builder().put_request(put).build();
                writes.push(TaggedWrite { tag: event.change.event_id, request });
            }
        }
        let policy = BatchPolicy { batch_writes: true, batch_reads: true, concurrency: batch::CHUNK_CONCURRENCY };
        let failed = batch::write_all(&self.client(), &self.table, writes, policy).await?;
        match failed.first() {
            None => Ok(()),
            Some((event_id, failure)) => Err(StoreError::Throttled(format!(
                "{} of {} log items were not written (first of event {event_id}: {failure})",
                failed.len(),
                events.len() * 2
            ))),
        }
    }

    async fn since(&self, user: &UserId, last_seen: uuid::Uuid) -> Result<Replay, StoreError> {
        let partition = keys::change_log_partition(user);
        let marker = batch::retry_transient(|| {
            self.client()
                .get_item()
                .table_name(&self.table)
                .set_key(Some(primary_key(partition.clone(), keys::change_marker_sort_key(last_seen))))
                .send()
        })
        .await?
        .item;
        // Not in the log (any more, or ever, for this user): what came since is unknown.
        let position = match &marker {
            Some(marker) if !Self::expired(marker) => items::string_attribute(marker, POSITION_ATTRIBUTE),
            _ => None,
        };
        let Some(position) = position else {
            return Ok(Replay::Lost);
        };
        let mut pages = self
            .client()
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :end")
            .expression_attribute_names("#pk", &SCHEMA.partition_key)
            .expression_attribute_names("#sk", &SCHEMA.sort_key)
            .expression_attribute_values(":pk", string(&partition))
            .expression_attribute_values(":from", string(position))
            .expression_attribute_values(":end", string(keys::CHANGES_END))
            .into_paginator()
            .items()
            .send();
        // The seen change itself, the replay, and one more to tell a replay too long to send.
        let mut items: Vec<Item> = Vec::new();
        while items.len() < MAX_REPLAY + 2
            && let Some(item) = pages.next().await
        {
            items.push(item.map_err(sdk_error)?);
        }
        let after: Vec<&Item> = items
            .iter()
            .filter(|item| items::string_attribute(item, &SCHEMA.sort_key) != Some(position))
            .filter(|item| !Self::expired(item))
            .collect();
        if after.len() > MAX_REPLAY {
            return Ok(Replay::Lost);
        }
        after
            .into_iter()
            .map(|item| {
                let raw = items::string_attribute(item, CHANGE_ATTRIBUTE).unwrap_or_default();
                serde_json::from_str::<LiveChange>(raw).map_err(|e| decode_error("change", e))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Replay::Missed)
    }
}

#[async_trait]
impl ConnectionRegistry for DynamoLive {
    async fn register(&self, user: &UserId, connection_id: &str) -> Result<(), StoreError> {
        let expires = expires_in(CONNECTION_RETENTION);
        let mut connection = Self::connection_key(user, connection_id);
        connection.insert(SCHEMA.ttl_attribute.clone(), expires.clone());
        let mut owner = Self::owner_key(connection_id);
        owner.insert(USER_ATTRIBUTE.into(), string(user.as_str()));
        owner.insert(SCHEMA.ttl_attribute.clone(), expires);
        let put = |item: Item| {
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .build()
                .map(|put| TransactWriteItem::builder().put(put).build())
                .map_err(build_error)
        };
        self.transact(vec![put(connection)?, put(owner)?]).await
    }

    async fn unregister(&self, connection_id: &str) -> Result<Option<UserId>, StoreError> {
        let Some(user) = self.owner(connection_id).await? else {
            return Ok(None);
        };
        let delete = |key: Item| {
            Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key))
                .build()
                .map(|delete| TransactWriteItem::builder().delete(delete).build())
                .map_err(build_error)
        };
        self.transact(vec![
            delete(Self::connection_key(&user, connection_id))?,
            delete(Self::owner_key(connection_id))?,
        ])
        .await?;
        Ok(Some(user))
    }

    async fn owner(&self, connection_id: &str) -> Result<Option<UserId>, StoreError> {
        let output = batch::retry_transient(|| {
            self.client()
                .get_item()
                .table_name(&self.table)
                .set_key(Some(Self::owner_key(connection_id)))
                .consistent_read(true)
                .send()
        })
        .await?;
        output
            .item
            .as_ref()
            .and_then(|item| items::string_attribute(item, USER_ATTRIBUTE))
            .map(|user| UserId::parse(user).map_err(|e| decode_error("connection owner", e)))
            .transpose()
    }

    async fn subscribe(
        &self,
        user: &UserId,
        connection_id: &str,
        subscription: &Subscription,
    ) -> Result<(), StoreError> {
        let update = self
            .client()
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::connection_key(user, connection_id)))
            // Only a connection that is still registered: a late message must not revive one.
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#pk", &SCHEMA.partition_key)
            .expression_attribute_names("#nodes", NODES_ATTRIBUTE);
        let update = match subscription.node_ids() {
            Some(nodes) => update.update_expression("SET #nodes = :nodes").expression_attribute_values(
                ":nodes",
                AttributeValue::L(nodes.iter().map(|node| string(node.to_string())).collect()),
            ),
            None => update.update_expression("REMOVE #nodes"),
        };
        batch::retry_transient(|| update.clone().send()).await.map(|_| ())
    }

    async fn of_user(&self, user: &UserId) -> Result<Vec<Connection>, StoreError> {
        let items: Vec<Item> = self
            .client()
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", &SCHEMA.partition_key)
            .expression_attribute_values(":pk", string(keys::connections_partition(user)))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(sdk_error)?;
        Ok(items.iter().filter_map(Self::connection_from_item).collect())
    }
}
