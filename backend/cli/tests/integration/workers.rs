//! The asynchronous side: the background event publisher, the cleanup worker and the
//! similarity worker, against DynamoDB Local and moto.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use brain2::adapters::aws::network::{FaultPlan, NetworkSimulation};
use brain2::adapters::eventbridge::EventBridgePublisher;
use brain2::adapters::eventbridge::background::BackgroundPublisher;
use brain2::domain::{DomainEvent, KeywordExtractor, Node, NodeDraft, UserId};
use brain2::ports::EventPublisher;
use brain2::worker::Worker;
use http::StatusCode;
use serde_json::{Value, json};

use crate::support::{
    TestApp, event_ids, on_own_table, own_queue, settings_with, stack, take_distinct_events_besides, take_messages,
    take_waiting_messages, test_settings, unique_user, user_queue,
};

fn events_for(user: &str, count: usize) -> Vec<DomainEvent> {
    let user = UserId::parse(user).unwrap();
    let extractor = KeywordExtractor::new();
    (0..count)
        .map(|i| {
            let draft = NodeDraft::new(&format!("event number {i}"), &[]).unwrap();
            DomainEvent::node_created(&Node::create(user.clone(), draft, &extractor, chrono::Utc::now()))
        })
        .collect()
}

async fn publisher(network: NetworkSimulation, dead_letters: &str) -> BackgroundPublisher {
    publisher_with_room(network, dead_letters, brain2::adapters::eventbridge::background::QUEUE_CAPACITY).await
}

async fn publisher_with_room(network: NetworkSimulation, dead_letters: &str, room: usize) -> BackgroundPublisher {
    let stack = stack();
    let clients = stack.aws.factory().with_network(network).build().await;
    let sender = EventBridgePublisher::new(
        clients.eventbridge.clone(),
        clients.sqs.clone(),
        stack.bus.clone(),
        Some(dead_letters.to_owned()),
        true,
    );
    BackgroundPublisher::with_capacity(sender, room)
}

/// Dropping the publisher without a flush (what a shutdown does to it) still sends
/// everything it had queued: the sending task drains the queue once no sender is left.
#[tokio::test]
async fn every_enqueued_event_arrives_after_the_publisher_is_dropped_unflushed() {
    let app = TestApp::spawn().await;
    let user = unique_user();
    let queue = user_queue(&app, &user, &[]).await;
    let publisher = publisher(NetworkSimulation::default(), &own_queue(&app).await).await;
    let events = events_for(&user, 25);
    let sent: HashSet<String> = events.iter().map(|e| e.event_id.to_string()).collect();
    publisher.publish(events).await.unwrap();
    drop(publisher);
    let arrived = crate::support::take_distinct_events(&app, &queue, 25).await;
    // Delivery is at least once: a call retried after a timeout may deliver an event twice,
    // always under its own id, which consumers use to apply it once.
    assert_eq!(event_ids(&arrived).into_iter().collect::<HashSet<_>>(), sent, "every event sent, no other");
}

#[tokio::test]
async fn failed_entries_end_in_the_dead_letter_queue_never_missing() {
    let app = TestApp::spawn().await;
    let user = unique_user();
    let queue = user_queue(&app, &user, &[]).await;
    let dead_letters = own_queue(&app).await;
    let faults = FaultPlan::parse("putevents_fail=0.5,seed=5").unwrap();
    let publisher = publisher(NetworkSimulation { faults: Some(faults), ..Default::default() }, &dead_letters).await;
    let events = events_for(&user, 30);
    let sent: HashSet<String> = events.iter().map(|e| e.event_id.to_string()).collect();
    publisher.publish(events).await.unwrap();
    publisher.flush().await;
    let dead = take_waiting_messages(&app, &dead_letters).await;
    assert!(!dead.is_empty(), "with half of all entries failing, some exhaust their retries");
    assert!(dead.iter().all(|m| m["reason"].as_str().is_some_and(|r| r.contains("InternalFailure"))));
    assert_eq!(delivered_or_dead_lettered(&app, &queue, &dead, sent.len()).await, sent, "every event sent, no other");
}

/// The distinct ids of the events on the bus and in the dead-letter queue. Delivery is at
/// least once (a call retried after a timeout may have gone through), so an event can be
/// seen twice; what must never happen is an event seen nowhere.
async fn delivered_or_dead_lettered(app: &TestApp, queue: &str, dead: &[Value], sent: usize) -> HashSet<String> {
    let mut ids: HashSet<String> = event_ids(dead).into_iter().collect();
    let delivered = take_distinct_events_besides(app, queue, &ids, sent).await;
    ids.extend(event_ids(&delivered));
    ids
}

