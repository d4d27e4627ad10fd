//! The AWS side of real-time updates, as the two functions run it: the WebSocket API's
//! routes register, subscribe and forget connections in the table, and the broadcaster logs
//! each change and posts it to the user's connections, forgetting those API Gateway says
//! are gone (410). The table is DynamoDB Local; the management API is the SDK's mock, since
//! no emulator here reports what was posted, or answers 410.

use std::sync::{Arc, Mutex};

use aws_lambda_events::event::apigw::ApiGatewayWebsocketProxyRequest;
use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_apigatewaymanagement::operation::post_to_connection::{PostToConnectionError, PostToConnectionOutput};
use aws_sdk_apigatewaymanagement::types::error::{GoneException, LimitExceededException};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use brain2::adapters::apigateway::ManagementApiPoster;
use brain2::domain::UserId;
use brain2::http::auth::Authenticator;
use brain2::ports::{ChangeLog, ConnectionRegistry, Replay};
use brain2::realtime::feed::LiveFeed;
use brain2::realtime::gateway::{ConnectionFanout, WebSocketRoutes};
use brain2_lambda::{broadcast_batch, websocket_route};
use serde_json::{Value, json};

use crate::support::{TEST_SECRET, TestApp, token, unique_user};

/// What the mock saw posted: connection id and frame.
type Posted = Arc<Mutex<Vec<(String, Value)>>>;

/// A management API that takes posts to `alive-*` connections, answers 410 for `gone-*`
/// and a throttling error for `failing-*`, recording every post it was asked for.
fn management_api(posted: &Posted) -> aws_sdk_apigatewaymanagement::Client {
    let record = |posted: Posted, prefix: &'static str| {
        move |input: &aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionInput| {
            let id = input.connection_id().unwrap_or_default().to_owned();
            if !id.starts_with(prefix) {
                return false;
            }
            let frame = serde_json::from_slice(input.data().map(|data| data.as_ref()).unwrap_or_default()).unwrap();
            posted.lock().unwrap().push((id, frame));
            true
        }
    };
    let alive: Rule = mock!(aws_sdk_apigatewaymanagement::Client::post_to_connection)
        .match_requests(record(posted.clone(), "alive-"))
        .sequence()
        .output(|| PostToConnectionOutput::builder().build())
        .repeatedly()
        .build();
    let gone: Rule = mock!(aws_sdk_apigatewaymanagement::Client::post_to_connection)
        .match_requests(record(posted.clone(), "gone-"))
        .sequence()
        .error(|| PostToConnectionError::GoneException(GoneException::builder().message("gone").build()))
        .repeatedly()
        .build();
    let failing: Rule = mock!(aws_sdk_apigatewaymanagement::Client::post_to_connection)
        .match_requests(record(posted.clone(), "failing-"))
        .sequence()
        .error(|| {
            PostToConnectionError::LimitExceededException(LimitExceededException::builder().message("slow").build())
        })
        .repeatedly()
        .build();
    mock_client!(aws_sdk_apigatewaymanagement, RuleMode::MatchAny, [&alive, &gone, &failing])
}

fn route_event(
    route: &str,
    connection: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> ApiGatewayWebsocketProxyRequest {
    serde_json::from_value(json!({
        "requestContext": {"routeKey": route, "connectionId": connection, "eventType": "MESSAGE", "apiId": "abc123",
                           "stage": "live", "requestId": "r1", "connectedAt": 1_795_000_000_000_i64,
                           "requestTimeEpoch": 1_795_000_000_000_i64},
        "queryStringParameters": token.map(|token| json!({"token": token})),
        "headers": {},
        "body": body.map(|body| body.to_string()),
        "isBase64Encoded": false
    }))
    .expect("a WebSocket route event as API Gateway sends it")
}

fn bus_envelope(user: &str, kind: &str, node: &str) -> Value {
    json!({"detail-type": kind, "source": "brain2.backend", "detail": {
        "eventId": uuid::Uuid::now_v7().to_string(), "userId": user, "aggregateId": node, "version": 1,
        "occurredAt": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true), "keywords": ["tide"]}})
}

