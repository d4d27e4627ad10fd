//! The request deadline ([`crate::deadline`]) applied to the SDK's own work: each attempt
//! is cut off when the deadline passes, and the SDK does not start a retry whose backoff
//! could outlive it. Without this, one stalled call could use the whole request's time
//! (attempt timeouts times attempts), and the store could not report what it had done.

use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::interceptors::context::InterceptorContext;
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::retries::classifiers::{ClassifyRetry, RetryAction};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

use crate::deadline;

/// The longest backoff the SDK waits between its own attempts (see `sdk_config`).
pub const SDK_MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Wraps an HTTP client so that no attempt outlives the deadline of the request it serves.
pub fn bounded(inner: SharedHttpClient) -> SharedHttpClient {
    SharedHttpClient::new(DeadlineClient { inner })
}

#[derive(Debug)]
struct DeadlineClient {
    inner: SharedHttpClient,
}

impl HttpClient for DeadlineClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(DeadlineConnector { inner: self.inner.http_connector(settings, components) })
    }
}

#[derive(Debug)]
struct DeadlineConnector {
    inner: SharedHttpConnector,
}

fn deadline_passed() -> ConnectorError {
    ConnectorError::timeout("the request's deadline passed".into())
}

impl HttpConnector for DeadlineConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        // Read now, in the task serving the request: the connector's future may be polled
        // where the task-local deadline is not visible.
        let Some(left) = deadline::remaining() else { return self.inner.call(request) };
        if left.is_zero() {
            return HttpConnectorFuture::ready(Err(deadline_passed()));
        }
        let call = self.inner.call(request);
        HttpConnectorFuture::new(async move {
            tokio::time::timeout(left, call).await.unwrap_or_else(|_| Err(deadline_passed()))
        })
    }
}

/// Forbids the SDK a retry when its backoff could take the rest of the request's time:
/// the store's own retry loop (which knows the deadline) decides what happens next.
#[derive(Debug, Default)]
pub struct StopAtDeadline;

impl ClassifyRetry for StopAtDeadline {
    fn classify_retry(&self, _ctx: &InterceptorContext) -> RetryAction {
        match deadline::remaining() {
            Some(left) if left <= SDK_MAX_BACKOFF => RetryAction::RetryForbidden,
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "brain2 request deadline"
    }
}

#[cfg(test)]
mod tests {
    use aws_smithy_runtime_api::client::interceptors::context::Input;

    use super::*;

    #[tokio::test]
    async fn retries_are_forbidden_only_near_the_deadline() {
        let context = InterceptorContext::new(Input::erase(()));
        assert_eq!(StopAtDeadline.classify_retry(&context), RetryAction::NoActionIndicated);
        let far = tokio::time::Instant::now() + SDK_MAX_BACKOFF * 10;
        let near = tokio::time::Instant::now();
        let far_verdict = deadline::scope(far, async { StopAtDeadline.classify_retry(&context) }).await;
        let near_verdict = deadline::scope(near, async { StopAtDeadline.classify_retry(&context) }).await;
        assert_eq!(far_verdict, RetryAction::NoActionIndicated);
        assert_eq!(near_verdict, RetryAction::RetryForbidden);
    }
}
