//! Local AWS as one value: the emulators a process started itself, or the ones its
//! environment names (CI's containers, a `make local-aws` in another terminal), with the
//! clients, provisioning and child-process environment that go with them.

use std::path::Path;

use brain2::adapters::aws::{AwsClients, ClientFactory, EndpointOverrides, SdkSource};

use crate::emulators::{ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY};
use crate::{DevStack, DevStackError, DevStackPaths, ProvisionError, Provisioned, provision};

/// Emulator endpoints, and the emulators themselves when this process started them: they
/// stop when this value is dropped.
#[derive(Debug)]
pub struct LocalAws {
    devstack: Option<DevStack>,
    endpoints: EndpointOverrides,
}

impl LocalAws {
    /// Starts fresh emulators installed under the repository at `root` (`make tools`).
    /// Blocks until both answer.
    pub fn start(root: &Path) -> Result<Self, DevStackError> {
        let devstack = DevStack::start(&DevStackPaths::discover(root)?)?;
        let endpoints = EndpointOverrides::emulators(devstack.dynamodb_endpoint(), devstack.moto_endpoint());
        Ok(Self { devstack: Some(devstack), endpoints })
    }

    /// The emulators `AWS_ENDPOINT_URL_DYNAMODB` and `AWS_ENDPOINT_URL_EVENTBRIDGE` name
    /// (SQS at `AWS_ENDPOINT_URL_SQS`, else beside EventBridge) when both are set; fresh
    /// ones otherwise.
    pub fn from_env_or_start(root: &Path) -> Result<Self, DevStackError> {
        match endpoints_from_environment() {
            Some(endpoints) => Ok(Self { devstack: None, endpoints }),
            None => Self::start(root),
        }
    }

    /// The emulators this process started, if it started them.
    pub fn devstack(&self) -> Option<&DevStack> {
        self.devstack.as_ref()
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
    /// reach these emulators through the SDK's own variables.
    pub fn environment(&self) -> Vec<(String, String)> {
        emulator_environment(&self.endpoints)
    }

    /// [`LocalAws::environment`] plus the service's settings naming what
    /// [`LocalAws::provision`] created for `table` and `bus`.
    pub fn service_environment(&self, table: &str, bus: &str, provisioned: &Provisioned) -> Vec<(String, String)> {
        let settings = [
            ("BRAIN2_TABLE", table),
            ("BRAIN2_EVENT_BUS", bus),
            ("BRAIN2_EVENTS_DLQ_URL", provisioned.publish_dlq_url.as_str()),
            ("BRAIN2_CLEANUP_QUEUE_URL", provisioned.cleanup_queue_url.as_str()),
            ("BRAIN2_SIMILARITY_QUEUE_URL", provisioned.similarity_queue_url.as_str()),
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
        ("AWS_ENDPOINT_URL_EVENTBRIDGE", &endpoints.eventbridge),
        ("AWS_ENDPOINT_URL_SQS", &endpoints.sqs),
    ];
    let endpoint_vars = services.into_iter().filter_map(|(name, url)| url.clone().map(|url| (name.to_owned(), url)));
    let credentials =
        [("AWS_REGION", REGION), ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID), ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)]
            .map(|(name, value)| (name.to_owned(), value.to_owned()));
    endpoint_vars.chain(credentials).collect()
}
