//! Shared test harness: one set of emulators per test binary (or the endpoints given
//! in the environment), one table and bus per binary, and a fresh app per test. Tests are
//! isolated by unique user ids; a test that sweeps the deletion queue (which holds every
//! user's tombstones) gets a table of its own.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body;
use brain2::adapters::aws::{AwsClients, ClientFactory, EndpointOverrides, SdkSource};
use brain2::adapters::dynamodb::schema::ensure_table;
use brain2::bootstrap::{self, Settings};
use brain2::domain::UserId;
use brain2::flags::{EventDelivery, Flags, Profile};
use brain2_cli::token;
use brain2_devstack::LocalAws;
use http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

pub const TEST_SECRET: &str = "integration-test-secret-integration-test-secret";
/// The longest wait for one shared-cache command in tests (see `settings_with`).
pub const TEST_CACHE_TIMEOUT_MS: &str = "2000";

pub struct SharedStack {
    pub aws: LocalAws,
    pub table: String,
    pub bus: String,
}

static STACK: OnceLock<SharedStack> = OnceLock::new();

/// Starts (once) the emulators and provisions a table and bus unique to this test binary.
pub fn stack() -> &'static SharedStack {
    // Started on a plain thread: the first caller is usually inside a test's runtime,
    // where blocking on another runtime is not allowed.
    STACK.get_or_init(|| std::thread::spawn(start_stack).join().expect("test stack starts"))
}

/// A table and bus that exist already (a stack deployed to LocalStack): the suite then runs
/// on them as the infrastructure created them, instead of provisioning its own.
const DEPLOYED_TABLE_ENV: &str = "BRAIN2_TEST_TABLE";
const DEPLOYED_BUS_ENV: &str = "BRAIN2_TEST_EVENT_BUS";

fn start_stack() -> SharedStack {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let aws = LocalAws::for_tests(&root).expect("emulators start (run `make tools`)");
    let deployed = (std::env::var(DEPLOYED_TABLE_ENV), std::env::var(DEPLOYED_BUS_ENV));
    if let (Ok(table), Ok(bus)) = deployed {
        return SharedStack { aws, table, bus };
    }
    let table = unique_table_name();
    let bus = table.clone();
    // Provisioning runs on a runtime of its own: each test has its own runtime, and
    // this one-time work must not belong to whichever test came first.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(aws.provision(&table, &bus)).expect("provisioning succeeds");
    SharedStack { aws, table, bus }
}

fn unique_table_name() -> String {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("brain2-test-{}", &suffix[..12])
}

pub fn unique_user() -> String {
    format!("user-{}", uuid::Uuid::new_v4().simple())
}

pub fn token(user: &str) -> String {
    token::issue(TEST_SECRET, &UserId::parse(user).unwrap(), 600).unwrap()
}

/// The optimized flags as this suite's apps run them: events go out through the app's own
/// publisher. An app built in a test runs no stream relay (`brain2 serve --workers` and the
/// events function do), and every test shares one table, whose stream a relay per app would
/// publish many times over; `outbox.rs` tests the outbox on tables of their own.
pub fn optimized() -> Flags {
    Flags::OPTIMIZED.with_event_delivery(EventDelivery::Background)
}

/// Settings of an app on the shared stack, with extra options (e.g. `--profile=baseline`),
/// and the optimized profile's events sent as [`optimized`] sends them.
/// The suite makes hundreds of requests a second as one user, so the per-user rate limit
/// is off unless the options turn it on (later options win). The shared cache is the
/// stack's redis-server, given longer than a deployment's wait per command: on a loaded
/// machine a local command that timed out would send a read to the table, and call counts
/// the tests assert would change with the load.
pub fn settings_with(options: &[&str]) -> Settings {
    let stack = stack();
    let cache_url = stack.aws.cache_url().map(|url| format!("--cache-url={url}"));
    let defaults = [
        "--table",
        &stack.table,
        "--event-bus",
        &stack.bus,
        "--jwt-secret",
        TEST_SECRET,
        "--rate-limit-per-second=0",
        "--cache-timeout-ms",
        TEST_CACHE_TIMEOUT_MS,
    ];
    let options = defaults.into_iter().chain(cache_url.as_deref()).chain(options.iter().copied());
    let mut settings = Settings::from_options(options).expect("valid test settings");
    if settings.flags.profile == Profile::Optimized && settings.flags.event_delivery.is_none() {
        settings.flags.event_delivery = Some(optimized().event_delivery);
    }
    settings
}

