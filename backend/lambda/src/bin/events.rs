//! AWS Lambda entry point of the outbox relay: batches of the table's stream into domain
//! events on the bus (`BRAIN2_EVENT_DELIVERY=outbox`).

use brain2::bootstrap::Adapters;

// One thread: a function gets a fraction of a core, and a second scheduler thread only
// adds wake-ups between threads (docs/performance.md measures both).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let environment = brain2_lambda::environment()?;
    let adapters = Adapters::new(&environment.settings, environment.factory.build().await);
    brain2_lambda::run_relay(adapters.relay, environment.metrics).await
}
