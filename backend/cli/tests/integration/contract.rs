//! The API contract at its edges: the OpenAPI document served, and every limit on input
//! enforced with a 4xx problem that names the field, never a 5xx and never a silent accept.

use axum::body::Body;
use http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};

use crate::support::{TestApp, TestResponse, token, unique_user};

const MAX_BODY_BYTES: usize = 64 * 1024;
const MAX_BULK_BODY_BYTES: usize = 5 * 1024 * 1024;

/// A request with a raw body and content type, authenticated as `user`.
async fn send_raw(
    app: &TestApp,
    user: &str,
    method: Method,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> TestResponse {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {}", token(user)))
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .unwrap();
    app.send(request).await
}

fn assert_field(response: &TestResponse, status: u16, code: &str, field: &str) {
    response.assert_problem(status, code);
    assert_eq!(response.body["field"], field, "{}", response.body);
}

#[tokio::test]
async fn the_openapi_document_is_served_to_anyone_as_checked_in() {
    let app = TestApp::spawn().await;
    let served = app.send(Request::builder().uri("/api/v1/openapi.json").body(Body::empty()).unwrap()).await;
    assert_eq!(served.status, StatusCode::OK);
    assert_eq!(served.header("content-type"), Some("application/json"));
    let checked_in = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json")).unwrap();
    assert_eq!(served.body, serde_json::from_str::<Value>(&checked_in).unwrap());
    assert_eq!(served.body["openapi"], "3.1.0");
}

/// A body naming a field the operation does not have, such as the user it should belong
/// to, is refused: nothing is written.
#[tokio::test]
async fn a_body_with_an_unknown_field_such_as_user_id_is_refused() {
    let app = TestApp::spawn().await;
    let (user, victim) = (unique_user(), unique_user());
    let foreign = app.post(&user, "/api/v1/nodes", json!({"content": "planted", "userId": victim})).await;
    assert_field(&foreign, 400, "unknown-field", "userId");
    assert_eq!(app.get(&user, "/api/v1/nodes").await.body["items"], json!([]));
    assert_eq!(app.get(&victim, "/api/v1/nodes").await.body["items"], json!([]));

    let node = app.create_node(&user, "a note to edit").await;
    let id = node["id"].as_str().unwrap();
    let edit = json!({"content": "edited", "version": 1, "id": "00000000-0000-7000-8000-000000000000"});
    assert_field(&app.put(&user, &format!("/api/v1/nodes/{id}"), edit).await, 400, "unknown-field", "id");
    let bulk = json!({"nodes": [{"content": "fine"}, {"content": "also fine", "owner": victim}]});
    assert_field(&app.post(&user, "/api/v1/nodes/bulk", bulk).await, 400, "unknown-field", "nodes[1].owner");
    let ids = json!({"nodeIds": [id], "force": true});
    let bulk_delete = app.call(Method::DELETE, "/api/v1/nodes/bulk", Some(&user), Some(ids)).await;
    assert_field(&bulk_delete, 400, "unknown-field", "force");
    let edge = json!({"sourceId": id, "targetId": id, "kind": "similarity"});
    assert_field(&app.post(&user, "/api/v1/edges", edge).await, 400, "unknown-field", "kind");
    assert_eq!(app.get(&user, &format!("/api/v1/nodes/{id}")).await.body, node, "the node is unchanged");
    assert_eq!(app.get(&user, "/api/v1/nodes").await.body["items"].as_array().unwrap().len(), 1);
}

/// 64 KiB per body, 5 MiB for a bulk create, in which 100 notes of the longest content and
/// tags fit even when every character takes 4 bytes.
#[tokio::test]
async fn bodies_over_their_limit_are_413_and_a_bulk_of_100_longest_notes_fits() {
    let app = TestApp::spawn().await;
    let user = unique_user();
    let over = json!({"content": "x".repeat(MAX_BODY_BYTES)}).to_string().into_bytes();
    let refused = send_raw(&app, &user, Method::POST, "/api/v1/nodes", "application/json", over).await;
    assert_field(&refused, 413, "body-too-large", "body");
    assert!(refused.body["detail"].as_str().unwrap().contains(&MAX_BODY_BYTES.to_string()));

    let longest_note = json!({
        "content": "😀".repeat(10_000),
        "tags": (0..10).map(|i| format!("{i}{}", "𝄞".repeat(49))).collect::<Vec<_>>(),
    });
    let single = serde_json::to_vec(&longest_note).unwrap();
    assert!(single.len() > 40_000 && single.len() < MAX_BODY_BYTES, "{} bytes", single.len());
    let created = send_raw(&app, &user, Method::POST, "/api/v1/nodes", "application/json", single).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);

    let bulk = serde_json::to_vec(&json!({"nodes": vec![longest_note; 100]})).unwrap();
    assert!(bulk.len() > 4_000_000 && bulk.len() < MAX_BULK_BODY_BYTES, "{} bytes", bulk.len());
    let created = send_raw(&app, &user, Method::POST, "/api/v1/nodes/bulk", "application/json", bulk).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["created"].as_array().unwrap().len(), 100, "{}", created.body["failed"]);

    let padding = " ".repeat(MAX_BULK_BODY_BYTES);
    let too_big = format!(r#"{{"nodes": [{{"content": "x"}}]{padding}}}"#).into_bytes();
    let refused = send_raw(&app, &user, Method::POST, "/api/v1/nodes/bulk", "application/json", too_big).await;
    assert_field(&refused, 413, "body-too-large", "body");
}

