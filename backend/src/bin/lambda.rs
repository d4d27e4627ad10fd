//! AWS Lambda entry point: the Brain2 router behind API Gateway.

use brain2::{bootstrap, lambda};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let (settings, factory) = lambda::environment()?;
    let (router, adapters) = bootstrap::build(&settings, &factory).await;
    lambda::run_http(router, adapters.events).await
}
