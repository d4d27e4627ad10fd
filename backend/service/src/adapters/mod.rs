//! Adapters: the ports implemented on AWS services, and the read caches in front of them.

pub mod apigateway;
pub mod aws;
pub mod cache;
pub mod dynamodb;
pub mod eventbridge;
pub mod redis;

use std::time::Duration;

use clap::Args;

use self::aws::network::NetworkSimulation;
use self::redis::SharedCacheSettings;
use crate::config::seconds;

/// Where the adapters find their AWS resources, and how they behave.
#[derive(Debug, Clone, Args)]
pub struct AdapterSettings {
    /// DynamoDB table of the graph.
    #[arg(long, env = "BRAIN2_TABLE", default_value = "brain2")]
    pub table: String,
    /// EventBridge bus the domain events go to.
    #[arg(long, env = "BRAIN2_EVENT_BUS", default_value = "brain2")]
    pub event_bus: String,
    /// SQS queue that receives the events EventBridge would not take after every retry.
    #[arg(long, env = "BRAIN2_EVENTS_DLQ_URL")]
    pub events_dlq_url: Option<String>,
    /// SQS queue of table stream records that could not become events (outbox delivery).
    #[arg(long, env = "BRAIN2_STREAM_FAILURES_QUEUE_URL")]
    pub stream_failures_queue_url: Option<String>,
    /// Longest a cached read may lag behind another instance's write, in seconds.
    #[arg(long = "cache-ttl-seconds", env = "BRAIN2_CACHE_TTL_SECONDS", value_name = "SECONDS", value_parser = seconds, default_value = "60")]
    pub cache_ttl: Duration,
    /// Memory the read caches may hold in all, in MiB (an estimate of the bytes of what they
    /// hold); the least recently used entries go first beyond it.
    #[arg(long = "cache-max-mib", env = "BRAIN2_CACHE_MAX_MIB", value_name = "MIB", default_value_t = 64)]
    pub cache_max_mib: u64,
    #[command(flatten)]
    pub shared_cache: SharedCacheSettings,
    #[command(flatten)]
    pub network: NetworkSimulation,
}