#[tokio::test]
async fn each_field_limit_is_a_400_naming_the_field() {
    let app = TestApp::spawn().await;
    let user = unique_user();
    let node = |content: Value, tags: Value| json!({"content": content, "tags": tags});
    let cases = [
        (node(json!("x".repeat(10_001)), json!([])), "content-too-long", "content"),
        (node(json!("   "), json!([])), "empty-content", "content"),
        (node(json!("a\u{0}b"), json!([])), "invalid-content", "content"),
        (node(json!("ok"), json!((0..11).map(|i| format!("t{i}")).collect::<Vec<_>>())), "too-many-tags", "tags"),
        (node(json!("ok"), json!(["y".repeat(51)])), "invalid-tag", "tags"),
        (node(json!("ok"), json!(["bell\u{7}"])), "invalid-tag", "tags"),
    ];
    for (body, code, field) in cases {
        assert_field(&app.post(&user, "/api/v1/nodes", body).await, 400, code, field);
    }
    // Exactly at the limits is fine; `#` is allowed in content and tags (they never reach a key).
    let at_limits =
        node(json!("z".repeat(10_000)), json!((0..10).map(|i| format!("#{i}{}", "t".repeat(47))).collect::<Vec<_>>()));
    assert_eq!(app.post(&user, "/api/v1/nodes", at_limits).await.status, StatusCode::CREATED);

    let bulk = |n: usize| json!({"nodes": vec![json!({"content": "n"}); n]});
    assert_field(&app.post(&user, "/api/v1/nodes/bulk", bulk(0)).await, 400, "bulk-size", "nodes");
    assert_field(&app.post(&user, "/api/v1/nodes/bulk", bulk(101)).await, 400, "bulk-size", "nodes");
    let ids = |n: usize| json!({"nodeIds": vec![uuid::Uuid::now_v7().to_string(); n]});
    for n in [0, 101] {
        let response = app.call(Method::DELETE, "/api/v1/nodes/bulk", Some(&user), Some(ids(n))).await;
        assert_field(&response, 400, "bulk-size", "nodeIds");
    }

    for limit in ["0", "201"] {
        assert_field(&app.get(&user, &format!("/api/v1/nodes?limit={limit}")).await, 400, "invalid-limit", "limit");
        let search = app.get(&user, &format!("/api/v1/search?keyword=river&limit={limit}")).await;
        assert_field(&search, 400, "invalid-limit", "limit");
    }
    for limit in ["-1", "abc", "1.5", "99999999999999999999999"] {
        assert_field(&app.get(&user, &format!("/api/v1/nodes?limit={limit}")).await, 400, "invalid-query", "limit");
    }
    assert_field(&app.get(&user, "/api/v1/search").await, 400, "invalid-query", "keyword");

    let id = uuid::Uuid::now_v7();
    for bad in ["not-a-uuid".to_owned(), id.simple().to_string(), format!("urn:uuid:{id}"), format!("%7B{id}%7D")] {
        let response = app.get(&user, &format!("/api/v1/nodes/{bad}")).await;
        assert_field(&response, 400, "invalid-node-id", "id");
    }
    let upper = app.get(&user, &format!("/api/v1/nodes/{}", id.to_string().to_uppercase())).await;
    upper.assert_problem(404, "node-not-found");
    assert_field(&app.delete(&user, &format!("/api/v1/edges/x/{id}")).await, 400, "invalid-node-id", "source");
    assert_field(&app.delete(&user, &format!("/api/v1/edges/{id}/x")).await, 400, "invalid-node-id", "target");
    let edge =
        |source: &str, target: &str, weight: Value| json!({"sourceId": source, "targetId": target, "weight": weight});
    let (a, b) = (id.to_string(), uuid::Uuid::now_v7().to_string());
    let edge_cases = [
        (edge("x", &b, json!(0.5)), "invalid-node-id", "sourceId"),
        (edge(&a, "x", json!(0.5)), "invalid-node-id", "targetId"),
        (edge(&a, &b, json!(0)), "invalid-weight", "weight"),
        (edge(&a, &b, json!(1.5)), "invalid-weight", "weight"),
        // A valid float that is no DynamoDB number: it was a 500 (found by schemathesis).
        (edge(&a, &b, json!(5e-324)), "invalid-weight", "weight"),
        (edge(&a, &a, json!(0.5)), "self-edge", "targetId"),
    ];
    for (body, code, field) in edge_cases {
        assert_field(&app.post(&user, "/api/v1/edges", body).await, 400, code, field);
    }
}

