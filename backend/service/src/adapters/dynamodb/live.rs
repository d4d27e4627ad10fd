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

    fn change_item(event: &LiveEvent) -> Result<Item, StoreError> {
        let mut item =
            primary_key(keys::change_log_partition(&event.user_id), keys::change_sort_key(event.change.event_id));
        let change = serde_json::to_string(&event.change).map_err(|e| decode_error("change", e))?;
        item.insert(CHANGE_ATTRIBUTE.into(), string(change));
        item.insert(SCHEMA.ttl_attribute.clone(), expires_in(CHANGE_LOG_RETENTION));
        Ok(item)
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
        let writes = events
            .iter()
            .map(|event| {
                let put =
                    PutRequest::builder().set_item(Some(Self::change_item(event)?)).build().map_err(build_error)?;
                Ok(TaggedWrite {
                    tag: event.change.event_id,
                    request: WriteRequest::builder().put_request(put).build(),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let policy = BatchPolicy { batch_writes: true, batch_reads: true, concurrency: batch::CHUNK_CONCURRENCY };
        let failed = batch::write_all(&self.client(), &self.table, writes, policy).await?;
        match failed.first() {
            None => Ok(()),
            Some((event_id, failure)) => Err(StoreError::Throttled(format!(
                "{} of {} changes were not logged (first {event_id}: {failure})",
                failed.len(),
                events.len()
            ))),
        }
    }

    async fn since(&self, user: &UserId, last_seen: uuid::Uuid) -> Result<Replay, StoreError> {
        let logged_at = last_seen.get_timestamp().map(|stamp| stamp.to_unix());
        let horizon = Utc::now().timestamp() - i64::try_from(CHANGE_LOG_RETENTION.as_secs()).unwrap_or(i64::MAX);
        // Not a UUIDv7, or older than the log keeps: nothing to look for.
        if logged_at.is_none_or(|(seconds, _)| i64::try_from(seconds).unwrap_or(i64::MAX) < horizon) {
            return Ok(Replay::Lost);
        }
        let from = keys::change_sort_key(last_seen);
        let mut pages = self
            .client()
            .query()
            .table_name(&self.table)
            .key_condition_expression("#pk = :pk AND #sk >= :from")
            .expression_attribute_names("#pk", &SCHEMA.partition_key)
            .expression_attribute_names("#sk", &SCHEMA.sort_key)
            .expression_attribute_values(":pk", string(keys::change_log_partition(user)))
            .expression_attribute_values(":from", string(&from))
            .into_paginator()
            .items()
            .send();
        // The seen entry, the replay, and one more to tell a replay too long to send.
        let mut items: Vec<Item> = Vec::new();
        while items.len() < MAX_REPLAY + 2
            && let Some(item) = pages.next().await
        {
            items.push(item.map_err(sdk_error)?);
        }
        // The entry of the last change seen must be there: otherwise the log no longer
        // reaches back to it (or it was never this user's), and what came between is unknown.
        let seen_is_logged =
            items.first().and_then(|item| items::string_attribute(item, &SCHEMA.sort_key)) == Some(from.as_str());
        if !seen_is_logged || items.len() > MAX_REPLAY + 1 {
            return Ok(Replay::Lost);
        }
        items
            .iter()
            .skip(1)
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
        let writes = vec![put(connection)?, put(owner)?];
        batch::retry_transient(|| self.client().transact_write_items().set_transact_items(Some(writes.clone())).send())
            .await
            .map(|_| ())
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
        let writes = vec![delete(Self::connection_key(&user, connection_id))?, delete(Self::owner_key(connection_id))?];
        batch::retry_transient(|| self.client().transact_write_items().set_transact_items(Some(writes.clone())).send())
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
