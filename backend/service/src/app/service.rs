use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
use thiserror::Error;

use crate::domain::{
    DomainError, DomainEvent, Edge, EdgeKind, EdgeWeight, KeywordExtractor, Node, NodeDraft, NodeId, UserId,
};
use crate::ports::{
    DeleteOutcome, EventPublisher, Graph, GraphCursor, GraphStore, ListCursor, Page, StoreError, WriteFailure,
};

/// Most items one bulk request may carry; keeps a request inside the Lambda and
/// API Gateway time limits.
pub const MAX_BULK_ITEMS: usize = 100;
pub const DEFAULT_PAGE_SIZE: usize = 50;
pub const MAX_PAGE_SIZE: usize = 200;
/// Nodes of one `/graph-data` page unless asked otherwise, and at most. The store also
/// ends a page early once it holds about half a megabyte of data, so that a page of large
/// notes or of a node with very many edges stays far below Lambda's 6 MB response limit.
pub const DEFAULT_GRAPH_PAGE: usize = 100;
pub const MAX_GRAPH_PAGE: usize = 500;

#[derive(Debug, Error)]
pub enum ServiceError {
    #[error(transparent)]
    Invalid(#[from] DomainError),
    #[error("node {0} does not exist")]
    NodeNotFound(NodeId),
    #[error("there is no edge between {0} and {1}")]
    EdgeNotFound(NodeId, NodeId),
    #[error("an edge between {0} and {1} exists already")]
    EdgeExists(NodeId, NodeId),
    #[error("node {0} was being changed by another request at the same time; retry")]
    ConcurrentWrite(NodeId),
    #[error("version {expected} is stale: the node is at version {current}")]
    VersionConflict { expected: u64, current: u64 },
    #[error("a bulk request takes 1 to {MAX_BULK_ITEMS} items, got {0}")]
    BulkSize(usize),
    #[error("limit must be 1 to {MAX_PAGE_SIZE}, got {0}")]
    InvalidLimit(usize),
    #[error("limit must be 1 to {MAX_GRAPH_PAGE}, got {0}")]
    InvalidGraphLimit(usize),
    #[error("{0:?} cannot be searched: use one word that is not a stop word, number or very short word")]
    NotAKeyword(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why one item of a bulk request was not done; the rest of the request still is.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemFailure {
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, Default)]
pub struct BulkCreateReport {
    pub created: Vec<Node>,
    /// Position in the request and why.
    pub failed: Vec<(usize, ItemFailure)>,
}

#[derive(Debug, Default)]
pub struct BulkDeleteReport {
    pub deleted: Vec<String>,
    /// The id as sent and why.
    pub failed: Vec<(String, ItemFailure)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Neighbor {
    pub node: Node,
    pub edge: Edge,
}

/// Raw fields of a node as a client sent them, validated here.
pub struct NodeInput {
    pub content: String,
    pub tags: Vec<String>,
}

pub struct GraphService {
    store: Arc<dyn GraphStore>,
    events: Arc<dyn EventPublisher>,
    extractor: KeywordExtractor,
    /// Mark nodes deleted and leave the cascade to the cleanup worker, instead of
    /// deleting edges and postings inside the request.
    soft_delete: bool,
}

/// What a client is told about an item the store did not finish.
fn item_failure(failure: &WriteFailure) -> ItemFailure {
    ItemFailure { code: failure.code(), message: failure.to_string() }
}

impl GraphService {
    pub fn new(store: Arc<dyn GraphStore>, events: Arc<dyn EventPublisher>, soft_delete: bool) -> Self {
        Self { store, events, extractor: KeywordExtractor::new(), soft_delete }
    }

    /// Deletes the nodes, and publishes one `node.deleted` per node this call deleted (the
    /// store lets exactly one of concurrent deletes of a node win), carrying the keywords the
    /// node had when it was deleted.
    async fn remove(&self, user: &UserId, ids: &[NodeId]) -> Result<DeleteOutcome, StoreError> {
        let now = Utc::now();
        let outcome = if self.soft_delete {
            self.store.mark_deleted(user, ids, now).await?
        } else {
            self.store.delete_nodes(user, ids, now).await?
        };
        self.publish(outcome.deleted.iter().map(|node| DomainEvent::node_deleted(node, now)).collect()).await;
        Ok(outcome)
    }

    /// Events follow the write they describe. The write has happened whatever the
    /// publisher says, so a publishing failure is logged with every event id, never
    /// turned into an error for the client.
    async fn publish(&self, events: Vec<DomainEvent>) {
        if events.is_empty() {
            return;
        }
        let ids: Vec<String> = events.iter().map(|e| e.event_id.to_string()).collect();
        if let Err(error) = self.events.publish(events).await {
            tracing::error!(%error, event_ids = ?ids, "domain events were not published");
        }
    }

    pub async fn create_node(&self, user: &UserId, input: NodeInput) -> Result<Node, ServiceError> {
        let draft = NodeDraft::new(&input.content, &input.tags)?;
        let node = Node::create(user.clone(), draft, &self.extractor, Utc::now());
        self.store.insert_node(&node).await?;
        self.publish(vec![DomainEvent::node_created(&node)]).await;
        Ok(node)
    }

    pub async fn get_node(&self, user: &UserId, id: NodeId) -> Result<Node, ServiceError> {
        self.store.get_node(user, id).await?.ok_or(ServiceError::NodeNotFound(id))
    }

    pub async fn update_node(
        &self,
        user: &UserId,
        id: NodeId,
        input: NodeInput,
        expected_version: u64,
    ) -> Result<Node, ServiceError> {
        let draft = NodeDraft::new(&input.content, &input.tags)?;
        // A cached read may be older than another instance's write: it is trusted only when
        // it agrees with the client. Otherwise the store says what the node is now; the
        // conditional write below decides the rest.
        let current = match self.store.get_node(user, id).await? {
            Some(node) if node.version == expected_version => node,
            _ => self.store.get_node_current(user, id).await?.ok_or(ServiceError::NodeNotFound(id))?,
        };
        if current.version != expected_version {
            return Err(ServiceError::VersionConflict { expected: expected_version, current: current.version });
        }
        let next = current.revise(draft, &self.extractor, Utc::now());
        match self.store.replace_node(&current, &next).await {
            Ok(()) => {}
            Err(StoreError::VersionConflict) => {
                // Someone else won the race; report the version they left behind.
                let current = self.store.get_node_current(user, id).await?.ok_or(ServiceError::NodeNotFound(id))?;
                return Err(ServiceError::VersionConflict { expected: expected_version, current: current.version });
            }
            Err(other) => return Err(other.into()),
        }
        self.publish(vec![DomainEvent::node_updated(&next, &current)]).await;
        Ok(next)
    }

    pub async fn delete_node(&self, user: &UserId, id: NodeId) -> Result<(), ServiceError> {
        let outcome = self.remove(user, &[id]).await?;
        match outcome.failed.into_iter().next() {
            None => Ok(()),
            Some((_, WriteFailure::NotFound)) => Err(ServiceError::NodeNotFound(id)),
            Some((_, WriteFailure::Conflict)) => Err(ServiceError::ConcurrentWrite(id)),
            Some((_, WriteFailure::Throttled)) => {
                Err(StoreError::Throttled("the delete did not complete after retries".into()).into())
            }
            Some((_, WriteFailure::DeadlineExceeded)) => Err(StoreError::DeadlineExceeded.into()),
            Some((_, WriteFailure::Unavailable(reason))) => Err(StoreError::Unavailable(reason).into()),
        }
    }

    pub async fn list_nodes(
        &self,
        user: &UserId,
        limit: Option<usize>,
        after: Option<ListCursor>,
    ) -> Result<Page<Node>, ServiceError> {
        let limit = limit.unwrap_or(DEFAULT_PAGE_SIZE);
        if !(1..=MAX_PAGE_SIZE).contains(&limit) {
            return Err(ServiceError::InvalidLimit(limit));
        }
        Ok(self.store.list_nodes(user, limit, after).await?)
    }

    pub async fn bulk_create(&self, user: &UserId, inputs: Vec<NodeInput>) -> Result<BulkCreateReport, ServiceError> {
        if inputs.is_empty() || inputs.len() > MAX_BULK_ITEMS {
            return Err(ServiceError::BulkSize(inputs.len()));
        }
        let now = Utc::now();
        let mut report = BulkCreateReport::default();
        let mut pending: Vec<(usize, Node)> = Vec::with_capacity(inputs.len());
        for (index, input) in inputs.into_iter().enumerate() {
            match NodeDraft::new(&input.content, &input.tags) {
                Ok(draft) => pending.push((index, Node::create(user.clone(), draft, &self.extractor, now))),
                Err(error) => {
                    report.failed.push((index, ItemFailure { code: error.code(), message: error.to_string() }))
                }
            }
        }
        let nodes: Vec<Node> = pending.iter().map(|(_, node)| node.clone()).collect();
        let outcome = if nodes.is_empty() { Default::default() } else { self.store.insert_nodes(&nodes).await? };
        let failed: HashMap<NodeId, WriteFailure> = outcome.failed.into_iter().collect();
        for (index, node) in pending {
            match failed.get(&node.id) {
                Some(failure) => report.failed.push((index, item_failure(failure))),
                None => report.created.push(node),
            }
        }
        report.failed.sort_by_key(|(index, _)| *index);
        self.publish(report.created.iter().map(DomainEvent::node_created).collect()).await;
        Ok(report)
    }

    pub async fn bulk_delete(&self, user: &UserId, raw_ids: Vec<String>) -> Result<BulkDeleteReport, ServiceError> {
        if raw_ids.is_empty() || raw_ids.len() > MAX_BULK_ITEMS {
            return Err(ServiceError::BulkSize(raw_ids.len()));
        }
        let mut report = BulkDeleteReport::default();
        let mut requested: Vec<(String, NodeId)> = Vec::with_capacity(raw_ids.len());
        for raw in raw_ids {
            match NodeId::parse(&raw) {
                Ok(id) if requested.iter().any(|(_, seen)| *seen == id) => {
                    let message = format!("node {id} appears more than once in this request; it is deleted once");
                    report.failed.push((raw, ItemFailure { code: "duplicate-id", message }));
                }
                Ok(id) => requested.push((raw, id)),
                Err(error) => report.failed.push((raw, ItemFailure { code: error.code(), message: error.to_string() })),
            }
        }
        let ids: Vec<NodeId> = requested.iter().map(|(_, id)| *id).collect();
        let outcome = if ids.is_empty() { Default::default() } else { self.remove(user, &ids).await? };
        let failed: HashMap<NodeId, WriteFailure> = outcome.failed.into_iter().collect();
        for (raw, id) in requested {
            match failed.get(&id) {
                Some(WriteFailure::NotFound) => {
                    let failure = ItemFailure { code: "not-found", message: format!("node {id} does not exist") };
                    report.failed.push((raw, failure));
                }
                Some(failure) => report.failed.push((raw, item_failure(failure))),
                None => report.deleted.push(id.to_string()),
            }
        }
        Ok(report)
    }

    /// A page of the user's graph: `limit` nodes at most (default [`DEFAULT_GRAPH_PAGE`]).
    pub async fn graph(
        &self,
        user: &UserId,
        limit: Option<usize>,
        after: Option<GraphCursor>,
    ) -> Result<Graph, ServiceError> {
        let limit = limit.unwrap_or(DEFAULT_GRAPH_PAGE);
        if !(1..=MAX_GRAPH_PAGE).contains(&limit) {
            return Err(ServiceError::InvalidGraphLimit(limit));
        }
        Ok(self.store.graph(user, limit, after).await?)
    }

    pub async fn create_edge(
        &self,
        user: &UserId,
        source: NodeId,
        target: NodeId,
        weight: Option<f64>,
    ) -> Result<Edge, ServiceError> {
        let weight = weight.map(EdgeWeight::new).transpose()?.unwrap_or(EdgeWeight::FULL);
        let edge = Edge::new(user.clone(), source, target, weight, EdgeKind::Manual, Utc::now())?;
        match self.store.insert_edge(&edge).await {
            Ok(()) => {}
            Err(StoreError::NodeMissing) => {
                let missing = match self.store.get_node(user, source).await? {
                    None => source,
                    Some(_) => target,
                };
                return Err(ServiceError::NodeNotFound(missing));
            }
            Err(StoreError::EdgeExists) => return Err(ServiceError::EdgeExists(source, target)),
            Err(other) => return Err(other.into()),
        }
        self.publish(vec![DomainEvent::edge_created(&edge)]).await;
        Ok(edge)
    }

    pub async fn delete_edge(&self, user: &UserId, source: NodeId, target: NodeId) -> Result<(), ServiceError> {
        if !self.store.delete_edge(user, source, target).await? {
            return Err(ServiceError::EdgeNotFound(source, target));
        }
        self.publish(vec![DomainEvent::edge_deleted(user, source, target, Utc::now())]).await;
        Ok(())
    }

    pub async fn neighbors(&self, user: &UserId, id: NodeId) -> Result<Vec<Neighbor>, ServiceError> {
        let edges = self.store.node_edges(user, id).await?.ok_or(ServiceError::NodeNotFound(id))?;
        let other_ends: Vec<NodeId> = edges.iter().map(|edge| edge.other_end(id)).collect();
        let nodes = if other_ends.is_empty() { Vec::new() } else { self.store.get_nodes(user, &other_ends).await? };
        let mut by_id: HashMap<NodeId, Node> = nodes.into_iter().map(|node| (node.id, node)).collect();
        Ok(edges
            .into_iter()
            .filter_map(|edge| by_id.remove(&edge.other_end(id)).map(|node| Neighbor { node, edge }))
            .collect())
    }

    pub async fn search(&self, user: &UserId, term: &str, limit: Option<usize>) -> Result<Vec<Node>, ServiceError> {
        let limit = limit.unwrap_or(DEFAULT_PAGE_SIZE);
        if !(1..=MAX_PAGE_SIZE).contains(&limit) {
            return Err(ServiceError::InvalidLimit(limit));
        }
        let keyword = self.extractor.normalize_term(term).ok_or_else(|| ServiceError::NotAKeyword(term.to_owned()))?;
        let ids = self.store.nodes_with_keyword(user, &keyword, limit).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut by_id: HashMap<NodeId, Node> =
            self.store.get_nodes(user, &ids).await?.into_iter().map(|node| (node.id, node)).collect();
        // Keep the index's newest-first order; ids whose node is gone are skipped.
        Ok(ids.into_iter().filter_map(|id| by_id.remove(&id)).collect())
    }
}
