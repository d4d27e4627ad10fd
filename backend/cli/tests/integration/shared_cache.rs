//! The two cache tiers across instances: several apps (each with its own in-process
//! cache, as separate processes or Lambda instances have) on one table and one real
//! redis-server. With the shared tier a write through one instance is read at once through
//! every other; with memory alone the others answer what they cached before, up to the
//! time-to-live. A cache that dies fails no request, and is used again once it is back.

use std::time::{Duration, Instant};

use brain2::app::health::Status;
use brain2::flags::Flags;
use brain2_devstack::CacheServer;
use serde_json::{Value, json};

use crate::support::{TestApp, settings_with, stack, unique_user};

/// Instances with every optimisation on, the shared tier at `cache_url` (none: memory only).
async fn instances(count: usize, cache_url: Option<&str>) -> Vec<TestApp> {
    let mut apps = Vec::with_capacity(count);
    for _ in 0..count {
        let mut settings = settings_with(&["--expose-costs=on", "--health-report-seconds=0"]);
        settings.flags = Flags::OPTIMIZED.with("shared_cache", cache_url.is_some()).unwrap().into();
        settings.adapters.shared_cache.cache_url = cache_url.map(str::to_owned);
        apps.push(TestApp::spawn_with(settings).await);
    }
    apps
}

fn repository() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The shared cache of a test: the stack's redis-server, or one of the test's own on a
/// stack given by the environment without one (the stack deployed to LocalStack). The
/// server, when it is the test's, stops when the value is dropped.
fn shared_cache() -> (String, Option<CacheServer>) {
    match stack().aws.cache_url() {
        Some(url) => (url, None),
        None => {
            let server = CacheServer::start(&repository()).expect("redis-server starts (run `make tools`)");
            (server.url(), Some(server))
        }
    }
}

/// GET `path`: the body, and how many AWS calls the answer cost.
async fn read(app: &TestApp, user: &str, path: &str) -> (Value, String) {
    let response = app.get(user, path).await;
    assert_eq!(response.status, 200, "{}", response.body);
    let calls = response.header("x-brain2-aws-calls").expect("costs are exposed").to_owned();
    (response.body, calls)
}

async fn update(app: &TestApp, user: &str, path: &str, content: &str, version: u64) {
    let updated = app.put(user, path, json!({"content": content, "version": version})).await;
    assert_eq!(updated.status, 200, "{}", updated.body);
}

#[tokio::test]
async fn a_write_through_one_instance_is_read_at_once_through_the_others_with_the_shared_cache() {
    let (url, _own_server) = shared_cache();
    let apps = instances(3, Some(&url)).await;
    let (first, second, third) = (&apps[0], &apps[1], &apps[2]);
    let user = &unique_user();
    let node = first.create_node(user, "Tide tables for the northern harbour").await;
    let path = format!("/api/v1/nodes/{}", node["id"].as_str().unwrap());

    // The second instance reads from the table and fills both tiers; the third finds the
    // entry in the shared tier, and then in its own memory.
    assert_eq!(read(second, user, &path).await.1, "1");
    assert_eq!(read(third, user, &path).await.1, "0", "served by the shared tier");
    assert_eq!(read(third, user, &path).await.1, "0");

    for version in 1..=3 {
        let content = format!("Tide tables, revision {version}");
        update(first, user, &path, &content, version).await;
        for other in [second, third] {
            let (body, _) = read(other, user, &path).await;
            assert_eq!(body["content"], content.as_str(), "a read right after the write sees it");
            assert_eq!(body["version"], version + 1);
        }
        // What did not change since is answered without the table again.
        assert_eq!(read(second, user, &path).await.1, "0");
    }

    // The graph and the neighbours follow an edge drawn through the third instance.
    let other = first.create_node(user, "Harbour pilots and their boats").await;
    let (graph, _) = read(second, user, "/api/v1/graph-data").await;
    assert_eq!(graph["edges"].as_array().unwrap().len(), 0);
    let neighbours_path = format!("{path}/neighbors");
    assert_eq!(read(second, user, &neighbours_path).await.0["neighbors"].as_array().map(Vec::len), Some(0));
    let edge = json!({"sourceId": node["id"], "targetId": other["id"]});
    assert_eq!(third.post(user, "/api/v1/edges", edge).await.status, 201);
    let (graph, _) = read(second, user, "/api/v1/graph-data").await;
    assert_eq!(graph["edges"].as_array().unwrap().len(), 1, "{graph}");
    assert_eq!(read(first, user, &neighbours_path).await.0["neighbors"].as_array().map(Vec::len), Some(1));
}

