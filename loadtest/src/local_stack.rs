//! The local stack of one profile (or of the Lambda figures): emulators, a table, bus and
//! queues, seeded through an in-process server before the profile's own `brain2 serve`
//! starts on them.

use std::path::Path;

use anyhow::Context;
use brain2::adapters::dynamodb::stream_reader::TableStream;
use brain2::bootstrap::{self, Adapters, Settings};
use brain2::flags::Flags;
use brain2_devstack::{LocalAws, Provisioned};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct LocalStack {
    aws: LocalAws,
}

/// The resources of one profile.
pub struct ProfileResources {
    pub table: String,
    pub bus: String,
    /// A bus with no rules: what is published there reaches no queue.
    pub seed_bus: String,
    pub provisioned: Provisioned,
}

impl LocalStack {
    /// Starts the emulators installed under `root` (`make tools`).
    pub async fn start(root: &Path) -> anyhow::Result<Self> {
        let root = root.to_owned();
        let aws = tokio::task::spawn_blocking(move || LocalAws::start(&root)).await??;
        Ok(Self { aws })
    }

    pub fn aws(&self) -> &LocalAws {
        &self.aws
    }

    /// A table, a bus with its rules and queues, and a seed bus, all named `name`.
    pub async fn provision(&self, name: &str) -> anyhow::Result<ProfileResources> {
        let provisioned = self.aws.provision(name, name).await?;
        let seed_bus = format!("{name}-seed");
        self.aws
            .clients()
            .await
            .eventbridge
            .create_event_bus()
            .name(&seed_bus)
            .send()
            .await
            .context("creating the seed bus")?;
        Ok(ProfileResources { table: name.to_owned(), bus: name.to_owned(), seed_bus, provisioned })
    }

    /// Marks every record of `table`'s stream so far as delivered, as the outbox relay
    /// records its progress, so that a relay started next begins after them. With the
    /// outbox, the seed's events would otherwise come back through the stream: the relay
    /// of a table without a checkpoint starts at the stream's oldest record, and would
    /// publish the whole seed on the profile's bus ahead of the first scenario's events.
    /// Returns the records passed over.
    pub async fn skip_stream_records(&self, table: &str) -> anyhow::Result<usize> {
        let mut stream = TableStream::open(self.aws.clients().await, table).await?;
        let mut records = 0;
        loop {
            let batches = stream.read().await?;
            if batches.is_empty() {
                return Ok(records);
            }
            for batch in &batches {
                records += batch.changes.len();
                if let Some(last) = batch.changes.last() {
                    stream.acknowledge(batch, &last.sequence_number).await?;
                }
            }
        }
    }
}

/// An API in this process for seeding only. Its flags are the optimized ones whatever the
/// profile under test: the items written are the same, only the time to write them differs.
/// Its events go to the seed bus, which has no rules, so the seed leaves the profile's
/// workers nothing to do and every scenario starts on a quiet server (with the outbox,
/// once [`LocalStack::skip_stream_records`] has passed over the seed's stream records).
pub struct SeedServer {
    pub base_url: String,
    adapters: Adapters,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl SeedServer {
    pub async fn start(aws: &LocalAws, resources: &ProfileResources, jwt_secret: &str) -> anyhow::Result<Self> {
        let options = [
            format!("--table={}", resources.table),
            format!("--event-bus={}", resources.seed_bus),
            format!("--jwt-secret={jwt_secret}"),
            "--auth-mode=jwt".to_owned(),
            "--sim-rtt-ms=0".to_owned(),
            // Many seeding requests act as one user, whom the per-user rate limit would hold back.
            "--rate-limit-per-second=0".to_owned(),
        ];
        let mut settings = Settings::from_options(options).context("the seed server's settings")?;
        settings.flags = Flags::OPTIMIZED.into();
        let (router, adapters) = bootstrap::build(&settings, &aws.factory()).await;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let base_url = format!("http://{}/api/v1", listener.local_addr()?);
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(Self { base_url, adapters, shutdown, task })
    }

    /// Stops serving and publishes the events still queued (to the seed bus).
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(());
        self.task.await??;
        self.adapters.events.flush().await;
        Ok(())
    }
}
