//! One real TCP round trip through the `brain2` binary: `serve`, `token`, graceful stop.

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{TEST_CACHE_TIMEOUT_MS, TEST_SECRET, health_components, stack, unique_user};

const BINARY: &str = env!("CARGO_BIN_EXE_brain2");

pub fn brain2(args: &[&str]) -> Command {
    let stack = stack();
    let mut command = Command::new(BINARY);
    command
        .args(args)
        .envs(stack.aws.environment())
        .env("BRAIN2_TABLE", &stack.table)
        .env("BRAIN2_EVENT_BUS", &stack.bus)
        .env("BRAIN2_JWT_SECRET", TEST_SECRET)
        .env("BRAIN2_CACHE_TIMEOUT_MS", TEST_CACHE_TIMEOUT_MS);
    command
}

/// Kills the server if the test fails before stopping it, so no process outlives the test.
pub struct ServerGuard(pub Option<std::process::Child>);

impl Drop for ServerGuard {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running `brain2 serve` on a free port, once it answers its health check.
pub struct Server {
    pub guard: ServerGuard,
    pub base: String,
}

async fn start_server(extra: &[&str]) -> Server {
    start_server_with(extra, &[]).await
}

/// [`start_server`] with extra environment variables (later ones win).
pub async fn start_server_with(extra: &[&str], environment: &[(&str, &str)]) -> Server {
    let port = free_port().to_string();
    let mut args = vec!["serve", "--port", &port];
    args.extend_from_slice(extra);
    let mut command = brain2(&args);
    // As in-process apps (`support::optimized`): the process's own publisher, unless the
    // options choose (`--event-delivery` wins over the environment).
    command.env("BRAIN2_EVENT_DELIVERY", "background");
    command.envs(environment.iter().copied()).stdout(Stdio::null()).stderr(Stdio::null());
    let mut guard = ServerGuard(Some(command.spawn().expect("brain2 serve starts")));
    let base = format!("http://127.0.0.1:{port}/api/v1");
    // Wait until it listens (bounded; a slow machine only makes this take longer).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(response) = reqwest::get(format!("{base}/health")).await {
            let health: Value = response.json().await.unwrap();
            assert_eq!(health["status"], "up");
            break;
        }
        assert!(Instant::now() < deadline, "brain2 serve never answered");
        assert!(guard.0.as_mut().unwrap().try_wait().unwrap().is_none(), "brain2 serve exited early");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Server { guard, base }
}

