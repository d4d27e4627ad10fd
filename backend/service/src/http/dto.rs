//! The JSON shapes of the API. Field names are camelCase and part of the contract; each
//! shape is described in the OpenAPI document by its `ToSchema` or `IntoParams` derive.
//! Request bodies refuse fields they do not have (`deny_unknown_fields`): a misspelt or
//! foreign field (such as `userId`) is a 400, never silently ignored.

use chrono::SecondsFormat;
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ArrayBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{IntoParams, ToSchema};

use super::cursor::{CursorKey, MAX_CURSOR_CHARS};
use super::extract::{Object, RequestBody};
use crate::app::health::HealthReport;
use crate::app::service::{
    BulkCreateReport, BulkDeleteReport, DEFAULT_GRAPH_PAGE, MAX_BULK_ITEMS, MAX_GRAPH_PAGE, MAX_PAGE_SIZE, Neighbor,
    NodeInput,
};
use crate::domain::keywords::MAX_TERM_CHARS;
use crate::domain::node::{MAX_CONTENT_CHARS, MAX_TAG_CHARS, MAX_TAGS};
use crate::domain::{Edge, Node, NodeId, UserId};
use crate::ports::{Graph, Page};

/// Largest body of the operations that carry one node, an edge or a list of ids: a note of
/// 10,000 characters of up to 4 bytes each with 10 tags of 50 such characters is 42 KB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Largest body of a bulk create: 100 of those notes, 4.2 MB, fit, and so does the Lambda
/// request payload (6 MB) around it.
pub const MAX_BULK_BODY_BYTES: usize = 5 * 1024 * 1024;

fn string_schema(description: &str) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String).description(Some(description))
}

pub(crate) fn node_id_schema() -> ObjectBuilder {
    string_schema("A node id: a UUID in its hyphenated form.")
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
}

fn content_schema() -> impl Into<RefOr<Schema>> {
    string_schema(&format!(
        "The note's text, trimmed: 1 to {MAX_CONTENT_CHARS} characters, without control characters other than \
         tab, line feed and carriage return."
    ))
    .min_length(Some(1))
    .max_length(Some(MAX_CONTENT_CHARS))
}

fn tags_schema() -> impl Into<RefOr<Schema>> {
    ArrayBuilder::new()
        .items(
            string_schema(&format!("1 to {MAX_TAG_CHARS} characters once trimmed, without control characters."))
                .min_length(Some(1))
                .max_length(Some(MAX_TAG_CHARS)),
        )
        .max_items(Some(MAX_TAGS))
        .description(Some(format!(
            "At most {MAX_TAGS} distinct tags; trimmed and de-duplicated in order. Tags are stored as they are and \
             never become part of a key, so any other character (`#` too) is allowed."
        )))
}

fn bulk_nodes_schema() -> impl Into<RefOr<Schema>> {
    ArrayBuilder::new()
        .items(RefOr::Ref(utoipa::openapi::Ref::from_schema_name("NodeBody")))
        .min_items(Some(1))
        .max_items(Some(MAX_BULK_ITEMS))
        .description(Some(format!("1 to {MAX_BULK_ITEMS} notes.")))
}

fn bulk_ids_schema() -> impl Into<RefOr<Schema>> {
    ArrayBuilder::new()
        .items(node_id_schema())
        .min_items(Some(1))
        .max_items(Some(MAX_BULK_ITEMS))
        .description(Some(format!("1 to {MAX_BULK_ITEMS} node ids; each is reported as deleted or failed.")))
}

fn limit_schema() -> impl Into<RefOr<Schema>> {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
        .maximum(Some(MAX_PAGE_SIZE as u32))
        .default(Some(crate::app::service::DEFAULT_PAGE_SIZE.into()))
        .description(Some(format!("Items per page, 1 to {MAX_PAGE_SIZE}.")))
}

fn graph_limit_schema() -> impl Into<RefOr<Schema>> {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
        .maximum(Some(MAX_GRAPH_PAGE as u32))
        .default(Some(DEFAULT_GRAPH_PAGE.into()))
        .description(Some(format!(
            "Nodes per page, 1 to {MAX_GRAPH_PAGE}; a page also ends early once it holds about 512 KB."
        )))
}

