//! `/graph-data` in pages: each page holds at most `limit` nodes and the edges that start
//! from them, `nextCursor` leads to the next, and all pages together are the whole graph
//! with each edge once, on the Query path and on the baseline's Scan alike.

use std::collections::{BTreeSet, HashSet};

use brain2::flags::Flags;
use http::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestApp, settings_with, unique_user};

fn app_settings(flags: Flags) -> brain2::bootstrap::Settings {
    let mut settings = settings_with(&["--expose-costs=on"]);
    settings.flags = flags.into();
    settings
}

async fn bulk_create(app: &TestApp, user: &str, count: usize) -> Vec<String> {
    let nodes: Vec<Value> = (0..count).map(|i| json!({"content": format!("Paged note {i} about rivers")})).collect();
    let response = app.post(user, "/api/v1/nodes/bulk", json!({"nodes": nodes})).await;
    assert_eq!(response.status, StatusCode::CREATED, "{}", response.body);
    assert_eq!(response.body["failed"], json!([]));
    response.body["created"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap().to_owned()).collect()
}

/// Every page from the first, with `limit` nodes at most each.
async fn all_pages(app: &TestApp, user: &str, limit: usize) -> Vec<Value> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/api/v1/graph-data?limit={limit}&cursor={cursor}"),
            None => format!("/api/v1/graph-data?limit={limit}"),
        };
        let page = app.get(user, &path).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(page.body["nodes"].as_array().unwrap().len() <= limit, "a page over its limit: {}", page.body);
        cursor = page.body["nextCursor"].as_str().map(str::to_owned);
        pages.push(page.body);
        if cursor.is_none() {
            return pages;
        }
        assert!(pages.len() < 1_000, "the pages never end");
    }
}

