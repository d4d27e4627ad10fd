//! Real-time updates over a real WebSocket (tokio-tungstenite) against `brain2 serve
//! --workers`: writes through the REST API come back as change messages in order, the
//! similarity worker's edges arrive on their own, users are isolated, bad tokens are
//! refused before the upgrade, and a client that reconnects with its last event id gets
//! what it missed.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use crate::serve::{Server, start_server_with};
use crate::support::{TestApp, token, unique_user, users_queue};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A bound on waiting for a message, not a latency assertion: the load harness measures
/// how fast changes arrive (`realtime` scenario).
const PATIENCE: Duration = Duration::from_secs(60);
const SIMILARITY_TYPES: [&str; 3] = ["node.created", "node.updated", "node.deleted"];

/// `brain2 serve --workers` fed by queues of this test's own: the realtime queue and the
/// similarity worker's queue receive only these users' events. It pings every second.
async fn realtime_server(app: &TestApp, users: &[&str]) -> Server {
    let realtime = users_queue(app, users, &[]).await;
    let similarity = users_queue(app, users, &SIMILARITY_TYPES).await;
    let options = ["--workers", "--cleanup-grace-seconds", "86400"];
    let environment = [
        ("BRAIN2_REALTIME_QUEUE_URL", realtime.as_str()),
        ("BRAIN2_SIMILARITY_QUEUE_URL", similarity.as_str()),
        ("BRAIN2_WS_HEARTBEAT_SECONDS", "1"),
    ];
    start_server_with(&options, &environment).await
}

fn socket_url(server: &Server, query: &str) -> String {
    format!("{}/ws?{query}", server.base.replacen("http://", "ws://", 1))
}

/// A socket of `user`, once the server says it is `ready`; returns it with what came
/// before (a replay, or a reload).
async fn connect(server: &Server, user: &str, last_event_id: Option<&str>) -> (Socket, Vec<Value>) {
    let mut query = format!("token={}", token(user));
    if let Some(last) = last_event_id {
        query.push_str(&format!("&lastEventId={last}"));
    }
    let (mut socket, response) = connect_async(socket_url(server, &query)).await.expect("the upgrade succeeds");
    assert_eq!(response.status(), 101);
    let before = until_ready(&mut socket).await;
    (socket, before)
}

/// The messages before `ready` (a replay, or a reload), checked against its count.
async fn until_ready(socket: &mut Socket) -> Vec<Value> {
    let (mut before, mut pending) = (Vec::new(), Vec::new());
    loop {
        let message = next_from(socket, &mut pending).await;
        if message["type"] == "ready" {
            assert_eq!(message["replayed"], before.iter().filter(|m| is_change(m)).count(), "{before:?}");
            assert!(pending.is_empty(), "ready is the last message of its frame: {pending:?}");
            return before;
        }
        before.push(message);
    }
}

fn is_change(message: &Value) -> bool {
    message["type"].as_str().is_some_and(|kind| kind.starts_with("node.") || kind.starts_with("edge."))
}

/// The server's next frame, which must hold one message.
async fn next_message(socket: &mut Socket) -> Value {
    let mut pending = Vec::new();
    let message = next_from(socket, &mut pending).await;
    assert!(pending.is_empty(), "one message in the frame: {message} then {pending:?}");
    message
}

