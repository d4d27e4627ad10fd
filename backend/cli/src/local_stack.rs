//! Local AWS for `brain2 serve --local-stack` and `brain2 local-aws`: the emulators and
//! the shared cache started, the emulators provisioned, and the settings pointed at what
//! was provisioned and at the cache.

use std::io::Write;
use std::path::Path;

use brain2::adapters::aws::ClientFactory;
use brain2::bootstrap::Settings;
use brain2_devstack::{DevStack, LocalAws};

/// Starts and provisions the emulators, and points `settings` at the provisioned queues
/// and, unless they name a shared cache already, at the local one. The emulators stop when
/// the returned [`LocalAws`] is dropped, or with this process.
pub async fn start(settings: &mut Settings) -> anyhow::Result<(LocalAws, ClientFactory)> {
    let root = std::env::current_dir()?;
    let stack = tokio::task::spawn_blocking(move || LocalAws::start(&root)).await??;
    let shared_cache = &mut settings.adapters.shared_cache;
    if shared_cache.cache_url.is_none() {
        shared_cache.cache_url = stack.cache_url();
    }
    let factory = stack.factory().with_network(settings.adapters.network.clone());
    let provisioned = stack.provision(&settings.adapters.table, &settings.adapters.event_bus).await?;
    settings.adapters.events_dlq_url = Some(provisioned.publish_dlq_url);
    settings.adapters.stream_failures_queue_url = Some(provisioned.stream_failures_queue_url);
    settings.workers.cleanup_queue_url = Some(provisioned.cleanup_queue_url);
    settings.workers.similarity_queue_url = Some(provisioned.similarity_queue_url);
    settings.realtime.realtime_queue_url = Some(provisioned.realtime_queue_url);
    Ok((stack, factory))
}

/// The emulators' endpoints plus the provisioned queues and the shared cache, as `export`
/// lines for a shell.
pub fn write_env_file(stack: &DevStack, settings: &Settings, path: &Path) -> std::io::Result<()> {
    stack.write_env_file(path)?;
    let service_settings = [
        ("BRAIN2_EVENTS_DLQ_URL", &settings.adapters.events_dlq_url),
        ("BRAIN2_STREAM_FAILURES_QUEUE_URL", &settings.adapters.stream_failures_queue_url),
        ("BRAIN2_CLEANUP_QUEUE_URL", &settings.workers.cleanup_queue_url),
        ("BRAIN2_SIMILARITY_QUEUE_URL", &settings.workers.similarity_queue_url),
        ("BRAIN2_REALTIME_QUEUE_URL", &settings.realtime.realtime_queue_url),
        ("BRAIN2_CACHE_URL", &settings.adapters.shared_cache.cache_url),
    ];
    let mut file = std::fs::OpenOptions::new().append(true).open(path)?;
    for (name, value) in service_settings {
        if let Some(value) = value {
            writeln!(file, "export {name}={value}")?;
        }
    }
    Ok(())
}
