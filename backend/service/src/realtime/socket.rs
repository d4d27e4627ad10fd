//! `GET /api/v1/ws` on `brain2 serve`: a WebSocket per client, fed by the [`LocalHub`].
//! The token is checked before the upgrade; then the socket replays what the client missed
//! (`lastEventId`), says `ready`, and forwards the user's changes as they come, several to
//! a frame when they arrive together. Pings find dead clients; a client that falls behind
//! by the hub's capacity, or does not take a frame within [`SEND_TIMEOUT`], is closed.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use super::hub::LocalHub;
use super::protocol::{
    self, ClientMessage, Control, MAX_CLIENT_FRAME_BYTES, SUBPROTOCOL, ServerMessage, frame, read_client_message,
    replay_messages,
};
use crate::domain::UserId;
use crate::domain::live::{LiveChange, Subscription};
use crate::http::API_PREFIX;
use crate::http::auth::Authenticator;
use crate::http::problem::ApiError;
use crate::ports::ChangeLog;
use crate::telemetry::metric;

/// The most messages in one frame.
pub const MAX_FRAME_MESSAGES: usize = 100;
/// A client that has not taken a frame within this is closed: a stuck reader must not
/// hold the server's write.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// What every socket of the process shares.
#[derive(Clone)]
pub struct LiveSockets {
    pub hub: Arc<LocalHub>,
    pub log: Arc<dyn ChangeLog>,
    pub authenticator: Arc<Authenticator>,
    pub heartbeat: Duration,
}

/// The route, to merge into the API's router.
pub fn routes(sockets: LiveSockets) -> Router {
    Router::new().route(&format!("{API_PREFIX}/ws"), get(upgrade)).with_state(sockets)
}

#[derive(Debug, Default, Deserialize)]
struct SocketQuery {
    token: Option<String>,
    #[serde(rename = "lastEventId")]
    last_event_id: Option<uuid::Uuid>,
}

async fn upgrade(
    State(sockets): State<LiveSockets>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let query: SocketQuery = match serde_urlencoded::from_str(query.as_deref().unwrap_or_default()) {
        Ok(query) => query,
        Err(error) => {
            return ApiError::new(StatusCode::BAD_REQUEST, "invalid-query", format!("the query is invalid: {error}"))
                .into_response();
        }
    };
    let protocols = headers.get(header::SEC_WEBSOCKET_PROTOCOL).and_then(|value| value.to_str().ok());
    let user = match protocol::authenticate(&sockets.authenticator, query.token.as_deref(), protocols) {
        Ok(user) => user,
        Err(refused) => return refused.into_response(),
    };
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => {
            return ApiError::new(
                StatusCode::UPGRADE_REQUIRED,
                "websocket-required",
                format!("this endpoint speaks WebSocket only: {rejection}"),
            )
            .into_response();
        }
    };
    upgrade
        .protocols([SUBPROTOCOL])
        .max_message_size(MAX_CLIENT_FRAME_BYTES * 2)
        .on_upgrade(move |socket| session(socket, user, query.last_event_id, sockets))
}

/// Why a session ended early, told to the client in the close frame when it still listens.
enum Ending {
    Gone,
    Lagged(u64),
    Unresponsive,
}

async fn session(socket: WebSocket, user: UserId, last_seen: Option<uuid::Uuid>, sockets: LiveSockets) {
    metric::realtime_connections(1.0);
    let ending = Session::new(socket, sockets.heartbeat).run(&user, last_seen, &sockets).await;
    metric::realtime_connections(-1.0);
    tracing::debug!(user = %user, reason = ending.describe(), "websocket closed");
}

impl Ending {
    fn describe(&self) -> &'static str {
        match self {
            Self::Gone => "client gone",
            Self::Lagged(_) => "client too slow",
            Self::Unresponsive => "no pong",
        }
    }
}

struct Session {
    sink: futures::stream::SplitSink<WebSocket, Message>,
    stream: futures::stream::SplitStream<WebSocket>,
    heartbeat: Duration,
    subscription: Subscription,
}

impl Session {
    fn new(socket: WebSocket, heartbeat: Duration) -> Self {
        let (sink, stream) = socket.split();
        Self { sink, stream, heartbeat, subscription: Subscription::everything() }
    }

    async fn send(&mut self, messages: &[ServerMessage]) -> Result<(), Ending> {
        for chunk in messages.chunks(MAX_FRAME_MESSAGES) {
            let sent = tokio::time::timeout(SEND_TIMEOUT, self.sink.send(Message::text(frame(chunk)))).await;
            if !matches!(sent, Ok(Ok(()))) {
                return Err(Ending::Gone);
            }
        }
        Ok(())
    }

    async fn close(&mut self, code: u16, reason: String) {
        let close = Message::Close(Some(CloseFrame { code, reason: reason.into() }));
        let _ = tokio::time::timeout(SEND_TIMEOUT, self.sink.send(close)).await;
    }

