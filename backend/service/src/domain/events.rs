use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Edge, Node, NodeId, UserId};

/// What happened, in the words downstream consumers subscribe to.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    NodeCreated {
        keywords: Vec<String>,
    },
    NodeUpdated {
        keywords: Vec<String>,
        previous_keywords: Vec<String>,
    },
    /// Carries the keywords the node had, so document frequencies can be decremented.
    NodeDeleted {
        keywords: Vec<String>,
    },
    EdgeCreated {
        target: NodeId,
        weight: f64,
        edge_kind: &'static str,
    },
    EdgeDeleted {
        target: NodeId,
    },
}

impl EventKind {
    pub fn detail_type(&self) -> &'static str {
        match self {
            Self::NodeCreated { .. } => "node.created",
            Self::NodeUpdated { .. } => "node.updated",
            Self::NodeDeleted { .. } => "node.deleted",
            Self::EdgeCreated { .. } => "edge.created",
            Self::EdgeDeleted { .. } => "edge.deleted",
        }
    }
}

/// A fact about one aggregate (a node, or an edge identified by its source node).
/// `event_id` lets consumers de-duplicate re-deliveries.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainEvent {
    pub event_id: Uuid,
    pub user_id: UserId,
    pub aggregate_id: NodeId,
    pub version: u64,
    pub occurred_at: DateTime<Utc>,
    pub kind: EventKind,
}

impl DomainEvent {
    fn new(user_id: &UserId, aggregate_id: NodeId, version: u64, occurred_at: DateTime<Utc>, kind: EventKind) -> Self {
        Self { event_id: Uuid::now_v7(), user_id: user_id.clone(), aggregate_id, version, occurred_at, kind }
    }

    /// The same event under another id: one derived from where the event was recorded, so
    /// that every delivery of that record carries the same id.
    pub fn with_id(self, event_id: Uuid) -> Self {
        Self { event_id, ..self }
    }

    pub fn node_created(node: &Node) -> Self {
        let kind = EventKind::NodeCreated { keywords: node.keywords.clone() };
        Self::new(&node.user_id, node.id, node.version, node.updated_at, kind)
    }

    pub fn node_updated(node: &Node, previous: &Node) -> Self {
        let kind =
            EventKind::NodeUpdated { keywords: node.keywords.clone(), previous_keywords: previous.keywords.clone() };
        Self::new(&node.user_id, node.id, node.version, node.updated_at, kind)
    }

    pub fn node_deleted(node: &Node, at: DateTime<Utc>) -> Self {
        Self::new(&node.user_id, node.id, node.version, at, EventKind::NodeDeleted { keywords: node.keywords.clone() })
    }

    pub fn edge_created(edge: &Edge) -> Self {
        let kind =
            EventKind::EdgeCreated { target: edge.target, weight: edge.weight.value(), edge_kind: edge.kind.as_str() };
        Self::new(&edge.user_id, edge.source, 1, edge.created_at, kind)
    }

    pub fn edge_deleted(user_id: &UserId, source: NodeId, target: NodeId, at: DateTime<Utc>) -> Self {
        Self::new(user_id, source, 1, at, EventKind::EdgeDeleted { target })
    }
}
