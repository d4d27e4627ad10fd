//! The store and event ports in memory, for benchmarks of everything above the adapters.
//!
//! The store keeps the data the way the table does (nodes per user, both directions of
//! each edge, keyword postings, tombstones until purged, frequency counters) and answers
//! every method as `DynamoGraphStore` does, including its orders and its conditions.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use brain2::adapters::dynamodb::items::{DELETION_SHARDS, deletion_shard_of};
use brain2::adapters::dynamodb::keys::deletion_sort_key;
use brain2::domain::similarity::DocumentFrequencies;
use brain2::domain::{DomainEvent, Edge, Node, NodeId, UserId};
use brain2::ports::{
    BatchOutcome, DeleteOutcome, DeletedNode, EventPublisher, Graph, GraphCursor, GraphStore, ListCursor, Page,
    PublishError, StoreError, WriteFailure,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

struct StoredNode {
    node: Node,
    /// Set on a soft-deleted node: no read returns it, the deletion queue does.
    deleted_at: Option<DateTime<Utc>>,
}

impl StoredNode {
    fn live(&self) -> Option<&Node> {
        self.deleted_at.is_none().then_some(&self.node)
    }
}

/// One user's partition of the table.
#[derive(Default)]
struct UserData {
    /// By id, as the table sorts node items.
    nodes: BTreeMap<NodeId, StoredNode>,
    /// The newest-first listing: live nodes by creation time, then id.
    listing: BTreeSet<(i64, NodeId)>,
    /// Edge items by the node they are stored under, then the other end: each edge twice.
    edges: BTreeMap<NodeId, BTreeMap<NodeId, Edge>>,
    /// Keyword to the nodes that carry it; kept for soft-deleted nodes until they are purged.
    postings: HashMap<String, BTreeSet<NodeId>>,
    /// Counters that were ever touched, even when back at zero (or below, for a moment).
    keyword_counts: HashMap<String, i64>,
    document_count: i64,
    applied_events: HashSet<Uuid>,
}

impl UserData {
    fn live_node(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(&id).and_then(StoredNode::live)
    }

    fn add_postings(&mut self, id: NodeId, keywords: &[String]) {
        for keyword in keywords {
            self.postings.entry(keyword.clone()).or_default().insert(id);
        }
    }

    fn remove_postings(&mut self, id: NodeId, keywords: &[String]) {
        for keyword in keywords {
            if let Some(nodes) = self.postings.get_mut(keyword) {
                nodes.remove(&id);
                if nodes.is_empty() {
                    self.postings.remove(keyword);
                }
            }
        }
    }

    /// Writes the node item as a Put does: whatever was stored under its key is replaced.
    fn put_node(&mut self, node: Node, deleted_at: Option<DateTime<Utc>>) {
        if let Some(previous) = self.nodes.get(&node.id) {
            self.listing.remove(&(previous.node.created_at.timestamp_millis(), node.id));
        }
        if deleted_at.is_none() {
            self.listing.insert((node.created_at.timestamp_millis(), node.id));
        }
        self.nodes.insert(node.id, StoredNode { node, deleted_at });
    }

    /// Both directions of every edge of the node, the postings of `keywords`, the node item.
    fn cascade_delete(&mut self, id: NodeId, keywords: &[String]) {
        for other in self.edges.remove(&id).unwrap_or_default().into_keys() {
            if let Some(reverse) = self.edges.get_mut(&other) {
                reverse.remove(&id);
                if reverse.is_empty() {
                    self.edges.remove(&other);
                }
            }
        }
        self.remove_postings(id, keywords);
        if let Some(removed) = self.nodes.remove(&id) {
            self.listing.remove(&(removed.node.created_at.timestamp_millis(), id));
        }
    }

    fn edge(&self, owner: NodeId, other: NodeId) -> Option<&Edge> {
        self.edges.get(&owner).and_then(|adjacent| adjacent.get(&other))
    }

    fn add_count(&mut self, keyword: &str, delta: i64) {
        *self.keyword_counts.entry(keyword.to_owned()).or_insert(0) += delta;
    }
}

#[derive(Default)]
pub struct MemoryGraphStore {
    users: Mutex<HashMap<UserId, UserData>>,
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Unavailable("the in-memory store was poisoned by a panic".into())
}

impl MemoryGraphStore {
    fn users(&self) -> Result<MutexGuard<'_, HashMap<UserId, UserData>>, StoreError> {
        self.users.lock().map_err(poisoned)
    }

    fn with_user<T>(&self, user: &UserId, work: impl FnOnce(&mut UserData) -> T) -> Result<T, StoreError> {
        Ok(work(self.users()?.entry(user.clone()).or_default()))
    }

    /// Drops everything of `user`, so that a benchmark writing on every iteration keeps
    /// the store at a steady size instead of measuring an ever larger one.
    pub fn forget_user(&self, user: &UserId) {
        if let Ok(mut users) = self.users.lock() {
            users.remove(user);
        }
    }
}

