//! Item layouts: domain values to DynamoDB items and back. Key attribute names come from
//! the shared schema; the other attributes are described by the serde structs below.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::keys;
use super::schema::SCHEMA;
use crate::domain::{Edge, EdgeKind, EdgeWeight, Node, NodeId, UserId};
use crate::ports::StoreError;

pub type Item = HashMap<String, AttributeValue>;

pub const ENTITY_NODE: &str = "node";
pub const ENTITY_EDGE: &str = "edge";
pub const ENTITY_POSTING: &str = "posting";
/// Set on a soft-deleted node: every read treats the node as absent from then on.
pub const DELETED_AT: &str = "deletedAt";
/// Partitions of the deletion queue: enough that a burst of deletes spreads its writes.
pub const DELETION_SHARDS: u32 = 8;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NodeAttributes {
    entity: String,
    node_id: String,
    user_id: String,
    content: String,
    keywords: Vec<String>,
    tags: Vec<String>,
    created_at: String,
    updated_at: String,
    version: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EdgeAttributes {
    entity: String,
    source_id: String,
    target_id: String,
    weight: f64,
    kind: String,
    created_at: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PostingAttributes<'a> {
    entity: &'a str,
    node_id: String,
    keyword: &'a str,
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("stored item is malformed: {what}"))
}

fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_timestamp(raw: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(raw).map(|t| t.with_timezone(&Utc)).map_err(corrupt)
}

fn with_keys(mut item: Item, keys: [(&str, String); 2]) -> Item {
    for (name, value) in keys {
        item.insert(name.to_owned(), AttributeValue::S(value));
    }
    item
}

/// The primary key of an item, as a map ready for GetItem, DeleteItem or BatchGetItem.
pub fn primary_key(partition: String, sort: String) -> Item {
    with_keys(Item::new(), [(&SCHEMA.partition_key, partition), (&SCHEMA.sort_key, sort)])
}

pub fn node_key(user: &UserId, node: NodeId) -> Item {
    primary_key(keys::user_partition(user), keys::node_sort_key(node))
}

pub fn edge_key(user: &UserId, owner: NodeId, other: NodeId) -> Item {
    primary_key(keys::user_partition(user), keys::edge_sort_key(owner, other))
}

pub fn posting_key(user: &UserId, node: NodeId, keyword: &str) -> Item {
    primary_key(keys::posting_partition(user, node), keys::posting_sort_key(keyword))
}

pub fn node_to_item(node: &Node) -> Item {
    let attributes = NodeAttributes {
        entity: ENTITY_NODE.to_owned(),
        node_id: node.id.to_string(),
        user_id: node.user_id.to_string(),
        content: node.content.clone(),
        keywords: node.keywords.clone(),
        tags: node.tags.clone(),
        created_at: timestamp(node.created_at),
        updated_at: timestamp(node.updated_at),
        version: node.version,
    };
    let item: Item = serde_dynamo::to_item(attributes).expect("node attributes always serialise");
    let index = &SCHEMA.indexes.user_time;
    let mut item = with_keys(
        item,
        [
            (&index.partition_key, keys::user_partition(&node.user_id)),
            (&index.sort_key, keys::time_sort_key(node.created_at.timestamp_millis(), node.id)),
        ],
    );
    item.extend(node_key(&node.user_id, node.id));
    item
}

pub fn node_from_item(item: Item) -> Result<Node, StoreError> {
    let attributes: NodeAttributes = serde_dynamo::from_item(item).map_err(corrupt)?;
    Ok(Node {
        id: NodeId::parse(&attributes.node_id).map_err(corrupt)?,
        user_id: UserId::parse(&attributes.user_id).map_err(corrupt)?,
        content: attributes.content,
        keywords: attributes.keywords,
        tags: attributes.tags,
        created_at: parse_timestamp(&attributes.created_at)?,
        updated_at: parse_timestamp(&attributes.updated_at)?,
        version: attributes.version,
    })
}

/// A soft-deleted node: the node item without its listing keys, marked with the time of
/// deletion and entered into the deletion queue. Keywords stay, so cleanup can find postings.
pub fn tombstone_item(node: &Node, deleted_at_ms: i64) -> Item {
    let mut item = node_to_item(node);
    let listing = &SCHEMA.indexes.user_time;
    item.remove(&listing.partition_key);
    item.remove(&listing.sort_key);
    item.insert(DELETED_AT.to_owned(), AttributeValue::N(deleted_at_ms.to_string()));
    let queue = &SCHEMA.indexes.deletion_queue;
    with_keys(
        item,
        [
            (&queue.partition_key, keys::deletion_shard(deletion_shard_of(&node.user_id, node.id))),
            (&queue.sort_key, keys::deletion_sort_key(deleted_at_ms, &node.user_id, node.id)),
        ],
    )
}

/// A stable shard for a node, so retries of one delete land in the same queue partition.
pub fn deletion_shard_of(user: &UserId, node: NodeId) -> u32 {
    // FNV-1a: tiny, stable across builds and platforms (unlike the std hasher).
    let mut hash: u32 = 0x811c_9dc5;
    for byte in user.as_str().bytes().chain(node.to_string().bytes()) {
        hash = (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193);
    }
    hash % DELETION_SHARDS
}

pub fn is_deleted(item: &Item) -> bool {
    item.contains_key(DELETED_AT)
}

