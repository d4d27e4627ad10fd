//! Similarity edges follow the notes: an update that makes two notes unlike each other
//! removes the edge the worker made between them, and leaves the user's own edges alone.

use std::collections::HashSet;

use brain2::worker::Worker;
use http::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestApp, take_messages, unique_user, user_queue};

/// Hands every `node.*` event of the user that reached the queue to the similarity worker.
async fn run_similarity(app: &TestApp, queue: &str, expected: usize) {
    app.adapters.events.flush().await;
    let changes = take_messages(app, queue, expected).await;
    assert_eq!(changes.len(), expected);
    let worker = Worker::Similarity(app.adapters.similarity());
    for change in &changes {
        worker.handle(&change.to_string()).await.unwrap();
    }
}

fn pairs(graph: &Value, kind: &str) -> HashSet<(String, String)> {
    graph["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|edge| edge["kind"] == kind)
        .map(|edge| {
            let (a, b) = (edge["sourceId"].as_str().unwrap().to_owned(), edge["targetId"].as_str().unwrap().to_owned());
            if a < b { (a, b) } else { (b, a) }
        })
        .collect()
}

fn pair(a: &str, b: &str) -> (String, String) {
    if a < b { (a.to_owned(), b.to_owned()) } else { (b.to_owned(), a.to_owned()) }
}

#[tokio::test]
async fn an_update_that_changes_keywords_removes_similarity_edges_that_no_longer_pass() {
    let app = TestApp::spawn().await;
    let user = unique_user();
    let queue = user_queue(&app, &user, &["node.created", "node.updated", "node.deleted"]).await;
    let edge_events = user_queue(&app, &user, &["edge.deleted"]).await;
    let bread = "Sourdough starter needs daily feeding with flour and water to stay active";
    let first = app.create_node(&user, bread).await;
    let second = app.create_node(&user, "Feeding the sourdough starter flour twice before baking").await;
    let third = app.create_node(&user, "Baking sourdough loaf with an active starter and flour").await;
    let [a, b, c] = [&first, &second, &third].map(|node| node["id"].as_str().unwrap().to_owned());
    run_similarity(&app, &queue, 3).await;
    let linked = pairs(&app.get(&user, "/api/v1/graph-data").await.body, "similarity");
    assert!(linked.contains(&pair(&a, &b)) && linked.contains(&pair(&a, &c)), "the bread notes link up: {linked:?}");
    let manual = app.post(&user, "/api/v1/edges", json!({"sourceId": b, "targetId": a})).await;
    assert_eq!(manual.status, StatusCode::CONFLICT, "a similarity edge holds the pair already");
    assert_eq!(app.delete(&user, &format!("/api/v1/edges/{a}/{c}")).await.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.post(&user, "/api/v1/edges", json!({"sourceId": c, "targetId": a})).await.status,
        StatusCode::CREATED,
        "the user links a and c by hand"
    );

    // The first note now speaks of something else entirely.
    let path = format!("/api/v1/nodes/{a}");
    let rust = json!({"content": "The Rust borrow checker rejects references that outlive their owner", "version": 1});
    assert_eq!(app.put(&user, &path, rust).await.status, StatusCode::OK);
    run_similarity(&app, &queue, 1).await;

    let graph = app.get(&user, "/api/v1/graph-data").await.body;
    let linked = pairs(&graph, "similarity");
    assert!(!linked.iter().any(|(x, y)| *x == a || *y == a), "stale similarity edges of the updated note: {linked:?}");
    assert!(linked.contains(&pair(&b, &c)), "edges between the unchanged notes stay: {linked:?}");
    assert_eq!(pairs(&graph, "manual"), HashSet::from([pair(&a, &c)]), "the user's own edge stays");
    app.adapters.events.flush().await;
    let removed = take_messages(&app, &edge_events, 2).await;
    let removed: HashSet<(String, String)> = removed
        .iter()
        .map(|e| pair(e["detail"]["aggregateId"].as_str().unwrap(), e["detail"]["targetId"].as_str().unwrap()))
        .collect();
    assert!(removed.contains(&pair(&a, &b)), "edge.deleted published for the removed edge: {removed:?}");

    // Handling the same update again changes nothing.
    let worker = Worker::Similarity(app.adapters.similarity());
    let replay = json!({"detail-type": "node.updated", "source": "brain2.backend", "detail": {
        "eventId": uuid::Uuid::now_v7().to_string(), "userId": user, "aggregateId": a, "version": 2,
        "keywords": [], "previousKeywords": []}});
    worker.handle(&replay.to_string()).await.unwrap();
    assert_eq!(app.get(&user, "/api/v1/graph-data").await.body["edges"], graph["edges"]);
}
