//! Shared AWS SDK configuration: explicit timeouts and adaptive retry for every client.
//! Endpoints come from the SDK's own variables (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_DYNAMODB`,
//! ...), so real AWS, LocalStack and local emulators need no code changes.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

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
pub mod deadline;
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

/// Where credentials and region come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdkSource {
    /// The SDK's default chain: environment, profile, container or instance role.
    Environment,
    /// Fixed local credentials for emulators.
    Emulators,
}

/// The SDK configuration every client of the process starts from: region, credentials,
/// explicit timeouts, adaptive retry and the HTTP client.
async fn sdk_config(source: SdkSource, http: SharedHttpClient) -> SdkConfig {
    let loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .timeout_config(timeouts())
        // Adaptive retry adds client-side rate limiting on throttling, which is what
        // keeps a burst of bulk writes from turning into a storm of retries. Backoffs are
        // capped so that the request deadline can tell whether a retry still fits.
        .retry_config(RetryConfig::adaptive().with_max_attempts(3).with_max_backoff(deadline::SDK_MAX_BACKOFF));
    match source {
        // The loader's own region chain (environment, profile, instance metadata) uses the
        // HTTP client given above; a region chain built apart would have none.
        SdkSource::Environment => {
            let sdk = loader.load().await;
            if sdk.region().is_some() {
                sdk
            } else {
                sdk.into_builder().region(aws_config::Region::new(FALLBACK_REGION)).build()
            }
        }
        // Emulators accept any credentials, but the SDK insists on having some, and must
        // not go looking for real ones.
        SdkSource::Emulators => {
            let credentials =
                aws_sdk_dynamodb::config::Credentials::new("local", "local", None, None, "brain2-emulators");
            loader.region(aws_config::Region::new(FALLBACK_REGION)).credentials_provider(credentials).load().await
        }
    }
}

/// The root certificates TLS connections to AWS trust.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TrustRoots {
    /// The machine's own, as the SDK loads them (every file of the system certificate
    /// directory), so that a machine's private authorities, such as a company's TLS proxy,
    /// keep working: the CLI and local servers.
    #[default]
    System,
    /// Mozilla's root set compiled into the binary (`webpki-root-certs`), which AWS's
    /// endpoints chain to: nothing read from disk at start. The Lambda functions, where
    /// scanning the certificate directory was a large part of the cold start.
    CompiledIn,
}

/// The compiled-in roots as one PEM bundle, the form the SDK's trust store takes.
fn compiled_in_roots_pem() -> Vec<u8> {
    use base64::Engine as _;
    let mut pem = Vec::with_capacity(webpki_root_certs::TLS_SERVER_ROOT_CERTS.len() * 2_048);
    for certificate in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
        pem.extend_from_slice(base64::engine::general_purpose::STANDARD.encode(certificate.as_ref()).as_bytes());
        pem.extend_from_slice(b"\n-----END CERTIFICATE-----\n");
    }
    pem
}

/// The TLS context trusting the compiled-in roots, encoded once per process: with
/// `client_reuse` off, clients (and so this context) are built for every request.
static COMPILED_IN_CONTEXT: LazyLock<tls::TlsContext> = LazyLock::new(|| {
    let store = tls::TrustStore::empty().with_native_roots(false).with_pem_certificate(compiled_in_roots_pem());
    // Building the context only stores the bundle: it cannot fail today.
    tls::TlsContext::builder().with_trust_store(store).build().unwrap_or_default()
});

/// The HTTPS client of every SDK client: rustls on ring, trusting `roots`.
pub fn https_client(roots: TrustRoots) -> SharedHttpClient {
    let builder = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring));
    let context = match roots {
        TrustRoots::System => tls::TlsContext::default(),
        TrustRoots::CompiledIn => COMPILED_IN_CONTEXT.clone(),
    };
    builder.tls_context(context).build_https()
}

/// Builds the SDK clients of the process: with the cost interceptor on every client and,
/// when configured, the simulated network under them.
#[derive(Debug, Clone)]
pub struct ClientFactory {
    pub source: SdkSource,
    pub endpoints: EndpointOverrides,
    pub network: NetworkSimulation,
    pub roots: TrustRoots,
}

impl ClientFactory {
    pub fn new(source: SdkSource, endpoints: EndpointOverrides) -> Self {
        Self { source, endpoints, network: NetworkSimulation::default(), roots: TrustRoots::default() }
    }

    pub fn with_roots(mut self, roots: TrustRoots) -> Self {
        self.roots = roots;
        self
    }

    pub fn with_network(mut self, network: NetworkSimulation) -> Self {
        self.network = network;
        self
    }

    /// Loads a fresh SDK configuration and builds new clients with their own connection
    /// pool: what the process does once, or (with `client_reuse` off) every request.
    pub async fn build(&self) -> AwsClients {
        let (sdk, simulated) = self.sdk().await;
        costs::record_client_built();
        metric::sdk_clients_built();
        AwsClients::new(&sdk, &self.endpoints, simulated.as_ref(), self.network.faults.is_some())
    }

