//! Real-time updates in AWS: API Gateway holds the WebSockets. Its routes (`$connect`,
//! `$disconnect`, `$default`) land in [`WebSocketRoutes`], which keeps each user's
//! connections in the table; the broadcaster fans changes out to them with
//! [`ConnectionFanout`] through the management API, forgetting those that are gone.

use std::sync::Arc;

use async_trait::async_trait;
use futures::future::join_all;

use super::protocol::{
    self, ClientMessage, Control, ServerMessage, change_frame, frame, read_client_message, replay_messages,
};
use crate::app::service::ServiceError;
use crate::domain::UserId;
use crate::domain::live::LiveChange;
use crate::http::auth::Authenticator;
use crate::http::problem::ApiError;
use crate::ports::{ChangeLog, ConnectionPoster, ConnectionRegistry, Fanout, PostError, StoreError};
use crate::telemetry::metric::{self, PostOutcome};

/// API Gateway sends a WebSocket message of 128 KB at most; a longer replay is a reload.
pub const MAX_GATEWAY_FRAME_BYTES: usize = 128 * 1024;

pub struct ConnectionFanout {
    registry: Arc<dyn ConnectionRegistry>,
    poster: Arc<dyn ConnectionPoster>,
}

impl ConnectionFanout {
    pub fn new(registry: Arc<dyn ConnectionRegistry>, poster: Arc<dyn ConnectionPoster>) -> Self {
        Self { registry, poster }
    }
}

#[async_trait]
impl Fanout for ConnectionFanout {
    /// One frame per connection with the changes its subscription admits, posted to all
    /// connections at once. A connection that is gone is forgotten; a failed post is
    /// counted (the alarm on `failed` watches it) and the client replays when it reconnects.
    async fn deliver(&self, user: &UserId, changes: &[LiveChange]) {
        let connections = match self.registry.of_user(user).await {
            Ok(connections) => connections,
            Err(error) => {
                tracing::warn!(%error, "the user's connections could not be read");
                metric::realtime_posts(PostOutcome::Failed, 1);
                return;
            }
        };
        let posts = connections.iter().filter_map(|connection| {
            let admitted: Vec<&LiveChange> =
                changes.iter().filter(|change| connection.subscription.admits(change)).collect();
            (!admitted.is_empty())
                .then_some(async move { (connection, self.poster.post(&connection.id, &change_frame(admitted)).await) })
        });
        for (connection, posted) in join_all(posts).await {
            match posted {
                Ok(()) => metric::realtime_posts(PostOutcome::Delivered, 1),
                Err(PostError::Gone) => {
                    metric::realtime_posts(PostOutcome::Gone, 1);
                    if let Err(error) = self.registry.unregister(&connection.id).await {
                        tracing::warn!(%error, connection = connection.id, "a gone connection was not forgotten");
                    }
                }
                Err(PostError::Failed(error)) => {
                    metric::realtime_posts(PostOutcome::Failed, 1);
                    tracing::warn!(%error, connection = connection.id, "posting to a connection failed");
                }
            }
        }
    }
}

/// What the WebSocket API's routes do.
pub struct WebSocketRoutes {
    registry: Arc<dyn ConnectionRegistry>,
    log: Arc<dyn ChangeLog>,
    authenticator: Arc<Authenticator>,
}

impl WebSocketRoutes {
    pub fn new(
        registry: Arc<dyn ConnectionRegistry>,
        log: Arc<dyn ChangeLog>,
        authenticator: Arc<Authenticator>,
    ) -> Self {
        Self { registry, log, authenticator }
    }

    /// `$connect`: the token checked, the connection registered under its user. A refusal
    /// is answered before the upgrade, so the client never gets a socket.
    pub async fn connect(
        &self,
        connection_id: &str,
        query_token: Option<&str>,
        protocols: Option<&str>,
    ) -> Result<UserId, ApiError> {
        let user = protocol::authenticate(&self.authenticator, query_token, protocols)?;
        self.registry
            .register(&user, connection_id)
            .await
            .map_err(|error| ApiError::from(ServiceError::from(error)))?;
        Ok(user)
    }

    /// `$disconnect`: the connection forgotten.
    pub async fn disconnect(&self, connection_id: &str) -> Result<(), StoreError> {
        self.registry.unregister(connection_id).await.map(|_| ())
    }

    /// `$default`: a client message, answered with the frame to send back.
    pub async fn message(&self, connection_id: &str, body: &str) -> Result<String, StoreError> {
        let message = match read_client_message(body) {
            Ok(message) => message,
            Err(refusal) => return Ok(frame(&[ServerMessage::Control(refusal)])),
        };
        if let ClientMessage::Ping = message {
            return Ok(frame(&[ServerMessage::Control(Control::Pong)]));
        }
        let Some(user) = self.registry.owner(connection_id).await? else {
            let unknown = Control::Error { code: "unknown-connection", detail: "reconnect".to_owned() };
            return Ok(frame(&[ServerMessage::Control(unknown)]));
        };
        if let ClientMessage::Resume { last_event_id } = message {
            let replay = frame(&replay_messages(self.log.since(&user, last_event_id).await));
            if replay.len() <= MAX_GATEWAY_FRAME_BYTES {
                return Ok(replay);
            }
            return Ok(frame(&protocol::reload("more changes were missed than one message holds")));
        }
        let subscription = message.subscription().unwrap_or_default();
        self.registry.subscribe(&user, connection_id, &subscription).await?;
        Ok(frame(&[ServerMessage::Control(protocol::subscribed(&subscription))]))
    }
}
