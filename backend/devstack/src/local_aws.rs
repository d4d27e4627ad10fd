//! Local AWS as one value: the emulators a process started itself (as plain processes or
//! in containers, with a redis-server process as the shared cache either way), or the ones
//! its environment names (a `make local-aws` in another terminal, a stack deployed to
//! LocalStack), with the clients, provisioning and child-process environment that go with
//! them.

use std::path::Path;

use brain2::adapters::aws::{AwsClients, ClientFactory, EndpointOverrides, SdkSource};

use crate::containers::ContainerStack;
use crate::emulators::{ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY};
use crate::{CacheServer, DevStack, DevStackError, DevStackPaths, ProvisionError, Provisioned, provision};

/// Which emulators a test suite runs against: `processes` (the default), `containers`
/// or `environment`.
pub const TEST_STACK_ENV: &str = "BRAIN2_TEST_STACK";
/// The service's setting naming its shared cache.
const CACHE_URL_ENV: &str = "BRAIN2_CACHE_URL";

/// Emulator endpoints, and the emulators themselves when this process started them: they
/// stop when this value is dropped.
#[derive(Debug)]
pub struct LocalAws {
    emulators: Emulators,
    endpoints: EndpointOverrides,
}

/// The emulators and the shared cache. There is no redis image to run, so the cache is a
/// process beside containers too.
#[derive(Debug)]
enum Emulators {
    Processes {
        devstack: DevStack,
        cache: CacheServer,
    },
    Containers {
        #[expect(dead_code, reason = "held, never read: dropping it removes the containers")]
        containers: ContainerStack,
        cache: CacheServer,
    },
    /// Started by someone else; their endpoints (and the cache, if any) came from the
    /// environment.
    Given {
        cache_url: Option<String>,
    },
}

impl LocalAws {
    /// Starts fresh emulators and a redis-server installed under the repository at `root`
    /// (`make tools`). Blocks until all of them answer.
    pub fn start(root: &Path) -> Result<Self, DevStackError> {
        // Every tool is found before the slow emulators start, so a missing one fails fast.
        let paths = DevStackPaths::discover(root)?;
        let cache = CacheServer::start(root)?;
        let devstack = DevStack::start(&paths)?;
        let endpoints = EndpointOverrides::emulators(devstack.dynamodb_endpoint(), devstack.moto_endpoint());
        Ok(Self { emulators: Emulators::Processes { devstack, cache }, endpoints })
    }

    /// Starts DynamoDB Local and LocalStack in containers (`make test-containers`), and the
    /// redis-server installed under the repository at `root` as a process.
    pub fn start_containers(root: &Path) -> Result<Self, DevStackError> {
        let cache = CacheServer::start(root)?;
        let containers = ContainerStack::start()?;
        Ok(Self { endpoints: containers.endpoints(), emulators: Emulators::Containers { containers, cache } })
    }

    /// The emulators a test suite runs against, from one setting, [`TEST_STACK_ENV`]:
    /// - `processes` (or unset): fresh DynamoDB Local and moto_server processes;
    /// - `containers`: fresh DynamoDB Local and LocalStack containers;
    /// - `environment`: the endpoints `AWS_ENDPOINT_URL_DYNAMODB` and
    ///   `AWS_ENDPOINT_URL_EVENTBRIDGE` name (SQS at `AWS_ENDPOINT_URL_SQS`, else beside
    ///   EventBridge), and the shared cache `BRAIN2_CACHE_URL` names if it is set, all
    ///   started by someone else.
    ///
    /// The first two also start a redis-server process.
    pub fn for_tests(root: &Path) -> Result<Self, DevStackError> {
        let setting = std::env::var(TEST_STACK_ENV).unwrap_or_default();
        match setting.as_str() {
            "" | "processes" => Self::start(root),
            "containers" => Self::start_containers(root),
            "environment" => endpoints_from_environment()
                .map(|endpoints| {
                    let cache_url = std::env::var(CACHE_URL_ENV).ok().filter(|url| !url.is_empty());
                    Self { emulators: Emulators::Given { cache_url }, endpoints }
                })
                .ok_or(DevStackError::Setting {
                    variable: TEST_STACK_ENV,
                    value: setting,
                    allowed: "processes, containers, or environment with AWS_ENDPOINT_URL_DYNAMODB and \
                              AWS_ENDPOINT_URL_EVENTBRIDGE set",
                }),
            _ => Err(DevStackError::Setting {
                variable: TEST_STACK_ENV,
                value: setting,
                allowed: "processes, containers, environment",
            }),
        }
    }

