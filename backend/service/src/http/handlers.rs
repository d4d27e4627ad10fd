//! Request handlers: extract, call the service, shape the answer. No logic of their own.

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::auth::AuthUser;
use super::dto::*;
use super::problem::ApiError;
use crate::app::health::Status;
use crate::domain::NodeId;

/// `axum::Json` whose rejections are problem+json.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

type ApiResult<T> = Result<T, ApiError>;

fn node_id(raw: &str) -> ApiResult<NodeId> {
    NodeId::parse(raw).map_err(|error| ApiError::bad_request(error.code(), error.to_string()))
}

/// Anyone may ask whether the service is up; only an authenticated caller sees its
/// components, their errors and the flags in force.
pub async fn health(State(state): State<AppState>, request: Parts) -> Response {
    let report = state.health.report().await;
    let status = if report.status == Status::Down { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    let mut body = HealthDto::new(&report, &state.flags);
    if state.authenticator.authenticate(&request).is_err() {
        body = body.summary();
    }
    (status, Json(body)).into_response()
}

pub async fn create_node(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiJson(body): ApiJson<NodeBody>,
) -> ApiResult<(StatusCode, Json<NodeDto>)> {
    let node = state.service.create_node(&user, body.into()).await?;
    Ok((StatusCode::CREATED, Json(NodeDto::from(&node))))
}

pub async fn get_node(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<NodeDto>> {
    let node = state.service.get_node(&user, node_id(&id)?).await?;
    Ok(Json(NodeDto::from(&node)))
}

pub async fn update_node(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<UpdateNodeBody>,
) -> ApiResult<Json<NodeDto>> {
    let input = NodeBody { content: body.content, tags: body.tags }.into();
    let node = state.service.update_node(&user, node_id(&id)?, input, body.version).await?;
    Ok(Json(NodeDto::from(&node)))
}

pub async fn delete_node(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    state.service.delete_node(&user, node_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_nodes(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<NodePage>> {
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;
    let page = state.service.list_nodes(&user, query.limit, after).await?;
    Ok(Json(NodePage::from(&page)))
}

pub async fn bulk_create(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiJson(body): ApiJson<BulkCreateBody>,
) -> ApiResult<(StatusCode, Json<BulkCreateDto>)> {
    let inputs = body.nodes.into_iter().map(Into::into).collect();
    let report = state.service.bulk_create(&user, inputs).await?;
    Ok((StatusCode::CREATED, Json(BulkCreateDto::from(&report))))
}

pub async fn bulk_delete(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiJson(body): ApiJson<BulkDeleteBody>,
) -> ApiResult<Json<BulkDeleteDto>> {
    let report = state.service.bulk_delete(&user, body.node_ids).await?;
    Ok(Json(BulkDeleteDto::from(&report)))
}

pub async fn graph_data(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiQuery(query): ApiQuery<GraphQuery>,
) -> ApiResult<Json<GraphDto>> {
    let after = query.cursor.as_deref().map(decode_graph_cursor).transpose()?;
    let graph = state.service.graph(&user, query.limit, after).await?;
    Ok(Json(GraphDto::from(&graph)))
}

pub async fn create_edge(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiJson(body): ApiJson<CreateEdgeBody>,
) -> ApiResult<(StatusCode, Json<EdgeDto>)> {
    let (source, target) = (node_id(&body.source_id)?, node_id(&body.target_id)?);
    let edge = state.service.create_edge(&user, source, target, body.weight).await?;
    Ok((StatusCode::CREATED, Json(EdgeDto::from(&edge))))
}

pub async fn delete_edge(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiPath((source, target)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    state.service.delete_edge(&user, node_id(&source)?, node_id(&target)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn neighbors(
    State(state): State<AppState>,
    AuthUser(user): AuthUser,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<NeighborsDto>> {
    let id = node_id(&id)?;
    let neighbors = state.service.neighbors(&user, id).await?;
    Ok(Json(NeighborsDto::new(id, &neighbors)))
}

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
