//! What travels over a Brain2 WebSocket (docs/realtime.md). Every frame the server sends
//! is a JSON array of messages: changes as they were logged (`LiveChange`) and the few
//! control messages below. A client sends one JSON object per frame: `subscribe` or `ping`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::domain::live::{EdgeEnds, LiveChange, LiveEvent, Subject, Subscription};
use axum::http::StatusCode;

use crate::domain::{NodeId, UserId};
use crate::http::auth::Authenticator;
use crate::http::problem::ApiError;
use crate::ports::{Replay, StoreError};
use crate::worker::{UnrecognisedMessage, field};

/// The detail types a client is told of.
pub const CHANGE_TYPES: [&str; 5] = ["node.created", "node.updated", "node.deleted", "edge.created", "edge.deleted"];
/// The `detail` fields that say whose and which change it is; the rest is the change's `data`.
const IDENTITY_FIELDS: [&str; 6] = ["eventId", "userId", "aggregateId", "targetId", "version", "occurredAt"];
/// Client frames larger than this are refused unread.
pub const MAX_CLIENT_FRAME_BYTES: usize = 64 * 1024;

fn unrecognised(error: impl std::fmt::Display) -> UnrecognisedMessage {
    UnrecognisedMessage(error.to_string())
}

/// Reads an EventBridge envelope (as a queue delivers it) as the change a client sees.
pub fn live_event_from_bus(body: &str) -> Result<LiveEvent, UnrecognisedMessage> {
    let envelope: Value = serde_json::from_str(body).map_err(unrecognised)?;
    let kind = envelope["detail-type"].as_str().filter(|kind| CHANGE_TYPES.contains(kind));
    let kind = kind.ok_or_else(|| unrecognised(format!("detail-type {:?}", envelope["detail-type"])))?;
    let detail = &envelope["detail"];
    let event_id = uuid::Uuid::parse_str(field(detail, "eventId")?).map_err(unrecognised)?;
    let user_id = UserId::parse(field(detail, "userId")?).map_err(unrecognised)?;
    let aggregate = NodeId::parse(field(detail, "aggregateId")?).map_err(unrecognised)?;
    let subject = if kind.starts_with("edge.") {
        let target = NodeId::parse(field(detail, "targetId")?).map_err(unrecognised)?;
        Subject::Edge { edge: EdgeEnds { source: aggregate, target } }
    } else {
        Subject::Node { node_id: aggregate }
    };
    let version = detail["version"].as_u64().ok_or_else(|| unrecognised("no version"))?;
    let at = chrono::DateTime::parse_from_rfc3339(field(detail, "occurredAt")?).map_err(unrecognised)?.to_utc();
    let data: Map<String, Value> = detail
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(name, _)| !IDENTITY_FIELDS.contains(&name.as_str()))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect();
    let change = LiveChange { kind: kind.to_owned(), event_id, subject, version, at, data: Value::Object(data) };
    Ok(LiveEvent { user_id, change })
}

/// A message of the server that is not a change.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Control {
    /// Sent once, after the replay (if any): from here on, changes arrive as they happen.
    Ready {
        replayed: usize,
    },
    /// The last event id the client gave is no longer in the log: reload the graph.
    Reload {
        reason: String,
    },
    /// The answer to `subscribe`: the node ids it now narrows to, `null` for everything.
    Subscribed {
        #[serde(rename = "nodeIds")]
        node_ids: Option<Vec<NodeId>>,
    },
    Pong,
    /// A client message the server could not act on; the connection stays open.
    Error {
        code: &'static str,
        detail: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ServerMessage {
    Change(LiveChange),
    Control(Control),
}

/// One WebSocket frame: the messages as a JSON array.
pub fn frame<'a>(messages: impl IntoIterator<Item = &'a ServerMessage>) -> String {
    let messages: Vec<&ServerMessage> = messages.into_iter().collect();
    serde_json::to_string(&messages).unwrap_or_else(|_| "[]".to_owned())
}

/// A frame of changes alone.
pub fn change_frame<'a>(changes: impl IntoIterator<Item = &'a LiveChange>) -> String {
    frame(&changes.into_iter().cloned().map(ServerMessage::Change).collect::<Vec<_>>())
}

/// What a client may send.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum ClientMessage {
    /// Narrow the changes to those touching these nodes; without `nodeIds` (or `null`),
    /// every change of the user again.
    Subscribe {
        #[serde(default, rename = "nodeIds")]
        node_ids: Option<Vec<NodeId>>,
    },
    /// Keeps a connection that API Gateway would close after ten idle minutes open.
    Ping,
    /// Send what was missed since this event (the `lastEventId` query parameter does the
    /// same when connecting to `brain2 serve`).
    Resume {
        #[serde(rename = "lastEventId")]
        last_event_id: uuid::Uuid,
    },
}

