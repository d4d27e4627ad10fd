//! AWS Lambda entry point of the similarity worker: note changes from SQS.

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
    lambda::run_worker(Worker::Similarity(adapters.similarity()), None, adapters.events).await
}
