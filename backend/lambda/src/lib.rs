//! Brain2 on AWS Lambda: API Gateway (REST v1 and HTTP API v2) events into the same
//! router `brain2 serve` runs, and SQS batches into the workers. Only this crate knows the
//! Lambda event types; metrics leave as CloudWatch Embedded Metric Format lines, flushed
//! after every invocation before the environment freezes.

use std::io::Write as _;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use aws_lambda_events::encodings::Body;
use aws_lambda_events::event::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::event::dynamodb::{Event as StreamEvent, EventRecord as StreamEventRecord};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use axum::Router;
use brain2::adapters::aws::{ClientFactory, EndpointOverrides, SdkSource, TrustRoots};
use brain2::adapters::dynamodb::changes::{ChangeKind, TableChange};
use brain2::adapters::dynamodb::items::Item;
use brain2::app::cleanup::Cleanup;
use brain2::bootstrap::{ConfigError, Settings};
use brain2::http::auth::AuthorizerClaims;
use brain2::http::middleware::PlatformRequestId;
use brain2::outbox::Relay;
use brain2::ports::EventPublisher;
use brain2::realtime::feed::LiveFeed;
use brain2::realtime::gateway::WebSocketRoutes;
use brain2::realtime::protocol::SUBPROTOCOL;
use brain2::telemetry::{self, metric};
use brain2::worker::Worker;
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use metrics_cloudwatch_embedded::Collector;
use serde_json::Value;
use tokio::sync::{Mutex, mpsc};
use tower::ServiceExt;
use tower::util::MapRequest;

/// The CloudWatch namespace of the service's own metrics.
pub const METRICS_NAMESPACE: &str = "Brain2";

/// The `sub` claim an API Gateway authorizer verified, if any. HTTP APIs put JWT claims
/// under `authorizer.jwt.claims`; REST APIs with a Cognito authorizer under `authorizer.claims`.
fn authorizer_subject(context: &RequestContext) -> Option<String> {
    let authorizer = match context {
        RequestContext::ApiGatewayV2(context) => context.authorizer.as_ref()?,
        RequestContext::ApiGatewayV1(context) => &context.authorizer,
        _ => return None,
    };
    if let Some(subject) = authorizer.jwt.as_ref().and_then(|jwt| jwt.claims.get("sub")) {
        return Some(subject.clone());
    }
    authorizer.fields.get("claims")?.get("sub")?.as_str().map(str::to_owned)
}

/// The request URI with the path as the client sent it. `lambda_http` prefixes REST API
/// paths with the stage name (`/prod/api/v1/...`); the router serves `/api/v1/...`
/// whatever the stage or custom domain mapping.
fn without_stage(request: &Request) -> Option<http::Uri> {
    let raw_path = request.raw_http_path();
    if raw_path.is_empty() || raw_path == request.uri().path() {
        return None;
    }
    let path_and_query = match request.uri().query() {
        Some(query) => format!("{raw_path}?{query}"),
        None => raw_path.to_owned(),
    };
    let mut parts = request.uri().clone().into_parts();
    parts.path_and_query = Some(path_and_query.parse().ok()?);
    http::Uri::from_parts(parts).ok()
}

/// Moves what the platform verified into the neutral extensions the router reads.
pub fn attach_platform_context(mut request: Request) -> Request {
    if let Some(uri) = without_stage(&request) {
        *request.uri_mut() = uri;
    }
    let subject = request.request_context_ref().and_then(authorizer_subject);
    let request_id = request.lambda_context_ref().map(|context| context.request_id.clone());
    let extensions = request.extensions_mut();
    extensions.insert(AuthorizerClaims { subject });
    if let Some(id) = request_id {
        extensions.insert(PlatformRequestId(id));
    }
    request
}

/// The router as a Lambda HTTP service.
pub fn service(router: Router) -> MapRequest<Router, fn(Request) -> Request> {
    router.map_request(attach_platform_context as fn(Request) -> Request)
}

/// What a Lambda entry point has once started: its settings, the factory of the clients
/// the execution environment keeps for all its invocations, and its metrics exporter.
pub struct Environment {
    /// When the process started its work, for the init-duration metric.
    pub started: Instant,
    pub settings: Settings,
    pub factory: ClientFactory,
    pub metrics: &'static Collector,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("installing the metrics exporter: {0}")]
    Metrics(String),
}

