//! AWS Lambda entry point of the cleanup worker: `node.deleted` messages from SQS, and
//! the scheduled sweep of the deletion queue.

use brain2::bootstrap::Adapters;
use brain2::worker::Worker;

// One thread: a function gets a fraction of a core, and a second scheduler thread only
// adds wake-ups between threads (docs/performance.md measures both).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let environment = brain2_lambda::environment()?;
    let adapters = Adapters::new(&environment.settings, environment.factory.build().await);
    let cleanup = adapters.cleanup();
    let sweep = Some((cleanup.clone(), environment.settings.workers.cleanup_grace));
    brain2_lambda::run_worker(Worker::Cleanup(cleanup), sweep, adapters.events, environment.metrics).await
}
