//! The composition root: adapters plugged into ports, flags applied, ready to serve.

use std::sync::Arc;

use axum::Router;
use axum::response::Response;
use futures::future::BoxFuture;

use crate::adapters::aws::{AwsClients, ClientFactory, with_request_clients};
use crate::adapters::dynamodb::DynamoGraphStore;
use crate::adapters::eventbridge::EventBridgePublisher;
use crate::adapters::eventbridge::background::BackgroundPublisher;
use crate::app::GraphService;
use crate::app::cache::CachedGraphStore;
use crate::app::cleanup::Cleanup;
use crate::app::health::HealthChecker;
use crate::app::similarity::SimilarityWorker;
use crate::config::{AuthSettings, Settings};
use crate::domain::similarity::SimilarityPolicy;
use crate::http::AppState;
use crate::http::auth::Authenticator;
use crate::http::middleware::RequestScope;
use crate::ports::{EventPublisher, GraphStore};
use crate::worker::Worker;

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
}

impl Adapters {
    pub fn cleanup(&self) -> Arc<Cleanup> {
        Arc::new(Cleanup::new(self.store.clone()))
    }

    pub fn similarity(&self) -> Arc<SimilarityWorker> {
        Arc::new(SimilarityWorker::new(self.store.clone(), self.events.clone(), SimilarityPolicy::default()))
    }

    /// The queue-fed workers that have a queue configured, with their queue.
    pub fn workers(&self, settings: &Settings) -> Vec<(Worker, String)> {
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

impl Adapters {
    pub fn new(settings: &Settings, clients: AwsClients) -> Self {
        let flags = &settings.flags;
        let dynamo: Arc<dyn GraphStore> =
            Arc::new(DynamoGraphStore::new(clients.dynamodb.clone(), settings.table_name.clone(), *flags));
        let store = CachedGraphStore::wrap(dynamo, flags, settings.cache_ttl);
        let sender = EventBridgePublisher::new(
            clients.eventbridge.clone(),
            clients.sqs.clone(),
            settings.event_bus.clone(),
            settings.events_dlq_url.clone(),
            flags.async_events,
        );
        // Off: one inline PutEvents per event before the response, as the old backend did.
        let events: Arc<dyn EventPublisher> =
            if flags.async_events { Arc::new(BackgroundPublisher::start(sender)) } else { Arc::new(sender) };
        Self { clients, store, events }
    }
}

pub fn app_state(settings: &Settings, adapters: &Adapters, factory: &ClientFactory) -> AppState {
    let authenticator = match settings.auth {
        AuthSettings::GatewayAuthorizer => Authenticator::GatewayAuthorizer,
        AuthSettings::SharedSecret { .. } => Authenticator::shared_secret(settings.jwt_secret()),
    };
    let request_scope: Option<Arc<dyn RequestScope>> =
        if settings.flags.client_reuse { None } else { Some(Arc::new(FreshClientsPerRequest(factory.clone()))) };
    AppState {
        service: Arc::new(GraphService::new(
            adapters.store.clone(),
            adapters.events.clone(),
            settings.flags.soft_delete,
        )),
        health: Arc::new(HealthChecker::new(adapters.store.clone(), adapters.events.clone())),
        authenticator: Arc::new(authenticator),
        version_policy: Arc::new(settings.version_policy.clone()),
        flags: settings.flags,
        expose_costs: settings.expose_costs,
        emf_metrics: settings.emf_metrics,
        request_scope,
    }
}

/// Builds the process's clients once and returns the router and the adapters behind it.
pub async fn build(settings: &Settings, factory: &ClientFactory) -> (Router, Adapters) {
    let adapters = Adapters::new(settings, factory.build().await);
    let router = crate::http::router(app_state(settings, &adapters, factory));
    (router, adapters)
}