#[tokio::test]
async fn wrong_types_encodings_and_media_types_are_4xx_naming_the_field() {
    let app = TestApp::spawn().await;
    let user = unique_user();
    let typed = [
        ("/api/v1/nodes", json!({"content": 5}), "content"),
        ("/api/v1/nodes", json!({"content": "ok", "tags": "one"}), "tags"),
        ("/api/v1/nodes", json!({"content": "ok", "tags": ["a", 2]}), "tags[1]"),
        ("/api/v1/nodes", json!({"tags": []}), "content"),
        ("/api/v1/nodes", json!(["content"]), "body"),
        ("/api/v1/nodes/bulk", json!({"nodes": [{"content": "a"}, {"tags": []}]}), "nodes[1].content"),
        ("/api/v1/edges", json!({"sourceId": 1, "targetId": "x"}), "sourceId"),
    ];
    for (path, body, field) in typed {
        assert_field(&app.post(&user, path, body).await, 422, "invalid-body", field);
    }
    let id = uuid::Uuid::now_v7();
    let stale_type = app.put(&user, &format!("/api/v1/nodes/{id}"), json!({"content": "x", "version": "1"})).await;
    assert_field(&stale_type, 422, "invalid-body", "version");

    let not_utf8 = b"{\"content\": \"caf\xe9\"}".to_vec();
    let response = send_raw(&app, &user, Method::POST, "/api/v1/nodes", "application/json", not_utf8).await;
    assert_field(&response, 400, "invalid-utf8", "body");
    let response =
        send_raw(&app, &user, Method::POST, "/api/v1/nodes", "application/json", b"{\"content\":".to_vec()).await;
    assert_field(&response, 400, "malformed-json", "body");
    for content_type in ["text/plain", "application/json; charset=iso-8859-1"] {
        let body = br#"{"content": "ok"}"#.to_vec();
        let response = send_raw(&app, &user, Method::POST, "/api/v1/nodes", content_type, body).await;
        assert_field(&response, 415, "unsupported-media-type", "Content-Type");
    }
    let vendor = send_raw(
        &app,
        &user,
        Method::POST,
        "/api/v1/nodes",
        "application/vnd.brain2.v1+json",
        br#"{"content": "ok"}"#.to_vec(),
    )
    .await;
    assert_eq!(vendor.status, StatusCode::CREATED, "{}", vendor.body);
    assert_field(&app.get(&user, "/api/v1/search?keyword=caf%E9").await, 400, "invalid-utf8", "query");
}

/// Every client string that could reach a key is checked: node ids are UUIDs, user ids come
/// from the token and refuse `#`, and a search term with `#` or a control character is
/// refused instead of being split into another term.
#[tokio::test]
async fn strings_that_would_break_key_construction_are_refused() {
    let app = TestApp::spawn().await;
    let user = unique_user();
    app.create_node(&user, "Running rivers carve valleys").await;
    for term in ["%23running", "run%23ning", "running%00", "running%0A", &"a".repeat(101)] {
        assert_field(
            &app.get(&user, &format!("/api/v1/search?keyword={term}")).await,
            400,
            "invalid-keyword",
            "keyword",
        );
    }
    let found = app.get(&user, "/api/v1/search?keyword=running").await;
    assert_eq!(found.body["items"].as_array().unwrap().len(), 1);

    // Tags with `#` are stored as they are and appear in no key.
    let tagged = app.post(&user, "/api/v1/nodes", json!({"content": "tagged note", "tags": ["#a#b"]})).await;
    assert_eq!(tagged.body["tags"], json!(["#a#b"]));
    for item in app.raw_items_of(&user).await {
        for key in ["PK", "SK", "GSI1PK", "GSI1SK", "GSI2PK", "GSI2SK", "GSI3PK", "GSI3SK"] {
            if let Some(aws_sdk_dynamodb::types::AttributeValue::S(value)) = item.get(key) {
                assert!(!value.contains("#a#b"), "{key} = {value}");
            }
        }
    }
}

/// Cursors are sealed: a cursor returned to a user pages on for that user, and any change
/// to it, or a made-up one, is a 400 before anything is read.
#[tokio::test]
async fn cursors_are_refused_when_tampered_with_or_made_up() {
    let app = TestApp::spawn().await;
    let user = unique_user();
    for i in 0..3 {
        app.create_node(&user, &format!("paged note {i}")).await;
    }
    let first = app.get(&user, "/api/v1/nodes?limit=1").await;
    let cursor = first.body["nextCursor"].as_str().unwrap().to_owned();
    let next = app.get(&user, &format!("/api/v1/nodes?limit=1&cursor={cursor}")).await;
    assert_eq!(next.status, StatusCode::OK);
    assert_ne!(next.body["items"][0]["id"], first.body["items"][0]["id"]);

    let mut tampered: Vec<char> = cursor.chars().collect();
    let last = tampered.len() / 2;
    tampered[last] = if tampered[last] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    use base64::Engine;
    let made_up = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("0:{}", uuid::Uuid::now_v7()));
    for bad in [tampered, made_up, cursor[..cursor.len() - 2].to_owned(), "x".repeat(600)] {
        assert_field(&app.get(&user, &format!("/api/v1/nodes?cursor={bad}")).await, 400, "invalid-cursor", "cursor");
    }
}
