//! AWS Lambda entry point of the broadcaster: the realtime queue's changes into the change
//! log, then to each of the user's WebSocket connections through the management API.

use std::sync::Arc;

use brain2::adapters::apigateway::ManagementApiPoster;
use brain2::bootstrap::Adapters;
use brain2::realtime::feed::LiveFeed;
use brain2::realtime::gateway::ConnectionFanout;

// One thread: a function gets a fraction of a core, and a second scheduler thread only
// adds wake-ups between threads (docs/performance.md measures both).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let environment = brain2_lambda::environment()?;
    let endpoint =
        environment.settings.realtime.realtime_endpoint.clone().ok_or("BRAIN2_REALTIME_ENDPOINT is not set")?;
    let adapters = Adapters::new(&environment.settings, environment.factory.build().await);
    let live = Arc::new(adapters.live());
    let poster = Arc::new(ManagementApiPoster::new(environment.factory.management_api(&endpoint).await));
    let feed = Arc::new(LiveFeed::new(live.clone(), Arc::new(ConnectionFanout::new(live, poster))));
    brain2_lambda::run_broadcast(feed, environment.metrics).await
}
