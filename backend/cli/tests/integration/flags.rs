//! Every optimisation flag changes cost, never results: the same scripted workload gives
//! the same API-visible answers under every profile, and the call counts show the savings.

use std::collections::HashMap;
use std::io::Read;

use brain2::bootstrap::Settings;
use brain2::flags::Flags;
use http::{Method, Request, StatusCode};
use serde_json::{Value, json};

use crate::support::{EmulatorProxy, TestApp, TestResponse, on_own_table, settings_with, token, unique_user};

/// Arrays the API returns in no promised order: the graph's nodes and edges (Query or Scan
/// order) and a node's neighbours (adjacency order). Every other array is compared as sent.
const UNORDERED_ARRAYS: [&str; 3] = ["nodes", "edges", "neighbors"];

/// Rewrites ids into labels in order of first appearance, and drops what legitimately
/// differs between runs (timestamps, cursor bytes), so transcripts can be compared.
#[derive(Default)]
struct Normalizer {
    labels: HashMap<String, String>,
}

impl Normalizer {
    fn label(&mut self, id: &str) -> String {
        let next = format!("n{}", self.labels.len());
        self.labels.entry(id.to_owned()).or_insert(next).clone()
    }

    fn learn(&mut self, value: &Value) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(id)) = map.get("id") {
                    self.label(id);
                }
                map.values().for_each(|v| self.learn(v));
            }
            Value::Array(items) => items.iter().for_each(|v| self.learn(v)),
            _ => {}
        }
    }

    fn normalize(&mut self, value: &Value) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.iter()
                    .filter(|(key, _)| !matches!(key.as_str(), "createdAt" | "updatedAt"))
                    .map(|(key, v)| {
                        let v = match (key.as_str(), v) {
                            ("nextCursor", _) => json!(!v.is_null()),
                            (key, Value::Array(items)) if UNORDERED_ARRAYS.contains(&key) => {
                                let mut items: Vec<Value> = items.iter().map(|v| self.normalize(v)).collect();
                                items.sort_by_key(|v| v.to_string());
                                Value::Array(items)
                            }
                            _ => self.normalize(v),
                        };
                        (key.clone(), v)
                    })
                    .collect(),
            ),
            // Every other array keeps its order: listings and search results promise one.
            Value::Array(items) => Value::Array(items.iter().map(|v| self.normalize(v)).collect()),
            Value::String(text) => {
                let mut text = text.clone();
                for (id, label) in &self.labels {
                    text = text.replace(id.as_str(), label);
                }
                Value::String(text)
            }
            other => other.clone(),
        }
    }
}

struct Run<'a> {
    app: &'a TestApp,
    user: String,
    normalizer: Normalizer,
    transcript: Vec<(String, u16, Value)>,
}

impl Run<'_> {
    async fn step(&mut self, name: &str, method: Method, path: &str, body: Option<Value>) -> Value {
        let response = self.app.call(method, path, Some(&self.user), body).await;
        self.record(name, response)
    }

    fn record(&mut self, name: &str, response: TestResponse) -> Value {
        self.normalizer.learn(&response.body);
        let normalized = self.normalizer.normalize(&response.body);
        self.transcript.push((name.to_owned(), response.status.as_u16(), normalized));
        response.body
    }
}

