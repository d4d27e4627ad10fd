//! Every error leaves as `application/problem+json` (RFC 9457) with a stable `code`.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::app::ServiceError;
use crate::domain::DomainError;
use crate::ports::StoreError;

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// The realm named in `WWW-Authenticate` challenges.
const REALM: &str = "brain2";

/// An RFC 9457 problem: what went wrong, with a stable machine-readable `code` and, when one
/// field of the request is to blame, its name in `field`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(examples(json!({
    "type": "https://brain2.dev/problems/content-too-long",
    "title": "Bad Request",
    "status": 400,
    "code": "content-too-long",
    "detail": "content is 10001 characters long; the limit is 10000",
    "field": "content"
})))]
pub struct Problem {
    /// `https://brain2.dev/problems/<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The reason phrase of the status.
    pub title: String,
    /// The HTTP status, repeated.
    #[schema(minimum = 400, maximum = 599)]
    pub status: u16,
    /// Stable, machine-readable: part of the contract.
    pub code: String,
    /// For people: what was wrong and how to do it right.
    pub detail: String,
    /// The request field (body path such as `nodes[2].tags`, query or path parameter, or
    /// header) the problem is about, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// An error on its way to the client.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self { status, code, detail: detail.into(), field: None }
    }

    /// Names the request field the problem is about.
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// Names the field unless a more precise one was named already.
    pub fn field_if_none(mut self, field: impl Into<String>) -> Self {
        if self.field.is_none() {
            self.field = Some(field.into());
        }
        self
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// The request ran out of time; the client may try again shortly.
    pub fn deadline_exceeded() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "deadline-exceeded",
            "the request could not finish in time; retry shortly",
        )
    }

    pub fn problem(&self) -> Problem {
        Problem {
            kind: format!("https://brain2.dev/problems/{}", self.code),
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            code: self.code.to_owned(),
            detail: self.detail.clone(),
            field: self.field.clone(),
        }
    }

    /// The `WWW-Authenticate` challenge of a 401 (RFC 6750): no error code when credentials
    /// are missing, `invalid_token` with a description when they were refused.
    fn challenge(&self) -> HeaderValue {
        if matches!(self.code, "missing-token" | "missing-claims") {
            return HeaderValue::from_str(&format!("Bearer realm=\"{REALM}\"")).expect("ASCII");
        }
        // error_description allows printable ASCII without `"` and a backslash.
        let description: String =
            self.detail.chars().filter(|c| matches!(c, ' '..='~') && !matches!(c, '"' | '\\')).take(200).collect();
        HeaderValue::from_str(&format!(
            "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{description}\""
        ))
        .expect("printable ASCII")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = self.code, detail = %self.detail, "request failed");
        }
        let mut response = (self.status, Json(self.problem())).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_CONTENT_TYPE));
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, self.challenge());
        }
        response
    }
}

/// The request field a domain rule is about, as the API names it.
fn domain_field(error: &DomainError) -> Option<&'static str> {
    match error {
        DomainError::EmptyContent
        | DomainError::ContentTooLong { .. }
        | DomainError::ContentControlCharacter { .. } => Some("content"),
        DomainError::TooManyTags { .. } | DomainError::InvalidTag { .. } => Some("tags"),
        DomainError::InvalidWeight(_) => Some("weight"),
        DomainError::SelfEdge => Some("targetId"),
        DomainError::InvalidNodeId(_) | DomainError::InvalidUserId => None,
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        let detail = error.to_string();
        match error {
            ServiceError::Invalid(domain) => {
                let problem = Self::new(StatusCode::BAD_REQUEST, domain.code(), detail);
                match domain_field(&domain) {
                    Some(field) => problem.field(field),
                    None => problem,
                }
            }
            ServiceError::NodeNotFound(_) => Self::new(StatusCode::NOT_FOUND, "node-not-found", detail),
            ServiceError::EdgeNotFound(..) => Self::new(StatusCode::NOT_FOUND, "edge-not-found", detail),
            ServiceError::EdgeExists(..) => Self::new(StatusCode::CONFLICT, "edge-exists", detail),
            ServiceError::VersionConflict { .. } => {
                Self::new(StatusCode::CONFLICT, "version-conflict", detail).field("version")
            }
            ServiceError::ConcurrentWrite(_) => Self::new(StatusCode::CONFLICT, "concurrent-write", detail),
            ServiceError::BulkSize(_) => Self::new(StatusCode::BAD_REQUEST, "bulk-size", detail),
            ServiceError::InvalidLimit(_) | ServiceError::InvalidGraphLimit(_) => {
                Self::new(StatusCode::BAD_REQUEST, "invalid-limit", detail).field("limit")
            }
            ServiceError::NotAKeyword(_) => {
                Self::new(StatusCode::BAD_REQUEST, "invalid-keyword", detail).field("keyword")
            }
            ServiceError::Store(StoreError::Throttled(_)) => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "throttled", "the service is busy; retry shortly")
            }
            ServiceError::Store(StoreError::DeadlineExceeded) => Self::deadline_exceeded(),
            // Internal details go to the log, not to the client.
            ServiceError::Store(store) => {
                tracing::error!(error = %store, "store failure");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "an internal error occurred")
            }
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::bad_request("invalid-path", rejection.body_text())
    }
}
