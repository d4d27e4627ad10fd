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
    // A cursor returned to Alice is bound to her: Bob's use of it is refused before any read.
    let with_cursor = app.get(&bob, &format!("/api/v1/nodes?cursor={alice_cursor}")).await;
    with_cursor.assert_problem(400, "invalid-cursor");
    assert_eq!(with_cursor.body["field"], "cursor");
    assert_eq!(app.get(&alice, &format!("/api/v1/nodes?cursor={alice_cursor}")).await.status, StatusCode::OK);

    // Alice's data is intact.
    assert_eq!(app.get(&alice, &format!("/api/v1/nodes/{a1}")).await.body, first);
    let graph = app.get(&alice, "/api/v1/graph-data").await;
    assert_eq!(graph.body["nodes"].as_array().unwrap().len(), 2);
    assert_eq!(graph.body["edges"].as_array().unwrap().len(), 1);
    assert_eq!(app.get(&alice, "/api/v1/search?keyword=sourdough").await.body["items"].as_array().unwrap().len(), 2);
}

/// The same, on an instance whose read and adjacency caches hold Alice's data (she read
/// every node, her neighbours, graph and search results first): Bob's reads and writes of
/// her ids never hit her cached entries, and her items in the table are byte-for-byte the
/// same afterwards. Bob's own data keeps working throughout.
#[tokio::test]
async fn another_user_reaches_nothing_through_warm_caches() {
    let mut settings = crate::support::settings_with(&[]);
    settings.flags = brain2::flags::Flags::OPTIMIZED.into();
    let app = TestApp::spawn_with(settings).await;
    let (alice, bob) = (unique_user(), unique_user());
    let notes = ["Lighthouse lenses focus beams", "Lighthouse keepers log storms", "Storm surges flood harbours"];
    let mut ids = Vec::new();
    for note in notes {
        ids.push(app.create_node(&alice, note).await["id"].as_str().unwrap().to_owned());
    }
    for (a, b) in [(0, 1), (1, 2)] {
        let linked = app.post(&alice, "/api/v1/edges", json!({"sourceId": ids[a], "targetId": ids[b]})).await;
        assert_eq!(linked.status, StatusCode::CREATED);
    }
    let bobs = app.create_node(&bob, "Lighthouse postcards from my holiday").await["id"].as_str().unwrap().to_owned();
    // Alice warms every cache of this instance.
    for id in &ids {
        app.get(&alice, &format!("/api/v1/nodes/{id}")).await;
        app.get(&alice, &format!("/api/v1/nodes/{id}/neighbors")).await;
    }
    let graph_before = app.get(&alice, "/api/v1/graph-data").await.body;
    let search_before = app.get(&alice, "/api/v1/search?keyword=lighthouse").await.body;
    let first_page = app.get(&alice, "/api/v1/nodes?limit=1").await.body;
    let items_before = sorted(app.raw_items_of(&alice).await);

    for id in &ids {
        let path = format!("/api/v1/nodes/{id}");
        app.get(&bob, &path).await.assert_problem(404, "node-not-found");
        app.get(&bob, &format!("{path}/neighbors")).await.assert_problem(404, "node-not-found");
        app.put(&bob, &path, json!({"content": "mine now", "version": 1})).await.assert_problem(404, "node-not-found");
        app.put(&bob, &path, json!({"content": "mine now", "version": 2})).await.assert_problem(404, "node-not-found");
        app.delete(&bob, &path).await.assert_problem(404, "node-not-found");
        for (source, target) in [(&bobs, id), (id, &bobs), (id, &ids[0])] {
            if source == target {
                continue;
            }
            let linked = app.post(&bob, "/api/v1/edges", json!({"sourceId": source, "targetId": target})).await;
            linked.assert_problem(404, "node-not-found");
        }
    }
    app.delete(&bob, &format!("/api/v1/edges/{}/{}", ids[0], ids[1])).await.assert_problem(404, "edge-not-found");
    let bulk = app.call(Method::DELETE, "/api/v1/nodes/bulk", Some(&bob), Some(json!({"nodeIds": ids}))).await;
    assert_eq!(bulk.body["deleted"], json!([]), "{}", bulk.body);
    assert_eq!(bulk.body["failed"].as_array().unwrap().len(), ids.len());
    assert!(bulk.body["failed"].as_array().unwrap().iter().all(|f| f["code"] == "not-found"));

    let bob_search = app.get(&bob, "/api/v1/search?keyword=lighthouse").await.body;
    let found: Vec<&str> = bob_search["items"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap()).collect();
    assert_eq!(found, vec![bobs.as_str()], "Bob finds his own note and none of Alice's");
    let bob_graph = app.get(&bob, "/api/v1/graph-data").await.body;
    assert_eq!(bob_graph["nodes"].as_array().unwrap().len(), 1);
    assert_eq!(bob_graph["nodes"][0]["id"], bobs.as_str());
    assert_eq!(bob_graph["edges"], json!([]));
    // Whatever a cursor minted for Alice does for Bob, it never shows him her notes.
    let cursor = first_page["nextCursor"].as_str().unwrap();
    let with_cursor = app.get(&bob, &format!("/api/v1/nodes?cursor={cursor}")).await;
    let listed = with_cursor.body["items"].as_array().cloned().unwrap_or_default();
    assert!(listed.iter().all(|n| !ids.iter().any(|id| n["id"] == id.as_str())), "{}", with_cursor.body);

    assert_eq!(sorted(app.raw_items_of(&alice).await), items_before, "Alice's items are untouched");
    assert_eq!(app.get(&alice, "/api/v1/graph-data").await.body, graph_before);
    assert_eq!(app.get(&alice, "/api/v1/search?keyword=lighthouse").await.body, search_before);
    // And Bob's own note is still his to change.
    let bob_path = format!("/api/v1/nodes/{bobs}");
    assert_eq!(app.put(&bob, &bob_path, json!({"content": "Postcards", "version": 1})).await.status, StatusCode::OK);
}

fn sorted(mut items: Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>) -> Vec<String> {
    let mut rendered: Vec<String> = items
        .drain(..)
        .map(|item| {
            let mut fields: Vec<String> = item.into_iter().map(|(k, v)| format!("{k}={v:?}")).collect();
            fields.sort();
            fields.join(",")
        })
        .collect();
    rendered.sort();
    rendered
}
