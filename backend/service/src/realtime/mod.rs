//! Real-time graph updates (docs/realtime.md): each domain event, read from the bus's
//! realtime queue, is logged for replay and fanned out to the user's WebSocket clients;
//! locally by `brain2 serve` itself ([`socket`] on [`hub`]), in AWS by API Gateway's
//! WebSocket API ([`gateway`]).

pub mod feed;
pub mod gateway;
pub mod hub;
pub mod protocol;
pub mod socket;

use std::time::Duration;

use clap::Args;

use crate::config::seconds;

/// Where real-time updates come from and go to, and the limits of a local socket.
#[derive(Debug, Clone, Args)]
pub struct RealtimeSettings {
    /// SQS queue of every domain event, read by `brain2 serve --workers` to feed its
    /// WebSocket clients (the broadcaster function's queue in AWS).
    #[arg(long, env = "BRAIN2_REALTIME_QUEUE_URL")]
    pub realtime_queue_url: Option<String>,
    /// The WebSocket API stage the broadcaster posts to through the management API
    /// (`https://<api id>.execute-api.<region>.amazonaws.com/<stage>`).
    #[arg(long, env = "BRAIN2_REALTIME_ENDPOINT")]
    pub realtime_endpoint: Option<String>,
    /// Seconds between pings on a local WebSocket; a client that has not answered the
    /// previous one by the next is closed.
    #[arg(long = "ws-heartbeat-seconds", env = "BRAIN2_WS_HEARTBEAT_SECONDS", value_name = "SECONDS", value_parser = heartbeat, default_value = "30")]
    pub heartbeat: Duration,
    /// Changes a local WebSocket client may fall behind by; beyond it the server closes
    /// the socket (code 1008) and the client reconnects with its last event id to replay.
    #[arg(long = "ws-buffer-messages", env = "BRAIN2_WS_BUFFER_MESSAGES", value_name = "N", value_parser = clap::value_parser!(u16).range(1..), default_value_t = 256)]
    pub buffer_messages: u16,
}

fn heartbeat(raw: &str) -> Result<Duration, String> {
    seconds(raw).and_then(|period| {
        if period.is_zero() { Err("the heartbeat period must be at least one second".to_owned()) } else { Ok(period) }
    })
}
