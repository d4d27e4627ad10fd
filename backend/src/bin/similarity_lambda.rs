//! AWS Lambda entry point of the similarity worker: note changes from SQS.

use brain2::bootstrap::Adapters;
use brain2::lambda;
use brain2::worker::Worker;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let (settings, factory) = lambda::environment()?;
    let adapters = Adapters::new(&settings, factory.build().await);
    lambda::run_worker(Worker::Similarity(adapters.similarity()), None, adapters.events).await
}
