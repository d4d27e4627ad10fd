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
    /// The word shown for each keyword; absent on items written before it existed.
    #[serde(default)]
    display_keywords: Vec<String>,
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
        display_keywords: node.display_keywords.clone(),
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
    // An item without display words (or with a list that does not match) shows the stems.
    let display_keywords = if attributes.display_keywords.len() == attributes.keywords.len() {
        attributes.display_keywords
    } else {
        attributes.keywords.clone()
    };
    Ok(Node {
        id: NodeId::parse(&attributes.node_id).map_err(corrupt)?,
        user_id: UserId::parse(&attributes.user_id).map_err(corrupt)?,
        content: attributes.content,
        keywords: attributes.keywords,
        display_keywords,
        tags: attributes.tags,
        created_at: parse_timestamp(&attributes.created_at)?,
        updated_at: parse_timestamp(&attributes.updated_at)?,
        version: attributes.version,
    })
}

/// Names an attribute `deletionId`: which delete request made a tombstone, so that request
/// recognises its own write when a retried call finds the condition already failed.
pub const DELETION_ID: &str = "deletionId";

/// The UpdateItem that turns a live node into a tombstone, leaving its content and keywords
/// as they are: the node leaves UserTimeIndex (listings), enters DeletionQueue, and gets
/// `deletedAt`, which every read and every conditional write treats as "absent".
pub struct TombstoneMarks {
    pub update: &'static str,
    /// The node must be live and still at the version read: a concurrent update is never
    /// overwritten, and of two concurrent deletes only one can succeed.
    pub condition: &'static str,
    pub names: HashMap<String, String>,
    pub values: Item,
}

pub fn tombstone_marks(
    user: &UserId,
    node: NodeId,
    version: u64,
    deleted_at_ms: i64,
    deletion: &str,
) -> TombstoneMarks {
    let queue = &SCHEMA.indexes.deletion_queue;
    let listing = &SCHEMA.indexes.user_time;
    let names = HashMap::from([
        ("#pk".to_owned(), SCHEMA.partition_key.clone()),
        ("#version".to_owned(), "version".to_owned()),
        ("#deletedAt".to_owned(), DELETED_AT.to_owned()),
        ("#deletionId".to_owned(), DELETION_ID.to_owned()),
        ("#queuePk".to_owned(), queue.partition_key.clone()),
        ("#queueSk".to_owned(), queue.sort_key.clone()),
        ("#listPk".to_owned(), listing.partition_key.clone()),
        ("#listSk".to_owned(), listing.sort_key.clone()),
    ]);
    let values = Item::from([
        (":version".to_owned(), AttributeValue::N(version.to_string())),
        (":deletedAt".to_owned(), AttributeValue::N(deleted_at_ms.to_string())),
        (":deletionId".to_owned(), AttributeValue::S(deletion.to_owned())),
        (":queuePk".to_owned(), AttributeValue::S(keys::deletion_shard(deletion_shard_of(user, node)))),
        (":queueSk".to_owned(), AttributeValue::S(keys::deletion_sort_key(deleted_at_ms, user, node))),
    ]);
    TombstoneMarks {
        update: "SET #deletedAt = :deletedAt, #deletionId = :deletionId, #queuePk = :queuePk, #queueSk = :queueSk \
                 REMOVE #listPk, #listSk",
        condition: "attribute_exists(#pk) AND #version = :version AND attribute_not_exists(#deletedAt)",
        names,
        values,
    }
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
        assert_eq!(back.display_keywords, vec!["rivers", "carve", "valleys"]);
        assert_eq!(back.created_at.timestamp_millis(), node.created_at.timestamp_millis());
    }

    #[test]
    fn tombstone_marks_leave_the_listing_and_enter_the_queue() {
        let user = UserId::parse("alice").unwrap();
        let node = NodeId::generate();
        let marks = tombstone_marks(&user, node, 3, 1_700_000_000_000, "d1");
        assert!(marks.update.contains("REMOVE #listPk, #listSk"));
        assert_eq!(marks.names["#listPk"], "GSI3PK");
        assert_eq!(marks.names["#queuePk"], "GSI2PK");
        assert!(marks.values[":queuePk"].as_s().unwrap().starts_with("DELETED#"));
        assert!(marks.values[":queueSk"].as_s().unwrap().starts_with("1700000000000#alice#"));
        assert_eq!(marks.values[":version"], AttributeValue::N("3".into()));
        // Every name and value placeholder is used by the expressions (DynamoDB rejects unused ones).
        let expressions = format!("{} {}", marks.update, marks.condition);
        assert!(marks.names.keys().all(|name| expressions.contains(name.as_str())));
        assert!(marks.values.keys().all(|value| expressions.contains(value.as_str())));
        assert!(deletion_shard_of(&user, node) < DELETION_SHARDS);
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
