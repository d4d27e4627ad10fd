//! AWS Lambda entry point of the WebSocket API's routes: `$connect` checks the token and
//! registers the connection, `$disconnect` forgets it, `$default` answers client messages.

use std::sync::Arc;

use brain2::bootstrap::Adapters;
use brain2::realtime::gateway::WebSocketRoutes;

// One thread: a function gets a fraction of a core, and a second scheduler thread only
// adds wake-ups between threads (docs/performance.md measures both).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let environment = brain2_lambda::environment()?;
    let adapters = Adapters::new(&environment.settings, environment.factory.build().await);
    let live = Arc::new(adapters.live());
    let authenticator = Arc::new(environment.settings.http.authenticator());
    let routes = Arc::new(WebSocketRoutes::new(live.clone(), live, authenticator));
    brain2_lambda::run_websocket_routes(routes, environment.metrics).await
}
