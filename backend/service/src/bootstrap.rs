//! The composition root: the settings of every layer gathered, adapters plugged into
//! ports, flags applied, ready to serve.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::response::Response;
use clap::{Args, Parser};
use futures::future::BoxFuture;
use thiserror::Error;

use crate::adapters::AdapterSettings;
use crate::adapters::aws::{AwsClients, ClientFactory, with_request_clients};
use crate::adapters::cache::CachedGraphStore;
use crate::adapters::dynamodb::DynamoGraphStore;
use crate::adapters::dynamodb::live::DynamoLive;
use crate::adapters::dynamodb::stream_reader::TableStream;
use crate::adapters::eventbridge::EventBridgePublisher;
use crate::adapters::eventbridge::background::BackgroundPublisher;
use crate::adapters::redis::RedisCache;
use crate::app::GraphService;
use crate::app::cleanup::Cleanup;
use crate::app::health::HealthChecker;
use crate::app::similarity::SimilarityWorker;
use crate::domain::similarity::SimilarityPolicy;
use crate::flags::{EventDelivery, FlagSettings, Flags};
use crate::http::AppState;
use crate::http::auth::DEVELOPMENT_SECRET;
use crate::http::middleware::RequestScope;
use crate::http::settings::{AuthMode, HttpSettings};
use crate::outbox::{Relay, TableOutbox};
use crate::ports::{EventPublisher, GraphStore, SharedCache, StoreError};
use crate::realtime::RealtimeSettings;
use crate::telemetry::LogSettings;
use crate::worker::{Worker, WorkerSettings};

/// Shortest shared secret accepted in Lambda: HS256 wants at least 256 bits of key.
const MIN_PRODUCTION_SECRET_BYTES: usize = 32;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error(transparent)]
    Invalid(#[from] clap::Error),
    #[error(
        "refusing to start: BRAIN2_JWT_SECRET is missing, the development default, or shorter than \
         {MIN_PRODUCTION_SECRET_BYTES} bytes; set a strong secret or BRAIN2_AUTH_MODE=apigateway \
         to trust an API Gateway JWT/Cognito authorizer"
    )]
    UnsafeSecret,
    #[error(
        "refusing to start: BRAIN2_SIM_RTT_MS, BRAIN2_SIM_RTT_JITTER_MS, BRAIN2_SIM_CACHE_RTT_MS and BRAIN2_FAULTS are \
         for local measurement only"
    )]
    SimulationInProduction,
}

/// Every setting of the process, each declared once by the layer it belongs to, with its
/// environment variable, default and help text (`brain2 serve --help` lists them all).
#[derive(Debug, Clone, Args)]
pub struct Settings {
    #[command(flatten)]
    pub flags: FlagSettings,
    #[command(flatten)]
    pub adapters: AdapterSettings,
    #[command(flatten)]
    pub http: HttpSettings,
    #[command(flatten)]
    pub workers: WorkerSettings,
    #[command(flatten)]
    pub realtime: RealtimeSettings,
    #[command(flatten)]
    pub logs: LogSettings,
}

/// The settings alone, without a command around them (the Lambda functions, in-process
/// servers, tests).
/// A setting given twice takes its last value, so that callers can override defaults
/// they were handed.
#[derive(Parser)]
#[command(args_override_self = true)]
struct EnvironmentOnly {
    #[command(flatten)]
    settings: Settings,
}

impl Settings {
    /// From the environment and the defaults.
    pub fn from_env() -> Result<Self, ConfigError> {
        let program = std::env::args().next().unwrap_or_else(|| "brain2".to_owned());
        Ok(EnvironmentOnly::try_parse_from([program])?.settings)
    }

    /// From command-line options (`--table=t`, without the program name), then the
    /// environment and the defaults, as `brain2 serve` would parse them: for servers built
    /// in-process and for tests.
    pub fn from_options<I, T>(options: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let program = std::iter::once(std::ffi::OsString::from("brain2"));
        Ok(EnvironmentOnly::try_parse_from(program.chain(options.into_iter().map(Into::into)))?.settings)
    }

    /// The optimisation flags in force.
    pub fn flags(&self) -> Flags {
        self.flags.resolve()
    }

    /// A deployed function must not accept tokens anyone can sign with a published secret,
    /// nor slow itself down or break itself on purpose.
    pub fn ensure_safe_for_production(&self) -> Result<(), ConfigError> {
        if self.adapters.network.is_active() {
            return Err(ConfigError::SimulationInProduction);
        }
        match (self.http.auth_mode, self.http.jwt_secret.as_deref()) {
            (AuthMode::Apigateway, _) => Ok(()),
            (AuthMode::Jwt, Some(secret))
                if secret != DEVELOPMENT_SECRET && secret.len() >= MIN_PRODUCTION_SECRET_BYTES =>
            {
                Ok(())
            }
            (AuthMode::Jwt, _) => Err(ConfigError::UnsafeSecret),
        }
    }
}

