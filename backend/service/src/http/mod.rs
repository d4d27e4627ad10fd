//! The inbound HTTP adapter: one axum `Router`, served by Lambda and by `brain2 serve` alike.

pub mod auth;
pub mod dto;
pub mod handlers;
pub mod limits;
pub mod middleware;
pub mod problem;
pub mod settings;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};

use self::auth::Authenticator;
use self::middleware::{RequestScope, VersionPolicy};
use crate::app::GraphService;
use crate::app::health::HealthChecker;
use crate::flags::Flags;

/// Responses smaller than this are sent as they are: compressing them costs more CPU
/// than the bytes it saves.
const COMPRESSION_THRESHOLD_BYTES: u16 = 1024;
/// Request bodies up to the Lambda payload limit: a bulk create of 100 long notes fits.
const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;
pub const API_PREFIX: &str = "/api/v1";

#[derive(Clone)]
pub struct AppState {
    pub service: Arc<GraphService>,
    pub health: Arc<HealthChecker>,
    pub authenticator: Arc<Authenticator>,
    pub version_policy: Arc<VersionPolicy>,
    pub flags: Flags,
    pub expose_costs: bool,
    pub request_scope: Option<Arc<dyn RequestScope>>,
    /// The rate limit and the deadline of every request.
    pub overload: Arc<limits::Overload>,
}

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/health", get(handlers::health))
        .route("/nodes", post(handlers::create_node).get(handlers::list_nodes))
        .route("/nodes/bulk", post(handlers::bulk_create).delete(handlers::bulk_delete))
        .route("/nodes/{id}", get(handlers::get_node).put(handlers::update_node).delete(handlers::delete_node))
        .route("/nodes/{id}/neighbors", get(handlers::neighbors))
        .route("/graph-data", get(handlers::graph_data))
        .route("/edges", post(handlers::create_edge))
        .route("/edges/{source}/{target}", delete(handlers::delete_edge))
        .route("/search", get(handlers::search))
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::negotiate_version));
    let compression = state.flags.compression;
    let router = Router::new()
        .nest(API_PREFIX, api)
        .fallback(handlers::route_not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
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
