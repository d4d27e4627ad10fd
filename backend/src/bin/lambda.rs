//! AWS Lambda entry point: the Brain2 router behind API Gateway.

use brain2::adapters::aws::{ClientFactory, EndpointOverrides, SdkSource};
use brain2::config::Settings;
use brain2::{bootstrap, lambda, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init();
    let settings = Settings::from_env()?;
    settings.ensure_safe_for_production()?;
    // Built once per execution environment and reused by every invocation it serves.
    let factory = ClientFactory::new(SdkSource::Environment, EndpointOverrides::default());
    let (router, adapters) = bootstrap::build(&settings, &factory).await;
    lambda::run_http(router, adapters.events).await
}