    /// A fresh SDK configuration, and the simulated network's HTTP client when there is one.
    async fn sdk(&self) -> (SdkConfig, Option<SharedHttpClient>) {
        let http = https_client(self.roots);
        let simulated = self.network.affects_aws().then(|| self.network.wrap(http.clone()));
        (sdk_config(self.source, http).await, simulated)
    }
}

/// A client built the first time it is used: the API needs SQS only to dead-letter an
/// event, so a Lambda cold start does not pay for it. Clones share the one client.
pub type LazyClient<C> = Arc<LazyLock<C, Box<dyn FnOnce() -> C + Send>>>;

/// The clients of one process: built once and shared, so connections are kept alive.
#[derive(Clone, Debug)]
pub struct AwsClients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub eventbridge: aws_sdk_eventbridge::Client,
    pub sqs: LazyClient<aws_sdk_sqs::Client>,
    /// The table's stream, read by the outbox relay of `brain2 serve` (in AWS, Lambda reads it).
    pub dynamodb_streams: LazyClient<aws_sdk_dynamodbstreams::Client>,
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

impl ClientFactory {
    /// A client of API Gateway's management API, whose endpoint is the WebSocket API's
    /// stage (`https://<api id>.execute-api.<region>.amazonaws.com/<stage>`): the one
    /// client only the broadcaster needs.
    pub async fn management_api(&self, endpoint: &str) -> aws_sdk_apigatewaymanagement::Client {
        let (sdk, simulated) = self.sdk().await;
        service_config!(
            aws_sdk_apigatewaymanagement,
            &sdk,
            &Some(endpoint.to_owned()),
            &simulated,
            &None::<RetryPartition>
        )
    }
}

impl AwsClients {
    /// Clients on `sdk`; `simulated` replaces its HTTP client when the network is simulated.
    fn new(sdk: &SdkConfig, endpoints: &EndpointOverrides, simulated: Option<&SharedHttpClient>, faults: bool) -> Self {
        // Adaptive retry slows a whole retry partition down after throttling, and the
        // default partition is shared by every client of the process: injected faults
        // must only slow down the clients that see them.
        let partition =
            faults.then(|| RetryPartition::new(format!("brain2-simulated-{}", uuid::Uuid::new_v4().simple())));
        // Only store calls answer to the request deadline: an event's last resort is the
        // dead-letter queue, which must stay reachable whatever time is left.
        let store_http = simulated.cloned().or_else(|| sdk.http_client()).map(deadline::bounded);
        let dynamodb = {
            let client = service_config!(aws_sdk_dynamodb, sdk, &endpoints.dynamodb, &store_http, &partition);
            let config = client.config().to_builder().retry_classifier(deadline::StopAtDeadline);
            aws_sdk_dynamodb::Client::from_conf(config.build())
        };
        Self {
            dynamodb,
            eventbridge: service_config!(aws_sdk_eventbridge, sdk, &endpoints.eventbridge, simulated, &partition),
            sqs: {
                let (sdk, endpoint, simulated, partition) =
                    (sdk.clone(), endpoints.sqs.clone(), simulated.cloned(), partition.clone());
                Arc::new(LazyLock::new(Box::new(move || {
                    service_config!(aws_sdk_sqs, &sdk, &endpoint, &simulated, &partition)
                })))
            },
            // Streams are served where the table is (DynamoDB Local, LocalStack).
            dynamodb_streams: {
                let (sdk, endpoint, simulated) = (sdk.clone(), endpoints.dynamodb.clone(), simulated.cloned());
                Arc::new(LazyLock::new(Box::new(move || {
                    service_config!(aws_sdk_dynamodbstreams, &sdk, &endpoint, &simulated, &partition)
                })))
            },
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

/// `work` with the current request's own clients (if it has any) wherever it runs, such as
/// on a task spawned for the request.
pub fn carried_request_clients<F: Future>(work: F) -> impl Future<Output = F::Output> {
    let clients = REQUEST_CLIENTS.try_with(Clone::clone).ok();
    async move {
        match clients {
            Some(clients) => REQUEST_CLIENTS.scope(clients, work).await,
            None => work.await,
        }
    }
}

/// The DynamoDB client to use now: the request's own, or else the shared one.
pub fn dynamodb_client(shared: &aws_sdk_dynamodb::Client) -> aws_sdk_dynamodb::Client {
    REQUEST_CLIENTS.try_with(|clients| clients.dynamodb.clone()).unwrap_or_else(|_| shared.clone())
}

/// The EventBridge client to use now: the request's own, or else the shared one.
pub fn eventbridge_client(shared: &aws_sdk_eventbridge::Client) -> aws_sdk_eventbridge::Client {
    REQUEST_CLIENTS.try_with(|clients| clients.eventbridge.clone()).unwrap_or_else(|_| shared.clone())
}

#[cfg(test)]
mod tests {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;

    use super::*;

    #[test]
    fn compiled_in_roots_pem_decodes_to_every_compiled_in_root_in_order() {
        let pem = compiled_in_roots_pem();
        // The parser the SDK's rustls trust store reads the bundle with.
        let decoded: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(&pem).collect::<Result<_, _>>().expect("the bundle is valid PEM");
        assert!(decoded.len() > 100, "only {} roots", decoded.len());
        assert_eq!(decoded, webpki_root_certs::TLS_SERVER_ROOT_CERTS);
    }
}
