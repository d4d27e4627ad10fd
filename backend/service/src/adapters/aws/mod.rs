//! Shared AWS SDK configuration: explicit timeouts and adaptive retry for every client.
//! Endpoints come from the SDK's own variables (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_DYNAMODB`,
//! ...), so real AWS, LocalStack and local emulators need no code changes.

use std::time::Duration;

use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls;
use aws_smithy_runtime::client::retries::RetryPartition;
use aws_smithy_runtime_api::client::http::SharedHttpClient;

use self::accounting::CostInterceptor;
use self::network::NetworkSimulation;
use crate::costs;
use crate::telemetry::metric;

pub mod accounting;
pub mod network;
pub mod retry;

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

impl EndpointOverrides {
    /// DynamoDB at one address, EventBridge and SQS at another (moto serves both).
    pub fn emulators(dynamodb: &str, moto: &str) -> Self {
        Self { dynamodb: Some(dynamodb.to_owned()), eventbridge: Some(moto.to_owned()), sqs: Some(moto.to_owned()) }
    }
}

/// SDK configuration for local emulators: they accept any credentials, but the SDK
/// insists on having some, and must not go looking for real ones.
pub async fn emulator_sdk_config() -> SdkConfig {
    let credentials = aws_sdk_dynamodb::config::Credentials::new("local", "local", None, None, "brain2-emulators");
    aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new(FALLBACK_REGION))
        .credentials_provider(credentials)
        .timeout_config(timeouts())
        .retry_config(RetryConfig::adaptive().with_max_attempts(3))
        .load()
        .await
}

/// Where credentials and region come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdkSource {
    /// The SDK's default chain: environment, profile, container or instance role.
    Environment,
    /// Fixed local credentials for emulators.
    Emulators,
}

/// Builds the SDK clients of the process: with the cost interceptor on every client and,
/// when configured, the simulated network under them.
#[derive(Debug, Clone)]
pub struct ClientFactory {
    pub source: SdkSource,
    pub endpoints: EndpointOverrides,
    pub network: NetworkSimulation,
}

impl ClientFactory {
    pub fn new(source: SdkSource, endpoints: EndpointOverrides) -> Self {
        Self { source, endpoints, network: NetworkSimulation::default() }
    }

    pub fn with_network(mut self, network: NetworkSimulation) -> Self {
        self.network = network;
        self
    }

    /// Loads a fresh SDK configuration and builds new clients with their own connection
    /// pool: what the process does once, or (with `client_reuse` off) every request.
    pub async fn build(&self) -> AwsClients {
        let sdk = match self.source {
            SdkSource::Environment => load_sdk_config().await,
            SdkSource::Emulators => emulator_sdk_config().await,
        };
        costs::record_client_built();
        metric::sdk_clients_built();
        AwsClients::new(&sdk, &self.endpoints, &self.network)
    }
}

/// The clients of one process: built once and shared, so connections are kept alive.
#[derive(Clone, Debug)]
pub struct AwsClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub eventbridge: aws_sdk_eventbridge::Client,
    pub sqs: aws_sdk_sqs::Client,
}

/// The HTTP client the SDK would pick by default, built explicitly so it can be wrapped.
fn default_http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc))
        .build_https()
}

/// Retries for clients under injected faults. The simulation is there to prove that no
/// item is lost, not to wait: the default one-second throttling backoff and the adaptive
/// client-side rate limiter would turn a test run with hundreds of injected throttles into
/// minutes of sleeping, so these clients back off in milliseconds and never rate-limit.
fn simulated_fault_retries() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(3)
        .with_initial_backoff(Duration::from_millis(5))
        .with_max_backoff(Duration::from_millis(50))
}

macro_rules! service_config {
    ($sdk_crate:ident, $sdk:expr, $endpoint:expr, $http:expr, $partition:expr) => {{
        let mut builder = $sdk_crate::config::Builder::from($sdk).interceptor(CostInterceptor);
        if let Some(partition) = $partition {
            builder = builder.retry_partition(partition.clone()).retry_config(simulated_fault_retries());
        }
        // Only an override replaces the endpoint: `set_endpoint_url(None)` would erase the
        // one the SDK already resolved from `AWS_ENDPOINT_URL_*`.
        if let Some(url) = $endpoint {
            builder.set_endpoint_url(Some(url.clone()));
        }
        if let Some(http) = $http {
            builder.set_http_client(Some(http.clone()));
        }
        $sdk_crate::Client::from_conf(builder.build())
    }};
}

impl AwsClients {
    pub fn new(sdk: &SdkConfig, endpoints: &EndpointOverrides, network: &NetworkSimulation) -> Self {
        let http = network.is_active().then(|| network.wrap(default_http_client()));
        // Adaptive retry slows a whole retry partition down after throttling, and the
        // default partition is shared by every client of the process: injected faults
        // must only slow down the clients that see them.
        let partition = network
            .faults
            .as_ref()
            .map(|_| RetryPartition::new(format!("brain2-simulated-{}", uuid::Uuid::new_v4().simple())));
        Self {
            dynamodb: service_config!(aws_sdk_dynamodb, sdk, &endpoints.dynamodb, &http, &partition),
            eventbridge: service_config!(aws_sdk_eventbridge, sdk, &endpoints.eventbridge, &http, &partition),
            sqs: service_config!(aws_sdk_sqs, sdk, &endpoints.sqs, &http, &partition),
        }
    }
}

tokio::task_local! {
    /// Clients built for the current request (`client_reuse` off), seen by every adapter.
    static REQUEST_CLIENTS: AwsClients;
}

/// Runs `work` with clients of its own instead of the process-wide ones.
pub async fn with_request_clients<F: Future>(clients: AwsClients, work: F) -> F::Output {
    REQUEST_CLIENTS.scope(clients, work).await
}

/// The DynamoDB client to use now: the request's own, or else the shared one.
pub fn dynamodb_client(shared: &aws_sdk_dynamodb::Client) -> aws_sdk_dynamodb::Client {
    REQUEST_CLIENTS.try_with(|clients| clients.dynamodb.clone()).unwrap_or_else(|_| shared.clone())
}

/// The EventBridge client to use now: the request's own, or else the shared one.
pub fn eventbridge_client(shared: &aws_sdk_eventbridge::Client) -> aws_sdk_eventbridge::Client {
    REQUEST_CLIENTS.try_with(|clients| clients.eventbridge.clone()).unwrap_or_else(|_| shared.clone())
}