#[async_trait]
impl GraphStore for MemoryGraphStore {
    async fn insert_node(&self, node: &Node) -> Result<(), StoreError> {
        self.with_user(&node.user_id, |data| {
            if data.nodes.contains_key(&node.id) {
                return Err(StoreError::VersionConflict);
            }
            data.add_postings(node.id, &node.keywords);
            data.put_node(node.clone(), None);
            Ok(())
        })?
    }

    async fn insert_nodes(&self, nodes: &[Node]) -> Result<BatchOutcome, StoreError> {
        let mut users = self.users()?;
        for node in nodes {
            let data = users.entry(node.user_id.clone()).or_default();
            data.add_postings(node.id, &node.keywords);
            data.put_node(node.clone(), None);
        }
        Ok(BatchOutcome { succeeded: nodes.iter().map(|node| node.id).collect(), failed: Vec::new() })
    }

    async fn get_node(&self, user: &UserId, id: NodeId) -> Result<Option<Node>, StoreError> {
        self.with_user(user, |data| data.live_node(id).cloned())
    }

    async fn get_nodes(&self, user: &UserId, ids: &[NodeId]) -> Result<Vec<Node>, StoreError> {
        let unique: HashSet<NodeId> = ids.iter().copied().collect();
        self.with_user(user, |data| unique.into_iter().filter_map(|id| data.live_node(id).cloned()).collect())
    }

    async fn replace_node(&self, previous: &Node, next: &Node) -> Result<(), StoreError> {
        self.with_user(&next.user_id, |data| {
            match data.live_node(next.id) {
                Some(stored) if stored.version == previous.version => {}
                _ => return Err(StoreError::VersionConflict),
            }
            let gone: Vec<String> = previous.keywords.iter().filter(|k| !next.keywords.contains(k)).cloned().collect();
            let added: Vec<String> = next.keywords.iter().filter(|k| !previous.keywords.contains(k)).cloned().collect();
            data.remove_postings(next.id, &gone);
            data.add_postings(next.id, &added);
            data.put_node(next.clone(), None);
            Ok(())
        })?
    }

    async fn delete_nodes(
        &self,
        user: &UserId,
        ids: &[NodeId],
        at: DateTime<Utc>,
    ) -> Result<DeleteOutcome, StoreError> {
        let outcome = self.mark_deleted(user, ids, at).await?;
        self.with_user(user, |data| {
            for node in &outcome.deleted {
                data.cascade_delete(node.id, &node.keywords);
            }
        })?;
        Ok(outcome)
    }

    async fn mark_deleted(
        &self,
        user: &UserId,
        ids: &[NodeId],
        at: DateTime<Utc>,
    ) -> Result<DeleteOutcome, StoreError> {
        self.with_user(user, |data| {
            let mut outcome = DeleteOutcome::default();
            for &id in ids {
                match data.live_node(id).cloned() {
                    Some(node) => {
                        data.put_node(node.clone(), Some(at));
                        outcome.deleted.push(node);
                    }
                    None => outcome.failed.push((id, WriteFailure::NotFound)),
                }
            }
            outcome
        })
    }

