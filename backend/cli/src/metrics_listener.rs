//! The Prometheus text endpoint of `brain2 serve`: every figure of the `metrics` facade,
//! on a listener of its own, bound to loopback only, never on the public router.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use axum::routing::get;
use brain2::telemetry::metric;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// How often histogram summaries are compacted.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);
pub const METRICS_PATH: &str = "/metrics";

/// Installs the Prometheus recorder as the process's metrics exporter and serves it at
/// `http://<address>/metrics` until the process ends.
pub async fn start(address: SocketAddr) -> anyhow::Result<SocketAddr> {
    if !address.ip().is_loopback() {
        bail!("the metrics listener serves loopback only; {address} is not a loopback address");
    }
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("binding the metrics listener {address}"))?;
    let bound = listener.local_addr()?;
    let handle = PrometheusBuilder::new().install_recorder().context("installing the Prometheus recorder")?;
    metric::describe();
    tokio::spawn(upkeep(handle.clone()));
    let router = Router::new().route(METRICS_PATH, get(move || std::future::ready(handle.render())));
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            tracing::error!(%error, "the metrics listener stopped");
        }
    });
    tracing::info!(address = %bound, path = METRICS_PATH, "serving Prometheus metrics");
    Ok(bound)
}

async fn upkeep(handle: PrometheusHandle) {
    let mut ticks = tokio::time::interval(UPKEEP_INTERVAL);
    loop {
        ticks.tick().await;
        handle.run_upkeep();
    }
}
