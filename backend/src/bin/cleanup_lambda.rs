//! AWS Lambda entry point of the cleanup worker: `node.deleted` messages from SQS, and
//! the scheduled sweep of the deletion queue.

use brain2::adapters::aws::{ClientFactory, EndpointOverrides, SdkSource};
use brain2::bootstrap::Adapters;
use brain2::config::Settings;
use brain2::worker::Worker;
use brain2::{lambda, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    let settings = Settings::from_env()?;
    settings.ensure_safe_for_production()?;
    let factory = ClientFactory::new(SdkSource::Environment, EndpointOverrides::default());
    let adapters = Adapters::new(&settings, factory.build().await);
    let cleanup = adapters.cleanup();
    lambda::run_worker(Worker::Cleanup(cleanup.clone()), Some((cleanup, settings.cleanup_grace)), adapters.events).await
}
