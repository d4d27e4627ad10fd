//! The API's Lambda binary run as Lambda runs it: under the Runtime API emulator of the
//! load harness, frozen between invocations, against DynamoDB Local and moto. What it
//! proves is the lifecycle of the internal flush extension, which only a real runtime loop
//! can show: the events of an invocation are on the bus before the next one starts, even
//! though nothing runs in the environment once the invocation is over.

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use brain2::domain::UserId;
use brain2_devstack::{LocalAws, Provisioned};
use brain2_loadtest::lambda_emulator::{
    Answer, LambdaFunction, api_gateway_v2_event, measure_cold_start, measure_warm_with,
};
use brain2_loadtest::lambda_figures::function_environment;
use serde_json::{Value, json};

const JWT_SECRET: &str = "runtime-emulator-test-secret-runtime-emulator-test-secret";
const WAIT: Duration = Duration::from_secs(60);

/// The emulators (started here unless the environment names them) with a table, bus and
/// queues unique to this test binary, shared by its tests.
struct Stack {
    aws: LocalAws,
    table: String,
    provisioned: Provisioned,
}

static STACK: OnceLock<Stack> = OnceLock::new();

fn stack() -> &'static Stack {
    // On a thread of its own: starting the emulators blocks, and provisioning needs a
    // runtime that belongs to no test.
    STACK.get_or_init(|| std::thread::spawn(start_stack).join().expect("the test stack starts"))
}

