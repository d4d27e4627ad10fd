//! Request handlers: extract, call the service, shape the answer. No logic of their own.
//!
//! Each handler's `#[utoipa::path]` describes its operation in the OpenAPI document: the
//! answers particular to it. The answers every operation can give (401, 406, 429, 500, 503,
//! and 413, 415, 422 for those with a body) are added by `openapi::document`.

use axum::Json;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::auth::AuthUser;
use super::cursor::InvalidCursor;
use super::dto::*;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::problem::{ApiError, Problem};
use crate::app::ServiceError;
use crate::app::health::{HealthReport, Status};
use crate::domain::NodeId;

type ApiResult<T> = Result<T, ApiError>;

fn cursor_problem(error: InvalidCursor) -> ApiError {
    ApiError::bad_request("invalid-cursor", error.to_string()).field("cursor")
}

/// The node id in `field` of the request, or a 400 naming it.
fn node_id(raw: &str, field: &str) -> ApiResult<NodeId> {
    NodeId::parse(raw).map_err(|error| ApiError::bad_request(error.code(), error.to_string()).field(field))
}

/// A service error, with the request field it concerns when the service cannot know it.
fn naming(field: &'static str) -> impl Fn(ServiceError) -> ApiError {
    move |error| ApiError::from(error).field_if_none(field)
}

/// 503 when the service is down (its table unreachable), 200 when up or degraded: whoever
/// reads the report, on the public router or the operator listener.
pub fn health_status(report: &HealthReport) -> StatusCode {
    if report.status == Status::Down { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK }
}

/// Anyone may ask whether the service is up; only an authenticated caller sees its
/// components, their errors, the flags and the event delivery in force.
#[utoipa::path(
    get,
    path = "/health",
    operation_id = "health",
    tag = "service",
    summary = "Whether the service and its dependencies are up",
    description = "Anonymous callers get the status alone; a caller with a valid token also gets the \
                   components, their errors, the version and the optimisation flags in force. One report \
                   answers every caller for a few seconds.",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "Up or degraded", body = HealthDto),
        (status = 503, description = "Down (the health report), or the service could not answer in time",
            content((HealthDto = "application/json"), (Problem = "application/problem+json")),
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying (problem answers)"))),
    )
)]
pub async fn health(State(state): State<AppState>, request: Parts) -> Response {
    let report = state.health.report().await;
    let status = health_status(&report);
    let mut body = HealthDto::new(&report, &state.flags);
    if state.authenticator.authenticate(&request).is_err() {
        body = body.summary();
    }
    (status, Json(body)).into_response()
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    tag = "service",
    summary = "The OpenAPI document of this API",
    security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document", body = serde_json::Value))
)]
pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], super::openapi::json()).into_response()
}

#[utoipa::path(
    post,
    path = "/nodes",
    operation_id = "createNode",
    tag = "nodes",
    summary = "Create a note",
    request_body = NodeBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created; its keywords are extracted", body = NodeDto),
        (status = 400, description = "Invalid content or tags, or an unknown field", body = Problem,
            content_type = "application/problem+json"),
    )
)]
pub async fn create_node(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiJson(body): ApiJson<NodeBody>,
) -> ApiResult<(StatusCode, Json<NodeDto>)> {
    let node = state.service.create_node(&user, body.into()).await?;
    Ok((StatusCode::CREATED, Json(NodeDto::from(&node))))
}