/// `settings` moved to a table of the test's own, with the schema of the shared one.
pub async fn on_own_table(mut settings: Settings) -> Settings {
    let table = unique_table_name();
    let clients = stack().aws.factory().build().await;
    ensure_table(&clients.dynamodb, &table).await.expect("own table created");
    settings.adapters.table = table;
    settings
}

pub fn test_settings() -> Settings {
    settings_with(&[])
}

/// The components the health report of an app on the shared stack names: the shared
/// cache as well when the stack has one.
pub fn health_components() -> Vec<&'static str> {
    let cache = stack().aws.cache_url().map(|_| "cache");
    ["dynamodb", "eventbridge"].into_iter().chain(cache).collect()
}

pub struct TestApp {
    pub router: Router,
    pub adapters: brain2::bootstrap::Adapters,
    pub clients: AwsClients,
    pub settings: Settings,
    /// Calls answered 503 `throttled` are made again, as a client honouring `Retry-After`
    /// would: for tests whose claim is the state many writers leave, not that none is shed.
    pub retries_when_busy: bool,
}

#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl TestResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a problem+json answer with this status and code.
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "unexpected status, body: {}", self.body);
        assert_eq!(self.header("content-type"), Some("application/problem+json"), "body: {}", self.body);
        assert_eq!(self.body["code"], code, "body: {}", self.body);
        assert_eq!(self.body["status"], status);
        assert!(self.body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
}

fn request(method: Method, path: &str, user: Option<&str>, body: Option<&Value>) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(user) = user {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {}", token(user)));
    }
    let body = match body {
        Some(json) => {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
            Body::from(json.to_string())
        }
        None => Body::empty(),
    };
    builder.body(body).unwrap()
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(test_settings()).await
    }

    pub async fn spawn_with(settings: Settings) -> Self {
        Self::spawn_on(settings, stack().aws.factory()).await
    }

    /// An app whose clients come from `factory` (e.g. one pointing at a proxy of the emulators).
    pub async fn spawn_on(settings: Settings, factory: ClientFactory) -> Self {
        let factory = factory.with_network(settings.adapters.network.clone());
        let (router, adapters) = bootstrap::build(&settings, &factory).await;
        Self { router, clients: adapters.clients.clone(), adapters, settings, retries_when_busy: false }
    }

    /// This app, making again the calls the service sheds for load (see `retries_when_busy`).
    pub fn retrying_when_busy(self) -> Self {
        Self { retries_when_busy: true, ..self }
    }

    pub async fn send(&self, request: Request<Body>) -> TestResponse {
        let response = self.router.clone().oneshot(request).await.expect("router is infallible");
        read_response(response).await
    }

    pub async fn call(&self, method: Method, path: &str, user: Option<&str>, body: Option<Value>) -> TestResponse {
        const BUSY_RETRIES: u32 = 30;
        let mut attempt = 0;
        loop {
            let response = self.send(request(method.clone(), path, user, body.as_ref())).await;
            let shed = response.status == StatusCode::SERVICE_UNAVAILABLE && response.body["code"] == "throttled";
            if !(self.retries_when_busy && shed && attempt < BUSY_RETRIES) {
                return response;
            }
            attempt += 1;
            // Retry-After is in whole seconds; a test backs off in steps of a tenth of that.
            tokio::time::sleep(std::time::Duration::from_millis(100 * u64::from(attempt.min(10)))).await;
        }
    }

    pub async fn get(&self, user: &str, path: &str) -> TestResponse {
        self.call(Method::GET, path, Some(user), None).await
    }

    pub async fn post(&self, user: &str, path: &str, body: Value) -> TestResponse {
        self.call(Method::POST, path, Some(user), Some(body)).await
    }

    pub async fn put(&self, user: &str, path: &str, body: Value) -> TestResponse {
        self.call(Method::PUT, path, Some(user), Some(body)).await
    }

    pub async fn delete(&self, user: &str, path: &str) -> TestResponse {
        self.call(Method::DELETE, path, Some(user), None).await
    }

    /// Creates a node and returns its JSON.
    pub async fn create_node(&self, user: &str, content: &str) -> Value {
        let response = self.post(user, "/api/v1/nodes", serde_json::json!({ "content": content })).await;
        assert_eq!(response.status, StatusCode::CREATED, "{}", response.body);
        response.body
    }

    /// Every item in the table whose partition key starts with the user's prefix,
    /// read straight from DynamoDB (a Scan: test inspection only, never in the service).
    pub async fn raw_items_of(
        &self,
        user: &str,
    ) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        let prefix = format!("USER#{user}");
        self.clients
            .dynamodb
            .scan()
            .table_name(&self.settings.adapters.table)
            .filter_expression("begins_with(PK, :prefix)")
            .expression_attribute_values(":prefix", aws_sdk_dynamodb::types::AttributeValue::S(prefix))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .unwrap()
    }
}