fn queue_batch(envelopes: &[Value]) -> SqsEvent {
    let records: Vec<Value> = envelopes
        .iter()
        .enumerate()
        .map(|(i, body)| json!({"messageId": format!("m{i}"), "body": body.to_string(), "eventSource": "aws:sqs"}))
        .collect();
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

#[tokio::test]
async fn the_broadcaster_posts_each_users_changes_to_their_connections_and_forgets_gone_ones() {
    let app = TestApp::spawn().await;
    let live = Arc::new(app.adapters.live());
    let routes = WebSocketRoutes::new(live.clone(), live.clone(), Arc::new(Authenticator::shared_secret(TEST_SECRET)));
    let (alice, bob) = (unique_user(), unique_user());
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let [alive, watching, gone, failing, bobs] =
        ["alive-a", "alive-w", "gone-a", "failing-a", "alive-b"].map(|prefix| format!("{prefix}-{suffix}"));

    // $connect: a bad token is refused with a problem, good ones register the connection.
    let refused = websocket_route(&routes, route_event("$connect", &alive, Some("not-a-token"), None)).await;
    assert_eq!(refused.status_code, 401);
    assert_eq!(live.owner(&alive).await.unwrap(), None);
    for (connection, user) in
        [(&alive, &alice), (&watching, &alice), (&gone, &alice), (&failing, &alice), (&bobs, &bob)]
    {
        let connected = websocket_route(&routes, route_event("$connect", connection, Some(&token(user)), None)).await;
        assert_eq!(connected.status_code, 200, "{connected:?}");
    }
    let (first, second) =
        (brain2::domain::NodeId::generate().to_string(), brain2::domain::NodeId::generate().to_string());
    // $default: one connection narrows to the first note; pings are answered.
    let subscribe = json!({"type": "subscribe", "nodeIds": [first]});
    let answer = websocket_route(&routes, route_event("$default", &watching, None, Some(subscribe))).await;
    let body = |response: &aws_lambda_events::event::apigw::ApiGatewayProxyResponse| match &response.body {
        Some(aws_lambda_events::encodings::Body::Text(text)) => serde_json::from_str::<Value>(text).unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(body(&answer), json!([{"type": "subscribed", "nodeIds": [first]}]));
    let pong = websocket_route(&routes, route_event("$default", &alive, None, Some(json!({"type": "ping"})))).await;
    assert_eq!(body(&pong), json!([{"type": "pong"}]));

    let posted: Posted = Arc::default();
    let poster = Arc::new(ManagementApiPoster::new(management_api(&posted)));
    let feed = LiveFeed::new(live.clone(), Arc::new(ConnectionFanout::new(live.clone(), poster)));
    let envelopes = [
        bus_envelope(&alice, "node.created", &first),
        bus_envelope(&alice, "node.created", &second),
        bus_envelope(&bob, "node.created", &second),
    ];
    let response = broadcast_batch(&feed, queue_batch(&envelopes)).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");

    let posted = posted.lock().unwrap().clone();
    let frame_to = |connection: &str| {
        let frames: Vec<&Value> = posted.iter().filter(|(id, _)| id == connection).map(|(_, frame)| frame).collect();
        assert_eq!(frames.len(), 1, "one frame to {connection}: {posted:?}");
        frames[0].as_array().unwrap().iter().map(|m| m["nodeId"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
    };
    assert_eq!(frame_to(&alive), [first.clone(), second.clone()], "both of Alice's changes, in order, in one frame");
    assert_eq!(frame_to(&watching), std::slice::from_ref(&first), "only the subscribed note");
    assert_eq!(frame_to(&gone), [first.clone(), second.clone()]);
    assert_eq!(frame_to(&failing), [first.clone(), second.clone()]);
    assert_eq!(frame_to(&bobs), std::slice::from_ref(&second), "Bob's own change alone");

    // The gone connection is forgotten; the one that failed once is kept.
    let alices: Vec<String> =
        live.of_user(&UserId::parse(&alice).unwrap()).await.unwrap().into_iter().map(|c| c.id).collect();
    assert!(!alices.contains(&gone) && alices.contains(&failing) && alices.contains(&alive), "{alices:?}");
    assert_eq!(live.owner(&gone).await.unwrap(), None);
    // Every change was logged before it was posted: a client that saw the first replays the second.
    let first_event: uuid::Uuid = envelopes[0]["detail"]["eventId"].as_str().unwrap().parse().unwrap();
    match live.since(&UserId::parse(&alice).unwrap(), first_event).await.unwrap() {
        Replay::Missed(missed) => assert_eq!(missed.len(), 1, "{missed:?}"),
        Replay::Lost => panic!("the first change is in the log"),
    }

    // $disconnect forgets the connection and who it belonged to.
    let closed = websocket_route(&routes, route_event("$disconnect", &alive, None, None)).await;
    assert_eq!(closed.status_code, 200);
    assert_eq!(live.owner(&alive).await.unwrap(), None);
    let unknown =
        websocket_route(&routes, route_event("$default", &alive, None, Some(json!({"type": "subscribe"})))).await;
    assert_eq!(body(&unknown)[0]["code"], "unknown-connection");
}