/// The stale window the shared tier closes, shown rather than hidden: with memory alone,
/// an instance answers what it cached before another instance's write.
#[tokio::test]
async fn with_memory_alone_another_instance_answers_what_it_cached_before_the_write() {
    let apps = instances(2, None).await;
    let (writer, reader) = (&apps[0], &apps[1]);
    let user = &unique_user();
    let node = writer.create_node(user, "Lighthouse keepers' logbooks").await;
    let path = format!("/api/v1/nodes/{}", node["id"].as_str().unwrap());
    assert_eq!(read(reader, user, &path).await.0["version"], 1);

    update(writer, user, &path, "Lighthouse keepers' logbooks, transcribed", 1).await;
    let (stale, calls) = read(reader, user, &path).await;
    assert_eq!(stale["version"], 1, "memory alone answers the version it cached");
    assert_eq!(calls, "0");
    assert_eq!(read(writer, user, &path).await.0["version"], 2, "the writer itself reads its write");
}

/// Reads through `app` until an answer costs no AWS call, for at most a minute: after the
/// cache's restart the pool reconnects, and the breaker lets a probe through.
async fn until_cached(app: &TestApp, user: &str, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while read(app, user, path).await.1 != "0" {
        assert!(Instant::now() < deadline, "reads were never cached again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn the_shared_cache_killed_mid_workload_fails_no_request_and_is_used_again_once_back() {
    let mut server = CacheServer::start(&repository()).expect("redis-server starts (run `make tools`)");
    let url = server.url();
    let apps = instances(2, Some(&url)).await;
    let (writer, reader) = (&apps[0], &apps[1]);
    let user = &unique_user();
    let node = writer.create_node(user, "Salt marsh birds in winter").await;
    let path = format!("/api/v1/nodes/{}", node["id"].as_str().unwrap());
    read(reader, user, &path).await;
    assert_eq!(read(writer, user, &path).await.1, "0", "the writer is served by the shared tier");

    server.kill();
    for version in 1..=3 {
        let content = format!("Salt marsh birds, count {version}");
        update(writer, user, &path, &content, version).await;
        for app in [reader, writer] {
            let (body, _) = read(app, user, &path).await;
            assert_eq!(body["content"], content.as_str(), "right answers while the cache is down");
        }
    }
    let report = reader.adapters.health.report().await;
    assert_eq!(report.status, Status::Degraded, "{report:?}");
    let cache = report.components.iter().find(|component| component.name == "cache").expect("a cache component");
    assert_eq!(cache.status, Status::Down);

    server.restart().expect("redis-server starts again");
    // Both instances use the cache again (the writer makes the generation changes it owes
    // first), and what it holds is right.
    until_cached(reader, user, &path).await;
    until_cached(writer, user, &path).await;
    assert_eq!(read(reader, user, &path).await.0["version"], 4);
    update(writer, user, &path, "Salt marsh birds, final count", 4).await;
    let (body, calls) = read(reader, user, &path).await;
    assert_eq!((body["content"].as_str(), calls.as_str()), (Some("Salt marsh birds, final count"), "1"));
    assert_eq!(read(writer, user, &path).await.1, "0", "the reader's fill serves the writer: the shared tier is back");
    assert_eq!(reader.adapters.health.report().await.status, Status::Up);
}

#[tokio::test]
async fn no_entry_of_one_user_is_readable_by_another_through_either_tier() {
    let (url, _own_server) = shared_cache();
    let apps = instances(2, Some(&url)).await;
    let (owner, stranger) = (&unique_user(), &unique_user());
    let node = apps[0].create_node(owner, "Private diary: the orchard in spring").await;
    let id = node["id"].as_str().unwrap();
    let paths = [format!("/api/v1/nodes/{id}"), format!("/api/v1/nodes/{id}/neighbors")];
    for path in &paths {
        // The owner's reads fill both tiers on both instances.
        read(&apps[0], owner, path).await;
        read(&apps[1], owner, path).await;
    }
    for app in &apps {
        for path in &paths {
            app.get(stranger, path).await.assert_problem(404, "node-not-found");
        }
        let (graph, _) = read(app, stranger, "/api/v1/graph-data").await;
        assert_eq!(graph["nodes"].as_array().unwrap().len(), 0, "{graph}");
    }
}
