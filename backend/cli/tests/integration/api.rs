use brain2::flags::Flags;
use http::{Method, Request, StatusCode};
use serde_json::{Value, json};

use crate::support::{TestApp, health_components, on_own_table, settings_with, test_settings, unique_user};

#[tokio::test]
async fn node_lifecycle_create_get_update_delete() {
    let app = TestApp::spawn_with(on_own_table(test_settings()).await).await;
    let user = unique_user();
    let created = app
        .post(&user, "/api/v1/nodes", json!({"content": "Rivers carve deep valleys", "tags": ["geo", " geo "]}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let node = created.body;
    let id = node["id"].as_str().unwrap().to_owned();
    assert_eq!(node["content"], "Rivers carve deep valleys");
    assert_eq!(node["tags"], json!(["geo"]));
    assert_eq!(node["version"], 1);
    assert_eq!(node["keywords"], json!(["rivers", "carve", "deep", "valleys"]));
    assert_eq!(node["createdAt"], node["updatedAt"]);

    let fetched = app.get(&user, &format!("/api/v1/nodes/{id}")).await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.body, node);

    let updated = app
        .put(&user, &format!("/api/v1/nodes/{id}"), json!({"content": "Glaciers carve valleys", "version": 1}))
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.body["version"], 2);
    assert_eq!(updated.body["tags"], json!([]));
    assert_eq!(updated.body["keywords"], json!(["glaciers", "carve", "valleys"]));
    assert_eq!(updated.body["createdAt"], node["createdAt"]);

    let stale = app.put(&user, &format!("/api/v1/nodes/{id}"), json!({"content": "Older edit", "version": 1})).await;
    stale.assert_problem(409, "version-conflict");
    assert_eq!(app.get(&user, &format!("/api/v1/nodes/{id}")).await.body["version"], 2);

    // The keyword postings followed the update.
    let by_old = app.get(&user, "/api/v1/search?keyword=river").await;
    assert_eq!(by_old.body["items"], json!([]));
    let by_new = app.get(&user, "/api/v1/search?keyword=glaciers").await;
    assert_eq!(by_new.body["items"][0]["id"], id.as_str());

    let deleted = app.delete(&user, &format!("/api/v1/nodes/{id}")).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    app.get(&user, &format!("/api/v1/nodes/{id}")).await.assert_problem(404, "node-not-found");
    app.delete(&user, &format!("/api/v1/nodes/{id}")).await.assert_problem(404, "node-not-found");
    app.put(&user, &format!("/api/v1/nodes/{id}"), json!({"content": "x", "version": 2}))
        .await
        .assert_problem(404, "node-not-found");
    app.run_cleanup().await;
    assert!(app.raw_items_of(&user).await.is_empty(), "delete leaves nothing behind");
}

