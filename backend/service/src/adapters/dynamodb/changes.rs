//! The table's stream as the outbox: each change of a node or edge item, with its old and
//! new images, is the domain event the write stands for. Posting, counter, applied-event
//! and checkpoint items are bookkeeping and yield none.

use chrono::{DateTime, TimeZone, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::items::{self, ENTITY_EDGE, ENTITY_NODE, Item};
use super::keys;
use super::schema::SCHEMA;
use crate::domain::{DomainEvent, UserId};

/// What a stream record says happened to the item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Insert,
    Modify,
    Remove,
}

impl ChangeKind {
    /// The stream's `eventName`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "INSERT" => Some(Self::Insert),
            "MODIFY" => Some(Self::Modify),
            "REMOVE" => Some(Self::Remove),
            _ => None,
        }
    }
}

/// One record of the table's stream, whichever way it arrived (a Lambda batch, or
/// GetRecords on a local stream).
#[derive(Debug, Clone, PartialEq)]
pub struct TableChange {
    /// The record's `eventID`: unique per record and the same on every redelivery of it.
    pub record_id: String,
    pub sequence_number: String,
    pub kind: ChangeKind,
    /// When the stream recorded the change (to the second).
    pub recorded_at: DateTime<Utc>,
    pub old_image: Option<Item>,
    pub new_image: Option<Item>,
}

/// A record that looks like a node or edge change but cannot be read as one: no retry can
/// make it an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stream record {record_id} cannot be read as an event: {reason}")]
pub struct UndecodableChange {
    pub record_id: String,
    pub reason: String,
}

impl TableChange {
    fn undecodable(&self, reason: impl std::fmt::Display) -> UndecodableChange {
        UndecodableChange { record_id: self.record_id.clone(), reason: reason.to_string() }
    }

    /// The domain event this change stands for, if any. The event id is derived from the
    /// record, so every delivery of one record carries the same id.
    pub fn event(&self) -> Result<Option<DomainEvent>, UndecodableChange> {
        let image = self.new_image.as_ref().or(self.old_image.as_ref());
        let event = match image.and_then(items::entity_of) {
            Some(ENTITY_NODE) => self.node_event()?,
            Some(ENTITY_EDGE) => self.edge_event()?,
            _ => None,
        };
        Ok(event.map(|event| {
            let id = event_id(&self.record_id, event.occurred_at);
            event.with_id(id)
        }))
    }

    fn node_event(&self) -> Result<Option<DomainEvent>, UndecodableChange> {
        let node = |image: &Item| items::node_from_item(image.clone()).map_err(|e| self.undecodable(e));
        match (self.kind, &self.old_image, &self.new_image) {
            (ChangeKind::Insert, _, Some(new)) if !items::is_deleted(new) => {
                Ok(Some(DomainEvent::node_created(&node(new)?)))
            }
            (ChangeKind::Modify, Some(old), Some(new)) => match (items::is_deleted(old), items::is_deleted(new)) {
                // The tombstone: the node as it was when its delete won.
                (false, true) => {
                    let deleted_at = deleted_at(new).ok_or_else(|| self.undecodable("tombstone without deletedAt"))?;
                    Ok(Some(DomainEvent::node_deleted(&node(new)?, deleted_at)))
                }
                (false, false) => {
                    let (previous, next) = (node(old)?, node(new)?);
                    Ok((next.version != previous.version).then(|| DomainEvent::node_updated(&next, &previous)))
                }
                _ => Ok(None),
            },
            // A live node removed without a tombstone first: still a delete, never lost.
            (ChangeKind::Remove, Some(old), _) if !items::is_deleted(old) => {
                Ok(Some(DomainEvent::node_deleted(&node(old)?, self.recorded_at)))
            }
            (ChangeKind::Insert | ChangeKind::Modify, _, None) | (ChangeKind::Modify, None, _) => Err(self
                .undecodable("a node change without the images it needs (the stream must carry new and old images)")),
            _ => Ok(None),
        }
    }