/// Creates, updates, links, searches, graph reads, bulk create, bulk delete: the API
/// surface a profile could change.
async fn scripted_workload(app: &TestApp) -> Vec<(String, u16, Value)> {
    let mut run = Run { app, user: unique_user(), normalizer: Normalizer::default(), transcript: Vec::new() };
    let mut ids = Vec::new();
    for content in ["Rivers carve valleys over time", "Glaciers carve valleys too", "Deserts form dunes"] {
        let node = run.step("create", Method::POST, "/api/v1/nodes", Some(json!({"content": content}))).await;
        ids.push(node["id"].as_str().unwrap().to_owned());
        // Distinct creation milliseconds keep the listing order the same in every run.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let (a, b, c) = (&ids[0], &ids[1], &ids[2]);
    run.step("get", Method::GET, &format!("/api/v1/nodes/{a}"), None).await;
    run.step("get again", Method::GET, &format!("/api/v1/nodes/{a}"), None).await;
    run.step(
        "update",
        Method::PUT,
        &format!("/api/v1/nodes/{c}"),
        Some(json!({"content": "Deserts and valleys", "version": 1})),
    )
    .await;
    run.step("stale update", Method::PUT, &format!("/api/v1/nodes/{c}"), Some(json!({"content": "x", "version": 1})))
        .await;
    run.step("get updated", Method::GET, &format!("/api/v1/nodes/{c}"), None).await;
    run.step("link", Method::POST, "/api/v1/edges", Some(json!({"sourceId": a, "targetId": b, "weight": 0.5}))).await;
    run.step("link", Method::POST, "/api/v1/edges", Some(json!({"sourceId": c, "targetId": a}))).await;
    run.step("duplicate link", Method::POST, "/api/v1/edges", Some(json!({"sourceId": b, "targetId": a}))).await;
    run.step("neighbors", Method::GET, &format!("/api/v1/nodes/{a}/neighbors"), None).await;
    run.step("neighbors again", Method::GET, &format!("/api/v1/nodes/{a}/neighbors"), None).await;
    run.step("search", Method::GET, "/api/v1/search?keyword=valley", None).await;
    run.step("graph", Method::GET, "/api/v1/graph-data", None).await;
    run.step("graph again", Method::GET, "/api/v1/graph-data", None).await;
    run.step("page 1", Method::GET, "/api/v1/nodes?limit=2", None).await;
    let bulk: Vec<Value> = (0..12)
        .map(|i| json!({"content": if i == 5 { " ".to_owned() } else { format!("Bulk note {i} about valleys and rivers") }}))
        .collect();
    let created = run.step("bulk create", Method::POST, "/api/v1/nodes/bulk", Some(json!({"nodes": bulk}))).await;
    let bulk_ids: Vec<String> =
        created["created"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap().to_owned()).collect();
    run.step("link bulk", Method::POST, "/api/v1/edges", Some(json!({"sourceId": bulk_ids[0], "targetId": b}))).await;
    run.step("list all", Method::GET, "/api/v1/nodes?limit=200", None).await;
    run.step("graph after bulk", Method::GET, "/api/v1/graph-data", None).await;
    let doomed = json!({"nodeIds": [bulk_ids[0], bulk_ids[1], b, "not-an-id", uuid::Uuid::now_v7().to_string()]});
    run.step("bulk delete", Method::DELETE, "/api/v1/nodes/bulk", Some(doomed)).await;
    run.step("delete", Method::DELETE, &format!("/api/v1/nodes/{c}"), None).await;
    run.step("get deleted", Method::GET, &format!("/api/v1/nodes/{b}"), None).await;
    run.step("neighbors of deleted", Method::GET, &format!("/api/v1/nodes/{b}/neighbors"), None).await;
    run.step("link to deleted", Method::POST, "/api/v1/edges", Some(json!({"sourceId": a, "targetId": c}))).await;
    run.step("neighbors after", Method::GET, &format!("/api/v1/nodes/{a}/neighbors"), None).await;
    run.step("search after", Method::GET, "/api/v1/search?keyword=rivers", None).await;
    run.step("list after", Method::GET, "/api/v1/nodes?limit=200", None).await;
    run.step("graph after delete", Method::GET, "/api/v1/graph-data", None).await;
    run.transcript
}

fn profile_settings(flags: Flags) -> Settings {
    let mut settings = settings_with(&["--expose-costs=on"]);
    settings.flags = flags.into();
    settings
}

#[tokio::test]
async fn every_profile_answers_the_same_in_the_same_order() {
    let baseline = scripted_workload(&TestApp::spawn_with(profile_settings(Flags::BASELINE)).await).await;
    assert!(baseline.iter().any(|(_, status, _)| *status == 409), "the workload exercises conflicts");
    let mut profiles = vec![("optimized".to_owned(), Flags::OPTIMIZED)];
    for name in Flags::OPTIMIZED.entries().into_keys() {
        profiles.push((format!("only {name} off"), Flags::OPTIMIZED.with(name, false).unwrap()));
        profiles.push((format!("only {name} on"), Flags::BASELINE.with(name, true).unwrap()));
    }
    for (label, flags) in profiles {
        let transcript = scripted_workload(&TestApp::spawn_with(profile_settings(flags)).await).await;
        assert_eq!(transcript.len(), baseline.len());
        for (step, expected) in transcript.iter().zip(&baseline) {
            assert_eq!(step, expected, "profile {label} differs from baseline at step {:?}", expected.0);
        }
    }
}

async fn bulk_create(app: &TestApp, user: &str, count: usize) -> Vec<String> {
    let nodes: Vec<Value> =
        (0..count).map(|i| json!({"content": format!("Costed note {i} on tides and harbours")})).collect();
    let response = app.post(user, "/api/v1/nodes/bulk", json!({"nodes": nodes})).await;
    assert_eq!(response.status, StatusCode::CREATED);
    assert_eq!(response.body["failed"], json!([]));
    response.body["created"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap().to_owned()).collect()
}

fn operation_count(response: &TestResponse, operation: &str) -> u64 {
    let ops = response.header("x-brain2-aws-ops").expect("costs exposed");
    ops.split(',')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| *name == operation)
        .map_or(0, |(_, count)| count.parse().unwrap())
}

