//! AWS Lambda entry point: the Brain2 router behind API Gateway.

use brain2::adapters::aws::{AwsClients, EndpointOverrides, load_sdk_config};
use brain2::config::Settings;
use brain2::{bootstrap, http, lambda, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init();
    let settings = Settings::from_env()?;
    settings.ensure_safe_for_production()?;
    // Built once per execution environment and reused by every invocation it serves.
    let clients = AwsClients::new(&load_sdk_config().await, &EndpointOverrides::default());
    let router = http::router(bootstrap::app_state(&settings, &clients));
    lambda_http::run(lambda::service(router)).await
}