fn edge_pair(edge: &Value) -> (String, String) {
    (edge["sourceId"].as_str().unwrap().to_owned(), edge["targetId"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn pages_together_hold_every_node_once_and_every_edge_once() {
    for flags in [Flags::OPTIMIZED, Flags::BASELINE] {
        let app = TestApp::spawn_with(app_settings(flags)).await;
        let user = unique_user();
        let ids = bulk_create(&app, &user, 25).await;
        // Edges both ways between ids, so that many of them start on one page and end on another.
        let mut edges = BTreeSet::new();
        for i in 0..25 {
            let (source, target) = (&ids[i], &ids[(i * 7 + 3) % 25]);
            if source == target || edges.contains(&(target.clone(), source.clone())) {
                continue;
            }
            let created = app.post(&user, "/api/v1/edges", json!({"sourceId": source, "targetId": target})).await;
            assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
            edges.insert((source.clone(), target.clone()));
        }

        let pages = all_pages(&app, &user, 7).await;
        assert!(pages.len() >= 4, "25 nodes in pages of 7: {} pages", pages.len());
        let nodes: Vec<String> = pages
            .iter()
            .flat_map(|page| page["nodes"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap().to_owned()))
            .collect();
        assert_eq!(nodes.len(), 25, "no node twice");
        assert_eq!(nodes.iter().collect::<HashSet<_>>(), ids.iter().collect::<HashSet<_>>(), "every node");
        let paged_edges: Vec<(String, String)> =
            pages.iter().flat_map(|page| page["edges"].as_array().unwrap().iter().map(edge_pair)).collect();
        assert_eq!(paged_edges.len(), edges.len(), "no edge twice");
        assert_eq!(paged_edges.into_iter().collect::<BTreeSet<_>>(), edges, "every edge, as created");
        // An edge is on the page of the node it starts from.
        for page in &pages {
            let on_page: HashSet<&str> =
                page["nodes"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap()).collect();
            for edge in page["edges"].as_array().unwrap() {
                assert!(on_page.contains(edge["sourceId"].as_str().unwrap()), "{edge} is not under its source");
            }
        }
    }
}

#[tokio::test]
async fn the_default_page_size_is_documented_and_bounded() {
    let app = TestApp::spawn().await;
    let user = unique_user();
    bulk_create(&app, &user, 100).await;
    bulk_create(&app, &user, 5).await;
    let first = app.get(&user, "/api/v1/graph-data").await;
    assert_eq!(first.body["nodes"].as_array().unwrap().len(), 100, "a page holds 100 nodes unless asked otherwise");
    let cursor = first.body["nextCursor"].as_str().expect("more than one page");
    let second = app.get(&user, &format!("/api/v1/graph-data?cursor={cursor}")).await;
    assert_eq!(second.body["nodes"].as_array().unwrap().len(), 5);
    assert_eq!(second.body["nextCursor"], Value::Null);
    for limit in ["0", "501", "-1", "many"] {
        let response = app.get(&user, &format!("/api/v1/graph-data?limit={limit}")).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "limit={limit}: {}", response.body);
    }
    app.get(&user, "/api/v1/graph-data?limit=500").await;
}

#[tokio::test]
async fn a_cursor_is_checked_and_never_leads_into_another_users_graph() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (unique_user(), unique_user());
    bulk_create(&app, &alice, 6).await;
    for bad in ["not-a-cursor", "Zzpub3QtYW4taWQ", "MTcwMDAwMDAwMDAwMDo"] {
        app.get(&alice, &format!("/api/v1/graph-data?cursor={bad}")).await.assert_problem(400, "invalid-cursor");
    }
    let first = app.get(&alice, "/api/v1/graph-data?limit=2").await;
    let cursor = first.body["nextCursor"].as_str().unwrap();
    // Sealed for alice: refused for bob before anything is read.
    let stolen = app.get(&bob, &format!("/api/v1/graph-data?limit=2&cursor={cursor}")).await;
    stolen.assert_problem(400, "invalid-cursor");
    // A listing cursor of alice's own is no graph cursor either.
    let listing = app.get(&alice, "/api/v1/nodes?limit=2").await;
    let listing_cursor = listing.body["nextCursor"].as_str().unwrap();
    app.get(&alice, &format!("/api/v1/graph-data?cursor={listing_cursor}")).await.assert_problem(400, "invalid-cursor");
    let second = app.get(&alice, &format!("/api/v1/graph-data?limit=2&cursor={cursor}")).await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(second.body["nodes"].as_array().unwrap().len(), 2, "the cursor still serves its own user");
}

#[tokio::test]
async fn an_edge_to_a_deleted_node_on_another_page_is_in_no_page() {
    let app = TestApp::spawn().await;
    let user = unique_user();
    let ids = bulk_create(&app, &user, 4).await;
    for target in &ids[1..] {
        let created = app.post(&user, "/api/v1/edges", json!({"sourceId": ids[0], "targetId": target})).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    }
    let gone = &ids[3];
    assert_eq!(app.delete(&user, &format!("/api/v1/nodes/{gone}")).await.status, StatusCode::NO_CONTENT);
    let pages = all_pages(&app, &user, 1).await;
    let edges: Vec<(String, String)> =
        pages.iter().flat_map(|page| page["edges"].as_array().unwrap().iter().map(edge_pair)).collect();
    assert_eq!(edges.len(), 2, "{edges:?}");
    assert!(edges.iter().all(|(source, target)| source != gone && target != gone), "{edges:?}");
}

#[tokio::test]
async fn the_first_page_reads_a_few_items_not_the_partition_and_is_cached() {
    let app = TestApp::spawn_with(app_settings(Flags::OPTIMIZED)).await;
    let user = unique_user();
    for _ in 0..3 {
        bulk_create(&app, &user, 100).await;
    }
    let first = app.get(&user, "/api/v1/graph-data?limit=10").await;
    assert_eq!(first.body["nodes"].as_array().unwrap().len(), 10);
    assert_eq!(first.header("x-brain2-aws-ops"), Some("DynamoDB.Query=1"), "one Query call");
    let capacity: f64 = first.header("x-brain2-capacity").and_then(|c| c.parse().ok()).unwrap_or(0.0);
    let whole = app.get(&user, "/api/v1/graph-data?limit=500").await;
    let whole_capacity: f64 = whole.header("x-brain2-capacity").and_then(|c| c.parse().ok()).unwrap_or(0.0);
    assert!(capacity < whole_capacity, "the first page read {capacity} units, the whole graph {whole_capacity}");
    let again = app.get(&user, "/api/v1/graph-data?limit=10").await;
    assert_eq!(again.header("x-brain2-aws-calls"), Some("0"), "the first page comes from the read cache");
    assert_eq!(again.body, first.body);
}
