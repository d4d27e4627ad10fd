//! What the HTTP layer itself costs per request: routing, the middleware (request ids, cost
//! ledger, version negotiation, compression), JWT verification, JSON in and out and the use
//! case, with the store and the event bus in memory so that no AWS round trip is measured.

#[path = "common/memory.rs"]
mod memory;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{Request, StatusCode};
use brain2::app::GraphService;
use brain2::app::health::HealthChecker;
use brain2::domain::UserId;
use brain2::flags::Flags;
use brain2::http::auth::Authenticator;
use brain2::http::cursor::CursorKey;
use brain2::http::dto::NodeDto;
use brain2::http::limits::Overload;
use brain2::http::middleware::VersionPolicy;
use brain2::http::{API_PREFIX, AppState, router};
use chrono::Utc;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use tower::ServiceExt;

use self::memory::{MemoryEventPublisher, MemoryGraphStore};

const SECRET: &str = "brain2-benchmark-secret-0123456789abcdef";
const NOTE: &str =
    r#"{"content":"Rivers carve valleys over thousands of years; the delta grows every decade.","tags":["geo"]}"#;
/// Far above any response of these requests; only there because collecting a body needs a limit.
const BODY_LIMIT: usize = 1024 * 1024;

struct Api {
    router: Router,
    store: Arc<MemoryGraphStore>,
    events: Arc<MemoryEventPublisher>,
}

/// The router as `bootstrap::app_state` wires it with the default (optimised) flags, but on
/// the in-memory adapters.
fn api() -> Api {
    let store = Arc::new(MemoryGraphStore::default());
    let events = Arc::new(MemoryEventPublisher::default());
    let flags = Flags::OPTIMIZED;
    let state = AppState {
        service: Arc::new(GraphService::new(store.clone(), events.clone(), flags.soft_delete)),
        health: Arc::new(HealthChecker::new(store.clone(), events.clone(), None, Duration::from_secs(5))),
        authenticator: Arc::new(Authenticator::shared_secret(SECRET)),
        cursors: Arc::new(CursorKey::built_in()),
        version_policy: Arc::new(VersionPolicy::default()),
        flags,
        expose_costs: false,
        request_scope: None,
        overload: Arc::new(Overload::new(Duration::from_secs(20), None)),
    };
    Api { router: router(state), store, events }
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    iat: i64,
    exp: i64,
}

/// A bearer token as `brain2 token` issues it: HS256 with `sub`, `iat` and `exp`.
fn bearer(user: &UserId) -> String {
    let now = Utc::now().timestamp();
    // Valid far longer than any benchmark run, so no request is refused halfway.
    let claims = Claims { sub: user.as_str(), iat: now, exp: now + 24 * 3600 };
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).expect("HS256 signing works");
    format!("Bearer {token}")
}

fn get_node(bearer: &str, id: &str) -> Request<Body> {
    Request::get(format!("{API_PREFIX}/nodes/{id}"))
        .header(AUTHORIZATION, bearer)
        .body(Body::empty())
        .expect("a valid request")
}

fn create_node(bearer: &str) -> Request<Body> {
    Request::post(format!("{API_PREFIX}/nodes"))
        .header(AUTHORIZATION, bearer)
        .header(CONTENT_TYPE, "application/json")
        .body(Body::from(NOTE))
        .expect("a valid request")
}

/// One request through the router, its body read to the end as a client would.
async fn send(router: &Router, request: Request<Body>) -> (StatusCode, Bytes) {
    let response = router.clone().oneshot(request).await.expect("the router never fails");
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), BODY_LIMIT).await.expect("the body is readable");
    (status, body)
}

fn router_overhead(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
    let Api { router, store, events } = api();
    let reader = UserId::parse("reader").expect("a valid user id");
    let writer = UserId::parse("writer").expect("a valid user id");
    let (reader_bearer, writer_bearer) = (bearer(&reader), bearer(&writer));

    // Check once that the measured requests succeed, so a broken setup fails here instead of
    // measuring how fast the router says 401 or 404.
    let node_id = runtime.block_on(async {
        let (status, body) = send(&router, create_node(&writer_bearer)).await;
        assert_eq!(status, StatusCode::CREATED, "create: {}", String::from_utf8_lossy(&body));
        let (status, body) = send(&router, create_node(&reader_bearer)).await;
        assert_eq!(status, StatusCode::CREATED, "create: {}", String::from_utf8_lossy(&body));
        let created: NodeDto = serde_json::from_slice(&body).expect("a node in the body");
        assert_eq!(events.take().len(), 2, "each create publishes one event");
        let (status, body) = send(&router, get_node(&reader_bearer, &created.id)).await;
        assert_eq!(status, StatusCode::OK, "get: {}", String::from_utf8_lossy(&body));
        let read: NodeDto = serde_json::from_slice(&body).expect("a node in the body");
        assert_eq!(read, created, "the node read back differs from the one created");
        created.id
    });

    let mut group = c.benchmark_group("router");
    group.bench_function("get_node", |b| {
        b.to_async(&runtime).iter_batched(
            || get_node(&reader_bearer, &node_id),
            |request| send(&router, request),
            BatchSize::SmallInput,
        )
    });
    group.bench_function("create_node", |b| {
        b.to_async(&runtime).iter_batched(
            || {
                // Keeps the store and the event log at a steady size however long the run.
                store.forget_user(&writer);
                events.take();
                create_node(&writer_bearer)
            },
            |request| send(&router, request),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, router_overhead);
criterion_main!(benches);