/// The two items of an edge: one under each end, so either end lists it with one Query.
pub fn edge_to_items(edge: &Edge) -> [Item; 2] {
    let attributes = EdgeAttributes {
        entity: ENTITY_EDGE.to_owned(),
        source_id: edge.source.to_string(),
        target_id: edge.target.to_string(),
        weight: edge.weight.value(),
        kind: edge.kind.as_str().to_owned(),
        created_at: timestamp(edge.created_at),
    };
    let item: Item = serde_dynamo::to_item(attributes).expect("edge attributes always serialise");
    let mut forward = item.clone();
    forward.extend(edge_key(&edge.user_id, edge.source, edge.target));
    let mut reverse = item;
    reverse.extend(edge_key(&edge.user_id, edge.target, edge.source));
    [forward, reverse]
}

/// An edge item read back, and whether it is the copy stored under the edge's source.
pub fn edge_from_item(user: &UserId, item: Item) -> Result<(Edge, bool), StoreError> {
    let sort_key = match item.get(&SCHEMA.sort_key) {
        Some(AttributeValue::S(value)) => value.clone(),
        _ => return Err(corrupt("edge without sort key")),
    };
    let attributes: EdgeAttributes = serde_dynamo::from_item(item).map_err(corrupt)?;
    let source = NodeId::parse(&attributes.source_id).map_err(corrupt)?;
    let edge = Edge {
        user_id: user.clone(),
        source,
        target: NodeId::parse(&attributes.target_id).map_err(corrupt)?,
        weight: EdgeWeight::new(attributes.weight).map_err(corrupt)?,
        kind: EdgeKind::parse(&attributes.kind).ok_or_else(|| corrupt(&attributes.kind))?,
        created_at: parse_timestamp(&attributes.created_at)?,
    };
    let stored_under_source = sort_key.starts_with(&keys::edge_prefix(source));
    Ok((edge, stored_under_source))
}

pub fn posting_to_item(user: &UserId, node: NodeId, keyword: &str) -> Item {
    let attributes = PostingAttributes { entity: ENTITY_POSTING, node_id: node.to_string(), keyword };
    let mut item: Item = serde_dynamo::to_item(attributes).expect("posting attributes always serialise");
    let index = &SCHEMA.indexes.keyword;
    item.extend(posting_key(user, node, keyword));
    with_keys(
        item,
        [(&index.partition_key, keys::keyword_partition(user, keyword)), (&index.sort_key, keys::node_sort_key(node))],
    )
}

/// The (partition, sort) key values of an item or key map.
pub fn primary_key_of(item: &Item) -> Option<(String, String)> {
    Some((
        string_attribute(item, &SCHEMA.partition_key)?.to_owned(),
        string_attribute(item, &SCHEMA.sort_key)?.to_owned(),
    ))
}

pub fn entity_of(item: &Item) -> Option<&str> {
    match item.get("entity") {
        Some(AttributeValue::S(value)) => Some(value.as_str()),
        _ => None,
    }
}

pub fn string_attribute<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Some(value.as_str()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{KeywordExtractor, NodeDraft};

    #[test]
    fn node_round_trips_through_its_item() {
        let user = UserId::parse("alice").unwrap();
        let draft = NodeDraft::new("Rivers carve valleys", &["geo".to_owned()]).unwrap();
        let node = Node::create(user, draft, &KeywordExtractor::new(), Utc::now());
        let item = node_to_item(&node);
        assert_eq!(string_attribute(&item, "PK"), Some("USER#alice"));
        assert!(string_attribute(&item, "GSI3SK").unwrap().starts_with("TS#"));
        let back = node_from_item(item).unwrap();
        assert_eq!(back.id, node.id);
        assert_eq!(back.keywords, node.keywords);
        assert_eq!(back.created_at.timestamp_millis(), node.created_at.timestamp_millis());
    }

    #[test]
    fn tombstones_leave_the_listing_and_enter_the_queue() {
        let user = UserId::parse("alice").unwrap();
        let node = Node::create(user, NodeDraft::new("gone soon", &[]).unwrap(), &KeywordExtractor::new(), Utc::now());
        let item = tombstone_item(&node, 1_700_000_000_000);
        assert!(is_deleted(&item));
        assert!(!item.contains_key("GSI3PK") && !item.contains_key("GSI3SK"));
        assert!(string_attribute(&item, "GSI2PK").unwrap().starts_with("DELETED#"));
        assert!(string_attribute(&item, "GSI2SK").unwrap().starts_with("1700000000000#alice#"));
        assert_eq!(node_from_item(item).unwrap().keywords, node.keywords);
        assert!(deletion_shard_of(&node.user_id, node.id) < DELETION_SHARDS);
    }

    #[test]
    fn edge_items_know_their_direction() {
        let user = UserId::parse("alice").unwrap();
        let (a, b) = (NodeId::generate(), NodeId::generate());
        let edge = Edge::new(user.clone(), a, b, EdgeWeight::new(0.5).unwrap(), EdgeKind::Manual, Utc::now()).unwrap();
        let [forward, reverse] = edge_to_items(&edge);
        let (read, is_forward) = edge_from_item(&user, forward).unwrap();
        assert!(is_forward);
        assert_eq!((read.source, read.target), (a, b));
        let (_, is_forward) = edge_from_item(&user, reverse).unwrap();
        assert!(!is_forward);
    }
}