    async fn run(mut self, user: &UserId, last_seen: Option<uuid::Uuid>, sockets: &LiveSockets) -> Ending {
        // Subscribed before the log is read: a change that happens meanwhile is both
        // replayed and received live, and the live copy is dropped, rather than neither.
        let mut changes = sockets.hub.subscribe(user);
        let opening = match last_seen {
            Some(last_seen) => replay_messages(sockets.log.since(user, last_seen).await),
            None => vec![ServerMessage::Control(Control::Ready { replayed: 0 })],
        };
        let replayed: HashSet<uuid::Uuid> = opening
            .iter()
            .filter_map(|message| match message {
                ServerMessage::Change(change) => Some(change.event_id),
                ServerMessage::Control(_) => None,
            })
            .collect();
        let ending = match self.send(&opening).await {
            Ok(()) => self.forward(&mut changes, &replayed, user, sockets).await,
            Err(ending) => ending,
        };
        match ending {
            Ending::Lagged(missed) => {
                let reason = format!("too slow: {missed} changes behind; reconnect with lastEventId to replay");
                self.close(close_code::POLICY, reason).await;
            }
            Ending::Unresponsive => self.close(close_code::AWAY, "no answer to ping".to_owned()).await,
            Ending::Gone => {}
        }
        ending
    }

    async fn forward(
        &mut self,
        changes: &mut tokio::sync::broadcast::Receiver<Arc<LiveChange>>,
        replayed: &HashSet<uuid::Uuid>,
        user: &UserId,
        sockets: &LiveSockets,
    ) -> Ending {
        let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + self.heartbeat, self.heartbeat);
        let mut awaiting_pong = false;
        loop {
            let step = tokio::select! {
                received = changes.recv() => match received {
                    Ok(first) => self.forward_batch(first, changes, replayed).await,
                    Err(RecvError::Lagged(missed)) => Err(Ending::Lagged(missed)),
                    Err(RecvError::Closed) => Err(Ending::Gone),
                },
                incoming = self.stream.next() => match incoming {
                    Some(Ok(message)) => {
                        awaiting_pong = false;
                        self.answer(message, user, sockets).await
                    }
                    Some(Err(_)) | None => Err(Ending::Gone),
                },
                _ = heartbeat.tick() => {
                    if awaiting_pong {
                        Err(Ending::Unresponsive)
                    } else {
                        awaiting_pong = true;
                        let ping = tokio::time::timeout(SEND_TIMEOUT, self.sink.send(Message::Ping(Default::default())));
                        if matches!(ping.await, Ok(Ok(()))) { Ok(()) } else { Err(Ending::Gone) }
                    }
                }
            };
            if let Err(ending) = step {
                return ending;
            }
        }
    }

    /// Sends `first` and whatever else is already waiting, in one frame.
    async fn forward_batch(
        &mut self,
        first: Arc<LiveChange>,
        changes: &mut tokio::sync::broadcast::Receiver<Arc<LiveChange>>,
        replayed: &HashSet<uuid::Uuid>,
    ) -> Result<(), Ending> {
        let mut batch = vec![first];
        while batch.len() < MAX_FRAME_MESSAGES {
            match changes.try_recv() {
                Ok(change) => batch.push(change),
                Err(TryRecvError::Lagged(missed)) => return Err(Ending::Lagged(missed)),
                Err(_) => break,
            }
        }
        let messages: Vec<ServerMessage> = batch
            .into_iter()
            .filter(|change| self.subscription.admits(change) && !replayed.contains(&change.event_id))
            .map(|change| ServerMessage::Change(LiveChange::clone(&change)))
            .collect();
        if messages.is_empty() {
            return Ok(());
        }
        self.send(&messages).await
    }

    async fn answer(&mut self, message: Message, user: &UserId, sockets: &LiveSockets) -> Result<(), Ending> {
        let text = match message {
            Message::Text(text) => text,
            Message::Close(_) => return Err(Ending::Gone),
            // Pings are answered by the socket itself; a pong only proves the client is there.
            Message::Ping(_) | Message::Pong(_) => return Ok(()),
            Message::Binary(_) => {
                let refusal = Control::Error { code: "invalid-message", detail: "send JSON text frames".to_owned() };
                return self.send(&[ServerMessage::Control(refusal)]).await;
            }
        };
        let replies = match read_client_message(text.as_str()) {
            Ok(ClientMessage::Resume { last_event_id }) => {
                replay_messages(sockets.log.since(user, last_event_id).await)
            }
            Ok(message) => {
                let reply = match message.subscription() {
                    Some(subscription) => {
                        self.subscription = subscription;
                        protocol::subscribed(&self.subscription)
                    }
                    None => Control::Pong,
                };
                vec![ServerMessage::Control(reply)]
            }
            Err(refusal) => vec![ServerMessage::Control(refusal)],
        };
        self.send(&replies).await
    }
}