    /// The emulator processes this process started, if it started processes.
    pub fn devstack(&self) -> Option<&DevStack> {
        match &self.emulators {
            Emulators::Processes { devstack, .. } => Some(devstack),
            Emulators::Containers { .. } | Emulators::Given { .. } => None,
        }
    }

    /// `redis://127.0.0.1:<port>` of the redis-server this process started, or the shared
    /// cache the environment names; `None` when the environment names none.
    pub fn cache_url(&self) -> Option<String> {
        match &self.emulators {
            Emulators::Processes { cache, .. } | Emulators::Containers { cache, .. } => Some(cache.url()),
            Emulators::Given { cache_url } => cache_url.clone(),
        }
    }

    /// Where each service's emulator answers.
    pub fn endpoints(&self) -> &EndpointOverrides {
        &self.endpoints
    }

    /// A client factory for these emulators, with local credentials.
    pub fn factory(&self) -> ClientFactory {
        ClientFactory::new(SdkSource::Emulators, self.endpoints.clone())
    }

    pub async fn clients(&self) -> AwsClients {
        self.factory().build().await
    }

    /// Creates (idempotently) the table, the bus, its rules and the queues.
    pub async fn provision(&self, table: &str, bus: &str) -> Result<Provisioned, ProvisionError> {
        provision(&self.clients().await, table, bus).await
    }

    /// What a child process (`brain2 serve`, a Lambda binary) needs in its environment to
    /// reach these emulators through the SDK's own variables, and the shared cache through
    /// the service's.
    pub fn environment(&self) -> Vec<(String, String)> {
        let cache = self.cache_url().map(|url| (CACHE_URL_ENV.to_owned(), url));
        emulator_environment(&self.endpoints).into_iter().chain(cache).collect()
    }

    /// [`LocalAws::environment`] plus the service's settings naming what
    /// [`LocalAws::provision`] created for `table` and `bus`.
    pub fn service_environment(&self, table: &str, bus: &str, provisioned: &Provisioned) -> Vec<(String, String)> {
        let settings = [
            ("BRAIN2_TABLE", table),
            ("BRAIN2_EVENT_BUS", bus),
            ("BRAIN2_EVENTS_DLQ_URL", provisioned.publish_dlq_url.as_str()),
            ("BRAIN2_STREAM_FAILURES_QUEUE_URL", provisioned.stream_failures_queue_url.as_str()),
            ("BRAIN2_CLEANUP_QUEUE_URL", provisioned.cleanup_queue_url.as_str()),
            ("BRAIN2_SIMILARITY_QUEUE_URL", provisioned.similarity_queue_url.as_str()),
            ("BRAIN2_REALTIME_QUEUE_URL", provisioned.realtime_queue_url.as_str()),
        ]
        .map(|(name, value)| (name.to_owned(), value.to_owned()));
        self.environment().into_iter().chain(settings).collect()
    }
}

fn endpoints_from_environment() -> Option<EndpointOverrides> {
    let dynamodb = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").ok()?;
    let eventbridge = std::env::var("AWS_ENDPOINT_URL_EVENTBRIDGE").ok()?;
    let sqs = std::env::var("AWS_ENDPOINT_URL_SQS").unwrap_or_else(|_| eventbridge.clone());
    Some(EndpointOverrides { dynamodb: Some(dynamodb), eventbridge: Some(eventbridge), sqs: Some(sqs) })
}

/// Endpoint variables for the endpoints that are set, plus the region and the local
/// credentials emulators accept.
pub(crate) fn emulator_environment(endpoints: &EndpointOverrides) -> Vec<(String, String)> {
    let services = [
        ("AWS_ENDPOINT_URL_DYNAMODB", &endpoints.dynamodb),
        // The table's stream is served where the table is.
        ("AWS_ENDPOINT_URL_DYNAMODB_STREAMS", &endpoints.dynamodb),
        ("AWS_ENDPOINT_URL_EVENTBRIDGE", &endpoints.eventbridge),
        ("AWS_ENDPOINT_URL_SQS", &endpoints.sqs),
    ];
    let endpoint_vars = services.into_iter().filter_map(|(name, url)| url.clone().map(|url| (name.to_owned(), url)));
    let credentials =
        [("AWS_REGION", REGION), ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID), ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)]
            .map(|(name, value)| (name.to_owned(), value.to_owned()));
    endpoint_vars.chain(credentials).collect()
}