impl ClientMessage {
    pub fn subscription(&self) -> Option<Subscription> {
        match self {
            Self::Subscribe { node_ids: Some(nodes) } => Some(Subscription::nodes(nodes.iter().copied())),
            Self::Subscribe { node_ids: None } => Some(Subscription::everything()),
            Self::Ping | Self::Resume { .. } => None,
        }
    }
}

/// The answer to a `subscribe` once it is in force.
pub fn subscribed(subscription: &Subscription) -> Control {
    Control::Subscribed { node_ids: subscription.node_ids().map(|nodes| nodes.iter().copied().collect()) }
}

/// What a resuming client is sent: the changes it missed, or the advice to reload; then
/// `ready`.
pub fn replay_messages(replay: Result<Replay, StoreError>) -> Vec<ServerMessage> {
    let (mut messages, replayed): (Vec<ServerMessage>, usize) = match replay {
        Ok(Replay::Missed(changes)) => {
            let count = changes.len();
            (changes.into_iter().map(ServerMessage::Change).collect(), count)
        }
        Ok(Replay::Lost) => return reload("the last event id is older than the change log keeps, or unknown"),
        Err(error) => {
            tracing::warn!(%error, "the change log could not be read for a replay");
            return reload("the change log could not be read");
        }
    };
    messages.push(ServerMessage::Control(Control::Ready { replayed }));
    messages
}

/// The answer to a client that cannot be given a replay: `reload`, then `ready`.
pub fn reload(reason: &str) -> Vec<ServerMessage> {
    vec![
        ServerMessage::Control(Control::Reload { reason: reason.to_owned() }),
        ServerMessage::Control(Control::Ready { replayed: 0 }),
    ]
}

/// The subprotocol a client may offer alongside its token (`Sec-WebSocket-Protocol:
/// brain2, bearer.<token>`); the server selects it, as browsers require.
pub const SUBPROTOCOL: &str = "brain2";
const BEARER_PROTOCOL_PREFIX: &str = "bearer.";

/// The token a client offered: the `token` query parameter, else a `bearer.<token>` entry
/// of its `Sec-WebSocket-Protocol` header.
pub fn offered_token<'a>(query_token: Option<&'a str>, protocols: Option<&'a str>) -> Option<&'a str> {
    query_token.filter(|token| !token.is_empty()).or_else(|| {
        protocols?.split(',').map(str::trim).find_map(|protocol| protocol.strip_prefix(BEARER_PROTOCOL_PREFIX))
    })
}

/// The user of the token a client offered, or the 401 refusal answered before the upgrade.
pub fn authenticate(
    authenticator: &Authenticator,
    query_token: Option<&str>,
    protocols: Option<&str>,
) -> Result<UserId, ApiError> {
    let token = offered_token(query_token, protocols).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing-token",
            "send the token as ?token=<token> (or the subprotocol bearer.<token>)",
        )
    })?;
    authenticator.verify_token(token)
}

