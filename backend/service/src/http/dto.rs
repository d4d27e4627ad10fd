//! The JSON shapes of the API. Field names are camelCase and part of the contract.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::SecondsFormat;
use serde::{Deserialize, Serialize};

use super::problem::ApiError;
use crate::app::health::HealthReport;
use crate::app::service::{BulkCreateReport, BulkDeleteReport, Neighbor, NodeInput};
use crate::domain::{Edge, Node, NodeId};
use crate::ports::{Graph, GraphCursor, ListCursor, Page};

#[derive(Debug, Deserialize)]
pub struct NodeBody {
    pub content: String,
    #[serde(default)]
    pub tags: Vec<String>,
}

impl From<NodeBody> for NodeInput {
    fn from(body: NodeBody) -> Self {
        Self { content: body.content, tags: body.tags }
    }
}

#[derive(Debug, Deserialize)]
pub struct UpdateNodeBody {
    pub content: String,
    #[serde(default)]
    pub tags: Vec<String>,
    pub version: u64,
}

#[derive(Debug, Deserialize)]
pub struct BulkCreateBody {
    pub nodes: Vec<NodeBody>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkDeleteBody {
    pub node_ids: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateEdgeBody {
    pub source_id: String,
    pub target_id: String,
    pub weight: Option<f64>,
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    pub keyword: String,
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NodeDto {
    pub id: String,
    pub content: String,
    pub keywords: Vec<String>,
    pub tags: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
    pub version: u64,
}

impl From<&Node> for NodeDto {
    fn from(node: &Node) -> Self {
        Self {
            id: node.id.to_string(),
            content: node.content.clone(),
            keywords: node.keywords.clone(),
            tags: node.tags.clone(),
            created_at: node.created_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            updated_at: node.updated_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            version: node.version,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EdgeDto {
    pub source_id: String,
    pub target_id: String,
    pub weight: f64,
    pub kind: String,
    pub created_at: String,
}

impl From<&Edge> for EdgeDto {
    fn from(edge: &Edge) -> Self {
        Self {
            source_id: edge.source.to_string(),
            target_id: edge.target.to_string(),
            weight: edge.weight.value(),
            kind: edge.kind.as_str().to_owned(),
            created_at: edge.created_at.to_rfc3339_opts(SecondsFormat::Millis, true),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodePage {
    pub items: Vec<NodeDto>,
    pub next_cursor: Option<String>,
}

impl From<&Page<Node>> for NodePage {
    fn from(page: &Page<Node>) -> Self {
        Self { items: page.items.iter().map(NodeDto::from).collect(), next_cursor: page.next.map(encode_cursor) }
    }
}

#[derive(Debug, Deserialize)]
pub struct GraphQuery {
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

/// One page of the graph: its nodes, the edges that start from them, and where the next
/// page starts (`null` on the last).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphDto {
    pub nodes: Vec<NodeDto>,
    pub edges: Vec<EdgeDto>,
    pub next_cursor: Option<String>,
}

impl From<&Graph> for GraphDto {
    fn from(graph: &Graph) -> Self {
        Self {
            nodes: graph.nodes.iter().map(NodeDto::from).collect(),
            edges: graph.edges.iter().map(EdgeDto::from).collect(),
            next_cursor: graph.next.map(encode_graph_cursor),
        }
    }
}

/// Graph cursors, like list cursors, hold only a position (a node, and an edge of it when
/// a page ended among that node's edges); the store rebuilds the key from the caller.
/// The `g:` prefix keeps a list cursor from being taken for a graph cursor.
pub fn encode_graph_cursor(cursor: GraphCursor) -> String {
    let position = match cursor.edge_to {
        Some(other) => format!("g:{}:{other}", cursor.node),
        None => format!("g:{}", cursor.node),
    };
    URL_SAFE_NO_PAD.encode(position)
}

pub fn decode_graph_cursor(raw: &str) -> Result<GraphCursor, ApiError> {
    let invalid = || ApiError::bad_request("invalid-cursor", "the cursor is not one this API returned");
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let position = text.strip_prefix("g:").ok_or_else(invalid)?;
    let (node, edge_to) = match position.split_once(':') {
        Some((node, other)) => (node, Some(NodeId::parse(other).map_err(|_| invalid())?)),
        None => (position, None),
    };
    Ok(GraphCursor { node: NodeId::parse(node).map_err(|_| invalid())?, edge_to })
}

#[derive(Debug, Serialize, Deserialize)]
pub struct NeighborDto {
    pub node: NodeDto,
    pub weight: f64,
    pub kind: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NeighborsDto {
    pub node_id: String,
    pub neighbors: Vec<NeighborDto>,
}

impl NeighborsDto {
    pub fn new(node: NodeId, neighbors: &[Neighbor]) -> Self {
        Self {
            node_id: node.to_string(),
            neighbors: neighbors
                .iter()
                .map(|n| NeighborDto {
                    node: NodeDto::from(&n.node),
                    weight: n.edge.weight.value(),
                    kind: n.edge.kind.as_str().to_owned(),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SearchDto {
    pub keyword: String,
    pub items: Vec<NodeDto>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct IndexFailureDto {
    pub index: usize,
    pub code: String,
    pub message: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct BulkCreateDto {
    pub created: Vec<NodeDto>,
    pub failed: Vec<IndexFailureDto>,
}

impl From<&BulkCreateReport> for BulkCreateDto {
    fn from(report: &BulkCreateReport) -> Self {
        Self {
            created: report.created.iter().map(NodeDto::from).collect(),
            failed: report
                .failed
                .iter()
                .map(|(index, failure)| IndexFailureDto {
                    index: *index,
                    code: failure.code.to_owned(),
                    message: failure.message.clone(),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct IdFailureDto {
    pub id: String,
    pub code: String,
    pub message: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct BulkDeleteDto {
    pub deleted: Vec<String>,
    pub failed: Vec<IdFailureDto>,
}

impl From<&BulkDeleteReport> for BulkDeleteDto {
    fn from(report: &BulkDeleteReport) -> Self {
        Self {
            deleted: report.deleted.clone(),
            failed: report
                .failed
                .iter()
                .map(|(id, failure)| IdFailureDto {
                    id: id.clone(),
                    code: failure.code.to_owned(),
                    message: failure.message.clone(),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentDto {
    pub name: String,
    pub status: String,
    pub duration_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The whole report for an authenticated caller; the status alone for anyone else.
#[derive(Debug, Serialize, Deserialize)]
pub struct HealthDto {
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<ComponentDto>,
    /// The optimisation flags in force.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub flags: std::collections::BTreeMap<String, bool>,
}

impl HealthDto {
    pub fn new(report: &HealthReport, flags: &crate::flags::Flags) -> Self {
        Self {
            flags: flags.entries().into_iter().map(|(name, on)| (name.to_owned(), on)).collect(),
            status: report.status.as_str().to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            components: report
                .components
                .iter()
                .map(|c| ComponentDto {
                    name: c.name.to_owned(),
                    status: c.status.as_str().to_owned(),
                    duration_ms: c.duration.as_secs_f64() * 1000.0,
                    error: c.error.clone(),
                })
                .collect(),
        }
    }

    /// The status alone: what an anonymous caller may know.
    pub fn summary(self) -> Self {
        Self { status: self.status, version: String::new(), components: Vec::new(), flags: Default::default() }
    }
}

/// Cursors are opaque to clients. They hold only a position (time and node id), never
/// a user id: the store rebuilds the key from the caller, so a cursor cannot cross users.
pub fn encode_cursor(cursor: ListCursor) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{}", cursor.created_at_ms, cursor.node_id))
}

pub fn decode_cursor(raw: &str) -> Result<ListCursor, ApiError> {
    let invalid = || ApiError::bad_request("invalid-cursor", "the cursor is not one this API returned");
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (millis, id) = text.split_once(':').ok_or_else(invalid)?;
    let created_at_ms: i64 = millis.parse().map_err(|_| invalid())?;
    if created_at_ms < 0 {
        return Err(invalid());
    }
    Ok(ListCursor { created_at_ms, node_id: NodeId::parse(id).map_err(|_| invalid())? })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let cursor = ListCursor { created_at_ms: 1_700_000_000_123, node_id: NodeId::generate() };
        assert_eq!(decode_cursor(&encode_cursor(cursor)).unwrap(), cursor);
        for bad in ["", "!!!", "bm90LWEtY3Vyc29y", &URL_SAFE_NO_PAD.encode("-5:x")] {
            assert_eq!(decode_cursor(bad).unwrap_err().code, "invalid-cursor", "{bad}");
        }
    }

    #[test]
    fn graph_cursor_round_trips_and_rejects_garbage_and_list_cursors() {
        let (node, other) = (NodeId::generate(), NodeId::generate());
        for cursor in [GraphCursor { node, edge_to: None }, GraphCursor { node, edge_to: Some(other) }] {
            assert_eq!(decode_graph_cursor(&encode_graph_cursor(cursor)).unwrap(), cursor);
        }
        let list = encode_cursor(ListCursor { created_at_ms: 1, node_id: node });
        let bad_edge = URL_SAFE_NO_PAD.encode(format!("g:{node}:x"));
        for bad in ["", "!!!", list.as_str(), bad_edge.as_str(), &URL_SAFE_NO_PAD.encode("g:")] {
            assert_eq!(decode_graph_cursor(bad).unwrap_err().code, "invalid-cursor", "{bad}");
        }
    }
}
