//! `brain2 serve`: the router over HTTP and the WebSocket endpoint, optionally with the
//! workers in-process, until SIGINT or SIGTERM; queued events leave before the process ends.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use anyhow::Context;
use brain2::adapters::aws::ClientFactory;
use brain2::bootstrap::{self, Settings};
use brain2::flags::EventDelivery;
use brain2::outbox;
use brain2::ports::Fanout;
use brain2::realtime::{self, feed::LiveFeed, hub::LocalHub};
use brain2::worker::run_in_process;

/// Loopback: what `brain2 serve` listens on unless told otherwise.
pub const DEFAULT_BIND: &str = "127.0.0.1";

/// Refuses an address other machines can reach while tokens are checked with the published
/// development secret: whoever reaches the port could sign a token for any user.
pub fn ensure_safe_to_bind(settings: &Settings, bind: IpAddr) -> anyhow::Result<()> {
    if !bind.is_loopback() && settings.http.uses_development_secret() {
        anyhow::bail!(
            "refusing to serve on {bind} with the published development secret: anyone who reaches the port \
             could sign tokens; set BRAIN2_JWT_SECRET, or serve on loopback (--bind {DEFAULT_BIND})"
        );
    }
    Ok(())
}

/// Where `brain2 serve` listens: the API, and optionally the loopback operator listener.
pub struct Listeners {
    pub bind: IpAddr,
    pub port: u16,
    pub metrics: Option<SocketAddr>,
}

pub async fn serve(
    settings: &Settings,
    factory: &ClientFactory,
    listeners: Listeners,
    workers: bool,
) -> anyhow::Result<()> {
    let Listeners { bind, port, metrics } = listeners;
    ensure_safe_to_bind(settings, bind)?;
    let (router, adapters) = bootstrap::build(settings, factory).await;
    if let Some(address) = metrics {
        crate::metrics_listener::start(address, adapters.health.clone(), settings.flags()).await?;
    }
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
    // In outbox delivery the events are the table's stream: the workers' process publishes
    // them, as the `brain2-events` function does in AWS.
    let relay = match (workers, adapters.event_delivery) {
        (true, EventDelivery::Outbox) => {
            let stream = adapters.table_stream().await.context("opening the table's stream")?;
            tracing::info!(table = adapters.table, "publishing events from the table's stream");
            Some(tokio::spawn(outbox::run_in_process(stream, adapters.relay.clone())))
        }
        _ => None,
    };
    // The WebSocket endpoint, fed from the realtime queue by the process that runs the
    // workers (a queue has one reader: another instance would take half of the changes).
    let sockets = realtime::socket::LiveSockets {
        hub: Arc::new(LocalHub::new(usize::from(settings.realtime.buffer_messages))),
        log: Arc::new(adapters.live()),
        authenticator: Arc::new(settings.http.authenticator()),
        heartbeat: settings.realtime.heartbeat,
    };
    let feed = match (workers, &settings.realtime.realtime_queue_url) {
        (true, Some(queue)) => {
            let fanout: Arc<dyn Fanout> = sockets.hub.clone();
            let feed = Arc::new(LiveFeed::new(sockets.log.clone(), fanout));
            tracing::info!(queue, "feeding the WebSocket clients from the realtime queue");
            Some(tokio::spawn(feed.run_from_queue(adapters.clients.sqs.clone(), queue.clone())))
        }
        _ => None,
    };
    let router = router.merge(realtime::socket::routes(sockets));
    let listener =
        tokio::net::TcpListener::bind((bind, port)).await.with_context(|| format!("binding {bind} port {port}"))?;
    tracing::info!(address = %listener.local_addr()?, flags = ?settings.flags(), "serving the Brain2 API under /api/v1");
    axum::serve(listener, router).with_graceful_shutdown(shutdown_signal()).await?;
    for task in background.into_iter().chain(relay).chain(feed) {
        task.abort();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(options: &[&str]) -> Settings {
        Settings::from_options(options.iter().copied()).expect("valid settings")
    }

    #[test]
    fn the_development_secret_is_served_on_loopback_only() {
        let development = settings(&[]);
        for loopback in ["127.0.0.1", "::1"] {
            assert!(ensure_safe_to_bind(&development, loopback.parse().unwrap()).is_ok());
        }
        for public in ["0.0.0.0", "::", "192.0.2.10"] {
            let refused = ensure_safe_to_bind(&development, public.parse().unwrap()).unwrap_err();
            assert!(refused.to_string().contains("BRAIN2_JWT_SECRET"), "{refused}");
        }
    }

    #[test]
    fn a_secret_of_its_own_or_the_gateway_authorizer_may_serve_anywhere() {
        let own_secret = settings(&["--jwt-secret", "a-secret-of-this-deployment-a-secret-of-this"]);
        let gateway = settings(&["--auth-mode", "apigateway"]);
        for configured in [own_secret, gateway] {
            assert!(ensure_safe_to_bind(&configured, "0.0.0.0".parse().unwrap()).is_ok());
        }
    }
}
