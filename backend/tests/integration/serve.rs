//! One real TCP round trip through the `brain2` binary: `serve`, `token`, graceful stop.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{TEST_SECRET, stack, unique_user};

const BINARY: &str = env!("CARGO_BIN_EXE_brain2");

fn brain2(args: &[&str]) -> Command {
    let stack = stack();
    let mut command = Command::new(BINARY);
    command
        .args(args)
        .env("AWS_ENDPOINT_URL_DYNAMODB", stack.endpoints.dynamodb.as_deref().unwrap())
        .env("AWS_ENDPOINT_URL_EVENTBRIDGE", stack.endpoints.eventbridge.as_deref().unwrap())
        .env("AWS_ENDPOINT_URL_SQS", stack.endpoints.sqs.as_deref().unwrap())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("BRAIN2_TABLE", &stack.table)
        .env("BRAIN2_EVENT_BUS", &stack.bus)
        .env("BRAIN2_JWT_SECRET", TEST_SECRET);
    command
}

/// Kills the server if the test fails before stopping it, so no process outlives the test.
struct ServerGuard(Option<std::process::Child>);

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

#[tokio::test]
async fn serve_answers_over_tcp_and_stops_gracefully() {
    let port = free_port();
    let mut guard = ServerGuard(Some(
        brain2(&["serve", "--port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("brain2 serve starts"),
    ));
    let server = guard.0.as_mut().unwrap();
    let base = format!("http://127.0.0.1:{port}/api/v1");
    let client = reqwest::Client::new();

    // Wait until it listens (bounded; a slow machine only makes this take longer).
    let deadline = Instant::now() + Duration::from_secs(60);
    let health: Value = loop {
        if let Ok(response) = client.get(format!("{base}/health")).send().await {
            break response.json().await.unwrap();
        }
        assert!(Instant::now() < deadline, "brain2 serve never answered");
        assert!(server.try_wait().unwrap().is_none(), "brain2 serve exited early");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(health["status"], "up");

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
    let pid = i32::try_from(server.id()).unwrap();
    // SAFETY: `kill` with a valid pid and signal number has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let mut server = guard.0.take().unwrap();
    let status = tokio::task::spawn_blocking(move || server.wait()).await.unwrap().unwrap();
    assert!(status.success(), "graceful shutdown exits cleanly: {status}");
}

#[test]
fn token_refuses_an_invalid_user() {
    let output = brain2(&["token", "--user", "a#b"]).output().unwrap();
    assert!(!output.status.success());
}