#[tokio::test]
async fn bulk_delete_of_one_hundred_costs_four_writes_instead_of_a_hundred_deletes() {
    for (flags, check) in [(Flags::OPTIMIZED, "optimized"), (Flags::BASELINE, "baseline")] {
        let app = TestApp::spawn_with(on_own_table(profile_settings(flags)).await).await;
        let user = unique_user();
        let ids = bulk_create(&app, &user, 100).await;
        let response = app.call(Method::DELETE, "/api/v1/nodes/bulk", Some(&user), Some(json!({"nodeIds": ids}))).await;
        assert_eq!(response.status, StatusCode::OK);
        assert_eq!(response.body["deleted"].as_array().unwrap().len(), 100);
        let total: u64 = response.header("x-brain2-aws-calls").unwrap().parse().unwrap();
        assert!(response.header("x-brain2-capacity").unwrap().parse::<f64>().unwrap() > 0.0);
        if check == "optimized" {
            // Tombstones are conditional writes, which BatchWriteItem cannot carry: 25 per
            // TransactWriteItems.
            assert!(
                operation_count(&response, "DynamoDB.TransactWriteItems") <= 4,
                "{:?}",
                response.header("x-brain2-aws-ops")
            );
            assert_eq!(operation_count(&response, "DynamoDB.DeleteItem"), 0);
            assert_eq!(operation_count(&response, "DynamoDB.UpdateItem"), 0);
            // One BatchGetItem to find the nodes, the rest is writing; events are not DynamoDB.
            let dynamodb = total - operation_count(&response, "EventBridge.PutEvents");
            assert!(dynamodb <= 5, "optimized bulk delete made {dynamodb} DynamoDB calls");
        } else {
            assert!(
                operation_count(&response, "DynamoDB.DeleteItem") >= 100,
                "{:?}",
                response.header("x-brain2-aws-ops")
            );
            assert_eq!(operation_count(&response, "DynamoDB.BatchWriteItem"), 0);
            assert!(total >= 200, "baseline bulk delete made only {total} calls");
        }
        app.run_cleanup().await;
        assert!(app.raw_items_of(&user).await.is_empty());
    }
}

#[tokio::test]
async fn graph_data_queries_instead_of_scanning() {
    for (flags, scans) in [(Flags::OPTIMIZED, 0), (Flags::BASELINE, 1)] {
        let app = TestApp::spawn_with(profile_settings(flags)).await;
        let user = unique_user();
        bulk_create(&app, &user, 3).await;
        let response = app.get(&user, "/api/v1/graph-data").await;
        assert_eq!(response.body["nodes"].as_array().unwrap().len(), 3);
        if scans == 0 {
            assert_eq!(operation_count(&response, "DynamoDB.Scan"), 0);
            assert_eq!(operation_count(&response, "DynamoDB.Query"), 1);
        } else {
            assert!(operation_count(&response, "DynamoDB.Scan") >= 1);
            assert_eq!(operation_count(&response, "DynamoDB.Query"), 0);
        }
    }
}

