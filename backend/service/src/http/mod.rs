//! The inbound HTTP adapter: one axum `Router`, served by Lambda and by `brain2 serve` alike.

pub mod auth;
pub mod cursor;
pub mod dto;
pub mod extract;
pub mod handlers;
pub mod limits;
pub mod middleware;
pub mod openapi;
pub mod problem;
pub mod settings;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use self::auth::Authenticator;
use self::cursor::CursorKey;
use self::middleware::{RequestScope, VersionPolicy};
use crate::app::GraphService;
use crate::app::health::HealthChecker;
use crate::flags::Flags;

/// Responses smaller than this are sent as they are: compressing them costs more CPU
/// than the bytes it saves.
const COMPRESSION_THRESHOLD_BYTES: u16 = 1024;
pub const API_PREFIX: &str = "/api/v1";

#[derive(Clone)]
pub struct AppState {
    pub service: Arc<GraphService>,
    pub health: Arc<HealthChecker>,
    pub authenticator: Arc<Authenticator>,
    /// Seals and opens the cursors handed to clients.
    pub cursors: Arc<CursorKey>,
    pub version_policy: Arc<VersionPolicy>,
    pub flags: Flags,
    pub expose_costs: bool,
    pub request_scope: Option<Arc<dyn RequestScope>>,
    /// The rate limit and the deadline of every request.
    pub overload: Arc<limits::Overload>,
}

/// The operations under `/api/v1`, each with its OpenAPI description (`routes!` takes both
/// from the handler and its `#[utoipa::path]`); one `routes!` per path.
pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::health))
        .routes(routes!(handlers::openapi))
        .routes(routes!(handlers::create_node, handlers::list_nodes))
        .routes(routes!(handlers::bulk_create, handlers::bulk_delete))
        .routes(routes!(handlers::get_node, handlers::update_node, handlers::delete_node))
        .routes(routes!(handlers::neighbors))
        .routes(routes!(handlers::graph_data))
        .routes(routes!(handlers::create_edge))
        .routes(routes!(handlers::delete_edge))
        .routes(routes!(handlers::search))
}

pub fn router(state: AppState) -> Router {
    let (api, _) = api_routes().split_for_parts();
    let api = api
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::negotiate_version));
    let compression = state.flags.compression;
    let router = Router::new()
        .nest(API_PREFIX, api)
        .fallback(handlers::route_not_found)
        // Bodies are read by `extract::ApiJson` within each body type's own limit; this bounds
        // any other extractor by the largest of them.
        .layer(DefaultBodyLimit::max(dto::MAX_BULK_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::request_scope))
        // Outside the request scope, so building per-request clients counts against the
        // deadline too; the rate limit runs first, before any work is spent on a request.
        .layer(axum::middleware::from_fn_with_state(state.clone(), limits::enforce_deadline))
        .layer(axum::middleware::from_fn_with_state(state.clone(), limits::rate_limit))
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::trace_request))
        .with_state(state);
    if compression {
        // gzip or br, whichever the client's Accept-Encoding prefers; nothing when it sends none.
        let worth_compressing = SizeAbove::new(COMPRESSION_THRESHOLD_BYTES).and(NotForContentType::IMAGES);
        router.layer(CompressionLayer::new().compress_when(worth_compressing))
    } else {
        router
    }
}