    async fn deletion_queue(&self, before: DateTime<Utc>, limit: usize) -> Result<Vec<DeletedNode>, StoreError> {
        let cutoff = before.timestamp_millis();
        let mut shards: Vec<Vec<(String, DeletedNode)>> = (0..DELETION_SHARDS).map(|_| Vec::new()).collect();
        for (user, data) in self.users()?.iter() {
            for stored in data.nodes.values() {
                let Some(deleted_at) = stored.deleted_at.map(|at| at.timestamp_millis()) else { continue };
                if deleted_at < cutoff {
                    let id = stored.node.id;
                    let entry = DeletedNode { user_id: user.clone(), node_id: id };
                    shards[deletion_shard_of(user, id) as usize].push((deletion_sort_key(deleted_at, user, id), entry));
                }
            }
        }
        let mut queue = Vec::new();
        for mut shard in shards {
            shard.sort_by(|(a, _), (b, _)| a.cmp(b));
            queue.extend(shard.into_iter().take(limit).map(|(_, entry)| entry));
        }
        queue.truncate(limit);
        Ok(queue)
    }

    async fn purge_deleted(&self, user: &UserId, id: NodeId) -> Result<bool, StoreError> {
        self.with_user(user, |data| {
            let keywords = match data.nodes.get(&id) {
                Some(stored) if stored.deleted_at.is_some() => stored.node.keywords.clone(),
                // Absent, or live: only a soft-deleted node may be purged.
                _ => return false,
            };
            data.cascade_delete(id, &keywords);
            true
        })
    }

    async fn list_nodes(
        &self,
        user: &UserId,
        limit: usize,
        after: Option<ListCursor>,
    ) -> Result<Page<Node>, StoreError> {
        self.with_user(user, |data| {
            let positions: Vec<(i64, NodeId)> = match after {
                Some(cursor) => data.listing.range(..(cursor.created_at_ms, cursor.node_id)).rev().copied().collect(),
                None => data.listing.iter().rev().copied().collect(),
            };
            let has_more = positions.len() > limit;
            let items: Vec<Node> =
                positions.into_iter().take(limit).filter_map(|(_, id)| data.live_node(id).cloned()).collect();
            let next = match items.last() {
                Some(last) if has_more => {
                    Some(ListCursor { created_at_ms: last.created_at.timestamp_millis(), node_id: last.id })
                }
                _ => None,
            };
            Page { items, next }
        })
    }

    /// Pages by node: `limit` live nodes after the cursor's node, with their edges.
    async fn graph(&self, user: &UserId, limit: usize, after: Option<GraphCursor>) -> Result<Graph, StoreError> {
        self.with_user(user, |data| {
            let start = after.map(|cursor| cursor.node);
            let mut later = data
                .nodes
                .values()
                .filter_map(StoredNode::live)
                .filter(|node| start.is_none_or(|start| node.id > start));
            let nodes: Vec<Node> = later.by_ref().take(limit).cloned().collect();
            let next = match nodes.last() {
                Some(last) if later.next().is_some() => Some(GraphCursor { node: last.id, edge_to: None }),
                _ => None,
            };
            let edges = nodes
                .iter()
                .flat_map(|node| {
                    let adjacent = data.edges.get(&node.id).into_iter().flat_map(|adjacent| adjacent.values());
                    adjacent.filter(move |edge| edge.source == node.id)
                })
                // Edges of soft-deleted nodes linger until cleanup; they are not part of the graph.
                .filter(|edge| data.live_node(edge.source).is_some() && data.live_node(edge.target).is_some())
                .cloned()
                .collect();
            Graph { nodes, edges, next }
        })
    }