fn start_stack() -> Stack {
    let aws = LocalAws::for_tests(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .expect("emulators start (run `make tools`)");
    let table = format!("brain2-lambda-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    let provisioned = runtime.block_on(aws.provision(&table, &table)).expect("provisioning succeeds");
    Stack { aws, table, provisioned }
}

/// The function's environment, with the background publisher whose flush these tests are
/// about (the optimized profile delivers through the outbox, which the API function leaves
/// to the events function).
fn function_env(stack: &Stack) -> Vec<(String, String)> {
    let mut environment = function_environment(&stack.aws, &stack.table, &stack.provisioned, JWT_SECRET);
    environment.push(("BRAIN2_EVENT_DELIVERY".to_owned(), "background".to_owned()));
    environment
}

fn bearer_headers(user: &str) -> Vec<(&'static str, String)> {
    let token = brain2_cli::token::issue(JWT_SECRET, &UserId::parse(user).unwrap(), 600).unwrap();
    vec![("authorization", format!("Bearer {token}")), ("content-type", "application/json".to_owned())]
}

fn event(method: &str, path: &str, headers: &[(&'static str, String)], body: Option<String>) -> Value {
    let headers: Vec<(&str, &str)> = headers.iter().map(|(name, value)| (*name, value.as_str())).collect();
    api_gateway_v2_event(method, path, "", &headers, body)
}

/// Every bus event now on the events queue (consumed). Waits a little for moto to route
/// what was already published; the frozen function cannot publish anything meanwhile.
async fn events_on_the_bus(stack: &Stack, wanted: impl Fn(&Value) -> bool) -> Vec<Value> {
    let queue = &stack.provisioned.events_queue_url;
    // SDK clients on the test's own runtime.
    let sqs = stack.aws.clients().await.sqs;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut found = Vec::new();
    while Instant::now() < deadline && !found.iter().any(&wanted) {
        let received = sqs.receive_message().queue_url(queue).max_number_of_messages(10).wait_time_seconds(1).send();
        for message in received.await.expect("the events queue answers").messages.unwrap_or_default() {
            found.push(serde_json::from_str(message.body().unwrap_or_default()).expect("events are JSON"));
            if let Some(receipt) = message.receipt_handle() {
                sqs.delete_message().queue_url(queue).receipt_handle(receipt).send().await.unwrap();
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flush_extension_publishes_events_before_the_next_invocation() {
    let stack = stack();
    let binary = Path::new(env!("CARGO_BIN_EXE_brain2-lambda"));
    let mut function = LambdaFunction::start(binary, &function_env(stack)).await.unwrap();
    let output = |function: &LambdaFunction| function.process().output_tail().join("\n");
    let user = format!("user-{}", uuid::Uuid::new_v4().simple());
    let headers = bearer_headers(&user);

    let body = json!({"content": "Glaciers carve fjords", "tags": ["geo"]}).to_string();
    let created = function.invoke(event("POST", "/api/v1/nodes", &headers, Some(body))).await.unwrap();
    let created = created.http_response().unwrap();
    assert_eq!(created.status, 201, "{}\n{}", String::from_utf8_lossy(&created.body), output(&function));
    let node = created.json().unwrap();
    let id = node["id"].as_str().expect("the node has an id").to_owned();

    // The invocation is over only once the extension asked for its next event too; from
    // then on the process is stopped, as Lambda freezes it, so whatever is on the bus now
    // was published by the invocation itself, not by a background task running later.
    function.wait_until_idle(WAIT).await.unwrap();
    assert_eq!(function.emulator().extension_names(), ["brain2-event-flush"]);
    assert!(function.process().is_stopped().unwrap(), "the idle environment is not frozen");
    let is_creation = |event: &Value| event["detail-type"] == "node.created" && event["detail"]["aggregateId"] == id;
    let events = events_on_the_bus(stack, is_creation).await;
    assert!(events.iter().any(is_creation), "node.created of {id} not on the bus: {events:?}\n{}", output(&function));

    let fetched = function.invoke(event("GET", &format!("/api/v1/nodes/{id}"), &headers, None)).await.unwrap();
    let fetched = fetched.http_response().unwrap();
    assert_eq!(fetched.status, 200, "{}", String::from_utf8_lossy(&fetched.body));
    assert_eq!(fetched.json().unwrap(), node);

    // The environment's init duration is a metric of the first invocation only (Lambda's
    // own metrics have none), written as EMF under the service's namespace.
    function.wait_until_idle(WAIT).await.unwrap();
    let emf = output(&function);
    let records: Vec<Value> = emf
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|record| record.get("brain2_lambda_init_duration_seconds").is_some())
        .collect();
    assert_eq!(records.len(), 1, "init duration records after two invocations:\n{emf}");
    assert_eq!(records[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Brain2", "{}", records[0]);

    function.stop().await.unwrap();
}

/// An event the API cannot read is answered with a function error without the router ever
/// running; the invocation still ends (the extension flushes and asks for its next event),
/// and the next invocation is served and flushed as usual. An extension waiting for a
/// response that never comes would keep the environment busy until the function's timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_the_api_cannot_read_ends_its_invocation_and_the_next_is_flushed() {
    let stack = stack();
    let binary = Path::new(env!("CARGO_BIN_EXE_brain2-lambda"));
    let mut function = LambdaFunction::start(binary, &function_env(stack)).await.unwrap();
    let output = |function: &LambdaFunction| function.process().output_tail().join("\n");

    let rejected = function.invoke(json!({"neither": "an API Gateway event"})).await.unwrap();
    assert!(matches!(rejected.answer, Answer::FunctionError { .. }), "{rejected:?}\n{}", output(&function));
    // A hang shows as this wait running out; a working extension is idle within milliseconds.
    function.wait_until_idle(WAIT).await.unwrap_or_else(|error| panic!("{error}\n{}", output(&function)));

    let user = format!("user-{}", uuid::Uuid::new_v4().simple());
    let body = json!({"content": "Tides follow the moon"}).to_string();
    let created = function.invoke(event("POST", "/api/v1/nodes", &bearer_headers(&user), Some(body))).await.unwrap();
    let created = created.http_response().unwrap();
    assert_eq!(created.status, 201, "{}", String::from_utf8_lossy(&created.body));
    let id = created.json().unwrap()["id"].as_str().expect("the node has an id").to_owned();
    function.wait_until_idle(WAIT).await.unwrap();
    let is_creation = |event: &Value| event["detail-type"] == "node.created" && event["detail"]["aggregateId"] == id;
    let events = events_on_the_bus(stack, is_creation).await;
    assert!(events.iter().any(is_creation), "node.created of {id} not on the bus: {events:?}\n{}", output(&function));

    function.stop().await.unwrap();
}

fn create_node_event(headers: &[(&'static str, String)], index: usize) -> Value {
    let body = json!({"content": format!("Measured note number {index} about rivers")}).to_string();
    event("POST", "/api/v1/nodes", headers, Some(body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_and_warm_figures_come_from_answered_invocations() {
    let stack = stack();
    let binary = Path::new(env!("CARGO_BIN_EXE_brain2-lambda"));
    let env = function_env(stack);
    let headers = bearer_headers(&format!("user-{}", uuid::Uuid::new_v4().simple()));

    let cold = measure_cold_start(binary, &env, create_node_event(&headers, 0)).await.unwrap();
    let warm = measure_warm_with(binary, &env, 5, |index| create_node_event(&headers, index)).await.unwrap();

    // Orderings of one timeline and of one set of samples; the figures themselves are
    // reported by the harness, never judged here.
    assert!(cold.exec_to_first_next_ms <= cold.exec_to_initialized_ms, "{cold:?}");
    assert!(cold.exec_to_initialized_ms <= cold.exec_to_first_response_ms, "{cold:?}");
    assert_eq!(warm.invocations, 5);
    assert!(warm.p50_ms <= warm.p99_ms && warm.p50_until_idle_ms <= warm.p99_until_idle_ms, "{warm:?}");
    assert!(warm.p99_ms <= warm.p99_until_idle_ms, "answered after the invocation was over: {warm:?}");
    assert!(warm.peak_rss_kib > 0, "{warm:?}");
}