impl TestApp {
    /// Runs the cleanup of soft-deleted nodes now (no grace period), as the worker would,
    /// and returns how many tombstones it purged. The sweep purges every tombstone of the
    /// table, so only a test's own table may be swept.
    pub async fn run_cleanup(&self) -> usize {
        assert_ne!(
            self.settings.adapters.table,
            stack().table,
            "a sweep of the shared table purges other tests' tombstones: spawn on `on_own_table` settings"
        );
        let report = self.adapters.cleanup().sweep(std::time::Duration::ZERO).await.unwrap();
        assert_eq!(report.failed, 0);
        report.purged
    }
}

/// A queue of this test's own that receives the bus events of `user` (of the given
/// detail types, or all). Tests share the bus, so reading a shared queue would mean wading
/// through everybody else's messages.
pub async fn user_queue(app: &TestApp, user: &str, detail_types: &[&str]) -> String {
    users_queue(app, &[user], detail_types).await
}

/// [`user_queue`] for the events of several users.
pub async fn users_queue(app: &TestApp, users: &[&str], detail_types: &[&str]) -> String {
    let name = format!("t-{}", uuid::Uuid::new_v4().simple());
    let queue = app.clients.sqs.create_queue().queue_name(&name).send().await.unwrap().queue_url.unwrap();
    let arn = app
        .clients
        .sqs
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()
        .remove(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .unwrap();
    let mut pattern = serde_json::json!({"source": ["brain2.backend"], "detail": {"userId": users}});
    if !detail_types.is_empty() {
        pattern["detail-type"] = serde_json::json!(detail_types);
    }
    let bus = &stack().bus;
    let events = &app.clients.eventbridge;
    events.put_rule().name(&name).event_bus_name(bus).event_pattern(pattern.to_string()).send().await.unwrap();
    let target = aws_sdk_eventbridge::types::Target::builder().id("queue").arn(arn).build().unwrap();
    events.put_targets().rule(&name).event_bus_name(bus).targets(target).send().await.unwrap();
    queue
}

/// A plain queue of this test's own (for example a dead-letter queue).
pub async fn own_queue(app: &TestApp) -> String {
    new_queue(&app.clients).await
}

/// A plain queue of the test's own, before it has an app.
pub async fn new_queue(clients: &AwsClients) -> String {
    let name = format!("t-{}", uuid::Uuid::new_v4().simple());
    clients.sqs.create_queue().queue_name(&name).send().await.unwrap().queue_url.unwrap()
}

/// Takes whatever a queue holds now: until a receive (waiting a second) finds nothing.
pub async fn take_waiting_messages(app: &TestApp, queue: &str) -> Vec<Value> {
    let mut found = Vec::new();
    loop {
        let received = receive(app, queue).await;
        if received.is_empty() {
            return found;
        }
        found.extend(received);
    }
}

/// Takes messages from a queue of the test's own until `expected` have arrived or a
/// generous deadline passes (a bound on waiting for delivery, not a latency assertion).
pub async fn take_messages(app: &TestApp, queue: &str, expected: usize) -> Vec<Value> {
    take_messages_until(app, queue, |found| found.len() >= expected).await
}

/// Takes bus events until `expected` distinct event ids have arrived (delivery is at least
/// once: a repeat carries the id of the event it repeats) or a generous deadline passes.
pub async fn take_distinct_events(app: &TestApp, queue: &str, expected: usize) -> Vec<Value> {
    take_distinct_events_besides(app, queue, &std::collections::HashSet::new(), expected).await
}

/// The event id of each bus message (or dead-letter queue entry), in order.
pub fn event_ids(messages: &[Value]) -> Vec<String> {
    messages.iter().map(|m| m["detail"]["eventId"].as_str().unwrap().to_owned()).collect()
}

/// Takes bus events until they and the `known` ids (found elsewhere, say in a dead-letter
/// queue) make `expected` distinct event ids, or a generous deadline passes.
pub async fn take_distinct_events_besides(
    app: &TestApp,
    queue: &str,
    known: &std::collections::HashSet<String>,
    expected: usize,
) -> Vec<Value> {
    take_messages_until(app, queue, |found| {
        let mut ids: std::collections::HashSet<&str> = known.iter().map(String::as_str).collect();
        ids.extend(found.iter().filter_map(|m| m["detail"]["eventId"].as_str()));
        ids.len() >= expected
    })
    .await
}

async fn take_messages_until(app: &TestApp, queue: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let mut found = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !done(&found) && std::time::Instant::now() < deadline {
        found.extend(receive(app, queue).await);
    }
    found
}

/// One receive of up to ten messages (waiting up to a second), each deleted once read.
async fn receive(app: &TestApp, queue: &str) -> Vec<Value> {
    let sqs = &app.clients.sqs;
    let output =
        sqs.receive_message().queue_url(queue).max_number_of_messages(10).wait_time_seconds(1).send().await.unwrap();
    let mut found = Vec::new();
    for message in output.messages.unwrap_or_default() {
        found.push(serde_json::from_str(message.body().unwrap()).unwrap());
        sqs.delete_message().queue_url(queue).receipt_handle(message.receipt_handle().unwrap()).send().await.unwrap();
    }
    found
}

pub async fn read_response(response: axum::response::Response) -> TestResponse {
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    TestResponse { status, headers, body }
}

/// A TCP proxy in front of the shared DynamoDB emulator. It counts the connections it
/// accepts (what clients really opened, which no count inside the service can show), and can
/// be told to stall: while stalled it takes requests and never answers them (nor forwards
/// them), as a hung dependency does.
pub struct EmulatorProxy {
    pub url: String,
    accepted: Arc<AtomicUsize>,
    stalled: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl EmulatorProxy {
    /// A proxy of DynamoDB.
    pub async fn start() -> Self {
        let endpoint = stack().aws.endpoints().dynamodb.clone().expect("the emulators name DynamoDB's endpoint");
        Self::to(&endpoint).await
    }

    /// A proxy of the emulator at `endpoint` (`http://host:port`).
    pub async fn to(endpoint: &str) -> Self {
        let upstream = endpoint.trim_start_matches("http://").trim_end_matches('/').to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (accepted, stalled) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
        let (counter, stall) = (accepted.clone(), stalled.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(relay(client, upstream.clone(), stall.clone()));
            }
        });
        Self { url, accepted, stalled, task }
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    pub fn stall(&self, on: bool) {
        self.stalled.store(on, Ordering::SeqCst);
    }

    /// A client factory for the shared emulators with DynamoDB reached through this proxy.
    pub fn dynamodb_factory(&self) -> ClientFactory {
        let endpoints = EndpointOverrides { dynamodb: Some(self.url.clone()), ..stack().aws.endpoints().clone() };
        ClientFactory::new(SdkSource::Emulators, endpoints)
    }
}

impl Drop for EmulatorProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(client: tokio::net::TcpStream, upstream: String, stalled: Arc<AtomicBool>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else { return };
    let (mut from_client, mut to_server) = (client, server);
    let (mut client_read, mut client_write) = from_client.split();
    let (mut server_read, mut server_write) = to_server.split();
    let upstream = async {
        let mut buffer = vec![0; 64 * 1024];
        loop {
            let read = client_read.read(&mut buffer).await.unwrap_or(0);
            if read == 0 {
                return;
            }
            if stalled.load(Ordering::SeqCst) {
                // Swallowed, never answered: the connection stays open and silent.
                std::future::pending::<()>().await;
            }
            if server_write.write_all(&buffer[..read]).await.is_err() {
                return;
            }
        }
    };
    let downstream = tokio::io::copy(&mut server_read, &mut client_write);
    tokio::select! {
        () = upstream => {}
        _ = downstream => {}
    }
}

/// Prints the figures of a suite's run and keeps them in `target/tmp/figures/<stack>/<name>.txt`,
/// where they survive the test harness capturing the output (`docs/reliability.md` quotes them).
pub fn record_figures(name: &str, figures: &str) {
    eprintln!("{name}: {figures}");
    let stack = std::env::var(brain2_devstack::TEST_STACK_ENV).unwrap_or_else(|_| "processes".to_owned());
    let directory = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("figures").join(stack);
    let written = std::fs::create_dir_all(&directory)
        .and_then(|()| std::fs::write(directory.join(format!("{name}.txt")), figures));
    if let Err(error) = written {
        eprintln!("figures of {name} not kept: {error}");
    }
}