/// What every Lambda entry point starts with: settings checked for production, logging,
/// the EMF metrics exporter, and the client factory.
pub fn environment() -> Result<Environment, StartError> {
    let started = Instant::now();
    let settings = Settings::from_env()?;
    telemetry::init(&settings.logs);
    settings.ensure_safe_for_production()?;
    let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "brain2".to_owned());
    let metrics = metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace(METRICS_NAMESPACE)
        .with_dimension("Function", function)
        .init()
        .map_err(|error| StartError::Metrics(error.to_string()))?;
    metric::describe();
    let factory =
        ClientFactory::new(SdkSource::Environment, EndpointOverrides::default()).with_roots(TrustRoots::CompiledIn);
    Ok(Environment { started, settings, factory, metrics })
}

/// Writes the figures of the invocation that just ended as EMF lines on stdout, where
/// CloudWatch Logs turns them into metrics without an API call: all of them in one write,
/// where stdout's line buffering would make one system call per line (per label set).
fn flush_metrics(metrics: &Collector) {
    let mut lines = Vec::with_capacity(4_096);
    let written = metrics.flush(&mut lines).and_then(|()| std::io::stdout().lock().write_all(&lines));
    if let Err(error) = written {
        tracing::warn!(%error, "metrics were not written");
    }
}

/// Runs the API in Lambda with an internal extension that flushes queued events (and the
/// metrics) after each invocation. The runtime freezes the environment as soon as the
/// invocation is answered and it asks for the next event, unless an extension is still
/// busy: the extension waits until the runtime has answered, then flushes, so events leave
/// before the freeze without the client waiting for them. The signal comes from the
/// outermost layer of the runtime, once per invocation whatever its outcome (a response, a
/// handler error, an event the API cannot read, a panic): an extension waiting for a signal
/// that never comes would hold the invocation open until the function's timeout. The first
/// invocation's arrival, counted from `started`, is the environment's init duration.
pub async fn run_http(
    router: Router,
    events: Arc<dyn EventPublisher>,
    metrics: &'static Collector,
    started: Instant,
) -> Result<(), lambda_http::Error> {
    let (answered, answers) = mpsc::unbounded_channel::<()>();
    let answers = Arc::new(Mutex::new(answers));
    let initialised = Arc::new(Once::new());
    let extension = lambda_extension::Extension::new()
        .with_events(&["INVOKE"])
        .with_events_processor(lambda_extension::service_fn(move |_event: lambda_extension::LambdaEvent| {
            let (answers, events) = (answers.clone(), events.clone());
            initialised.call_once(|| metric::lambda_init(started.elapsed()));
            async move {
                answers.lock().await.recv().await;
                events.flush().await;
                flush_metrics(metrics);
                Ok::<(), lambda_extension::Error>(())
            }
        }))
        .with_extension_name("brain2-event-flush")
        .register()
        .await?;
    let runtime = lambda_runtime::Runtime::new(lambda_http::Adapter::from(service(router)))
        .layer(lambda_runtime::layers::TracingLayer::new())
        .layer(tower::util::MapFutureLayer::new(move |invocation| {
            let signal = InvocationAnswered(answered.clone());
            async move {
                let outcome = invocation.await;
                drop(signal);
                outcome
            }
        }));
    tokio::try_join!(runtime.run(), extension.run())?;
    Ok(())
}

/// Tells the flush extension that the runtime is done with an invocation when dropped, so
/// the signal is sent on every path out of it, unwinding included.
struct InvocationAnswered(mpsc::UnboundedSender<()>);

impl Drop for InvocationAnswered {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

/// Handles an SQS batch and reports partial failures: only the messages that failed
/// return to the queue.
pub async fn handle_batch(worker: &Worker, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        let message_id = record.message_id.unwrap_or_default();
        if let Err(error) = worker.handle(record.body.as_deref().unwrap_or_default()).await {
            tracing::warn!(%error, %message_id, "message failed; it will be retried");
            response.add_failure(message_id);
        }
    }
    response
}

/// Runs a queue-fed worker in Lambda. SQS batches report partial failures; any other
/// event (the scheduled rule) runs a sweep of the deletion queue when `sweep` is given.
/// Events the worker raised, and its metrics, leave before it returns.
pub async fn run_worker(
    worker: Worker,
    sweep: Option<(Arc<Cleanup>, Duration)>,
    events: Arc<dyn EventPublisher>,
    metrics: &'static Collector,
) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<Value>| {
        let (worker, sweep, events) = (worker.clone(), sweep.clone(), events.clone());
        async move {
            let answer = if event.payload.get("Records").is_some() {
                let batch: SqsEvent = serde_json::from_value(event.payload)?;
                serde_json::to_value(handle_batch(&worker, batch).await)?
            } else if let Some((cleanup, grace)) = sweep {
                let report = cleanup.sweep(grace).await?;
                serde_json::json!({ "purged": report.purged, "failed": report.failed })
            } else {
                return Err(lambda_runtime::Error::from("expected an SQS event"));
            };
            events.flush().await;
            flush_metrics(metrics);
            Ok::<Value, lambda_runtime::Error>(answer)
        }
    }))
    .await
}

