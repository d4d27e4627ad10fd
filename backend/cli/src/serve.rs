//! `brain2 serve`: the router over HTTP, optionally with the workers in-process, until
//! SIGINT or SIGTERM; queued events leave before the process ends.

use anyhow::Context;
use brain2::adapters::aws::ClientFactory;
use brain2::bootstrap::{self, Settings};
use brain2::worker::run_in_process;

pub async fn serve(settings: &Settings, factory: &ClientFactory, port: u16, workers: bool) -> anyhow::Result<()> {
    let (router, adapters) = bootstrap::build(settings, factory).await;
    let background = workers.then(|| {
        let queues = adapters.workers(&settings.workers);
        tracing::info!(workers = queues.len(), "running the workers in-process");
        tokio::spawn(run_in_process(
            queues,
            adapters.cleanup(),
            adapters.clients.sqs.clone(),
            settings.workers.cleanup_grace,
        ))
    });
    let listener =
        tokio::net::TcpListener::bind(("0.0.0.0", port)).await.with_context(|| format!("binding port {port}"))?;
    tracing::info!(address = %listener.local_addr()?, flags = ?settings.flags(), "serving the Brain2 API under /api/v1");
    axum::serve(listener, router).with_graceful_shutdown(shutdown_signal()).await?;
    if let Some(background) = background {
        background.abort();
    }
    // Events still queued go out before the process ends.
    adapters.events.flush().await;
    tracing::info!("stopped");
    Ok(())
}

/// SIGINT (Ctrl-C) or SIGTERM, as a terminal, systemd or a container runtime sends them.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}
