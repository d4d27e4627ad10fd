//! Shared AWS SDK configuration: explicit timeouts and adaptive retry for every client.
//! Endpoints come from the SDK's own variables (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_DYNAMODB`,
//! ...), so real AWS, LocalStack and local emulators need no code changes.

use std::time::Duration;

use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

/// Region used when none is configured, so local runs work without AWS settings.
const FALLBACK_REGION: &str = "us-east-1";

fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(Duration::from_secs(5))
        .operation_timeout(Duration::from_secs(12))
        .build()
}

pub async fn load_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(RegionProviderChain::default_provider().or_else(FALLBACK_REGION))
        .timeout_config(timeouts())
        // Adaptive retry adds client-side rate limiting on throttling, which is what
        // keeps a burst of bulk writes from turning into a storm of retries.
        .retry_config(RetryConfig::adaptive().with_max_attempts(3))
        .load()
        .await
}

/// Per-service endpoints set in code rather than the environment (tests point one
/// process at several emulators this way). `None` keeps the SDK's own resolution.
#[derive(Debug, Clone, Default)]
pub struct EndpointOverrides {
    pub dynamodb: Option<String>,
    pub eventbridge: Option<String>,
    pub sqs: Option<String>,
}

/// The clients of one process: built once and shared, so connections are kept alive.
#[derive(Clone)]
pub struct AwsClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub eventbridge: aws_sdk_eventbridge::Client,
    pub sqs: aws_sdk_sqs::Client,
}

impl AwsClients {
    pub fn new(sdk: &SdkConfig, endpoints: &EndpointOverrides) -> Self {
        // Only an override replaces the endpoint: `set_endpoint_url(None)` would erase the
        // one the SDK already resolved from `AWS_ENDPOINT_URL_*`.
        let mut dynamodb = aws_sdk_dynamodb::config::Builder::from(sdk);
        if let Some(url) = &endpoints.dynamodb {
            dynamodb.set_endpoint_url(Some(url.clone()));
        }
        let mut eventbridge = aws_sdk_eventbridge::config::Builder::from(sdk);
        if let Some(url) = &endpoints.eventbridge {
            eventbridge.set_endpoint_url(Some(url.clone()));
        }
        let mut sqs = aws_sdk_sqs::config::Builder::from(sdk);
        if let Some(url) = &endpoints.sqs {
            sqs.set_endpoint_url(Some(url.clone()));
        }
        Self {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(dynamodb.build()),
            eventbridge: aws_sdk_eventbridge::Client::from_conf(eventbridge.build()),
            sqs: aws_sdk_sqs::Client::from_conf(sqs.build()),
        }
    }
}

impl EndpointOverrides {
    /// DynamoDB at one address, EventBridge and SQS at another (moto serves both).
    pub fn emulators(dynamodb: &str, moto: &str) -> Self {
        Self {
            dynamodb: Some(dynamodb.to_owned()),
            eventbridge: Some(moto.to_owned()),
            sqs: Some(moto.to_owned()),
        }
    }
}

/// SDK configuration for local emulators: they accept any credentials, but the SDK
/// insists on having some, and must not go looking for real ones.
pub async fn emulator_sdk_config() -> SdkConfig {
    let credentials = aws_sdk_dynamodb::config::Credentials::new(
        "local",
        "local",
        None,
        None,
        "brain2-emulators",
    );
    aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new(FALLBACK_REGION))
        .credentials_provider(credentials)
        .timeout_config(timeouts())
        .retry_config(RetryConfig::adaptive().with_max_attempts(3))
        .load()
        .await
}
