//! The operator's listener of `brain2 serve`, bound to loopback only, never on the public
//! router: every figure of the `metrics` facade as Prometheus text at `/metrics`, and the
//! full health report (components, their errors, the flags in force) at `/health`, which
//! the public `/health` shows to authenticated callers only.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use brain2::app::health::HealthChecker;
use brain2::flags::Flags;
use brain2::http::dto::HealthDto;
use brain2::http::handlers::health_status;
use brain2::telemetry::metric;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// How often histogram summaries are compacted.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);
pub const METRICS_PATH: &str = "/metrics";
pub const HEALTH_PATH: &str = "/health";

/// Installs the Prometheus recorder as the process's metrics exporter and serves it at
/// `http://<address>/metrics`, with `health`'s full report at `/health`, until the process ends.
pub async fn start(address: SocketAddr, health: Arc<HealthChecker>, flags: Flags) -> anyhow::Result<SocketAddr> {
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
    let router = Router::new()
        .route(METRICS_PATH, get(move || std::future::ready(handle.render())))
        .route(HEALTH_PATH, get(move || full_health(health.clone(), flags)));
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            tracing::error!(%error, "the metrics listener stopped");
        }
    });
    tracing::info!(address = %bound, path = METRICS_PATH, "serving Prometheus metrics");
    Ok(bound)
}

async fn full_health(health: Arc<HealthChecker>, flags: Flags) -> (StatusCode, Json<HealthDto>) {
    let report = health.report().await;
    (health_status(&report), Json(HealthDto::new(&report, &flags)))
}

async fn upkeep(handle: PrometheusHandle) {
    let mut ticks = tokio::time::interval(UPKEEP_INTERVAL);
    loop {
        ticks.tick().await;
        handle.run_upkeep();
    }
}