fn cursor_schema() -> impl Into<RefOr<Schema>> {
    string_schema("The `nextCursor` of the previous page, as it was returned to this user.")
        .max_length(Some(MAX_CURSOR_CHARS))
}

fn keyword_schema() -> impl Into<RefOr<Schema>> {
    string_schema(&format!(
        "One word, 1 to {MAX_TERM_CHARS} characters, without `#` or control characters; matched on its stem, \
         so `running` finds notes that say `runs`. Stop words, numbers and words under 3 characters are refused."
    ))
    .min_length(Some(1))
    .max_length(Some(MAX_TERM_CHARS))
}

/// A note as a client writes it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeBody {
    #[schema(schema_with = content_schema)]
    pub content: String,
    #[serde(default)]
    #[schema(schema_with = tags_schema)]
    pub tags: Vec<String>,
}

impl RequestBody for NodeBody {
    const MAX_BYTES: usize = MAX_BODY_BYTES;
}

impl From<NodeBody> for NodeInput {
    fn from(body: NodeBody) -> Self {
        Self { content: body.content, tags: body.tags }
    }
}

/// A new version of a note, based on the version the client read.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateNodeBody {
    #[schema(schema_with = content_schema)]
    pub content: String,
    #[serde(default)]
    #[schema(schema_with = tags_schema)]
    pub tags: Vec<String>,
    /// The version this edit is based on; a stale one is a 409.
    #[schema(minimum = 1)]
    pub version: u64,
}

impl RequestBody for UpdateNodeBody {
    const MAX_BYTES: usize = MAX_BODY_BYTES;
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkCreateBody {
    #[schema(schema_with = bulk_nodes_schema)]
    pub nodes: Vec<Object<NodeBody>>,
}

impl RequestBody for BulkCreateBody {
    const MAX_BYTES: usize = MAX_BULK_BODY_BYTES;
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BulkDeleteBody {
    #[schema(schema_with = bulk_ids_schema)]
    pub node_ids: Vec<String>,
}

impl RequestBody for BulkDeleteBody {
    const MAX_BYTES: usize = MAX_BODY_BYTES;
}

/// A manual edge between two of the caller's nodes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateEdgeBody {
    #[schema(schema_with = node_id_schema)]
    pub source_id: String,
    #[schema(schema_with = node_id_schema)]
    pub target_id: String,
    /// Strength from 0.000001 to 1; 1 when absent.
    #[schema(minimum = 0.000001, maximum = 1)]
    pub weight: Option<f64>,
}

impl RequestBody for CreateEdgeBody {
    const MAX_BYTES: usize = MAX_BODY_BYTES;
}

/// Unknown query parameters are ignored.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    #[param(schema_with = limit_schema)]
    pub limit: Option<usize>,
    #[param(schema_with = cursor_schema)]
    pub cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    #[param(schema_with = keyword_schema)]
    pub keyword: String,
    #[param(schema_with = limit_schema)]
    pub limit: Option<usize>,
}

/// A note.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeDto {
    #[schema(format = Uuid)]
    pub id: String,
    pub content: String,
    /// What the note can be found by (`GET /search`), most frequent first; at most 20.
    pub keywords: Vec<String>,
    pub tags: Vec<String>,
    /// RFC 3339, UTC, milliseconds.
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// 1 when created, one more with every update.
    #[schema(minimum = 1)]
    pub version: u64,
}

impl From<&Node> for NodeDto {
    fn from(node: &Node) -> Self {
        Self {
            id: node.id.to_string(),
            content: node.content.clone(),
            keywords: node.display_keywords.clone(),
            tags: node.tags.clone(),
            created_at: node.created_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            updated_at: node.updated_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            version: node.version,
        }
    }
}

