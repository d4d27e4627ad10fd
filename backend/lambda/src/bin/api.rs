//! AWS Lambda entry point: the Brain2 router behind API Gateway.

use brain2::bootstrap;

// One thread: a function gets a fraction of a core, and a second scheduler thread only
// adds wake-ups between threads (docs/performance.md measures both).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    let environment = brain2_lambda::environment()?;
    let (router, adapters) = bootstrap::build(&environment.settings, &environment.factory).await;
    // Once per instance: where on-call reads the flags in force (`/health` shows them only
    // to an authenticated caller, and API Gateway authenticates no one there).
    tracing::info!(flags = ?environment.settings.flags(), "serving the Brain2 API");
    brain2_lambda::run_http(router, adapters.events, environment.metrics, environment.started).await
}