#[utoipa::path(
    get,
    path = "/nodes/{id}",
    operation_id = "getNode",
    tag = "nodes",
    summary = "Read a note",
    params(("id" = String, Path, description = "The node id", format = Uuid)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The note", body = NodeDto),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The caller has no such note", body = Problem,
            content_type = "application/problem+json"),
    )
)]
pub async fn get_node(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<NodeDto>> {
    let node = state.service.get_node(&user, node_id(&id, "id")?).await?;
    Ok(Json(NodeDto::from(&node)))
}

#[utoipa::path(
    put,
    path = "/nodes/{id}",
    operation_id = "updateNode",
    tag = "nodes",
    summary = "Replace a note's content and tags",
    description = "Optimistic concurrency: `version` must be the version the edit is based on.",
    params(("id" = String, Path, description = "The node id", format = Uuid)),
    request_body = UpdateNodeBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The new version", body = NodeDto),
        (status = 400, description = "Invalid id, content or tags, or an unknown field", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "The caller has no such note", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "`version` is stale (`version-conflict`)", body = Problem,
            content_type = "application/problem+json"),
    )
)]
pub async fn update_node(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateNodeBody>,
) -> ApiResult<Json<NodeDto>> {
    let id = node_id(&id, "id")?;
    let input = NodeBody { content: body.content, tags: body.tags }.into();
    let node = state.service.update_node(&user, id, input, body.version).await?;
    Ok(Json(NodeDto::from(&node)))
}

#[utoipa::path(
    delete,
    path = "/nodes/{id}",
    operation_id = "deleteNode",
    tag = "nodes",
    summary = "Delete a note with its edges",
    params(("id" = String, Path, description = "The node id", format = Uuid)),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The caller has no such note (of two concurrent deletes, one gets 204 and \
                                       the other 404)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Other writes kept changing the note (`concurrent-write`); retry", body = Problem,
            content_type = "application/problem+json"),
    )
)]
pub async fn delete_node(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    state.service.delete_node(&user, node_id(&id, "id")?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/nodes",
    operation_id = "listNodes",
    tag = "nodes",
    summary = "The caller's notes, newest first, a page at a time",
    params(ListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page", body = NodePage),
        (status = 400, description = "`limit` out of range, or a cursor that was not returned to this user \
                                       (`invalid-cursor`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn list_nodes(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<NodePage>> {
    let after = query
        .cursor
        .as_deref()
        .map(|raw| state.cursors.open_listing(&user, raw))
        .transpose()
        .map_err(cursor_problem)?;
    let page = state.service.list_nodes(&user, query.limit, after).await?;
    Ok(Json(NodePage::new(&page, &state.cursors, &user)))
}

#[utoipa::path(
    post,
    path = "/nodes/bulk",
    operation_id = "bulkCreateNodes",
    tag = "nodes",
    summary = "Create up to 100 notes",
    description = "Each note is created or reported in `failed` with its index and reason; the others are \
                   created regardless.",
    request_body = BulkCreateBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Every note is in `created` or `failed`", body = BulkCreateDto),
        (status = 400, description = "Not 1 to 100 notes (`bulk-size`), or an unknown field", body = Problem,
            content_type = "application/problem+json"),
    )
)]
pub async fn bulk_create(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiJson(body): ApiJson<BulkCreateBody>,
) -> ApiResult<(StatusCode, Json<BulkCreateDto>)> {
    let inputs = body.nodes.into_iter().map(|node| node.0.into()).collect();
    let report = state.service.bulk_create(&user, inputs).await.map_err(naming("nodes"))?;
    Ok((StatusCode::CREATED, Json(BulkCreateDto::from(&report))))
}

#[utoipa::path(
    delete,
    path = "/nodes/bulk",
    operation_id = "bulkDeleteNodes",
    tag = "nodes",
    summary = "Delete up to 100 notes",
    request_body = BulkDeleteBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every id is in `deleted` or `failed`", body = BulkDeleteDto),
        (status = 400, description = "Not 1 to 100 ids (`bulk-size`), or an unknown field", body = Problem,
            content_type = "application/problem+json"),
    )
)]
pub async fn bulk_delete(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiJson(body): ApiJson<BulkDeleteBody>,
) -> ApiResult<Json<BulkDeleteDto>> {
    let report = state.service.bulk_delete(&user, body.node_ids).await.map_err(naming("nodeIds"))?;
    Ok(Json(BulkDeleteDto::from(&report)))
}