#[tokio::test]
async fn cached_second_reads_make_no_dynamodb_calls_until_a_write() {
    let app = TestApp::spawn_with(profile_settings(Flags::OPTIMIZED)).await;
    let user = unique_user();
    let ids = bulk_create(&app, &user, 2).await;
    let node_path = format!("/api/v1/nodes/{}", ids[0]);
    let first = app.get(&user, &node_path).await;
    assert_eq!(first.header("x-brain2-aws-calls"), Some("1"));
    let second = app.get(&user, &node_path).await;
    assert_eq!(second.header("x-brain2-aws-calls"), Some("0"));
    assert_eq!(second.body, first.body);
    assert_ne!(app.get(&user, "/api/v1/graph-data").await.header("x-brain2-aws-calls"), Some("0"));
    assert_eq!(app.get(&user, "/api/v1/graph-data").await.header("x-brain2-aws-calls"), Some("0"));
    let neighbors = format!("/api/v1/nodes/{}/neighbors", ids[0]);
    app.get(&user, &neighbors).await;
    assert_eq!(app.get(&user, &neighbors).await.header("x-brain2-aws-calls"), Some("0"));

    // A write of the user drops the cache: the next read sees it.
    let update = app.put(&user, &node_path, json!({"content": "Changed", "version": 1})).await;
    assert_eq!(update.status, StatusCode::OK);
    let after = app.get(&user, &node_path).await;
    assert_eq!(after.body["content"], "Changed");
    assert_eq!(after.header("x-brain2-aws-calls"), Some("1"));
    // Another user's read of the same id is never served from the first user's cache.
    app.get(&unique_user(), &node_path).await.assert_problem(404, "node-not-found");
}

/// With `client_reuse` off every request builds its clients and really uses them: each
/// request opens a connection of its own to DynamoDB, where reused clients keep one open.
#[tokio::test]
async fn client_reuse_off_opens_a_new_connection_for_every_request() {
    let user = unique_user();
    for (reuse, clients_built, connections) in [(true, "0", 1), (false, "1", 3)] {
        let proxy = EmulatorProxy::start().await;
        let flags = Flags::OPTIMIZED.with("client_reuse", reuse).unwrap().with("read_cache", false).unwrap();
        let app = TestApp::spawn_on(profile_settings(flags), proxy.dynamodb_factory()).await;
        for _ in 0..3 {
            let listed = app.get(&user, "/api/v1/nodes").await;
            assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
            assert_eq!(listed.header("x-brain2-clients-built"), Some(clients_built));
            assert_eq!(listed.header("x-brain2-aws-calls"), Some("1"));
        }
        assert_eq!(proxy.accepted(), connections, "connections to DynamoDB for 3 requests, client_reuse={reuse}");
    }
}

#[tokio::test]
async fn compression_honours_accept_encoding_above_one_kilobyte() {
    let user = unique_user();
    for (flags, compressed) in [(Flags::OPTIMIZED, true), (Flags::BASELINE, false)] {
        let app = TestApp::spawn_with(profile_settings(flags)).await;
        bulk_create(&app, &user, 20).await;
        let request = |encoding: Option<&str>| {
            let mut builder = Request::builder()
                .uri("/api/v1/graph-data")
                .header("authorization", format!("Bearer {}", token(&user)));
            if let Some(encoding) = encoding {
                builder = builder.header("accept-encoding", encoding);
            }
            builder.body(axum::body::Body::empty()).unwrap()
        };
        let plain = app.send(request(None)).await;
        assert!(plain.header("content-encoding").is_none());
        let response = app.router.clone();
        let raw = tower::ServiceExt::oneshot(response, request(Some("gzip"))).await.unwrap();
        let encoding = raw.headers().get("content-encoding").map(|v| v.to_str().unwrap().to_owned());
        let bytes = http_body_util::BodyExt::collect(raw.into_body()).await.unwrap().to_bytes();
        let body: Value = if compressed {
            assert_eq!(encoding.as_deref(), Some("gzip"));
            let mut text = String::new();
            flate2::read::GzDecoder::new(&bytes[..]).read_to_string(&mut text).unwrap();
            serde_json::from_str(&text).unwrap()
        } else {
            assert_eq!(encoding, None);
            serde_json::from_slice(&bytes).unwrap()
        };
        assert_eq!(body, plain.body);
        // Small answers are not worth compressing.
        let small = Request::builder()
            .uri("/api/v1/health")
            .header("accept-encoding", "gzip")
            .body(axum::body::Body::empty())
            .unwrap();
        assert!(app.send(small).await.header("content-encoding").is_none());
    }
}