/// A link between two notes.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EdgeDto {
    #[schema(format = Uuid)]
    pub source_id: String,
    #[schema(format = Uuid)]
    pub target_id: String,
    #[schema(minimum = 0.000001, maximum = 1)]
    pub weight: f64,
    /// `manual` (drawn by the user) or `similarity` (derived from shared keywords).
    #[schema(pattern = "^(manual|similarity)$")]
    pub kind: String,
    #[schema(format = DateTime)]
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

/// One page of the caller's notes, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodePage {
    pub items: Vec<NodeDto>,
    /// Pass it as `cursor` for the next page; `null` on the last page. Opaque, and valid only
    /// for the user it was returned to.
    pub next_cursor: Option<String>,
}

impl NodePage {
    pub fn new(page: &Page<Node>, cursors: &CursorKey, user: &UserId) -> Self {
        Self {
            items: page.items.iter().map(NodeDto::from).collect(),
            next_cursor: page.next.map(|next| cursors.seal_listing(user, next)),
        }
    }
}

/// Unknown query parameters are ignored.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GraphQuery {
    #[param(schema_with = graph_limit_schema)]
    pub limit: Option<usize>,
    #[param(schema_with = cursor_schema)]
    pub cursor: Option<String>,
}

/// One page of the graph: its nodes, the edges that start from them, and where the next
/// page starts (`null` on the last). All pages together hold every node and every edge once.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GraphDto {
    pub nodes: Vec<NodeDto>,
    pub edges: Vec<EdgeDto>,
    pub next_cursor: Option<String>,
}

impl GraphDto {
    pub fn new(graph: &Graph, cursors: &CursorKey, user: &UserId) -> Self {
        Self {
            nodes: graph.nodes.iter().map(NodeDto::from).collect(),
            edges: graph.edges.iter().map(EdgeDto::from).collect(),
            next_cursor: graph.next.map(|next| cursors.seal_graph_page(user, next)),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NeighborDto {
    pub node: NodeDto,
    #[schema(minimum = 0.000001, maximum = 1)]
    pub weight: f64,
    #[schema(pattern = "^(manual|similarity)$")]
    pub kind: String,
}

/// The nodes linked to one node, with the links' weight and kind.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NeighborsDto {
    #[schema(format = Uuid)]
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

/// The caller's notes with the keyword, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SearchDto {
    /// The term as sent.
    pub keyword: String,
    pub items: Vec<NodeDto>,
}

/// Why the note at `index` of the request was not created.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IndexFailureDto {
    pub index: usize,
    /// A validation code (`content-too-long`...), or why the write did not happen:
    /// `throttled`, `deadline-exceeded` or `unavailable` (retrying the note is safe).
    pub code: String,
    pub message: String,
}

/// Every note of the request is in `created` (in request order) or in `failed`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
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

/// Why the id (as sent) was not deleted.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct IdFailureDto {
    pub id: String,
    /// `invalid-node-id`, `duplicate-id`, `not-found`, `concurrent-write`, `throttled`,
    /// `deadline-exceeded` or `unavailable`.
    pub code: String,
    pub message: String,
}

/// Every id of the request is in `deleted` or in `failed`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
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

/// One dependency's check.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentDto {
    pub name: String,
    #[schema(pattern = "^(up|degraded|down)$")]
    pub status: String,
    pub duration_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The whole report for an authenticated caller; the status alone for anyone else.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct HealthDto {
    /// `up`, `degraded` or `down` (then with status 503).
    #[schema(pattern = "^(up|degraded|down)$")]
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<ComponentDto>,
    /// The optimisation flags in force.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub flags: std::collections::BTreeMap<String, bool>,
    /// How domain events reach the bus: `inline`, `background` or `outbox`.
    #[serde(rename = "eventDelivery", default, skip_serializing_if = "String::is_empty")]
    #[schema(pattern = "^(inline|background|outbox)$")]
    pub event_delivery: String,
}

impl HealthDto {
    pub fn new(report: &HealthReport, flags: &crate::flags::Flags) -> Self {
        Self {
            flags: flags.entries().into_iter().map(|(name, on)| (name.to_owned(), on)).collect(),
            event_delivery: flags.event_delivery.as_str().to_owned(),
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
        Self { status: self.status, ..Self::default() }
    }
}
