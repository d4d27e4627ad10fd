//! The Lambda entry adapter: API Gateway (REST v1 and HTTP API v2) events into the
//! same router `brain2 serve` runs. Only this module knows the Lambda request types.

use axum::Router;
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use tower::ServiceExt;
use tower::util::MapRequest;

use crate::http::auth::AuthorizerClaims;
use crate::http::middleware::PlatformRequestId;

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