    /// Edges are stored under both ends; only the copy under the source announces the edge.
    fn edge_event(&self) -> Result<Option<DomainEvent>, UndecodableChange> {
        let image = match self.kind {
            ChangeKind::Insert => self.new_image.as_ref(),
            ChangeKind::Remove => self.old_image.as_ref(),
            ChangeKind::Modify => return Ok(None),
        };
        let Some(image) = image else {
            return Err(self.undecodable("an edge change without its image"));
        };
        let user = items::string_attribute(image, &SCHEMA.partition_key)
            .and_then(|partition| partition.strip_prefix(keys::USER_PREFIX))
            .and_then(|user| UserId::parse(user).ok())
            .ok_or_else(|| self.undecodable("edge item without a user partition"))?;
        let (edge, stored_under_source) =
            items::edge_from_item(&user, image.clone()).map_err(|e| self.undecodable(e))?;
        if !stored_under_source {
            return Ok(None);
        }
        Ok(Some(match self.kind {
            ChangeKind::Insert => DomainEvent::edge_created(&edge),
            _ => DomainEvent::edge_deleted(&user, edge.source, edge.target, self.recorded_at),
        }))
    }
}

fn deleted_at(item: &Item) -> Option<DateTime<Utc>> {
    let millis: i64 = item.get(items::DELETED_AT)?.as_n().ok()?.parse().ok()?;
    Utc.timestamp_millis_opt(millis).single()
}

