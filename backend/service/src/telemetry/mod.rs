//! Logs and metrics. Logs: `tracing`, JSON lines in Lambda (CloudWatch Logs Insights
//! parses them), readable text locally. Metrics: the `metrics` facade (see [`metric`]);
//! each binary installs its exporter (CloudWatch EMF in Lambda, Prometheus text in
//! `brain2 serve`), and without one every record is a no-op.

pub mod metric;

use clap::{Args, ValueEnum};
use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt;
use tracing_subscriber::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct LogSettings {
    /// Log line format; always JSON in Lambda.
    #[arg(long, env = "BRAIN2_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log filter: comma-separated `target=level` directives and a default level, e.g.
    /// `info` or `brain2=debug,info`.
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log_filter: String,
}

pub fn running_in_lambda() -> bool {
    std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some()
}

/// Installs the global subscriber.
pub fn init(settings: &LogSettings) {
    let filter: Targets = settings.log_filter.parse().unwrap_or_else(|_| Targets::new().with_default(Level::INFO));
    let json = running_in_lambda() || settings.log_format == LogFormat::Json;
    let registry = tracing_subscriber::registry().with(filter);
    // `try_init` because tests may install a subscriber more than once per process.
    let _ = if json {
        registry.with(fmt::layer().json().flatten_event(true).with_current_span(true).with_span_list(false)).try_init()
    } else {
        registry.with(fmt::layer()).try_init()
    };
}
