//! Every error leaves as `application/problem+json` (RFC 9457) with a stable `code`.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::app::ServiceError;
use crate::ports::StoreError;

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    pub code: &'static str,
    pub detail: String,
}

/// An error on its way to the client.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self { status, code, detail: detail.into() }
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
            title: self.status.canonical_reason().unwrap_or("Error"),
            status: self.status.as_u16(),
            code: self.code,
            detail: self.detail.clone(),
        }
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
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        let detail = error.to_string();
        match error {
            ServiceError::Invalid(domain) => Self::new(StatusCode::BAD_REQUEST, domain.code(), detail),
            ServiceError::NodeNotFound(_) => Self::new(StatusCode::NOT_FOUND, "node-not-found", detail),
            ServiceError::EdgeNotFound(..) => Self::new(StatusCode::NOT_FOUND, "edge-not-found", detail),
            ServiceError::EdgeExists(..) => Self::new(StatusCode::CONFLICT, "edge-exists", detail),
            ServiceError::VersionConflict { .. } => Self::new(StatusCode::CONFLICT, "version-conflict", detail),
            ServiceError::BulkSize(_) => Self::new(StatusCode::BAD_REQUEST, "bulk-size", detail),
            ServiceError::InvalidLimit(_) | ServiceError::InvalidGraphLimit(_) => {
                Self::new(StatusCode::BAD_REQUEST, "invalid-limit", detail)
            }
            ServiceError::NotAKeyword(_) => Self::new(StatusCode::BAD_REQUEST, "invalid-keyword", detail),
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

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let (status, code) = match &rejection {
            JsonRejection::MissingJsonContentType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type"),
            JsonRejection::JsonSyntaxError(_) => (StatusCode::BAD_REQUEST, "malformed-json"),
            JsonRejection::JsonDataError(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid-body"),
            _ if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                (StatusCode::PAYLOAD_TOO_LARGE, "body-too-large")
            }
            _ => (StatusCode::BAD_REQUEST, "invalid-body"),
        };
        Self::new(status, code, rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        Self::bad_request("invalid-path", rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::bad_request("invalid-query", rejection.body_text())
    }
}
