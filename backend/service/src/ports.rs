//! The ports of the application: what it needs from the outside world, in domain terms.
//! Adapters (DynamoDB, EventBridge, in-memory fakes in tests) implement these traits.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::domain::similarity::DocumentFrequencies;
use crate::domain::{DomainEvent, Edge, Node, NodeId, UserId};

#[derive(Debug, Error)]
pub enum StoreError {
    /// The item changed (or vanished) between read and conditional write.
    #[error("the node was modified concurrently")]
    VersionConflict,
    #[error("a referenced node does not exist")]
    NodeMissing,
    #[error("the edge already exists")]
    EdgeExists,
    /// The store refused for load; the caller may retry later.
    #[error("the store is throttling requests: {0}")]
    Throttled(String),
    #[error("the store failed: {0}")]
    Unavailable(String),
    /// The request's deadline passed before the store answered; the caller may retry later.
    #[error("the request's deadline passed before the store answered")]
    DeadlineExceeded,
}

/// Where a newest-first listing continues: just after this node. Holds no user id:
/// the store rebuilds the full key from the authenticated user, so a cursor can never
/// point into another user's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListCursor {
    pub created_at_ms: i64,
    pub node_id: NodeId,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<ListCursor>,
}

/// Where a graph page continues: just after this node, or (`edge_to`) just after its edge
/// to that node. Holds no user id, like [`ListCursor`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GraphCursor {
    pub node: NodeId,
    pub edge_to: Option<NodeId>,
}

/// One page of a user's graph: some of their nodes (in node id order) and the edges that
/// start from them. Every edge is stored under the node it starts from, so the union of
/// all pages is the whole graph with each edge once; an edge may name a node of a page
/// not read yet, and the edges of a node with very many may continue on the next page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Graph {
    pub nodes: Vec<Node>,
    /// Each edge once, in the direction it was created.
    pub edges: Vec<Edge>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<GraphCursor>,
}

/// Per-item result of a bulk write: nothing is silently lost, every id lands in one list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchOutcome {
    pub succeeded: Vec<NodeId>,
    pub failed: Vec<(NodeId, String)>,
}

/// A soft-deleted node waiting in the deletion queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedNode {
    pub user_id: UserId,
    pub node_id: NodeId,
}

#[async_trait]
pub trait GraphStore: Send + Sync {
    /// Stores a new node and its keyword postings atomically.
    async fn insert_node(&self, node: &Node) -> Result<(), StoreError>;
    /// Stores many new nodes; each one is either fully written or reported as failed.
    async fn insert_nodes(&self, nodes: &[Node]) -> Result<BatchOutcome, StoreError>;
    async fn get_node(&self, user: &UserId, id: NodeId) -> Result<Option<Node>, StoreError>;
    /// The nodes that exist among `ids`, in no particular order.
    async fn get_nodes(&self, user: &UserId, ids: &[NodeId]) -> Result<Vec<Node>, StoreError>;
    /// Replaces `previous` by `next` if the stored version is still `previous.version`.
    async fn replace_node(&self, previous: &Node, next: &Node) -> Result<(), StoreError>;
    /// Deletes nodes with their edges (both directions) and keyword postings.
    async fn delete_nodes(&self, user: &UserId, nodes: &[Node]) -> Result<BatchOutcome, StoreError>;
    /// Marks nodes deleted in one write each: from then on no read returns them, and they
    /// wait in the deletion queue for [`GraphStore::purge_deleted`].
    async fn mark_deleted(&self, user: &UserId, nodes: &[Node], at: DateTime<Utc>) -> Result<BatchOutcome, StoreError>;
    /// Soft-deleted nodes deleted before `before`, oldest first per queue shard.
    async fn deletion_queue(&self, before: DateTime<Utc>, limit: usize) -> Result<Vec<DeletedNode>, StoreError>;
    /// Removes what is left of a soft-deleted node: both directions of its edges, its
    /// postings and the node item. Idempotent; `false` when there was nothing to remove.
    async fn purge_deleted(&self, user: &UserId, id: NodeId) -> Result<bool, StoreError>;
    async fn list_nodes(
        &self,
        user: &UserId,
        limit: usize,
        after: Option<ListCursor>,
    ) -> Result<Page<Node>, StoreError>;
    /// A page of at most `limit` nodes of the user's graph, after `after` (from the start
    /// when `None`), with the edges that start from them.
    async fn graph(&self, user: &UserId, limit: usize, after: Option<GraphCursor>) -> Result<Graph, StoreError>;
    /// Stores both directions of an edge; both ends must exist.
    async fn insert_edge(&self, edge: &Edge) -> Result<(), StoreError>;
    /// Removes both directions; `false` when there was no such edge.
    async fn delete_edge(&self, user: &UserId, a: NodeId, b: NodeId) -> Result<bool, StoreError>;
    /// The node and its adjacency list, or `None` when the node does not exist.
    async fn node_edges(&self, user: &UserId, id: NodeId) -> Result<Option<Vec<Edge>>, StoreError>;
    /// Ids of the user's nodes with this keyword, newest first.
    async fn nodes_with_keyword(&self, user: &UserId, keyword: &str, limit: usize) -> Result<Vec<NodeId>, StoreError>;
    /// Applies one event's change to the user's document-frequency counters, atomically
    /// and at most once per `event_id`; `false` when that event was applied already.
    async fn apply_frequency_change(
        &self,
        user: &UserId,
        event_id: uuid::Uuid,
        added: &[String],
        removed: &[String],
        documents_delta: i64,
    ) -> Result<bool, StoreError>;
    /// The user's document count and the frequencies of `keywords`.
    async fn document_frequencies(&self, user: &UserId, keywords: &[String])
    -> Result<DocumentFrequencies, StoreError>;
    /// A cheap call that proves the store is reachable and the table exists.
    async fn check(&self) -> Result<(), StoreError>;
}

#[derive(Debug, Error)]
#[error("event publishing failed: {0}")]
pub struct PublishError(pub String);

#[async_trait]
pub trait EventPublisher: Send + Sync {
    async fn publish(&self, events: Vec<DomainEvent>) -> Result<(), PublishError>;
    /// Returns once every event handed over so far has been sent (or dead-lettered).
    async fn flush(&self) {}
    /// A cheap call that proves the event bus is reachable.
    async fn check(&self) -> Result<(), PublishError>;
}