/// The next message: the first of `pending`, else of the next frame (the rest of which
/// goes to `pending`).
async fn next_from(socket: &mut Socket, pending: &mut Vec<Value>) -> Value {
    loop {
        if !pending.is_empty() {
            return pending.remove(0);
        }
        let frame = tokio::time::timeout(PATIENCE, socket.next()).await.expect("a message within the patience");
        match frame.expect("the socket stays open").expect("the socket reads") {
            Message::Text(text) => {
                let messages: Value = serde_json::from_str(text.as_str()).unwrap();
                pending.extend(messages.as_array().expect("every frame is an array").iter().cloned());
            }
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// Change messages until `done` says enough; control messages are skipped.
async fn changes_until(socket: &mut Socket, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let mut pending = Vec::new();
    let mut changes = Vec::new();
    while !done(&changes) {
        let message = next_from(socket, &mut pending).await;
        if is_change(&message) {
            changes.push(message);
        }
    }
    assert!(pending.is_empty(), "messages after the last one awaited: {pending:?}");
    changes
}

async fn send(socket: &mut Socket, message: Value) {
    socket.send(Message::text(message.to_string())).await.unwrap();
}

struct Rest {
    base: String,
    client: reqwest::Client,
    token: String,
}

impl Rest {
    fn new(server: &Server, user: &str) -> Self {
        Self { base: server.base.clone(), client: reqwest::Client::new(), token: token(user) }
    }

    async fn create(&self, content: &str) -> String {
        let created = self.client.post(format!("{}/nodes", self.base)).bearer_auth(&self.token);
        let created = created.json(&json!({ "content": content })).send().await.unwrap();
        assert_eq!(created.status(), 201);
        created.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
    }

    async fn update(&self, id: &str, content: &str, version: u64) {
        let body = json!({ "content": content, "version": version });
        let updated = self.client.put(format!("{}/nodes/{id}", self.base)).bearer_auth(&self.token).json(&body);
        assert_eq!(updated.send().await.unwrap().status(), 200);
    }

    async fn link(&self, source: &str, target: &str) {
        let body = json!({ "sourceId": source, "targetId": target });
        let linked = self.client.post(format!("{}/edges", self.base)).bearer_auth(&self.token).json(&body);
        assert_eq!(linked.send().await.unwrap().status(), 201);
    }

    async fn delete(&self, id: &str) {
        let deleted = self.client.delete(format!("{}/nodes/{id}", self.base)).bearer_auth(&self.token);
        assert_eq!(deleted.send().await.unwrap().status(), 204);
    }
}

fn of_node<'a>(changes: &'a [Value], node: &str) -> Vec<&'a str> {
    changes.iter().filter(|change| change["nodeId"] == node).map(|change| change["type"].as_str().unwrap()).collect()
}

fn has_edge(changes: &[Value], kind: &str, source: &str, target: &str) -> bool {
    changes.iter().any(|change| {
        change["type"] == "edge.created"
            && change["data"]["kind"] == kind
            && change["edge"] == json!({ "source": source, "target": target })
    })
}

#[tokio::test]
async fn create_update_link_and_delete_arrive_as_messages_in_order() {
    let app = TestApp::spawn().await;
    let user = unique_user();
    let server = realtime_server(&app, &[&user]).await;
    let (mut socket, before) = connect(&server, &user, None).await;
    assert!(before.is_empty(), "{before:?}");
    let rest = Rest::new(&server, &user);

    let first = rest.create("Volcanic basalt columns along the northern coast").await;
    rest.update(&first, "Volcanic basalt columns and their hexagonal cooling joints", 1).await;
    let second = rest.create("Sourdough starter feeding schedule for a cold kitchen").await;
    rest.link(&first, &second).await;
    rest.delete(&first).await;

    let changes = changes_until(&mut socket, |changes| {
        of_node(changes, &first).len() >= 3 && has_edge(changes, "manual", &first, &second)
    })
    .await;
    assert_eq!(of_node(&changes, &first), ["node.created", "node.updated", "node.deleted"], "{changes:#?}");
    assert_eq!(of_node(&changes, &second), ["node.created"], "{changes:#?}");
    let versions: Vec<u64> =
        changes.iter().filter(|c| c["nodeId"] == first.as_str()).map(|c| c["version"].as_u64().unwrap()).collect();
    assert_eq!(versions, [1, 2, 2], "a delete carries the version it removed");
    let updated = changes.iter().find(|c| c["type"] == "node.updated").unwrap();
    assert!(updated["data"]["keywords"].as_array().unwrap().iter().any(|k| k == "hexagon" || k == "hexagonal"));
    for change in &changes {
        assert!(change["eventId"].is_string() && change["at"].is_string(), "{change}");
    }
}

#[tokio::test]
async fn a_similarity_edge_arrives_without_any_request() {
    let app = TestApp::spawn().await;
    let user = unique_user();
    let server = realtime_server(&app, &[&user]).await;
    let (mut socket, _) = connect(&server, &user, None).await;
    let rest = Rest::new(&server, &user);

    let first = rest.create("Honeybee colonies forage for nectar in clover meadows").await;
    let second = rest.create("Clover meadows feed honeybee colonies rich nectar").await;
    // The worker links the later note to the earlier one, with no request of the client.
    let changes = changes_until(&mut socket, |changes| {
        changes.iter().any(|c| c["type"] == "edge.created" && c["data"]["kind"] == "similarity")
    })
    .await;
    let edge = changes.iter().find(|c| c["type"] == "edge.created").unwrap();
    let ends = [edge["edge"]["source"].as_str().unwrap(), edge["edge"]["target"].as_str().unwrap()];
    assert!(ends.contains(&first.as_str()) && ends.contains(&second.as_str()), "{edge}");
    assert!(edge["data"]["weight"].as_f64().unwrap() > 0.0, "{edge}");
}

#[tokio::test]
async fn a_user_receives_nothing_of_another_users_changes() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (unique_user(), unique_user());
    let server = realtime_server(&app, &[&alice, &bob]).await;
    let (mut to_alice, _) = connect(&server, &alice, None).await;
    let (mut to_bob, _) = connect(&server, &bob, None).await;

    let note = Rest::new(&server, &alice).create("Alice's private note on tidal estuaries").await;
    let changes = changes_until(&mut to_alice, |changes| !of_node(changes, &note).is_empty()).await;
    assert_eq!(of_node(&changes, &note), ["node.created"]);
    // Bob's own write comes through his socket, and it is the first change he sees: had
    // Alice's change reached him, it would have come before it.
    let own = Rest::new(&server, &bob).create("Bob's note on mountain passes").await;
    let seen_by_bob = changes_until(&mut to_bob, |changes| !changes.is_empty()).await;
    assert_eq!(seen_by_bob[0]["nodeId"], own.as_str(), "{seen_by_bob:?}");
}

