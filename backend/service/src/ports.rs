//! The ports of the application: what it needs from the outside world, in domain terms.
//! Adapters (DynamoDB, EventBridge, in-memory fakes in tests) implement these traits.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::domain::live::{LiveChange, LiveEvent, Subscription};
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct GraphCursor {
    pub node: NodeId,
    pub edge_to: Option<NodeId>,
}

/// One page of a user's graph: some of their nodes (in node id order) and the edges that
/// start from them. Every edge is stored under the node it starts from, so the union of
/// all pages is the whole graph with each edge once; an edge may name a node of a page
/// not read yet, and the edges of a node with very many may continue on the next page.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Graph {
    pub nodes: Vec<Node>,
    /// Each edge once, in the direction it was created.
    pub edges: Vec<Edge>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<GraphCursor>,
}

/// Why one node of a bulk write was not written: what really happened, so that the client
/// can tell "gone" from "try again".
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WriteFailure {
    /// The node does not exist, or was deleted already (by this request's competitor).
    #[error("the node does not exist")]
    NotFound,
    /// Other writes kept changing the node while this one was retried; retrying later works.
    #[error("the node was being changed by another request at the same time; retry this node")]
    Conflict,
    /// The store shed load and retries ran out; retrying later works.
    #[error("the store is busy and the write did not complete after retries; retry this node")]
    Throttled,
    /// The request's deadline passed before the write was done; retrying it is safe.
    #[error("the request ran out of time before this write was done; retry this node")]
    DeadlineExceeded,
    /// The store failed otherwise.
    #[error("the store failed: {0}")]
    Unavailable(String),
}

impl WriteFailure {
    /// The code a client sees for this failure.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound => "not-found",
            Self::Conflict => "concurrent-write",
            Self::Throttled => "throttled",
            Self::DeadlineExceeded => "deadline-exceeded",
            Self::Unavailable(_) => "unavailable",
        }
    }
}

impl From<StoreError> for WriteFailure {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Throttled(_) => Self::Throttled,
            StoreError::VersionConflict => Self::Conflict,
            StoreError::NodeMissing => Self::NotFound,
            StoreError::DeadlineExceeded => Self::DeadlineExceeded,
            other => Self::Unavailable(other.to_string()),
        }
    }
}

/// Per-item result of a bulk write: nothing is silently lost, every id lands in one list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchOutcome {
    pub succeeded: Vec<NodeId>,
    pub failed: Vec<(NodeId, WriteFailure)>,
}

/// Per-node result of a delete: the nodes deleted, as they were when the delete won (their
/// keywords are what the `node.deleted` event must carry), and why the others were not.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeleteOutcome {
    pub deleted: Vec<Node>,
    pub failed: Vec<(NodeId, WriteFailure)>,
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
    /// The node as the store holds it now, never from a cache: what a conditional write is
    /// checked against, so the only reads allowed to refuse a write.
    async fn get_node_current(&self, user: &UserId, id: NodeId) -> Result<Option<Node>, StoreError> {
        self.get_node(user, id).await
    }
    /// The nodes that exist among `ids`, in no particular order.
    async fn get_nodes(&self, user: &UserId, ids: &[NodeId]) -> Result<Vec<Node>, StoreError>;
    /// Replaces `previous` by `next` if the stored version is still `previous.version`.
    async fn replace_node(&self, previous: &Node, next: &Node) -> Result<(), StoreError>;
    /// Deletes nodes with their edges (both directions) and keyword postings, now: each node
    /// is marked deleted as by [`GraphStore::mark_deleted`], then purged. A node whose purge
    /// fails is deleted all the same (no read returns it) and its purge is left to the
    /// deletion queue. Of concurrent deletes of one node exactly one reports it deleted.
    async fn delete_nodes(&self, user: &UserId, ids: &[NodeId], at: DateTime<Utc>)
    -> Result<DeleteOutcome, StoreError>;
    /// Marks live nodes deleted, each on the condition that it is still the version read, so
    /// a concurrent update is never overwritten (the newer version is deleted instead). From
    /// then on no read returns them, no edge can be attached to them, and they wait in the
    /// deletion queue for [`GraphStore::purge_deleted`]. Of concurrent deletes of one node
    /// exactly one reports it deleted; the others get [`WriteFailure::NotFound`].
    async fn mark_deleted(&self, user: &UserId, ids: &[NodeId], at: DateTime<Utc>)
    -> Result<DeleteOutcome, StoreError>;
    /// Soft-deleted nodes deleted before `before`, oldest first per queue shard.
    async fn deletion_queue(&self, before: DateTime<Utc>, limit: usize) -> Result<Vec<DeletedNode>, StoreError>;
    /// Removes what is left of a soft-deleted node: both directions of its edges, every
    /// posting in its postings partition (whatever its keywords were) and the node item.
    /// Idempotent; `false` when there was nothing to remove.
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