/// With `client_reuse` off: a fresh SDK configuration and fresh clients for every request,
/// as the old backend built them.
struct FreshClientsPerRequest(ClientFactory);

impl RequestScope for FreshClientsPerRequest {
    fn run(&self, work: BoxFuture<'static, Response>) -> BoxFuture<'static, Response> {
        let factory = self.0.clone();
        Box::pin(async move {
            let clients = factory.build().await;
            with_request_clients(clients, work).await
        })
    }
}

/// The adapters of the process, shared by the API and the background workers.
#[derive(Clone)]
pub struct Adapters {
    pub clients: AwsClients,
    pub store: Arc<dyn GraphStore>,
    pub events: Arc<dyn EventPublisher>,
    /// One checker, so the public `/health` and the loopback listener share its cached report.
    pub health: Arc<HealthChecker>,
    /// Publishes the table's stream as events (`outbox` delivery).
    pub relay: Arc<Relay>,
    pub table: String,
    pub event_delivery: EventDelivery,
}

impl Adapters {
    pub fn cleanup(&self) -> Arc<Cleanup> {
        Arc::new(Cleanup::new(self.store.clone()))
    }

    pub fn similarity(&self) -> Arc<SimilarityWorker> {
        Arc::new(SimilarityWorker::new(self.store.clone(), self.events.clone(), SimilarityPolicy::default()))
    }

    /// The table's stream, positioned where the last relay on this table stopped.
    pub async fn table_stream(&self) -> Result<TableStream, StoreError> {
        TableStream::open(self.clients.clone(), &self.table).await
    }

    /// The change log and the WebSocket connections, on the service's table.
    pub fn live(&self) -> DynamoLive {
        DynamoLive::new(self.clients.dynamodb.clone(), self.table.clone())
    }