/// A UUIDv7 whose time is the event's and whose other bits come from the stream record's
/// id: unique per record, time-ordered like the ids the request path mints, and the same
/// on every redelivery.
fn event_id(record_id: &str, occurred_at: DateTime<Utc>) -> Uuid {
    let digest = Sha256::digest(record_id.as_bytes());
    let mut random = [0u8; 10];
    random.copy_from_slice(&digest[..10]);
    let millis = u64::try_from(occurred_at.timestamp_millis()).unwrap_or_default();
    uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid()
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::types::AttributeValue;

    use super::*;
    use crate::domain::events::EventKind;
    use crate::domain::{Edge, EdgeKind, EdgeWeight, KeywordExtractor, Node, NodeDraft, NodeId};

    fn node(content: &str) -> Node {
        let draft = NodeDraft::new(content, &[]).unwrap();
        Node::create(UserId::parse("alice").unwrap(), draft, &KeywordExtractor::new(), Utc::now())
    }

    fn change(kind: ChangeKind, old: Option<Item>, new: Option<Item>) -> TableChange {
        TableChange {
            record_id: format!("record-{}", Uuid::new_v4()),
            sequence_number: "100".into(),
            kind,
            recorded_at: Utc::now(),
            old_image: old,
            new_image: new,
        }
    }

    fn tombstone(node: &Node, deleted_at_ms: i64) -> Item {
        let mut item = items::node_to_item(node);
        item.insert(items::DELETED_AT.into(), AttributeValue::N(deleted_at_ms.to_string()));
        item
    }

    #[test]
    fn node_items_yield_created_updated_and_deleted() {
        let first = node("Rivers carve valleys");
        let created = change(ChangeKind::Insert, None, Some(items::node_to_item(&first))).event().unwrap().unwrap();
        assert_eq!(created.kind, EventKind::NodeCreated { keywords: first.keywords.clone() });
        assert_eq!((created.aggregate_id, created.version, created.user_id.as_str()), (first.id, 1, "alice"));

        let draft = NodeDraft::new("Glaciers carve valleys", &[]).unwrap();
        let second = first.revise(draft, &KeywordExtractor::new(), Utc::now());
        let update = change(ChangeKind::Modify, Some(items::node_to_item(&first)), Some(items::node_to_item(&second)));
        let updated = update.event().unwrap().unwrap();
        let expected = EventKind::NodeUpdated { keywords: second.keywords.clone(), previous_keywords: first.keywords };
        assert_eq!((updated.kind, updated.version), (expected, 2));

        let deletion =
            change(ChangeKind::Modify, Some(items::node_to_item(&second)), Some(tombstone(&second, 1_700_000_000_123)));
        let deleted = deletion.event().unwrap().unwrap();
        assert_eq!(deleted.kind, EventKind::NodeDeleted { keywords: second.keywords.clone() });
        assert_eq!(deleted.occurred_at.timestamp_millis(), 1_700_000_000_123);
        assert_eq!(deleted.version, 2);
    }

    #[test]
    fn purges_and_rewrites_without_a_new_version_yield_nothing() {
        let note = node("Harbour cranes lift containers");
        let gone = tombstone(&note, 1);
        assert_eq!(change(ChangeKind::Remove, Some(gone.clone()), None).event().unwrap(), None);
        assert_eq!(change(ChangeKind::Modify, Some(gone.clone()), Some(gone)).event().unwrap(), None);
        let same = items::node_to_item(&note);
        assert_eq!(change(ChangeKind::Modify, Some(same.clone()), Some(same)).event().unwrap(), None);
    }

    #[test]
    fn a_live_node_removed_without_tombstone_is_still_a_delete() {
        let note = node("Harbour cranes lift containers");
        let removed = change(ChangeKind::Remove, Some(items::node_to_item(&note)), None).event().unwrap().unwrap();
        assert!(matches!(removed.kind, EventKind::NodeDeleted { .. }));
    }

    #[test]
    fn an_edge_yields_one_event_from_the_copy_under_its_source() {
        let (a, b) = (NodeId::generate(), NodeId::generate());
        let user = UserId::parse("alice").unwrap();
        let edge = Edge::new(user, a, b, EdgeWeight::new(0.5).unwrap(), EdgeKind::Similarity, Utc::now()).unwrap();
        let [forward, reverse] = items::edge_to_items(&edge);
        let created = change(ChangeKind::Insert, None, Some(forward.clone())).event().unwrap().unwrap();
        assert_eq!(created.kind, EventKind::EdgeCreated { target: b, weight: 0.5, edge_kind: "similarity" });
        assert_eq!((created.aggregate_id, created.user_id.as_str()), (a, "alice"));
        assert_eq!(change(ChangeKind::Insert, None, Some(reverse.clone())).event().unwrap(), None);
        let deleted = change(ChangeKind::Remove, Some(forward), None).event().unwrap().unwrap();
        assert_eq!((deleted.kind, deleted.aggregate_id), (EventKind::EdgeDeleted { target: b }, a));
        assert_eq!(change(ChangeKind::Remove, Some(reverse), None).event().unwrap(), None);
    }

    #[test]
    fn bookkeeping_items_yield_nothing() {
        let user = UserId::parse("alice").unwrap();
        let posting = items::posting_to_item(&user, NodeId::generate(), "river");
        assert_eq!(change(ChangeKind::Insert, None, Some(posting.clone())).event().unwrap(), None);
        assert_eq!(change(ChangeKind::Remove, Some(posting), None).event().unwrap(), None);
        let counter = items::primary_key(keys::frequency_partition(&user), keys::FREQUENCY_TOTAL.into());
        assert_eq!(change(ChangeKind::Modify, Some(counter.clone()), Some(counter)).event().unwrap(), None);
    }

    #[test]
    fn event_ids_are_the_records_and_stable() {
        let note = node("Rivers carve valleys");
        let record = change(ChangeKind::Insert, None, Some(items::node_to_item(&note)));
        let (once, again) = (record.event().unwrap().unwrap(), record.event().unwrap().unwrap());
        assert_eq!(once.event_id, again.event_id, "a redelivered record carries the same event id");
        assert_eq!(once.event_id.get_version_num(), 7);
        let other = TableChange { record_id: "another".into(), ..record };
        assert_ne!(other.event().unwrap().unwrap().event_id, once.event_id);
    }

    #[test]
    fn a_malformed_node_item_is_undecodable_not_skipped() {
        let mut item = items::node_to_item(&node("Rivers carve valleys"));
        item.insert("keywords".into(), AttributeValue::N("7".into()));
        let error = change(ChangeKind::Insert, None, Some(item)).event().unwrap_err();
        assert!(error.reason.contains("malformed"), "{error}");
        let keys_only = items::node_key(&UserId::parse("alice").unwrap(), NodeId::generate());
        let mut entity_only = keys_only;
        entity_only.insert("entity".into(), AttributeValue::S(ENTITY_NODE.into()));
        assert!(change(ChangeKind::Modify, None, Some(entity_only)).event().is_err());
    }
}