/// Why the shared cache did not answer. Never a request's failure: the caller reads the
/// store instead.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CacheError {
    /// Recent calls failed; the cache is left alone until a probe finds it back.
    #[error("the shared cache is left alone after recent failures")]
    Open,
    #[error("the shared cache did not answer in time")]
    Timeout,
    #[error("the shared cache failed: {0}")]
    Failed(String),
}

/// The shared tier of the read cache: entries every instance of the service reads and
/// fills, grouped per user in *generations*. Any write of a user moves that user to a new
/// generation, so an entry filled before the write is never read again, on any instance.
/// Keys are built here from the user, so no user can address another's entries.
#[async_trait]
pub trait SharedCache: Send + Sync {
    /// The user's current generation (one is created when the user has none). Fails while
    /// this instance still owes the cache a generation change (see [`SharedCache::advance`]):
    /// until then, nothing cached for any user may be trusted by this instance.
    async fn generation(&self, user: &UserId) -> Result<u64, CacheError>;
    /// Moves the user to a new generation, atomically. When it fails, the change is owed
    /// and made before this instance reads the shared cache again.
    async fn advance(&self, user: &UserId) -> Result<(), CacheError>;
    /// The entries named by `slots` in the user's `generation`, in the order asked.
    async fn get(&self, user: &UserId, generation: u64, slots: &[String]) -> Result<Vec<Option<Vec<u8>>>, CacheError>;
    /// Stores an entry in the user's `generation` for the cache's time to live.
    async fn put(&self, user: &UserId, generation: u64, slot: &str, value: Vec<u8>) -> Result<(), CacheError>;
    /// A cheap call that proves the cache answers.
    async fn check(&self) -> Result<(), CacheError>;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_failures_say_what_happened() {
        let cases = [
            (StoreError::Throttled("slow down".into()), "throttled"),
            (StoreError::VersionConflict, "concurrent-write"),
            (StoreError::NodeMissing, "not-found"),
            (StoreError::Unavailable("ValidationException".into()), "unavailable"),
        ];
        for (error, code) in cases {
            assert_eq!(WriteFailure::from(error).code(), code);
        }
        let failure = WriteFailure::from(StoreError::Unavailable("ValidationException".into()));
        assert!(failure.to_string().contains("ValidationException"), "the reason travels with the failure");
    }
}

/// What a client that reconnects with the last event id it saw is owed.
#[derive(Debug, Clone, PartialEq)]
pub enum Replay {
    /// The changes logged after that event, oldest first (none when it missed nothing).
    Missed(Vec<LiveChange>),
    /// That event is no longer in the log (older than it keeps, or never the user's):
    /// the client reloads its graph instead.
    Lost,
}

/// The per-user log of recent changes that reconnecting clients replay from, in the order
/// they were appended. A redelivered event is appended again (clients de-duplicate by
/// event id, as they must for live delivery, which is at least once).
#[async_trait]
pub trait ChangeLog: Send + Sync {
    async fn append(&self, events: &[LiveEvent]) -> Result<(), StoreError>;
    async fn since(&self, user: &UserId, last_seen: uuid::Uuid) -> Result<Replay, StoreError>;
}

/// One open WebSocket connection behind API Gateway, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Connection {
    pub id: String,
    pub subscription: Subscription,
}

/// The WebSocket connections of each user, kept where the broadcaster finds them.
#[async_trait]
pub trait ConnectionRegistry: Send + Sync {
    async fn register(&self, user: &UserId, connection_id: &str) -> Result<(), StoreError>;
    /// Forgets a connection; the user it belonged to, if it was known.
    async fn unregister(&self, connection_id: &str) -> Result<Option<UserId>, StoreError>;
    async fn owner(&self, connection_id: &str) -> Result<Option<UserId>, StoreError>;
    async fn subscribe(
        &self,
        user: &UserId,
        connection_id: &str,
        subscription: &Subscription,
    ) -> Result<(), StoreError>;
    async fn of_user(&self, user: &UserId) -> Result<Vec<Connection>, StoreError>;
}

#[derive(Debug, Error)]
pub enum PostError {
    /// The client is gone (API Gateway answered 410): its connection is forgotten.
    #[error("the connection is gone")]
    Gone,
    #[error("posting to the connection failed: {0}")]
    Failed(String),
}

/// Sends one frame to one WebSocket connection (API Gateway's management API in AWS).
#[async_trait]
pub trait ConnectionPoster: Send + Sync {
    async fn post(&self, connection_id: &str, frame: &str) -> Result<(), PostError>;
}

/// Hands a user's changes, oldest first, to their connected clients: the local sockets'
/// hub, or the connections API Gateway holds. Delivery is best effort: a client that
/// missed something replays it from the [`ChangeLog`] when it reconnects.
#[async_trait]
pub trait Fanout: Send + Sync {
    async fn deliver(&self, user: &UserId, changes: &[LiveChange]);
}
