//! Cross-cutting request handling: correlation ids, request logging, API versions.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use tracing::Instrument;

use super::AppState;
use super::problem::ApiError;
use crate::costs::{self, CostReport};
use crate::telemetry::metric;

pub const CORRELATION_HEADER: HeaderName = HeaderName::from_static("x-correlation-id");
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");
pub const VENDOR_MEDIA_TYPE_PREFIX: &str = "application/vnd.brain2.";
pub const SUPPORTED_VERSION: &str = "v1";

/// The id the platform gave this request (the Lambda request id); set by the Lambda entry.
#[derive(Debug, Clone)]
pub struct PlatformRequestId(pub String);

/// The lifecycle of API version 1, announced with `Deprecation` (RFC 9745) and
/// `Sunset` (RFC 8594) headers once set.
#[derive(Debug, Clone, Default)]
pub struct VersionPolicy {
    pub deprecated_at: Option<DateTime<Utc>>,
    pub sunset_at: Option<DateTime<Utc>>,
}

/// A client-supplied correlation id is kept only if it is short, printable ASCII:
/// it ends up in every log line, so it must not be able to forge or flood them.
fn accepted_correlation_id(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(&CORRELATION_HEADER)?.to_str().ok()?;
    let valid = !value.is_empty() && value.len() <= 128 && value.bytes().all(|b| b.is_ascii_graphic());
    valid.then(|| value.to_owned())
}

pub const CALLS_HEADER: HeaderName = HeaderName::from_static("x-brain2-aws-calls");
pub const OPERATIONS_HEADER: HeaderName = HeaderName::from_static("x-brain2-aws-ops");
pub const CAPACITY_HEADER: HeaderName = HeaderName::from_static("x-brain2-capacity");
pub const CLIENTS_HEADER: HeaderName = HeaderName::from_static("x-brain2-clients-built");

/// Work that must surround the handling of each request, such as building SDK clients for
/// it when client reuse is off. Set by the composition root; the HTTP layer only runs it.
pub trait RequestScope: Send + Sync {
    fn run(&self, work: BoxFuture<'static, Response>) -> BoxFuture<'static, Response>;
}

pub async fn request_scope(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match &state.request_scope {
        Some(scope) => scope.run(Box::pin(next.run(request))).await,
        None => next.run(request).await,
    }
}

fn cost_headers(headers: &mut HeaderMap, report: &CostReport) {
    let values = [
        (CALLS_HEADER, report.total_calls().to_string()),
        (OPERATIONS_HEADER, report.operations_header()),
        (CAPACITY_HEADER, format!("{}", report.capacity_units)),
        (CLIENTS_HEADER, report.clients_built.to_string()),
    ];
    for (name, value) in values {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
}

/// Gives every request a request id and a correlation id, measures what it cost in AWS
/// calls, logs one line per request with all of it, records it in the metrics, and echoes
/// the ids in the response (and the costs, when exposing them is switched on).
pub async fn trace_request(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let correlation_id = accepted_correlation_id(request.headers()).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let request_id = request
        .extensions()
        .get::<PlatformRequestId>()
        .map(|id| id.0.clone())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| request.uri().path().to_owned());
    let method = request.method().clone();
    let span = tracing::info_span!("request", %request_id, %correlation_id, %method, %route);
    let started = Instant::now();
    let (mut response, report) = costs::measure(next.run(request).instrument(span.clone())).await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    span.in_scope(|| {
        tracing::info!(
            status,
            latency_ms,
            aws_calls = report.total_calls(),
            aws_ops = %report.operations_header(),
            capacity_units = report.capacity_units,
            clients_built = report.clients_built,
            "request finished"
        )
    });
    metric::http_request(&route, method.as_str(), status, elapsed);
    let headers = response.headers_mut();
    if state.expose_costs {
        cost_headers(headers, &report);
    }
    for (name, value) in [(CORRELATION_HEADER, correlation_id), (REQUEST_ID_HEADER, request_id)] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}

/// The versions named by `Accept` through the vendor media type, e.g. `v1` in
/// `application/vnd.brain2.v1+json`.
fn requested_versions(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|media| {
            let media = media.split(';').next()?.trim().to_ascii_lowercase();
            let rest = media.strip_prefix(VENDOR_MEDIA_TYPE_PREFIX)?;
            Some(rest.strip_suffix("+json").unwrap_or(rest).to_owned())
        })
        .collect()
}

/// Refuses a request for an API version this service does not speak, and marks
/// responses of a deprecated version.
pub async fn negotiate_version(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let versions = requested_versions(request.headers());
    if !versions.is_empty() && !versions.iter().any(|v| v == SUPPORTED_VERSION) {
        return ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            "unsupported-version",
            format!(
                "API version {} is not supported; use {VENDOR_MEDIA_TYPE_PREFIX}{SUPPORTED_VERSION}+json or application/json",
                versions.join(", ")
            ),
        )
        .into_response();
    }
    let mut response = next.run(request).await;
    let policy = &state.version_policy;
    let headers = response.headers_mut();
    if let Some(at) = policy.deprecated_at
        && let Ok(value) = HeaderValue::from_str(&format!("@{}", at.timestamp()))
    {
        headers.insert(HeaderName::from_static("deprecation"), value);
    }
    if let Some(at) = policy.sunset_at
        && let Ok(value) = HeaderValue::from_str(&at.format("%a, %d %b %Y %H:%M:%S GMT").to_string())
    {
        headers.insert(HeaderName::from_static("sunset"), value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vendor_versions_from_accept() {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/vnd.brain2.v2+json; q=1, text/html"));
        assert_eq!(requested_versions(&headers), vec!["v2"]);
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        assert!(requested_versions(&headers).is_empty());
    }

    #[test]
    fn correlation_ids_must_be_short_printable_ascii() {
        let mut headers = HeaderMap::new();
        headers.insert(CORRELATION_HEADER, HeaderValue::from_static("abc-123"));
        assert_eq!(accepted_correlation_id(&headers).as_deref(), Some("abc-123"));
        headers.insert(CORRELATION_HEADER, HeaderValue::from_static("has space"));
        assert_eq!(accepted_correlation_id(&headers), None);
        headers.insert(CORRELATION_HEADER, HeaderValue::from_str(&"x".repeat(129)).unwrap());
        assert_eq!(accepted_correlation_id(&headers), None);
    }
}