#[utoipa::path(
    get,
    path = "/graph-data",
    operation_id = "getGraph",
    tag = "graph",
    summary = "The caller's notes and edges, a page at a time",
    params(GraphQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of the graph", body = GraphDto),
        (status = 400, description = "`limit` out of range, or a cursor that was not returned to this user \
                                       (`invalid-cursor`)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn graph_data(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiQuery(query): ApiQuery<GraphQuery>,
) -> ApiResult<Json<GraphDto>> {
    let after = query
        .cursor
        .as_deref()
        .map(|raw| state.cursors.open_graph_page(&user, raw))
        .transpose()
        .map_err(cursor_problem)?;
    let graph = state.service.graph(&user, query.limit, after).await?;
    Ok(Json(GraphDto::new(&graph, &state.cursors, &user)))
}

#[utoipa::path(
    post,
    path = "/edges",
    operation_id = "createEdge",
    tag = "edges",
    summary = "Link two of the caller's notes",
    request_body = CreateEdgeBody,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Created", body = EdgeDto),
        (status = 400, description = "An id that is not a UUID, a node linked to itself (`self-edge`), a weight \
                                       out of range, or an unknown field", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "The caller has no such note (either end)", body = Problem,
            content_type = "application/problem+json"),
        (status = 409, description = "The two notes are linked already (`edge-exists`)", body = Problem,
            content_type = "application/problem+json"),
    )
)]
pub async fn create_edge(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiJson(body): ApiJson<CreateEdgeBody>,
) -> ApiResult<(StatusCode, Json<EdgeDto>)> {
    let (source, target) = (node_id(&body.source_id, "sourceId")?, node_id(&body.target_id, "targetId")?);
    let edge = state.service.create_edge(&user, source, target, body.weight).await?;
    Ok((StatusCode::CREATED, Json(EdgeDto::from(&edge))))
}

#[utoipa::path(
    delete,
    path = "/edges/{source}/{target}",
    operation_id = "deleteEdge",
    tag = "edges",
    summary = "Unlink two notes",
    params(
        ("source" = String, Path, description = "One end's node id", format = Uuid),
        ("target" = String, Path, description = "The other end's node id", format = Uuid),
    ),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted (both directions)"),
        (status = 400, description = "An id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The caller has no such edge", body = Problem,
            content_type = "application/problem+json"),
    )
)]
pub async fn delete_edge(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiPath((source, target)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    state.service.delete_edge(&user, node_id(&source, "source")?, node_id(&target, "target")?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/nodes/{id}/neighbors",
    operation_id = "getNeighbors",
    tag = "edges",
    summary = "The notes linked to a note",
    params(("id" = String, Path, description = "The node id", format = Uuid)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Its neighbours", body = NeighborsDto),
        (status = 400, description = "The id is not a UUID", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The caller has no such note", body = Problem,
            content_type = "application/problem+json"),
    )
)]
pub async fn neighbors(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<NeighborsDto>> {
    let id = node_id(&id, "id")?;
    let neighbors = state.service.neighbors(&user, id).await?;
    Ok(Json(NeighborsDto::new(id, &neighbors)))
}

#[utoipa::path(
    get,
    path = "/search",
    operation_id = "search",
    tag = "search",
    summary = "The caller's notes with a keyword, newest first",
    params(SearchQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The matching notes", body = SearchDto),
        (status = 400, description = "A term that can never be a keyword (`invalid-keyword`), or `limit` out of \
                                       range", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn search(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> ApiResult<Json<SearchDto>> {
    let nodes = state.service.search(&user, &query.keyword, query.limit).await?;
    Ok(Json(SearchDto { keyword: query.keyword, items: nodes.iter().map(NodeDto::from).collect() }))
}

pub async fn route_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "route-not-found", "no such endpoint; the API lives under /api/v1")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", "this endpoint does not take that method")
}