/// `POST /nodes/bulk` through the socket, asserted created.
pub async fn bulk_create_over_tcp(base: &str, user: &str, notes: Vec<Value>) -> reqwest::Response {
    let created = reqwest::Client::new()
        .post(format!("{base}/nodes/bulk"))
        .bearer_auth(crate::support::token(user))
        .json(&json!({"nodes": notes}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    created
}

#[tokio::test]
async fn serve_answers_over_tcp_and_stops_gracefully() {
    let Server { mut guard, base } = start_server(&[]).await;
    let client = reqwest::Client::new();

    let user = unique_user();
    let output = brain2(&["token", "--user", &user]).output().unwrap();
    assert!(output.status.success());
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();

    let created = client
        .post(format!("{base}/nodes"))
        .bearer_auth(&token)
        .json(&json!({"content": "Served over a real socket"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert!(created.headers().contains_key("x-correlation-id"));
    let node: Value = created.json().await.unwrap();
    let fetched: Value = client
        .get(format!("{base}/nodes/{}", node["id"].as_str().unwrap()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fetched, node);

    // SIGTERM, as Lambda, systemd or a container runtime would send it.
    let pid = i32::try_from(guard.0.as_ref().unwrap().id()).unwrap();
    // SAFETY: `kill` with a valid pid and signal number has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let mut server = guard.0.take().unwrap();
    let status = tokio::task::spawn_blocking(move || server.wait()).await.unwrap().unwrap();
    assert!(status.success(), "graceful shutdown exits cleanly: {status}");
}

/// SIGTERM while the background publisher still holds events: with every AWS call slowed to
/// 300 ms, the events of a bulk create are still queued or in flight when the signal
/// arrives, and the process sends them all before it exits.
#[tokio::test]
async fn a_terminated_server_publishes_every_queued_event_before_it_exits() {
    let app = crate::support::TestApp::spawn().await;
    let user = unique_user();
    let queue = crate::support::user_queue(&app, &user, &[]).await;
    let Server { mut guard, base } = start_server(&["--sim-rtt-ms=300"]).await;

    let notes: Vec<Value> =
        (0..25).map(|i| json!({"content": format!("Note {i} written just before a shutdown")})).collect();
    let created = bulk_create_over_tcp(&base, &user, notes).await;
    let created: Value = created.json().await.unwrap();
    let ids: HashSet<String> =
        created["created"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), 25);

    let pid = i32::try_from(guard.0.as_ref().unwrap().id()).unwrap();
    // SAFETY: `kill` with a valid pid and signal number has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let mut server = guard.0.take().unwrap();
    let status = tokio::task::spawn_blocking(move || server.wait()).await.unwrap().unwrap();
    assert!(status.success(), "graceful shutdown exits cleanly: {status}");

    let arrived = crate::support::take_distinct_events(&app, &queue, 25).await;
    // At least once: a retried call may deliver an event twice, under the same event id.
    let announced: HashSet<String> =
        arrived.iter().map(|m| m["detail"]["aggregateId"].as_str().unwrap().to_owned()).collect();
    assert_eq!(announced, ids, "a node.created for every note");
    let event_ids: HashSet<&str> = arrived.iter().map(|m| m["detail"]["eventId"].as_str().unwrap()).collect();
    assert_eq!(event_ids.len(), 25, "one event id per note: duplicates only repeat an id");
}

#[test]
fn token_refuses_an_invalid_user() {
    let output = brain2(&["token", "--user", "a#b"]).output().unwrap();
    assert!(!output.status.success());
}

/// The value of a Prometheus sample whose name and labels are as given (0 when absent).
fn sample(exposition: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.rsplit_once(' '))
        .filter(|(series, _)| series.split('{').next() == Some(name))
        .filter(|(series, _)| labels.iter().all(|(key, value)| series.contains(&format!("{key}=\"{value}\""))))
        .map(|(_, value)| value.parse::<f64>().unwrap())
        .sum()
}

#[tokio::test]
async fn metrics_endpoint_counts_the_background_put_events_of_a_bulk_create() {
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let server = start_server(&["--metrics-addr", &metrics_addr, "--expose-costs=on"]).await;
    let metrics_url = format!("http://{metrics_addr}/metrics");
    let scrape = || async { reqwest::get(&metrics_url).await.unwrap().text().await.unwrap() };
    let put_events = [("service", "EventBridge"), ("operation", "PutEvents")];
    let before = sample(&scrape().await, "brain2_aws_calls_total", &put_events);

    let user = unique_user();
    let notes: Vec<Value> = (0..25).map(|i| json!({"content": format!("Metered note {i} about tides")})).collect();
    let created = bulk_create_over_tcp(&server.base, &user, notes).await;
    let request_path = created.headers()["x-brain2-aws-ops"].to_str().unwrap().to_owned();
    assert!(!request_path.contains("PutEvents"), "the request waited for PutEvents: {request_path}");

    // 25 events leave in calls of at most 10 entries, off the request path: at least 3
    // calls, which only the process-wide metrics can see.
    // A call is counted when it starts, an event as published when EventBridge answered.
    let delivered = |exposition: &str| {
        sample(exposition, "brain2_aws_calls_total", &put_events) - before >= 3.0
            && sample(exposition, "brain2_events_published_total", &[]) >= 25.0
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let exposition = loop {
        let exposition = scrape().await;
        if delivered(&exposition) || Instant::now() > deadline {
            break exposition;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(sample(&exposition, "brain2_aws_calls_total", &put_events) - before >= 3.0, "{exposition}");
    assert!(sample(&exposition, "brain2_events_published_total", &[]) >= 25.0, "{exposition}");
    let bulk_route = [("route", "/api/v1/nodes/bulk"), ("method", "POST"), ("status", "201")];
    assert_eq!(sample(&exposition, "brain2_http_requests_total", &bulk_route), 1.0, "{exposition}");
    let writes = [("service", "DynamoDB"), ("operation", "BatchWriteItem")];
    assert!(sample(&exposition, "brain2_aws_calls_total", &writes) >= 1.0, "{exposition}");
}

/// The public `/health` tells an anonymous caller whether the service is up and nothing
/// more; the loopback operator listener shows the whole report without a token.
#[tokio::test]
async fn health_details_are_on_the_loopback_listener_not_the_public_port() {
    let metrics_addr = format!("127.0.0.1:{}", free_port());
    let server = start_server(&["--metrics-addr", &metrics_addr]).await;
    let public: Value = reqwest::get(format!("{}/health", server.base)).await.unwrap().json().await.unwrap();
    assert_eq!(public, json!({"status": "up"}));
    let operator = reqwest::get(format!("http://{metrics_addr}/health")).await.unwrap();
    assert_eq!(operator.status(), 200);
    let operator: Value = operator.json().await.unwrap();
    assert_eq!(operator["status"], "up");
    let components: Vec<&str> =
        operator["components"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(components, health_components());
    assert_eq!(operator["flags"]["soft_delete"], true, "{operator}");
}

#[test]
fn metrics_listener_refuses_a_public_address() {
    let output =
        brain2(&["serve", "--port", &free_port().to_string(), "--metrics-addr", "0.0.0.0:0"]).output().unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("loopback"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn serve_refuses_the_development_secret_on_an_address_others_can_reach() {
    let port = free_port().to_string();
    let output =
        brain2(&["serve", "--port", &port, "--bind", "0.0.0.0"]).env_remove("BRAIN2_JWT_SECRET").output().unwrap();
    assert!(!output.status.success(), "brain2 serve started on 0.0.0.0 with the development secret");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("development secret") && stderr.contains("BRAIN2_JWT_SECRET"), "{stderr}");
}
