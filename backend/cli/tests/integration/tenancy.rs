use http::{Method, StatusCode};
use serde_json::json;

use crate::support::{TestApp, unique_user};

/// User B can see, change or delete nothing of user A's: everything of A's is simply
/// absent (404), never forbidden (403), and A's data is unchanged afterwards.
#[tokio::test]
async fn another_user_reaches_nothing() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (unique_user(), unique_user());
    let first = app.create_node(&alice, "Secret recipe for sourdough bread").await;
    let second = app.create_node(&alice, "Sourdough starter feeding schedule").await;
    let (a1, a2) = (first["id"].as_str().unwrap(), second["id"].as_str().unwrap());
    assert_eq!(
        app.post(&alice, "/api/v1/edges", json!({"sourceId": a1, "targetId": a2})).await.status,
        StatusCode::CREATED
    );
    let alice_page = app.get(&alice, "/api/v1/nodes?limit=1").await;
    let alice_cursor = alice_page.body["nextCursor"].as_str().unwrap().to_owned();

    app.get(&bob, &format!("/api/v1/nodes/{a1}")).await.assert_problem(404, "node-not-found");
    app.put(&bob, &format!("/api/v1/nodes/{a1}"), json!({"content": "mine now", "version": 1}))
        .await
        .assert_problem(404, "node-not-found");
    app.delete(&bob, &format!("/api/v1/nodes/{a1}")).await.assert_problem(404, "node-not-found");
    app.get(&bob, &format!("/api/v1/nodes/{a1}/neighbors")).await.assert_problem(404, "node-not-found");
    app.post(&bob, "/api/v1/edges", json!({"sourceId": a1, "targetId": a2}))
        .await
        .assert_problem(404, "node-not-found");
    app.delete(&bob, &format!("/api/v1/edges/{a1}/{a2}")).await.assert_problem(404, "edge-not-found");
    let bulk = app.call(Method::DELETE, "/api/v1/nodes/bulk", Some(&bob), Some(json!({"nodeIds": [a1, a2]}))).await;
    assert_eq!(bulk.body["deleted"], json!([]));
    assert!(bulk.body["failed"].as_array().unwrap().iter().all(|f| f["code"] == "not-found"));

    assert_eq!(app.get(&bob, "/api/v1/graph-data").await.body, json!({"nodes": [], "edges": [], "nextCursor": null}));
    assert_eq!(app.get(&bob, "/api/v1/nodes").await.body["items"], json!([]));
    assert_eq!(app.get(&bob, "/api/v1/search?keyword=sourdough").await.body["items"], json!([]));
    // A cursor from Alice's listing positions Bob in his own (empty) data, nothing more.
    let with_cursor = app.get(&bob, &format!("/api/v1/nodes?cursor={alice_cursor}")).await;
    assert_eq!(with_cursor.status, StatusCode::OK);
    assert_eq!(with_cursor.body["items"], json!([]));

    // Alice's data is intact.
    assert_eq!(app.get(&alice, &format!("/api/v1/nodes/{a1}")).await.body, first);
    let graph = app.get(&alice, "/api/v1/graph-data").await;
    assert_eq!(graph.body["nodes"].as_array().unwrap().len(), 2);
    assert_eq!(graph.body["edges"].as_array().unwrap().len(), 1);
    assert_eq!(app.get(&alice, "/api/v1/search?keyword=sourdough").await.body["items"].as_array().unwrap().len(), 2);
}