/// A full queue is never a silent drop: the caller publishes what does not fit itself.
#[tokio::test]
async fn a_full_queue_makes_the_caller_publish_inline() {
    let app = TestApp::spawn().await;
    let user = unique_user();
    let queue = user_queue(&app, &user, &[]).await;
    let slow = NetworkSimulation { round_trip: Duration::from_millis(100), ..Default::default() };
    let dead_letters = own_queue(&app).await;
    let publisher = publisher_with_room(slow, &dead_letters, 2).await;
    let events = events_for(&user, 20);
    let sent: HashSet<String> = events.iter().map(|e| e.event_id.to_string()).collect();
    let started = Instant::now();
    publisher.publish(events).await.unwrap();
    // Most of the 20 did not fit in a queue of 2, so this call sent them itself and waited
    // at least one simulated round trip for it (a lower bound, never flaky on a slow machine).
    assert!(started.elapsed() >= Duration::from_millis(100));
    publisher.flush().await;
    // On a loaded machine EventBridge may not take an entry within its retries: it is then
    // in the dead-letter queue, which is not a drop either.
    let dead = take_waiting_messages(&app, &dead_letters).await;
    assert_eq!(delivered_or_dead_lettered(&app, &queue, &dead, sent.len()).await, sent, "every event sent, no other");
}

async fn median_create_latency(app: &TestApp, user: &str) -> Duration {
    let mut samples = Vec::new();
    for i in 0..7 {
        let started = Instant::now();
        let response = app.post(user, "/api/v1/nodes", json!({"content": format!("Timed note {i}")})).await;
        samples.push(started.elapsed());
        assert_eq!(response.status, StatusCode::CREATED);
        let ops = response.header("x-brain2-aws-ops").unwrap_or_default();
        assert!(!ops.contains("EventBridge"), "the request path made an EventBridge call: {ops}");
    }
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::test]
async fn the_request_path_never_waits_for_put_events() {
    let variables = ["--sim-rtt-ms=50", "--expose-costs=on"];
    let with_events = TestApp::spawn_with(settings_with(&variables)).await;
    let mut without_events = TestApp::spawn_with(settings_with(&variables)).await;
    let mut adapters = without_events.adapters.clone();
    // EventBridge removed entirely (the outbox port sends nothing): the floor any publisher
    // is compared with.
    adapters.events = Arc::new(brain2::outbox::TableOutbox);
    let factory = stack().aws.factory();
    without_events.router =
        brain2::http::router(brain2::bootstrap::app_state(&without_events.settings, &adapters, &factory));
    let user = unique_user();
    let async_latency = median_create_latency(&with_events, &user).await;
    let floor = median_create_latency(&without_events, &user).await;
    // Inline publishing would add at least one 50 ms round trip per request; the margin is
    // most of that, and generous for a busy machine.
    assert!(
        async_latency < floor + Duration::from_millis(40),
        "create with background events took {async_latency:?}, without events {floor:?}"
    );
}

#[tokio::test]
async fn cleanup_leaves_nothing_of_deleted_nodes_and_is_harmless_twice() {
    let app = TestApp::spawn_with(on_own_table(test_settings()).await).await;
    let user = unique_user();
    let deletions = user_queue(&app, &user, &["node.deleted"]).await;
    let ids: Vec<String> =
        ["Harbour cranes lift containers", "Container ships cross oceans", "Ocean tides shape harbours"]
            .iter()
            .map(|content| async { app.create_node(&user, content).await["id"].as_str().unwrap().to_owned() })
            .collect::<futures::future::JoinAll<_>>()
            .await;
    for (a, b) in [(0, 1), (2, 0), (1, 2)] {
        let linked = app.post(&user, "/api/v1/edges", json!({"sourceId": ids[a], "targetId": ids[b]})).await;
        assert_eq!(linked.status, StatusCode::CREATED);
    }
    let deleted = app
        .call(http::Method::DELETE, "/api/v1/nodes/bulk", Some(&user), Some(json!({"nodeIds": [ids[0], ids[1]]})))
        .await;
    assert_eq!(deleted.body["deleted"].as_array().unwrap().len(), 2);
    // Soft delete: gone for every read at once, but still in the table until cleanup.
    assert_eq!(app.get(&user, "/api/v1/graph-data").await.body["edges"], json!([]));
    assert!(app.raw_items_of(&user).await.iter().any(|item| item.contains_key("deletedAt")));

    app.adapters.events.flush().await;
    let messages = take_messages(&app, &deletions, 2).await;
    assert_eq!(messages.len(), 2);
    let worker = Worker::Cleanup(app.adapters.cleanup());
    for message in &messages {
        worker.handle(&message.to_string()).await.unwrap();
    }
    let left = app.raw_items_of(&user).await;
    for item in &left {
        let (pk, sk) = (item["PK"].as_s().unwrap(), item["SK"].as_s().unwrap());
        assert!(!ids[..2].iter().any(|id| pk.contains(id) || sk.contains(id)), "left behind: {pk} {sk}");
        assert!(!item.contains_key("GSI2PK"), "still queued for deletion: {pk} {sk}");
    }
    assert!(left.iter().any(|item| item["SK"].as_s().unwrap().ends_with(&ids[2])), "the kept node stays");

    // Re-delivered messages and a second sweep change nothing.
    for message in &messages {
        worker.handle(&message.to_string()).await.unwrap();
    }
    app.run_cleanup().await;
    assert_eq!(app.raw_items_of(&user).await.len(), left.len());
}

