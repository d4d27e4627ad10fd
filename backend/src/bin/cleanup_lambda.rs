//! AWS Lambda entry point of the cleanup worker: `node.deleted` messages from SQS, and
//! the scheduled sweep of the deletion queue.

use brain2::bootstrap::Adapters;
use brain2::lambda;
use brain2::worker::Worker;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let (settings, factory) = lambda::environment()?;
    let adapters = Adapters::new(&settings, factory.build().await);
    let cleanup = adapters.cleanup();
    lambda::run_worker(Worker::Cleanup(cleanup.clone()), Some((cleanup, settings.cleanup_grace)), adapters.events).await
}
