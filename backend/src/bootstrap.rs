//! The composition root: adapters plugged into ports, ready to serve.

use std::sync::Arc;

use crate::adapters::aws::AwsClients;
use crate::adapters::dynamodb::DynamoGraphStore;
use crate::adapters::eventbridge::EventBridgePublisher;
use crate::app::GraphService;
use crate::app::health::HealthChecker;
use crate::config::{AuthSettings, Settings};
use crate::http::AppState;
use crate::http::auth::Authenticator;
use crate::ports::{EventPublisher, GraphStore};

pub fn app_state(settings: &Settings, clients: &AwsClients) -> AppState {
    let store: Arc<dyn GraphStore> = Arc::new(DynamoGraphStore::new(
        clients.dynamodb.clone(),
        settings.table_name.clone(),
    ));
    let events: Arc<dyn EventPublisher> = Arc::new(EventBridgePublisher::new(
        clients.eventbridge.clone(),
        settings.event_bus.clone(),
    ));
    let authenticator = match settings.auth {
        AuthSettings::GatewayAuthorizer => Authenticator::GatewayAuthorizer,
        AuthSettings::SharedSecret { .. } => Authenticator::shared_secret(settings.jwt_secret()),
    };
    AppState {
        service: Arc::new(GraphService::new(store.clone(), events.clone())),
        health: Arc::new(HealthChecker::new(store, events)),
        authenticator: Arc::new(authenticator),
        version_policy: Arc::new(settings.version_policy.clone()),
    }
}