    /// The queue-fed workers that have a queue configured, with their queue.
    pub fn workers(&self, settings: &WorkerSettings) -> Vec<(Worker, String)> {
        let mut workers = Vec::new();
        if let Some(queue) = &settings.cleanup_queue_url {
            workers.push((Worker::Cleanup(self.cleanup()), queue.clone()));
        }
        if let Some(queue) = &settings.similarity_queue_url {
            workers.push((Worker::Similarity(self.similarity()), queue.clone()));
        }
        workers
    }
}

/// The shared cache tier: with the flag on and an endpoint configured. An endpoint that
/// does not parse is logged and left out; the cache saves work, it is no reason not to serve.
fn shared_cache(settings: &Settings, flags: &Flags) -> Option<Arc<dyn SharedCache>> {
    let aws = &settings.adapters;
    let url = aws.shared_cache.cache_url.as_deref().filter(|_| flags.shared_cache && flags.read_cache)?;
    match RedisCache::new(url, &aws.shared_cache, aws.cache_ttl, aws.network.cache_round_trip) {
        Ok(cache) => Some(Arc::new(cache)),
        Err(error) => {
            tracing::error!(%error, "the shared cache is left out");
            None
        }
    }
}

impl Adapters {
    pub fn new(settings: &Settings, clients: AwsClients) -> Self {
        let flags = settings.flags();
        let aws = &settings.adapters;
        let dynamo: Arc<dyn GraphStore> =
            Arc::new(DynamoGraphStore::new(clients.dynamodb.clone(), aws.table.clone(), flags));
        let shared = shared_cache(settings, &flags);
        let max_bytes = aws.cache_max_mib.saturating_mul(1024 * 1024);
        let store = CachedGraphStore::wrap(dynamo, &flags, aws.cache_ttl, max_bytes, shared.clone());
        let publisher = |batched| {
            EventBridgePublisher::new(
                clients.eventbridge.clone(),
                clients.sqs.clone(),
                aws.event_bus.clone(),
                aws.events_dlq_url.clone(),
                batched,
            )
        };
        let events: Arc<dyn EventPublisher> = match flags.event_delivery {
            // One PutEvents per event before the response, as the old backend did.
            EventDelivery::Inline => Arc::new(publisher(false)),
            EventDelivery::Background => Arc::new(BackgroundPublisher::start(publisher(true))),
            EventDelivery::Outbox => Arc::new(TableOutbox),
        };
        let relay = Arc::new(Relay::new(publisher(true), clients.sqs.clone(), aws.stream_failures_queue_url.clone()));
        let health_ttl = Duration::from_secs(settings.http.health_report_seconds);
        let health = Arc::new(HealthChecker::new(store.clone(), events.clone(), shared, health_ttl));
        Self { clients, store, events, health, relay, table: aws.table.clone(), event_delivery: flags.event_delivery }
    }
}

pub fn app_state(settings: &Settings, adapters: &Adapters, factory: &ClientFactory) -> AppState {
    let flags = settings.flags();
    let request_scope: Option<Arc<dyn RequestScope>> =
        if flags.client_reuse { None } else { Some(Arc::new(FreshClientsPerRequest(factory.clone()))) };
    AppState {
        service: Arc::new(GraphService::new(adapters.store.clone(), adapters.events.clone(), flags.soft_delete)),
        health: adapters.health.clone(),
        authenticator: Arc::new(settings.http.authenticator()),
        cursors: Arc::new(settings.http.cursor_key()),
        version_policy: Arc::new(settings.http.version_policy()),
        flags,
        expose_costs: settings.http.expose_costs,
        request_scope,
        overload: Arc::new(settings.http.overload()),
    }
}

/// Builds the process's clients once and returns the router and the adapters behind it.
pub async fn build(settings: &Settings, factory: &ClientFactory) -> (Router, Adapters) {
    let adapters = Adapters::new(settings, factory.build().await);
    let router = crate::http::router(app_state(settings, &adapters, factory));
    (router, adapters)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn settings(args: &[&str]) -> Result<Settings, ConfigError> {
        Settings::from_options(args)
    }

    #[test]
    fn defaults() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.adapters.table, "brain2");
        assert_eq!(s.adapters.event_bus, "brain2");
        assert_eq!(s.adapters.cache_ttl, Duration::from_secs(60));
        assert_eq!(s.workers.cleanup_grace, Duration::from_secs(300));
        assert_eq!(s.http.jwt_secret(), DEVELOPMENT_SECRET);
        assert!(!s.http.expose_costs);
        assert_eq!(s.flags(), Flags::OPTIMIZED);
        assert_eq!(s.http.request_deadline, Duration::from_secs(20));
        assert_eq!(s.adapters.cache_max_mib, 64);
        let limit = s.http.rate_limit().expect("the rate limit is on by default");
        assert_eq!((limit.per_second.get(), limit.burst.get()), (50, 100));
        assert_eq!(settings(&["--rate-limit-per-second=0"]).unwrap().http.rate_limit(), None);
        assert!(settings(&["--request-deadline-ms=0"]).is_err());
    }

    #[test]
    fn production_refuses_missing_default_or_short_secret() {
        assert!(settings(&[]).unwrap().ensure_safe_for_production().is_err());
        let default = settings(&["--jwt-secret", DEVELOPMENT_SECRET]).unwrap();
        assert!(default.ensure_safe_for_production().is_err());
        assert!(settings(&["--jwt-secret", "short"]).unwrap().ensure_safe_for_production().is_err());
        let strong = "s".repeat(MIN_PRODUCTION_SECRET_BYTES);
        assert!(settings(&["--jwt-secret", &strong]).unwrap().ensure_safe_for_production().is_ok());
        let gateway = settings(&["--auth-mode", "apigateway"]).unwrap();
        assert!(gateway.ensure_safe_for_production().is_ok());
    }

    #[test]
    fn simulation_settings_and_refusal_in_production() {
        let strong = "s".repeat(MIN_PRODUCTION_SECRET_BYTES);
        let s = settings(&["--jwt-secret", &strong, "--sim-rtt-ms", "5", "--faults", "throttle=0.1"]).unwrap();
        assert_eq!(s.adapters.network.round_trip, Duration::from_millis(5));
        assert_eq!(s.adapters.network.faults.as_ref().unwrap().throttle, 0.1);
        assert!(matches!(s.ensure_safe_for_production(), Err(ConfigError::SimulationInProduction)));
        let cache_only = settings(&["--jwt-secret", &strong, "--sim-cache-rtt-ms", "1"]).unwrap();
        assert_eq!(cache_only.adapters.network.cache_round_trip, Duration::from_millis(1));
        assert!(!cache_only.adapters.network.affects_aws());
        assert!(matches!(cache_only.ensure_safe_for_production(), Err(ConfigError::SimulationInProduction)));
        assert!(settings(&["--faults", "throttle=9"]).is_err());
        assert!(settings(&["--sim-rtt-ms", "fast"]).is_err());
        assert!(settings(&["--expose-costs", "1"]).unwrap().http.expose_costs);
        assert_eq!(settings(&["--profile", "baseline"]).unwrap().flags(), Flags::BASELINE);
    }

    #[test]
    fn rejects_unknown_auth_mode_and_bad_dates() {
        assert!(settings(&["--auth-mode", "none"]).is_err());
        assert!(settings(&["--api-v1-sunset-at", "tomorrow"]).is_err());
        let s = settings(&["--api-v1-sunset-at", "2027-01-01T00:00:00Z"]).unwrap();
        assert!(s.http.version_policy().sunset_at.is_some());
    }

    #[test]
    fn every_setting_has_an_environment_variable_and_help() {
        use clap::CommandFactory;
        let command = EnvironmentOnly::command();
        for argument in command.get_arguments().filter(|a| !matches!(a.get_id().as_str(), "help" | "version")) {
            let id = argument.get_id();
            let env = argument.get_env().unwrap_or_else(|| panic!("{id} has no environment variable"));
            assert!(env.to_string_lossy().starts_with("BRAIN2_") || env == "RUST_LOG", "{id}: {env:?}");
            assert!(argument.get_help().is_some(), "{id} has no help text");
        }
    }
}
