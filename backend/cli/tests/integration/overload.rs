//! Overload: a burst above a user's rate limit, and a store that stops answering. Each
//! answers with a problem the client can act on (429 or 503, with `Retry-After`), and the
//! process goes on serving the requests that follow.

use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::json;

use crate::support::{EmulatorProxy, TestApp, TestResponse, settings_with, stack, unique_user};

/// Asserts a 429 or 503 problem that tells the client when to come back.
fn assert_retry_later(response: &TestResponse, status: u16, code: &str) {
    response.assert_problem(status, code);
    let retry_after: u64 = response.header("retry-after").and_then(|v| v.parse().ok()).expect("a Retry-After header");
    assert!(retry_after >= 1, "Retry-After: {retry_after}");
}

#[tokio::test]
async fn a_burst_above_a_users_rate_limit_answers_429_and_spares_other_users() {
    let app = TestApp::spawn_with(settings_with(&["--rate-limit-per-second=1", "--rate-limit-burst=5"])).await;
    let (greedy, other) = (unique_user(), unique_user());
    for _ in 0..5 {
        assert_eq!(app.get(&greedy, "/api/v1/nodes").await.status, StatusCode::OK);
    }
    let refused = app.get(&greedy, "/api/v1/nodes").await;
    assert_retry_later(&refused, 429, "rate-limited");
    // A write is refused as well, before it does anything.
    let write = app.post(&greedy, "/api/v1/nodes", json!({"content": "refused while over the limit"})).await;
    assert_retry_later(&write, 429, "rate-limited");

    // The limit is the user's, not the process's: someone else is served meanwhile.
    assert_eq!(app.get(&other, "/api/v1/nodes").await.status, StatusCode::OK);
    assert_eq!(app.call(http::Method::GET, "/api/v1/health", None, None).await.status, StatusCode::OK);

    // After the wait it named, the user is served again, and nothing refused was written.
    let wait: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let listed = app.get(&greedy, "/api/v1/nodes").await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_eq!(listed.body["items"], json!([]));
}

#[tokio::test]
async fn the_default_rate_limit_lets_a_busy_user_through() {
    use brain2::http::limits::{DEFAULT_RATE_LIMIT_BURST, DEFAULT_RATE_LIMIT_PER_SECOND};
    let rate = format!("--rate-limit-per-second={DEFAULT_RATE_LIMIT_PER_SECOND}");
    let burst = format!("--rate-limit-burst={DEFAULT_RATE_LIMIT_BURST}");
    let app = TestApp::spawn_with(settings_with(&[&rate, &burst])).await;
    let user = unique_user();
    // A busy client: a hundred requests in a row.
    for _ in 0..100 {
        let response = app.get(&user, "/api/v1/nodes?limit=1").await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    }
}

/// The app with its DynamoDB calls going through `proxy`, and a short deadline.
async fn app_behind(proxy: &EmulatorProxy, deadline_ms: u64) -> TestApp {
    let settings = settings_with(&[&format!("--request-deadline-ms={deadline_ms}")]);
    TestApp::spawn_on(settings, proxy.dynamodb_factory()).await
}