#[tokio::test]
async fn simulated_round_trips_add_latency_to_every_call() {
    let app = TestApp::spawn_with(settings_with(&["--sim-rtt-ms=40", "--expose-costs=on"])).await;
    let user = unique_user();
    let started = std::time::Instant::now();
    let response = app.get(&user, "/api/v1/nodes").await;
    // A lower bound only: one call with a 40 ms round trip cannot take less than 40 ms.
    assert!(started.elapsed() >= std::time::Duration::from_millis(40));
    assert_eq!(response.header("x-brain2-aws-calls"), Some("1"));
}

/// With faults injected, every item of a bulk request ends in its intended state or is
/// reported as failed; nothing is silently lost.
#[tokio::test]
async fn bulk_writes_under_faults_lose_nothing() {
    let verifier = TestApp::spawn_with(profile_settings(Flags::OPTIMIZED.with("read_cache", false).unwrap())).await;
    for (seed, flags) in
        [(11, Flags::OPTIMIZED), (12, Flags::BASELINE), (13, Flags::OPTIMIZED.with("soft_delete", false).unwrap())]
    {
        let faults = format!("throttle=0.1,unprocessed=0.3,putevents_fail=0.2,seed={seed}");
        let mut settings = settings_with(&["--faults", &faults]);
        settings.flags = flags.into();
        let app = TestApp::spawn_with(settings).await;
        let user = unique_user();
        let nodes: Vec<Value> =
            (0..100).map(|i| json!({"content": format!("Faulty note {i} about lighthouses")})).collect();
        let created = app.post(&user, "/api/v1/nodes/bulk", json!({"nodes": nodes})).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        let created_ids: Vec<String> =
            created.body["created"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap().to_owned()).collect();
        let failed_indices: Vec<u64> =
            created.body["failed"].as_array().unwrap().iter().map(|f| f["index"].as_u64().unwrap()).collect();
        assert_eq!(created_ids.len() + failed_indices.len(), 100, "every item accounted for");
        for id in &created_ids {
            let fetched = verifier.get(&user, &format!("/api/v1/nodes/{id}")).await;
            assert_eq!(fetched.status, StatusCode::OK, "created node {id} is stored");
        }
        let listed = verifier.get(&user, "/api/v1/nodes?limit=200").await;
        assert_eq!(listed.body["items"].as_array().unwrap().len(), created_ids.len(), "no failed node is visible");
        let searched = verifier.get(&user, "/api/v1/search?keyword=lighthouses&limit=200").await;
        assert_eq!(searched.body["items"].as_array().unwrap().len(), created_ids.len(), "every node is searchable");

        let deleted =
            app.call(Method::DELETE, "/api/v1/nodes/bulk", Some(&user), Some(json!({"nodeIds": created_ids}))).await;
        assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
        let deleted_ids: Vec<&str> =
            deleted.body["deleted"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
        let kept: Vec<&str> =
            deleted.body["failed"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap()).collect();
        assert_eq!(deleted_ids.len() + kept.len(), created_ids.len(), "every id accounted for");
        for id in &deleted_ids {
            verifier.get(&user, &format!("/api/v1/nodes/{id}")).await.assert_problem(404, "node-not-found");
        }
        for id in &kept {
            assert_eq!(verifier.get(&user, &format!("/api/v1/nodes/{id}")).await.status, StatusCode::OK);
        }
    }
}
