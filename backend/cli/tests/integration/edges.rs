use http::StatusCode;
use serde_json::json;

use crate::support::{TestApp, unique_user};

#[tokio::test]
async fn edges_link_both_ways_and_show_up_once_in_the_graph() {
    let app = TestApp::spawn().await;
    let user = unique_user();
    let a = app.create_node(&user, "Alpine lakes").await["id"].as_str().unwrap().to_owned();
    let b = app.create_node(&user, "Mountain streams").await["id"].as_str().unwrap().to_owned();
    let c = app.create_node(&user, "Desert dunes").await["id"].as_str().unwrap().to_owned();

    let created = app.post(&user, "/api/v1/edges", json!({"sourceId": a, "targetId": b, "weight": 0.75})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["sourceId"], a.as_str());
    assert_eq!(created.body["weight"], 0.75);
    assert_eq!(created.body["kind"], "manual");
    let default_weight = app.post(&user, "/api/v1/edges", json!({"sourceId": c, "targetId": a})).await;
    assert_eq!(default_weight.body["weight"], 1.0);

    app.post(&user, "/api/v1/edges", json!({"sourceId": a, "targetId": b})).await.assert_problem(409, "edge-exists");
    app.post(&user, "/api/v1/edges", json!({"sourceId": b, "targetId": a})).await.assert_problem(409, "edge-exists");
    app.post(&user, "/api/v1/edges", json!({"sourceId": a, "targetId": a})).await.assert_problem(400, "self-edge");
    app.post(&user, "/api/v1/edges", json!({"sourceId": a, "targetId": b, "weight": 2}))
        .await
        .assert_problem(400, "invalid-weight");
    let missing = uuid::Uuid::now_v7().to_string();
    app.post(&user, "/api/v1/edges", json!({"sourceId": a, "targetId": missing}))
        .await
        .assert_problem(404, "node-not-found");
    app.post(&user, "/api/v1/edges", json!({"sourceId": "x", "targetId": a}))
        .await
        .assert_problem(400, "invalid-node-id");

    let from_a = app.get(&user, &format!("/api/v1/nodes/{a}/neighbors")).await;
    assert_eq!(from_a.status, StatusCode::OK);
    let mut neighbours: Vec<(String, f64)> = from_a.body["neighbors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["node"]["id"].as_str().unwrap().to_owned(), n["weight"].as_f64().unwrap()))
        .collect();
    neighbours.sort_by(|x, y| x.0.cmp(&y.0));
    let mut expected = vec![(b.clone(), 0.75), (c.clone(), 1.0)];
    expected.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(neighbours, expected);
    let from_b = app.get(&user, &format!("/api/v1/nodes/{b}/neighbors")).await;
    assert_eq!(from_b.body["neighbors"][0]["node"]["content"], "Alpine lakes");
    app.get(&user, &format!("/api/v1/nodes/{missing}/neighbors")).await.assert_problem(404, "node-not-found");

    let graph = app.get(&user, "/api/v1/graph-data").await;
    assert_eq!(graph.body["nodes"].as_array().unwrap().len(), 3);
    assert_eq!(graph.body["edges"].as_array().unwrap().len(), 2, "each edge once: {}", graph.body);

    // Deleting works from either end and removes both directions.
    let removed = app.delete(&user, &format!("/api/v1/edges/{b}/{a}")).await;
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    app.delete(&user, &format!("/api/v1/edges/{a}/{b}")).await.assert_problem(404, "edge-not-found");
    let after = app.get(&user, &format!("/api/v1/nodes/{b}/neighbors")).await;
    assert_eq!(after.body["neighbors"], json!([]));
    assert_eq!(app.get(&user, "/api/v1/graph-data").await.body["edges"].as_array().unwrap().len(), 1);

    // Deleting a node takes its edges along, on both ends.
    assert_eq!(app.delete(&user, &format!("/api/v1/nodes/{c}")).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&user, &format!("/api/v1/nodes/{a}/neighbors")).await.body["neighbors"], json!([]));
    assert_eq!(app.get(&user, "/api/v1/graph-data").await.body["edges"], json!([]));
}