#[tokio::test]
async fn bad_input_gets_problem_json_never_500() {
    let app = TestApp::spawn().await;
    let user = unique_user();
    app.post(&user, "/api/v1/nodes", json!({"content": "   "})).await.assert_problem(400, "empty-content");
    app.post(&user, "/api/v1/nodes", json!({"content": "x".repeat(10_001)}))
        .await
        .assert_problem(400, "content-too-long");
    app.post(&user, "/api/v1/nodes", json!({"content": "ok", "tags": [""]})).await.assert_problem(400, "invalid-tag");
    app.post(&user, "/api/v1/nodes", json!({"tags": []})).await.assert_problem(422, "invalid-body");
    app.post(&user, "/api/v1/nodes", json!({"content": 5})).await.assert_problem(422, "invalid-body");
    app.put(&user, &format!("/api/v1/nodes/{}", uuid::Uuid::now_v7()), json!({"content": "no version"}))
        .await
        .assert_problem(422, "invalid-body");

    let token = crate::support::token(&user);
    let malformed = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/nodes")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(axum::body::Body::from("{not json"))
        .unwrap();
    app.send(malformed).await.assert_problem(400, "malformed-json");
    let untyped = Request::builder()
        .method(Method::POST)
        .uri("/api/v1/nodes")
        .header("authorization", format!("Bearer {token}"))
        .body(axum::body::Body::from(r#"{"content":"x"}"#))
        .unwrap();
    app.send(untyped).await.assert_problem(415, "unsupported-media-type");

    app.get(&user, "/api/v1/nodes/not-a-uuid").await.assert_problem(400, "invalid-node-id");
    app.get(&user, "/api/v1/nodes?limit=0").await.assert_problem(400, "invalid-limit");
    app.get(&user, "/api/v1/nodes?limit=201").await.assert_problem(400, "invalid-limit");
    app.get(&user, "/api/v1/nodes?limit=abc").await.assert_problem(400, "invalid-query");
    app.get(&user, "/api/v1/nodes?cursor=garbage").await.assert_problem(400, "invalid-cursor");
    app.get(&user, "/api/v1/search?keyword=the").await.assert_problem(400, "invalid-keyword");
    app.get(&user, "/api/v1/search").await.assert_problem(400, "invalid-query");
    app.get(&user, "/api/v1/nowhere").await.assert_problem(404, "route-not-found");
    app.get(&user, "/elsewhere").await.assert_problem(404, "route-not-found");
    app.call(Method::PATCH, "/api/v1/nodes", Some(&user), None).await.assert_problem(405, "method-not-allowed");
}

#[tokio::test]
async fn listing_is_newest_first_with_an_opaque_cursor() {
    let app = TestApp::spawn().await;
    let user = unique_user();
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(app.create_node(&user, &format!("note number {i} about gardens")).await["id"].clone());
        // Distinct creation milliseconds make the expected order unambiguous.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    created.reverse();

    let mut seen = Vec::new();
    let mut path = "/api/v1/nodes?limit=2".to_owned();
    let mut pages = 0;
    loop {
        let page = app.get(&user, &path).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        pages += 1;
        let items = page.body["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|n| n["id"].clone()));
        match page.body["nextCursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/nodes?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, created);
    assert_eq!(pages, 3);

    let all = app.get(&user, "/api/v1/nodes").await;
    assert_eq!(all.body["items"].as_array().unwrap().len(), 5);
    assert_eq!(all.body["nextCursor"], Value::Null);
}

#[tokio::test]
async fn bulk_create_reports_each_item() {
    let app = TestApp::spawn().await;
    let user = unique_user();
    let body = json!({"nodes": [
        {"content": "Photosynthesis converts light"},
        {"content": "  "},
        {"content": "Chlorophyll absorbs light", "tags": ["bio"]},
        {"content": "ok", "tags": ["t1","t2","t3","t4","t5","t6","t7","t8","t9","t10","t11"]}
    ]});
    let response = app.post(&user, "/api/v1/nodes/bulk", body).await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.body);
    let created = response.body["created"].as_array().unwrap();
    assert_eq!(created.len(), 2);
    assert_eq!(created[1]["tags"], json!(["bio"]));
    let failed = response.body["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 2);
    assert_eq!((failed[0]["index"].as_u64(), failed[0]["code"].as_str()), (Some(1), Some("empty-content")));
    assert_eq!((failed[1]["index"].as_u64(), failed[1]["code"].as_str()), (Some(3), Some("too-many-tags")));

    for node in created {
        let fetched = app.get(&user, &format!("/api/v1/nodes/{}", node["id"].as_str().unwrap())).await;
        assert_eq!(&fetched.body, node);
    }
    let search = app.get(&user, "/api/v1/search?keyword=light").await;
    assert_eq!(search.body["items"].as_array().unwrap().len(), 2);

    app.post(&user, "/api/v1/nodes/bulk", json!({"nodes": []})).await.assert_problem(400, "bulk-size");
    let too_many: Vec<Value> = (0..101).map(|i| json!({"content": format!("n{i}")})).collect();
    app.post(&user, "/api/v1/nodes/bulk", json!({"nodes": too_many})).await.assert_problem(400, "bulk-size");
}

#[tokio::test]
async fn bulk_create_of_one_hundred_then_bulk_delete_leaves_nothing() {
    let app = TestApp::spawn_with(on_own_table(test_settings()).await).await;
    let user = unique_user();
    let nodes: Vec<Value> = (0..100)
        .map(|i| json!({"content": format!("Batch note {i} on orchards, apples, pruning and harvest timing")}))
        .collect();
    let response = app.post(&user, "/api/v1/nodes/bulk", json!({"nodes": nodes})).await;
    assert_eq!(response.status, StatusCode::CREATED);
    assert_eq!(response.body["created"].as_array().unwrap().len(), 100);
    assert_eq!(response.body["failed"], json!([]));
    let ids: Vec<String> =
        response.body["created"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap().to_owned()).collect();
    let linked = app.post(&user, "/api/v1/edges", json!({"sourceId": ids[0], "targetId": ids[1]})).await;
    assert_eq!(linked.status, StatusCode::CREATED);
    let keep = app.create_node(&user, "A note about apples that stays").await;
    let kept_edge = app.post(&user, "/api/v1/edges", json!({"sourceId": ids[99], "targetId": keep["id"]})).await;
    assert_eq!(kept_edge.status, StatusCode::CREATED);

    let mut delete_ids: Vec<Value> = ids[..99].iter().map(|id| json!(id)).collect();
    let unknown = uuid::Uuid::now_v7().to_string();
    delete_ids.push(json!(unknown));
    let body = json!({"nodeIds": delete_ids});
    let request = Request::builder()
        .method(Method::DELETE)
        .uri("/api/v1/nodes/bulk")
        .header("authorization", format!("Bearer {}", crate::support::token(&user)))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.to_string()))
        .unwrap();
    let deleted = app.send(request).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    assert_eq!(deleted.body["deleted"].as_array().unwrap().len(), 99);
    assert_eq!(deleted.body["failed"][0]["id"], unknown.as_str());
    assert_eq!(deleted.body["failed"][0]["code"], "not-found");

    let graph = app.get(&user, "/api/v1/graph-data").await;
    assert_eq!(graph.body["nodes"].as_array().unwrap().len(), 2, "one bulk node and the kept one remain");
    assert_eq!(graph.body["edges"].as_array().unwrap().len(), 1);
    let search = app.get(&user, "/api/v1/search?keyword=apples").await;
    let found: Vec<&str> = search.body["items"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap()).collect();
    assert_eq!(found.len(), 2);
    assert!(found.contains(&keep["id"].as_str().unwrap()));

    // Straight from the table, once cleanup ran: the deleted nodes left no node item,
    // posting or edge.
    app.run_cleanup().await;
    let deleted_ids: Vec<&str> = ids[..99].iter().map(String::as_str).collect();
    for item in app.raw_items_of(&user).await {
        let pk = item["PK"].as_s().unwrap();
        let sk = item["SK"].as_s().unwrap();
        assert!(!deleted_ids.iter().any(|id| pk.contains(id) || sk.contains(id)), "left behind: {pk} {sk}");
    }
}

#[tokio::test]
async fn bulk_delete_validates_ids() {
    let app = TestApp::spawn().await;
    let user = unique_user();
    let node = app.create_node(&user, "Keep me around").await;
    let id = node["id"].as_str().unwrap();
    let body = json!({"nodeIds": ["nope", id, id]});
    let response = app.call(Method::DELETE, "/api/v1/nodes/bulk", Some(&user), Some(body)).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.body["deleted"], json!([id]));
    assert_eq!(response.body["failed"][0]["id"], "nope");
    assert_eq!(response.body["failed"][0]["code"], "invalid-node-id");
    // Every id sent is accounted for: the second copy is reported, not dropped.
    assert_eq!(response.body["failed"][1]["id"], id);
    assert_eq!(response.body["failed"][1]["code"], "duplicate-id");
    assert_eq!(response.body["failed"].as_array().unwrap().len(), 2);
    app.call(Method::DELETE, "/api/v1/nodes/bulk", Some(&user), Some(json!({"nodeIds": []})))
        .await
        .assert_problem(400, "bulk-size");
}

#[tokio::test]
async fn search_matches_stems_and_orders_newest_first() {
    let app = TestApp::spawn().await;
    let user = unique_user();
    let first = app.create_node(&user, "Borrowing rules in Rust ownership").await;
    let second = app.create_node(&user, "Borrowed three books from the library").await;
    app.create_node(&user, "Cooking pasta al dente").await;
    let response = app.get(&user, "/api/v1/search?keyword=Borrow").await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.body["keyword"], "Borrow");
    let ids: Vec<&Value> = response.body["items"].as_array().unwrap().iter().map(|n| &n["id"]).collect();
    assert_eq!(ids, vec![&second["id"], &first["id"]]);
    let limited = app.get(&user, "/api/v1/search?keyword=borrowing&limit=1").await;
    assert_eq!(limited.body["items"].as_array().unwrap().len(), 1);
    let none = app.get(&user, "/api/v1/search?keyword=astronomy").await;
    assert_eq!(none.body["items"], json!([]));
}

/// Keywords match on stems but are shown as words the note used: its most frequent form of
/// each stem. Search finds the note by any form of the word.
#[tokio::test]
async fn keywords_show_the_words_written_and_search_matches_any_form() {
    let app = TestApp::spawn().await;
    let user = unique_user();
    let node = app.create_node(&user, "Rivers carve valleys; carving rivers keeps the starter active").await;
    assert_eq!(node["keywords"], json!(["rivers", "carve", "valleys", "starter", "active"]));
    let id = node["id"].as_str().unwrap();
    assert_eq!(app.get(&user, &format!("/api/v1/nodes/{id}")).await.body["keywords"], node["keywords"]);
    let graph = app.get(&user, "/api/v1/graph-data").await;
    assert_eq!(graph.body["nodes"][0]["keywords"], node["keywords"]);
    for form in ["carved", "Carving", "activity", "river"] {
        let found = app.get(&user, &format!("/api/v1/search?keyword={form}")).await;
        assert_eq!(found.body["items"][0]["id"], node["id"], "search for {form}");
        assert_eq!(found.body["items"][0]["keywords"], node["keywords"]);
    }
}

#[tokio::test]
async fn health_reports_each_component() {
    let app = TestApp::spawn().await;
    let user = unique_user();
    let response = app.call(Method::GET, "/api/v1/health", Some(&user), None).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    assert_eq!(response.body["status"], "up");
    assert_eq!(response.body["flags"]["soft_delete"], true, "the flags in force are reported");
    assert_eq!(response.body["flags"].as_object().unwrap().len(), Flags::OPTIMIZED.entries().len(), "every flag");
    assert_eq!(response.body["eventDelivery"], "background", "so is the event delivery");
    let components = response.body["components"].as_array().unwrap();
    let names: Vec<&str> = components.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, health_components());
    assert!(components.iter().all(|c| c["status"] == "up" && c["durationMs"].as_f64().is_some()));

    let mut no_bus = test_settings();
    no_bus.adapters.event_bus = "no-such-bus".into();
    let degraded = TestApp::spawn_with(no_bus).await.call(Method::GET, "/api/v1/health", Some(&user), None).await;
    assert_eq!(degraded.status, StatusCode::OK);
    assert_eq!(degraded.body["status"], "degraded");
    assert_eq!(degraded.body["components"][1]["status"], "down");

    let mut no_table = test_settings();
    no_table.adapters.table = "no-such-table".into();
    let down = TestApp::spawn_with(no_table).await.call(Method::GET, "/api/v1/health", Some(&user), None).await;
    assert_eq!(down.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(down.body["status"], "down");
}

#[tokio::test]
async fn health_shows_an_anonymous_caller_the_status_alone() {
    let mut no_bus = test_settings();
    no_bus.adapters.event_bus = "no-such-bus".into();
    let app = TestApp::spawn_with(no_bus).await;
    let anonymous = app.call(Method::GET, "/api/v1/health", None, None).await;
    assert_eq!(anonymous.status, StatusCode::OK);
    assert_eq!(anonymous.body, json!({"status": "degraded"}), "no components, errors, flags or version");
    let bad_token = Request::builder()
        .uri("/api/v1/health")
        .header("authorization", "Bearer not-a-token")
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(app.send(bad_token).await.body, json!({"status": "degraded"}));
    let authenticated = app.call(Method::GET, "/api/v1/health", Some(&unique_user()), None).await;
    assert!(authenticated.body["components"][1]["error"].as_str().is_some(), "{}", authenticated.body);
}

#[tokio::test]
async fn health_asks_aws_once_per_report_period_however_often_it_is_called() {
    // A period no test outlasts: the claim is about the count, never about the clock.
    let app = TestApp::spawn_with(settings_with(&["--expose-costs=on", "--health-report-seconds=3600"])).await;
    let calls = |response: &crate::support::TestResponse| -> u64 {
        response.header("x-brain2-aws-calls").expect("costs exposed").parse().unwrap()
    };
    let first = app.call(Method::GET, "/api/v1/health", None, None).await;
    assert_eq!(calls(&first), 2, "one DynamoDB and one EventBridge check");
    let concurrent = futures::future::join_all((0..20).map(|_| app.call(Method::GET, "/api/v1/health", None, None)));
    for response in concurrent.await {
        assert_eq!(response.body["status"], "up");
        assert_eq!(calls(&response), 0, "answered from the report of the first call");
    }
}

#[tokio::test]
async fn versions_and_correlation_ids() {
    let app = TestApp::spawn().await;
    let user = unique_user();
    let token = crate::support::token(&user);
    let request = |accept: &str| {
        Request::builder()
            .uri("/api/v1/nodes")
            .header("authorization", format!("Bearer {token}"))
            .header("accept", accept)
            .header("x-correlation-id", "trace-me-123")
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let v1 = app.send(request("application/vnd.brain2.v1+json")).await;
    assert_eq!(v1.status, StatusCode::OK);
    assert_eq!(v1.header("x-correlation-id"), Some("trace-me-123"));
    assert!(v1.header("x-request-id").is_some());
    assert!(v1.header("deprecation").is_none());
    app.send(request("application/vnd.brain2.v2+json")).await.assert_problem(406, "unsupported-version");
    let generated = app.get(&user, "/api/v1/nodes").await;
    assert!(generated.header("x-correlation-id").is_some_and(|id| uuid::Uuid::parse_str(id).is_ok()));

    let settings =
        settings_with(&["--api-v1-deprecated-at=2026-01-01T00:00:00Z", "--api-v1-sunset-at=2027-06-30T00:00:00Z"]);
    let deprecated = TestApp::spawn_with(settings).await.get(&user, "/api/v1/nodes").await;
    assert_eq!(deprecated.header("deprecation"), Some("@1767225600"));
    assert_eq!(deprecated.header("sunset"), Some("Wed, 30 Jun 2027 00:00:00 GMT"));
}