    async fn insert_edge(&self, edge: &Edge) -> Result<(), StoreError> {
        self.with_user(&edge.user_id, |data| {
            if data.live_node(edge.source).is_none() || data.live_node(edge.target).is_none() {
                return Err(StoreError::NodeMissing);
            }
            if data.edge(edge.source, edge.target).is_some() || data.edge(edge.target, edge.source).is_some() {
                return Err(StoreError::EdgeExists);
            }
            data.edges.entry(edge.source).or_default().insert(edge.target, edge.clone());
            data.edges.entry(edge.target).or_default().insert(edge.source, edge.clone());
            Ok(())
        })?
    }

    async fn delete_edge(&self, user: &UserId, a: NodeId, b: NodeId) -> Result<bool, StoreError> {
        self.with_user(user, |data| {
            if data.edge(a, b).is_none() {
                return false;
            }
            for (owner, other) in [(a, b), (b, a)] {
                if let Some(adjacent) = data.edges.get_mut(&owner) {
                    adjacent.remove(&other);
                    if adjacent.is_empty() {
                        data.edges.remove(&owner);
                    }
                }
            }
            true
        })
    }

    async fn node_edges(&self, user: &UserId, id: NodeId) -> Result<Option<Vec<Edge>>, StoreError> {
        self.with_user(user, |data| {
            data.live_node(id)?;
            Some(data.edges.get(&id).map(|adjacent| adjacent.values().cloned().collect()).unwrap_or_default())
        })
    }

    async fn nodes_with_keyword(&self, user: &UserId, keyword: &str, limit: usize) -> Result<Vec<NodeId>, StoreError> {
        // Node ids are UUIDv7, so the highest id is the newest node, as in the keyword index.
        self.with_user(user, |data| {
            data.postings.get(keyword).map(|ids| ids.iter().rev().take(limit).copied().collect()).unwrap_or_default()
        })
    }

    async fn apply_frequency_change(
        &self,
        user: &UserId,
        event_id: Uuid,
        added: &[String],
        removed: &[String],
        documents_delta: i64,
    ) -> Result<bool, StoreError> {
        self.with_user(user, |data| {
            if !data.applied_events.insert(event_id) {
                return false;
            }
            for keyword in added.iter().filter(|k| !removed.contains(k)) {
                data.add_count(keyword, 1);
            }
            for keyword in removed.iter().filter(|k| !added.contains(k)) {
                data.add_count(keyword, -1);
            }
            data.document_count += documents_delta;
            true
        })
    }

    async fn document_frequencies(
        &self,
        user: &UserId,
        keywords: &[String],
    ) -> Result<DocumentFrequencies, StoreError> {
        // A counter can dip below zero for a moment when a delete is counted before the
        // create it undoes; a frequency is never negative.
        let count = |value: i64| value.max(0) as u64;
        self.with_user(user, |data| DocumentFrequencies {
            total_documents: count(data.document_count),
            per_keyword: keywords
                .iter()
                .filter_map(|keyword| data.keyword_counts.get(keyword).map(|&n| (keyword.clone(), count(n))))
                .collect(),
        })
    }

    async fn check(&self) -> Result<(), StoreError> {
        // Reachable unless a panic poisoned the lock.
        self.users().map(|_| ())
    }
}

/// Keeps every published event, in order.
#[derive(Default)]
pub struct MemoryEventPublisher {
    published: Mutex<Vec<DomainEvent>>,
}

impl MemoryEventPublisher {
    /// The events published since the last call, oldest first.
    pub fn take(&self) -> Vec<DomainEvent> {
        self.published.lock().map(|mut events| std::mem::take(&mut *events)).unwrap_or_default()
    }
}

#[async_trait]
impl EventPublisher for MemoryEventPublisher {
    async fn publish(&self, events: Vec<DomainEvent>) -> Result<(), PublishError> {
        let mut published = self.published.lock().map_err(|_| PublishError("the event log was poisoned".into()))?;
        published.extend(events);
        Ok(())
    }

    async fn check(&self) -> Result<(), PublishError> {
        Ok(())
    }
}
