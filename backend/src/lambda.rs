//! The Lambda entry adapter: API Gateway (REST v1 and HTTP API v2) events into the
//! same router `brain2 serve` runs. Only this module knows the Lambda request types.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use serde_json::Value;
use tokio::sync::{Mutex, mpsc};
use tower::ServiceExt;
use tower::util::MapRequest;

use crate::adapters::aws::{ClientFactory, EndpointOverrides, SdkSource};
use crate::app::cleanup::Cleanup;
use crate::config::{ConfigError, Settings};
use crate::http::auth::AuthorizerClaims;
use crate::http::middleware::PlatformRequestId;
use crate::ports::EventPublisher;
use crate::telemetry;
use crate::worker::{SqsEvent, Worker, handle_batch};

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

/// What every Lambda entry point starts with: logging, settings checked for production,
/// and the factory of the clients the execution environment keeps for all its invocations.
pub fn environment() -> Result<(Settings, ClientFactory), ConfigError> {
    telemetry::init();
    let settings = Settings::from_env()?;
    settings.ensure_safe_for_production()?;
    Ok((settings, ClientFactory::new(SdkSource::Environment, EndpointOverrides::default())))
}

/// Runs the API in Lambda with an internal extension that flushes queued events after
/// each response. The runtime freezes the environment as soon as the response is out
/// and it asks for the next event, unless an extension is still busy: the extension
/// waits for the response, then flushes, so events leave before the freeze without the
/// client waiting for them.
pub async fn run_http(router: Router, events: Arc<dyn EventPublisher>) -> Result<(), lambda_http::Error> {
    let (responded, responses) = mpsc::unbounded_channel::<()>();
    let responses = Arc::new(Mutex::new(responses));
    let extension = lambda_extension::Extension::new()
        .with_events(&["INVOKE"])
        .with_events_processor(lambda_extension::service_fn(move |_event: lambda_extension::LambdaEvent| {
            let (responses, events) = (responses.clone(), events.clone());
            async move {
                responses.lock().await.recv().await;
                events.flush().await;
                Ok::<(), lambda_extension::Error>(())
            }
        }))
        .with_extension_name("brain2-event-flush")
        .register()
        .await?;
    let service = service(router).map_response(move |response| {
        let _ = responded.send(());
        response
    });
    tokio::try_join!(lambda_http::run(service), extension.run())?;
    Ok(())
}

/// Runs a queue-fed worker in Lambda. SQS batches report partial failures, so only the
/// failed messages come back; any other event (the scheduled rule) runs a sweep of the
/// deletion queue when `sweep` is given. Events the worker raised leave before it returns.
pub async fn run_worker(
    worker: Worker,
    sweep: Option<(Arc<Cleanup>, Duration)>,
    events: Arc<dyn EventPublisher>,
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
            Ok::<Value, lambda_runtime::Error>(answer)
        }
    }))
    .await
}