/// A record of a Lambda stream batch as the relay reads it; `None` for a record that is not
/// a table change (an event name the stream does not use, or no sequence number).
pub fn table_change(record: StreamEventRecord) -> Option<TableChange> {
    let kind = ChangeKind::parse(&record.event_name)?;
    let change = record.change;
    // Lambda sends an absent image as an empty map.
    let image = |image: serde_dynamo::Item| {
        let item = Item::from(image);
        (!item.is_empty()).then_some(item)
    };
    Some(TableChange {
        record_id: record.event_id,
        sequence_number: change.sequence_number?,
        kind,
        recorded_at: change.approximate_creation_date_time,
        old_image: image(change.old_image),
        new_image: image(change.new_image),
    })
}

/// Publishes a stream batch's events and answers which record Lambda must deliver again:
/// the first one whose event was neither published nor dead-lettered (with the records
/// after it, in order). A record that can never be an event is set aside, not retried.
pub async fn relay_batch(relay: &Relay, event: StreamEvent) -> DynamoDbEventResponse {
    let mut changes = Vec::with_capacity(event.records.len());
    for record in event.records {
        let (event_id, event_name) = (record.event_id.clone(), record.event_name.clone());
        match table_change(record) {
            Some(change) => changes.push(change),
            None => tracing::warn!(event_id, event_name, "stream record skipped"),
        }
    }
    let outcome = relay.relay(&changes).await;
    let mut response = DynamoDbEventResponse::default();
    if let Some(sequence_number) = outcome.retry_from {
        tracing::warn!(%sequence_number, "stream batch not fully delivered; Lambda delivers it again from this record");
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = Some(sequence_number);
        response.batch_item_failures.push(failure);
    }
    response
}

/// Runs the outbox relay in Lambda on the table's stream; its metrics leave before each
/// invocation returns.
pub async fn run_relay(relay: Arc<Relay>, metrics: &'static Collector) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<StreamEvent>| {
        let relay = relay.clone();
        async move {
            let response = relay_batch(&relay, event.payload).await;
            flush_metrics(metrics);
            Ok::<DynamoDbEventResponse, lambda_runtime::Error>(response)
        }
    }))
    .await
}

/// A WebSocket API route event (`$connect`, `$disconnect`, or a message on `$default`)
/// answered. `$connect` answers 401 with a problem to a missing or bad token, before API
/// Gateway upgrades; `$default`'s body is the frame API Gateway sends back to the client.
pub async fn websocket_route(
    routes: &WebSocketRoutes,
    request: ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    let context = &request.request_context;
    let connection_id = context.connection_id.as_deref().unwrap_or_default();
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = 200;
    match context.route_key.as_deref() {
        Some("$connect") => {
            let protocols =
                request.headers.get(http::header::SEC_WEBSOCKET_PROTOCOL).and_then(|value| value.to_str().ok());
            let token = request.query_string_parameters.first("token");
            match routes.connect(connection_id, token, protocols).await {
                Ok(_) if protocols.is_some() => {
                    // Browsers drop a connection whose answer selects none of the offered subprotocols.
                    response
                        .headers
                        .insert(http::header::SEC_WEBSOCKET_PROTOCOL, http::HeaderValue::from_static(SUBPROTOCOL));
                }
                Ok(_) => {}
                Err(refused) => {
                    response.status_code = i64::from(refused.status.as_u16());
                    response
                        .headers
                        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/problem+json"));
                    response.body = serde_json::to_string(&refused.problem()).ok().map(Body::Text);
                }
            }
        }
        Some("$disconnect") => {
            if let Err(error) = routes.disconnect(connection_id).await {
                // The connection item expires on its own; API Gateway ignores this answer anyway.
                tracing::warn!(%error, connection_id, "a closed connection was not forgotten");
            }
        }
        _ => match routes.message(connection_id, request.body.as_deref().unwrap_or_default()).await {
            Ok(frame) => response.body = Some(Body::Text(frame)),
            Err(error) => {
                tracing::warn!(%error, connection_id, "a client message could not be answered");
                response.status_code = 500;
            }
        },
    }
    response
}