#[tokio::test]
async fn similar_notes_get_linked_and_unrelated_ones_do_not() {
    let app = TestApp::spawn().await;
    let user = unique_user();
    let changes_queue = user_queue(&app, &user, &["node.created", "node.updated", "node.deleted"]).await;
    let notes = [
        ("bread", "Sourdough starter needs daily feeding with flour and water to stay active"),
        ("bread", "Feeding the sourdough starter flour twice before baking gives an airy loaf"),
        ("bread", "Baking sourdough loaf: long fermentation, active starter, hot oven"),
        ("rust", "The Rust borrow checker rejects mutable references that outlive their owner"),
        ("rust", "Lifetimes tell the Rust borrow checker how long references stay valid"),
        ("run", "Marathon training plan: long runs on Sundays, intervals on Tuesdays"),
    ];
    let mut topic_of = std::collections::HashMap::new();
    for (topic, content) in notes {
        let node = app.create_node(&user, content).await;
        topic_of.insert(node["id"].as_str().unwrap().to_owned(), topic);
    }
    // A note deleted before the worker gets to it is never linked.
    let gone = app.create_node(&user, "Sourdough starter feeding with flour and water every day").await;
    let gone_id = gone["id"].as_str().unwrap().to_owned();
    assert_eq!(app.delete(&user, &format!("/api/v1/nodes/{gone_id}")).await.status, StatusCode::NO_CONTENT);
    app.adapters.events.flush().await;
    let changes = take_messages(&app, &changes_queue, notes.len() + 2).await;
    assert_eq!(changes.len(), notes.len() + 2);
    let worker = Worker::Similarity(app.adapters.similarity());
    for change in &changes {
        worker.handle(&change.to_string()).await.unwrap();
    }
    let edges = app.get(&user, "/api/v1/graph-data").await.body["edges"].as_array().unwrap().clone();
    assert!(edges.len() >= 3, "the bread notes and the Rust notes link up: {edges:?}");
    for edge in &edges {
        assert!(edge["sourceId"] != gone_id.as_str() && edge["targetId"] != gone_id.as_str(), "deleted note linked");
        assert_eq!(edge["kind"], "similarity");
        let (a, b) = (edge["sourceId"].as_str().unwrap(), edge["targetId"].as_str().unwrap());
        assert_eq!(topic_of[a], topic_of[b], "unrelated notes linked: {edge}");
        let weight = edge["weight"].as_f64().unwrap();
        assert!((0.3..=1.0).contains(&weight));
    }
    let linked_pairs: HashSet<(String, String)> = edges
        .iter()
        .map(|e| (e["sourceId"].as_str().unwrap().to_owned(), e["targetId"].as_str().unwrap().to_owned()))
        .collect();
    let rust: Vec<&String> = topic_of.iter().filter(|(_, t)| **t == "rust").map(|(id, _)| id).collect();
    assert!(
        linked_pairs.contains(&(rust[0].clone(), rust[1].clone()))
            || linked_pairs.contains(&(rust[1].clone(), rust[0].clone())),
        "the two Rust notes are linked"
    );

    // Processing the same events again creates nothing new.
    for change in &changes {
        worker.handle(&change.to_string()).await.unwrap();
    }
    assert_eq!(app.get(&user, "/api/v1/graph-data").await.body["edges"].as_array().unwrap().len(), edges.len());
}

/// Lambda's SQS batches report partial failures: only the messages that failed return.
#[tokio::test]
async fn sqs_batches_report_only_failed_messages() {
    let mut broken = settings_with(&[]);
    broken.adapters.table = "no-such-table".into();
    let app = TestApp::spawn_with(broken).await;
    let node = uuid::Uuid::now_v7().to_string();
    let deleted = json!({"detail-type": "node.deleted", "source": "brain2.backend",
        "detail": {"eventId": uuid::Uuid::now_v7().to_string(), "userId": "someone", "aggregateId": node,
                   "version": 1, "occurredAt": "2026-11-23T00:00:00.000Z", "keywords": []}});
    let event = json!({"Records": [
        {"messageId": "cannot-succeed", "body": deleted.to_string()},
        {"messageId": "not-an-event", "body": "garbage"},
    ]});
    let batch: aws_lambda_events::event::sqs::SqsEvent = serde_json::from_value(event).unwrap();
    let response = brain2_lambda::handle_batch(&Worker::Cleanup(app.adapters.cleanup()), batch).await;
    let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    // The store failure comes back for a retry; a message no retry can fix is acknowledged.
    assert_eq!(failed, vec!["cannot-succeed"]);
}
