//! Logs and metrics. Logs: `tracing`, JSON lines in Lambda (CloudWatch Logs Insights
//! parses them), readable text locally. Metrics: the `metrics` facade (see [`metric`]);
//! each binary installs its exporter (CloudWatch EMF in Lambda, Prometheus text in
//! `brain2 serve`), and without one every record is a no-op.

pub mod metric;

use clap::{Args, ValueEnum};
use tracing_subscriber::EnvFilter;

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
    /// Log filter in `tracing` directives, e.g. `info` or `brain2=debug,info`.
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log_filter: String,
}

pub fn running_in_lambda() -> bool {
    std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some()
}

/// Installs the global subscriber.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_new(&settings.log_filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let json = running_in_lambda() || settings.log_format == LogFormat::Json;
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    // `try_init` because tests may install a subscriber more than once per process.
    let _ = if json {
        builder.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init()
    } else {
        builder.try_init()
    };
}