/// Runs the WebSocket API's routes in Lambda; metrics leave before each invocation returns.
pub async fn run_websocket_routes(
    routes: Arc<WebSocketRoutes>,
    metrics: &'static Collector,
) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<ApiGatewayWebsocketProxyRequest>| {
            let routes = routes.clone();
            async move {
                let response = websocket_route(&routes, event.payload).await;
                flush_metrics(metrics);
                Ok::<ApiGatewayProxyResponse, lambda_runtime::Error>(response)
            }
        },
    ))
    .await
}

/// Logs and fans out an SQS batch of the realtime queue. Logging is all or nothing for the
/// batch: when it fails, every message comes back (clients de-duplicate by event id).
pub async fn broadcast_batch(feed: &LiveFeed, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    let bodies: Vec<&str> = event.records.iter().map(|record| record.body.as_deref().unwrap_or_default()).collect();
    if let Err(error) = feed.publish_bodies(bodies).await {
        tracing::warn!(%error, "realtime batch not logged; it will be retried");
        for record in &event.records {
            response.add_failure(record.message_id.clone().unwrap_or_default());
        }
    }
    response
}

/// Runs the broadcaster in Lambda on the realtime queue.
pub async fn run_broadcast(feed: Arc<LiveFeed>, metrics: &'static Collector) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<SqsEvent>| {
        let feed = feed.clone();
        async move {
            let response = broadcast_batch(&feed, event.payload).await;
            flush_metrics(metrics);
            Ok::<SqsBatchResponse, lambda_runtime::Error>(response)
        }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use brain2::domain::events::EventKind;
    use serde_json::json;

    use super::*;

    /// A stream batch as Lambda delivers it: DynamoDB JSON images, the creation time in
    /// epoch seconds, an absent image left out.
    fn stream_event() -> StreamEvent {
        let node = json!({
            "PK": {"S": "USER#alice"}, "SK": {"S": "NODE#0190cfa3-b24b-7c41-9a2d-3e8f1b6c0d55"},
            "entity": {"S": "node"}, "nodeId": {"S": "0190cfa3-b24b-7c41-9a2d-3e8f1b6c0d55"},
            "userId": {"S": "alice"}, "content": {"S": "Rivers carve valleys"},
            "keywords": {"L": [{"S": "river"}, {"S": "carv"}, {"S": "valley"}]}, "tags": {"L": []},
            "createdAt": {"S": "2026-11-23T13:00:20.461Z"}, "updatedAt": {"S": "2026-11-23T13:00:20.461Z"},
            "version": {"N": "1"}
        });
        serde_json::from_value(json!({"Records": [
            {"eventID": "c4ca4238a0b923820dcc509a6f75849b", "eventName": "INSERT", "eventVersion": "1.1",
             "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
             "dynamodb": {"ApproximateCreationDateTime": 1_795_000_000.0, "Keys": {}, "NewImage": node,
                          "SequenceNumber": "4421584500000000017450439091", "SizeBytes": 300,
                          "StreamViewType": "NEW_AND_OLD_IMAGES"},
             "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/brain2/stream/2026-11-23T00:00:00.000"},
            {"eventID": "c81e728d9d4c2f636f067f89cc14862c", "eventName": "REMOVE", "eventVersion": "1.1",
             "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
             "dynamodb": {"ApproximateCreationDateTime": 1_795_000_001.0, "Keys": {}, "OldImage": {"PK": {"S": "X"}},
                          "SequenceNumber": "4421584500000000017450439092", "SizeBytes": 20,
                          "StreamViewType": "NEW_AND_OLD_IMAGES"},
             "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/brain2/stream/2026-11-23T00:00:00.000"}
        ]}))
        .expect("a stream batch as Lambda sends it")
    }

    #[test]
    fn lambda_stream_records_become_table_changes_and_events() {
        let changes: Vec<TableChange> = stream_event().records.into_iter().filter_map(table_change).collect();
        assert_eq!(changes.len(), 2);
        let (insert, remove) = (&changes[0], &changes[1]);
        assert_eq!((insert.kind, insert.old_image.is_none()), (ChangeKind::Insert, true));
        assert_eq!(insert.sequence_number, "4421584500000000017450439091");
        assert_eq!(insert.recorded_at.timestamp(), 1_795_000_000);
        let event = insert.event().unwrap().expect("a node insert is node.created");
        let keywords: Vec<String> = ["river", "carv", "valley"].map(str::to_owned).to_vec();
        assert_eq!(event.kind, EventKind::NodeCreated { keywords });
        assert_eq!((remove.kind, remove.new_image.is_none()), (ChangeKind::Remove, true));
        assert_eq!(remove.event().unwrap(), None, "an item that is not a node or edge yields nothing");
    }
}