/// Reads a client frame, or says why it cannot be acted on.
pub fn read_client_message(text: &str) -> Result<ClientMessage, Control> {
    if text.len() > MAX_CLIENT_FRAME_BYTES {
        return Err(Control::Error {
            code: "message-too-large",
            detail: format!("a message may have {MAX_CLIENT_FRAME_BYTES} bytes at most"),
        });
    }
    let message: ClientMessage = serde_json::from_str(text).map_err(|error| Control::Error {
        code: "invalid-message",
        detail: format!(
            "expected {{\"type\":\"subscribe\",\"nodeIds\":[...]}}, {{\"type\":\"ping\"}} or \
             {{\"type\":\"resume\",\"lastEventId\":\"...\"}}: {error}"
        ),
    })?;
    if let ClientMessage::Subscribe { node_ids: Some(nodes) } = &message
        && nodes.len() > Subscription::MAX_NODES
    {
        return Err(Control::Error {
            code: "too-many-nodes",
            detail: format!(
                "a subscription names {} node ids at most; omit nodeIds to take all",
                Subscription::MAX_NODES
            ),
        });
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn envelope(kind: &str, detail: Value) -> String {
        json!({"detail-type": kind, "source": "brain2.backend", "detail": detail}).to_string()
    }

    #[test]
    fn bus_events_become_the_changes_clients_see() {
        let (node, other, event_id) = (NodeId::generate(), NodeId::generate(), uuid::Uuid::now_v7());
        let updated = envelope(
            "node.updated",
            json!({"eventId": event_id.to_string(), "userId": "alice", "aggregateId": node.to_string(), "version": 3,
                   "occurredAt": "2026-11-24T10:00:00.123Z", "keywords": ["river"], "previousKeywords": ["lake"]}),
        );
        let event = live_event_from_bus(&updated).unwrap();
        assert_eq!(event.user_id.as_str(), "alice");
        let wire = serde_json::to_value(&event.change).unwrap();
        assert_eq!(
            wire,
            json!({"type": "node.updated", "eventId": event_id.to_string(), "nodeId": node.to_string(), "version": 3,
                   "at": "2026-11-24T10:00:00.123Z", "data": {"keywords": ["river"], "previousKeywords": ["lake"]}})
        );
        let linked = envelope(
            "edge.created",
            json!({"eventId": event_id.to_string(), "userId": "alice", "aggregateId": node.to_string(), "version": 1,
                   "occurredAt": "2026-11-24T10:00:00Z", "targetId": other.to_string(), "weight": 0.5, "kind": "similarity"}),
        );
        let wire = serde_json::to_value(live_event_from_bus(&linked).unwrap().change).unwrap();
        assert_eq!(wire["edge"], json!({"source": node.to_string(), "target": other.to_string()}));
        assert_eq!(wire["data"], json!({"weight": 0.5, "kind": "similarity"}));
    }

    #[test]
    fn other_bus_messages_are_not_changes() {
        assert!(live_event_from_bus("not json").is_err());
        assert!(live_event_from_bus(&envelope("node.created", json!({"userId": "alice"}))).is_err());
        assert!(live_event_from_bus(&envelope("report.ready", json!({}))).is_err());
    }

    #[test]
    fn the_token_comes_from_the_query_or_the_offered_subprotocols() {
        assert_eq!(offered_token(Some("abc"), Some("brain2, bearer.xyz")), Some("abc"));
        assert_eq!(offered_token(None, Some("brain2, bearer.xyz")), Some("xyz"));
        assert_eq!(offered_token(Some(""), Some("brain2")), None);
        assert_eq!(offered_token(None, None), None);
    }

    #[test]
    fn a_replay_is_the_missed_changes_or_a_reload_then_ready() {
        let lost: Value = serde_json::from_str(&frame(&replay_messages(Ok(Replay::Lost)))).unwrap();
        assert_eq!(lost[0]["type"], "reload");
        assert_eq!(lost[1], json!({"type": "ready", "replayed": 0}));
        let failed = replay_messages(Err(StoreError::Unavailable("down".into())));
        assert!(matches!(failed[0], ServerMessage::Control(Control::Reload { .. })));
        let nothing = replay_messages(Ok(Replay::Missed(vec![])));
        assert_eq!(nothing, vec![ServerMessage::Control(Control::Ready { replayed: 0 })]);
    }

    #[test]
    fn frames_are_arrays_and_control_messages_name_their_type() {
        let messages = [
            ServerMessage::Control(Control::Ready { replayed: 2 }),
            ServerMessage::Control(Control::Subscribed { node_ids: None }),
            ServerMessage::Control(Control::Pong),
        ];
        let frame: Value = serde_json::from_str(&frame(&messages)).unwrap();
        assert_eq!(
            frame,
            json!([{"type": "ready", "replayed": 2}, {"type": "subscribed", "nodeIds": null}, {"type": "pong"}])
        );
    }

    #[test]
    fn client_messages_are_read_or_refused_with_a_reason() {
        let node = NodeId::generate();
        let subscribe = read_client_message(&json!({"type": "subscribe", "nodeIds": [node]}).to_string()).unwrap();
        assert_eq!(subscribe.subscription(), Some(Subscription::nodes([node])));
        assert_eq!(subscribed(&Subscription::nodes([node])), Control::Subscribed { node_ids: Some(vec![node]) });
        let all = read_client_message(r#"{"type":"subscribe"}"#).unwrap();
        assert_eq!(all.subscription(), Some(Subscription::everything()));
        assert_eq!(read_client_message(r#"{"type":"ping"}"#).unwrap(), ClientMessage::Ping);
        let last = uuid::Uuid::now_v7();
        let resume = read_client_message(&json!({"type": "resume", "lastEventId": last}).to_string()).unwrap();
        assert_eq!(resume, ClientMessage::Resume { last_event_id: last });
        for bad in ["", "[]", r#"{"type":"shout"}"#, r#"{"type":"subscribe","nodeIds":["not-an-id"]}"#] {
            assert!(matches!(read_client_message(bad), Err(Control::Error { code: "invalid-message", .. })), "{bad}");
        }
        let many: Vec<NodeId> = (0..=Subscription::MAX_NODES).map(|_| NodeId::generate()).collect();
        let refused = read_client_message(&json!({"type": "subscribe", "nodeIds": many}).to_string());
        assert!(matches!(refused, Err(Control::Error { code: "too-many-nodes", .. })));
        let huge = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(MAX_CLIENT_FRAME_BYTES));
        assert!(matches!(read_client_message(&huge), Err(Control::Error { code: "message-too-large", .. })));
    }
}
