//! What a connected client is told of the changes to its graph, and which of them it wants.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{NodeId, UserId};

/// What a change is about: a node, or an edge between two of the user's nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Subject {
    #[serde(rename_all = "camelCase")]
    Node {
        node_id: NodeId,
    },
    Edge {
        edge: EdgeEnds,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeEnds {
    pub source: NodeId,
    pub target: NodeId,
}

impl Subject {
    /// Whether the change concerns `node`: the node itself, or either end of the edge.
    pub fn touches(&self, node: &NodeId) -> bool {
        match self {
            Self::Node { node_id } => node_id == node,
            Self::Edge { edge } => edge.source == *node || edge.target == *node,
        }
    }
}

/// One change as a client receives it: `{type, eventId, nodeId | edge, version, at, data}`
/// (docs/realtime.md). The user is not part of it: a client only ever sees its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveChange {
    /// The domain event's type: `node.created`, `node.updated`, `node.deleted`,
    /// `edge.created` or `edge.deleted`.
    #[serde(rename = "type")]
    pub kind: String,
    pub event_id: Uuid,
    #[serde(flatten)]
    pub subject: Subject,
    pub version: u64,
    pub at: DateTime<Utc>,
    /// The event's own fields (keywords, an edge's weight and kind), as the bus carries them.
    pub data: serde_json::Value,
}

/// A change and whose graph it changed.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveEvent {
    pub user_id: UserId,
    pub change: LiveChange,
}

/// Which changes a connection wants: all of its user's (the default), or those touching
/// some nodes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscription {
    nodes: Option<HashSet<NodeId>>,
}

impl Subscription {
    /// At most this many node ids in one subscription: a client that wants more takes them all.
    pub const MAX_NODES: usize = 1_000;

    pub fn everything() -> Self {
        Self::default()
    }

    pub fn nodes(nodes: impl IntoIterator<Item = NodeId>) -> Self {
        Self { nodes: Some(nodes.into_iter().collect()) }
    }

    /// The node ids it is narrowed to; `None` when it takes everything.
    pub fn node_ids(&self) -> Option<&HashSet<NodeId>> {
        self.nodes.as_ref()
    }

    pub fn admits(&self, change: &LiveChange) -> bool {
        self.nodes.as_ref().is_none_or(|nodes| nodes.iter().any(|node| change.subject.touches(node)))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn change(subject: Subject) -> LiveChange {
        LiveChange {
            kind: "edge.created".into(),
            event_id: Uuid::now_v7(),
            subject,
            version: 1,
            at: Utc::now(),
            data: json!({}),
        }
    }

    #[test]
    fn node_and_edge_changes_read_as_the_client_sees_them() {
        let (a, b) = (NodeId::generate(), NodeId::generate());
        let edge = change(Subject::Edge { edge: EdgeEnds { source: a, target: b } });
        let wire = serde_json::to_value(&edge).unwrap();
        assert_eq!(wire["edge"], json!({"source": a.to_string(), "target": b.to_string()}));
        assert_eq!(wire["type"], "edge.created");
        assert!(wire.get("nodeId").is_none());
        assert_eq!(serde_json::from_value::<LiveChange>(wire).unwrap(), edge);
        let node = change(Subject::Node { node_id: a });
        let wire = serde_json::to_value(&node).unwrap();
        assert_eq!(wire["nodeId"], a.to_string());
        assert_eq!(serde_json::from_value::<LiveChange>(wire).unwrap(), node);
    }

    #[test]
    fn a_subscription_to_nodes_admits_their_changes_and_edges_at_either_end() {
        let (a, b, c) = (NodeId::generate(), NodeId::generate(), NodeId::generate());
        let only_a = Subscription::nodes([a]);
        assert!(only_a.admits(&change(Subject::Node { node_id: a })));
        assert!(!only_a.admits(&change(Subject::Node { node_id: b })));
        assert!(only_a.admits(&change(Subject::Edge { edge: EdgeEnds { source: b, target: a } })));
        assert!(!only_a.admits(&change(Subject::Edge { edge: EdgeEnds { source: b, target: c } })));
        assert!(Subscription::everything().admits(&change(Subject::Node { node_id: c })));
        assert!(!Subscription::nodes([]).admits(&change(Subject::Node { node_id: c })));
    }
}