#[tokio::test]
async fn a_stalled_store_answers_503_at_the_deadline_and_bulk_writes_report_every_item() {
    let proxy = EmulatorProxy::start().await;
    let app = app_behind(&proxy, 2_000).await;
    let user = unique_user();
    let kept = app.create_node(&user, "written before the store stalled").await;
    let kept_id = kept["id"].as_str().unwrap();

    proxy.stall(true);
    let started = Instant::now();
    let read = app.get(&user, &format!("/api/v1/nodes/{kept_id}")).await;
    assert_retry_later(&read, 503, "deadline-exceeded");
    // A generous bound, far below what the SDK's timeouts times the store's retries allow.
    assert!(started.elapsed() < Duration::from_secs(15), "answered after {:?}", started.elapsed());

    let notes: Vec<_> =
        (0..30).map(|i| json!({"content": format!("note {i} written while the store stalls")})).collect();
    let bulk = app.post(&user, "/api/v1/nodes/bulk", json!({"nodes": notes})).await;
    assert_eq!(bulk.status, StatusCode::CREATED, "{}", bulk.body);
    assert_eq!(bulk.body["created"], json!([]), "nothing could be written");
    let failed = bulk.body["failed"].as_array().unwrap();
    let mut indices: Vec<u64> = failed.iter().map(|f| f["index"].as_u64().unwrap()).collect();
    indices.sort_unstable();
    assert_eq!(indices, (0..30).collect::<Vec<u64>>(), "every item is reported: {}", bulk.body);
    assert!(failed.iter().all(|f| f["code"] == "deadline-exceeded"), "{}", bulk.body);

    let deleted =
        app.call(http::Method::DELETE, "/api/v1/nodes/bulk", Some(&user), Some(json!({"nodeIds": [kept_id]}))).await;
    assert_retry_later(&deleted, 503, "deadline-exceeded");

    // The store answers again: so does the process, and only what was reported written is there.
    proxy.stall(false);
    let read = app.get(&user, &format!("/api/v1/nodes/{kept_id}")).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    let listed = app.get(&user, "/api/v1/nodes").await;
    let ids: Vec<&str> = listed.body["items"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![kept_id]);
    let created = app.create_node(&user, "written after the store came back").await;
    assert!(created["id"].is_string());
}

/// An inline publisher (the baseline's) sending on a slow network, its request cut off at
/// the deadline while events are still on their way: they arrive all the same.
#[tokio::test]
async fn events_of_a_request_cut_off_at_its_deadline_are_still_delivered() {
    use brain2::adapters::aws::network::NetworkSimulation;
    use brain2::adapters::eventbridge::EventBridgePublisher;
    use brain2::domain::{DomainEvent, KeywordExtractor, Node, NodeDraft, UserId};
    use brain2::ports::EventPublisher;

    use crate::support::{event_ids, own_queue, take_distinct_events, user_queue};

    let app = TestApp::spawn().await;
    let user = unique_user();
    let queue = user_queue(&app, &user, &[]).await;
    let slow = NetworkSimulation { round_trip: Duration::from_millis(200), ..Default::default() };
    let clients = stack().aws.factory().with_network(slow).build().await;
    let dead_letters = own_queue(&app).await;
    let sender =
        EventBridgePublisher::new(clients.eventbridge, clients.sqs, stack().bus.clone(), Some(dead_letters), false);
    let owner = UserId::parse(&user).unwrap();
    let events = |count: usize| -> Vec<DomainEvent> {
        (0..count)
            .map(|i| {
                let draft = NodeDraft::new(&format!("event {i} of a request out of time"), &[]).unwrap();
                DomainEvent::node_created(&Node::create(
                    owner.clone(),
                    draft,
                    &KeywordExtractor::new(),
                    chrono::Utc::now(),
                ))
            })
            .collect()
    };
    let (out_of_time, cut) = (events(5), events(5));
    let sent: std::collections::HashSet<String> =
        out_of_time.iter().chain(&cut).map(|event| event.event_id.to_string()).collect();
    // Out of time while sending: the request stops waiting.
    let spent = tokio::time::Instant::now() + Duration::from_millis(50);
    brain2::deadline::scope(spent, sender.publish(out_of_time)).await.unwrap();
    // Cut off outright, as the deadline's backstop does: the sending is dropped mid-way.
    let cut_off = tokio::time::timeout(Duration::from_millis(50), sender.publish(cut)).await;
    assert!(cut_off.is_err(), "five calls of 200 ms each cannot be done in 50 ms");
    let arrived: std::collections::HashSet<String> =
        event_ids(&take_distinct_events(&app, &queue, sent.len()).await).into_iter().collect();
    assert_eq!(arrived, sent, "every event of both requests arrived");
}