#[tokio::test]
async fn a_bad_or_missing_token_is_refused_before_the_upgrade() {
    let app = TestApp::spawn().await;
    let user = unique_user();
    let server = realtime_server(&app, &[&user]).await;
    let forged = format!("{}x", token(&user));
    for query in [format!("token={forged}"), String::new(), "token=not-a-jwt".to_owned()] {
        match connect_async(socket_url(&server, &query)).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 401, "{query}");
                let content_type = response.headers().get("content-type").unwrap().to_str().unwrap();
                assert_eq!(content_type, "application/problem+json");
            }
            other => panic!("{query}: expected a refusal, got {:?}", other.map(|(_, response)| response.status())),
        }
    }
    // The subprotocol carries the token for browsers, and is selected in the answer.
    let mut request = socket_url(&server, "").into_client_request().unwrap();
    let offered = format!("brain2, bearer.{}", token(&user));
    request.headers_mut().insert("sec-websocket-protocol", offered.parse().unwrap());
    let (_, response) = connect_async(request).await.expect("a token in the subprotocol is accepted");
    assert_eq!(response.headers().get("sec-websocket-protocol").unwrap(), "brain2");
}

#[tokio::test]
async fn reconnecting_with_the_last_event_id_replays_what_was_missed() {
    let app = TestApp::spawn().await;
    let user = unique_user();
    let server = realtime_server(&app, &[&user]).await;
    let rest = Rest::new(&server, &user);
    let (mut leaving, _) = connect(&server, &user, None).await;
    let (mut staying, _) = connect(&server, &user, None).await;

    let seen = rest.create("Lighthouse keepers logged the fog signals").await;
    let last = changes_until(&mut leaving, |changes| !changes.is_empty()).await;
    assert_eq!(last[0]["nodeId"], seen.as_str());
    let last_event_id = last[0]["eventId"].as_str().unwrap().to_owned();
    leaving.close(None).await.unwrap();

    let missed = rest.create("Glacier meltwater carved the valley floor").await;
    rest.update(&missed, "Glacier meltwater carved the valley floor into terraces", 1).await;
    // The socket that stayed sees both: they are logged, since nothing is sent unlogged.
    changes_until(&mut staying, |changes| of_node(changes, &missed).len() == 2).await;

    let (_, replayed) = connect(&server, &user, Some(&last_event_id)).await;
    let kinds: Vec<(&str, &str)> =
        replayed.iter().map(|c| (c["type"].as_str().unwrap(), c["nodeId"].as_str().unwrap())).collect();
    assert_eq!(kinds, [("node.created", missed.as_str()), ("node.updated", missed.as_str())]);

    // An id the log does not hold (another's, or from long ago) asks for a reload instead.
    let unknown = uuid::Uuid::now_v7().to_string();
    let (mut resumed, told) = connect(&server, &user, Some(&unknown)).await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0]["type"], "reload");
    // The same through the `resume` message, as clients behind API Gateway ask for it.
    send(&mut resumed, json!({"type": "resume", "lastEventId": last_event_id})).await;
    let again = until_ready(&mut resumed).await;
    assert_eq!(again.len(), 2, "{again:?}");
    assert_eq!(of_node(&again, &missed), ["node.created", "node.updated"]);
}

#[tokio::test]
async fn a_subscription_narrows_the_changes_to_some_nodes() {
    let app = TestApp::spawn().await;
    let user = unique_user();
    let server = realtime_server(&app, &[&user]).await;
    let rest = Rest::new(&server, &user);
    let (mut socket, _) = connect(&server, &user, None).await;
    let watched = rest.create("Orchard pruning in late winter").await;
    changes_until(&mut socket, |changes| !changes.is_empty()).await;

    send(&mut socket, json!({"type": "subscribe", "nodeIds": [watched]})).await;
    assert_eq!(next_message(&mut socket).await, json!({"type": "subscribed", "nodeIds": [watched]}));
    let other = rest.create("Submarine cables across the Atlantic").await;
    rest.update(&watched, "Orchard pruning in late winter, before the buds swell", 1).await;
    let changes = changes_until(&mut socket, |changes| !changes.is_empty()).await;
    assert_eq!(of_node(&changes, &watched), ["node.updated"], "{other} was not subscribed to: {changes:?}");

    send(&mut socket, json!({"type": "ping"})).await;
    assert_eq!(next_message(&mut socket).await, json!({"type": "pong"}));
    send(&mut socket, json!({"type": "shout"})).await;
    let refused = next_message(&mut socket).await;
    assert_eq!((refused["type"].as_str(), refused["code"].as_str()), (Some("error"), Some("invalid-message")));
}

#[tokio::test]
async fn the_server_pings_an_idle_client() {
    let app = TestApp::spawn().await;
    let user = unique_user();
    let server = realtime_server(&app, &[&user]).await;
    let (mut socket, _) = connect(&server, &user, None).await;
    let frame = tokio::time::timeout(PATIENCE, socket.next()).await.expect("a frame within the patience");
    assert!(matches!(frame, Some(Ok(Message::Ping(_)))), "{frame:?}");
}
