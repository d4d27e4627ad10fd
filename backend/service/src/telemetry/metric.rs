//! Every figure the service reports, recorded through the `metrics` facade: one place for
//! names, labels, units and help texts. The figures cover the whole process (requests,
//! the background publisher, the workers, cache fills), unlike the per-request cost
//! ledger (`crate::costs`), which sees only what a request waits for.

use std::time::Duration;

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};

pub const HTTP_REQUESTS: &str = "brain2_http_requests_total";
pub const HTTP_REQUEST_DURATION: &str = "brain2_http_request_duration_seconds";
pub const AWS_CALLS: &str = "brain2_aws_calls_total";
pub const DYNAMODB_CAPACITY: &str = "brain2_dynamodb_consumed_capacity_units";
pub const SDK_CLIENTS_BUILT: &str = "brain2_sdk_clients_built_total";
pub const CACHE_LOOKUPS: &str = "brain2_cache_lookups_total";
pub const SHARED_CACHE_FAILURES: &str = "brain2_shared_cache_failures_total";
pub const EVENTS_ENQUEUED: &str = "brain2_events_enqueued_total";
pub const EVENTS_PUBLISHED: &str = "brain2_events_published_total";
pub const EVENTS_RETRIED: &str = "brain2_events_retried_total";
pub const EVENTS_DEAD_LETTERED: &str = "brain2_events_dead_lettered_total";
pub const EVENTS_LOST: &str = "brain2_events_lost_total";
pub const EVENT_QUEUE_DEPTH: &str = "brain2_event_queue_depth";
pub const STREAM_RECORDS: &str = "brain2_stream_records_total";
pub const STREAM_RECORDS_FAILED: &str = "brain2_stream_records_failed_total";
pub const WORKER_MESSAGES: &str = "brain2_worker_messages_total";
pub const CLEANUP_PURGED: &str = "brain2_cleanup_nodes_purged_total";
pub const SIMILARITY_EDGES: &str = "brain2_similarity_edges_linked_total";
pub const REALTIME_POSTS: &str = "brain2_realtime_posts_total";
pub const REALTIME_DELIVERY: &str = "brain2_realtime_delivery_seconds";
pub const REALTIME_CONNECTIONS: &str = "brain2_realtime_connections";
pub const LAMBDA_INIT_DURATION: &str = "brain2_lambda_init_duration_seconds";

/// Units and help texts, for exporters that show them; call once after installing one.
pub fn describe() {
    describe_counter!(HTTP_REQUESTS, Unit::Count, "HTTP requests answered, by route, method and status");
    describe_histogram!(HTTP_REQUEST_DURATION, Unit::Seconds, "Time to answer an HTTP request, by route and method");
    describe_counter!(AWS_CALLS, Unit::Count, "AWS API operations called by the process, by service and operation");
    describe_histogram!(DYNAMODB_CAPACITY, Unit::Count, "DynamoDB capacity units consumed per call (sum: total)");
    describe_counter!(SDK_CLIENTS_BUILT, Unit::Count, "Sets of AWS SDK clients constructed");
    describe_counter!(CACHE_LOOKUPS, Unit::Count, "Read cache lookups, by cache, tier (memory or shared) and result");
    describe_counter!(
        SHARED_CACHE_FAILURES,
        Unit::Count,
        "Shared cache calls that failed (error or timeout) or were held back by its circuit breaker (open)"
    );
    describe_counter!(EVENTS_ENQUEUED, Unit::Count, "Domain events handed to the background publisher");
    describe_counter!(EVENTS_PUBLISHED, Unit::Count, "Domain events EventBridge accepted");
    describe_counter!(EVENTS_RETRIED, Unit::Count, "PutEvents entries sent again after a failure");
    describe_counter!(EVENTS_DEAD_LETTERED, Unit::Count, "Domain events sent to the dead-letter queue");
    describe_counter!(EVENTS_LOST, Unit::Count, "Domain events neither published nor dead-lettered");
    describe_gauge!(EVENT_QUEUE_DEPTH, Unit::Count, "Domain events waiting in the background publisher");
    describe_counter!(STREAM_RECORDS, Unit::Count, "Table stream records read by the outbox relay");
    describe_counter!(
        STREAM_RECORDS_FAILED,
        Unit::Count,
        "Table stream records that could not become events, sent to the stream failures queue (or logged)"
    );
    describe_counter!(WORKER_MESSAGES, Unit::Count, "Queue messages handled by the workers, by worker and outcome");
    describe_counter!(CLEANUP_PURGED, Unit::Count, "Soft-deleted nodes purged by the cleanup worker");
    describe_counter!(SIMILARITY_EDGES, Unit::Count, "Similarity edges created by the similarity worker");
    describe_counter!(REALTIME_POSTS, Unit::Count, "Frames of changes handed to WebSocket clients, by outcome");
    describe_histogram!(
        REALTIME_DELIVERY,
        Unit::Seconds,
        "A change's time from its write to its fan-out to the WebSocket clients"
    );
    describe_gauge!(REALTIME_CONNECTIONS, Unit::Count, "WebSocket clients connected to this process");
    describe_histogram!(
        LAMBDA_INIT_DURATION,
        Unit::Seconds,
        "Lambda cold start: the process's start to its first invocation (Lambda's own metrics have no init duration)"
    );
}

pub fn http_request(route: &str, method: &str, status: u16, elapsed: Duration) {
    let (route, method) = (route.to_owned(), method.to_owned());
    counter!(HTTP_REQUESTS, "route" => route.clone(), "method" => method.clone(), "status" => status.to_string())
        .increment(1);
    histogram!(HTTP_REQUEST_DURATION, "route" => route, "method" => method).record(elapsed.as_secs_f64());
}

pub fn lambda_init(elapsed: Duration) {
    histogram!(LAMBDA_INIT_DURATION).record(elapsed.as_secs_f64());
}

pub fn aws_call(service: &str, operation: &str) {
    counter!(AWS_CALLS, "service" => service.to_owned(), "operation" => operation.to_owned()).increment(1);
}

pub fn dynamodb_capacity(units: f64) {
    histogram!(DYNAMODB_CAPACITY).record(units);
}

pub fn sdk_clients_built() {
    counter!(SDK_CLIENTS_BUILT).increment(1);
}

/// The read caches, as labelled in [`CACHE_LOOKUPS`].
#[derive(Debug, Clone, Copy)]
pub enum Cache {
    Node,
    Adjacency,
    Graph,
}

/// Where a lookup looked: this instance's memory, or the cache every instance shares.
#[derive(Debug, Clone, Copy)]
pub enum Tier {
    Memory,
    Shared,
}

pub fn cache_lookup(cache: Cache, tier: Tier, hit: bool) {
    let cache = match cache {
        Cache::Node => "node",
        Cache::Adjacency => "adjacency",
        Cache::Graph => "graph",
    };
    let tier = match tier {
        Tier::Memory => "memory",
        Tier::Shared => "shared",
    };
    counter!(CACHE_LOOKUPS, "cache" => cache, "tier" => tier, "result" => if hit { "hit" } else { "miss" })
        .increment(1);
}

/// `reason`: `error`, `timeout`, or `open` (held back by the circuit breaker).
pub fn shared_cache_failure(reason: &'static str) {
    counter!(SHARED_CACHE_FAILURES, "reason" => reason).increment(1);
}

pub fn events_enqueued(count: usize) {
    counter!(EVENTS_ENQUEUED).increment(count as u64);
}

pub fn events_published(count: usize) {
    counter!(EVENTS_PUBLISHED).increment(count as u64);
}

pub fn event_retried() {
    counter!(EVENTS_RETRIED).increment(1);
}

pub fn event_dead_lettered() {
    counter!(EVENTS_DEAD_LETTERED).increment(1);
}

pub fn events_lost(count: usize) {
    counter!(EVENTS_LOST).increment(count as u64);
}

pub fn stream_records(count: usize) {
    counter!(STREAM_RECORDS).increment(count as u64);
}

pub fn stream_records_failed(count: usize) {
    counter!(STREAM_RECORDS_FAILED).increment(count as u64);
}

pub fn event_queue_depth(depth: usize) {
    gauge!(EVENT_QUEUE_DEPTH).set(depth as f64);
}

/// What became of a queue message, as labelled in [`WORKER_MESSAGES`].
#[derive(Debug, Clone, Copy)]
pub enum MessageOutcome {
    Handled,
    /// Not an event the worker understands; acknowledged without work.
    Skipped,
    /// Left on the queue to come back.
    Failed,
}

pub fn worker_message(worker: &'static str, outcome: MessageOutcome) {
    let outcome = match outcome {
        MessageOutcome::Handled => "handled",
        MessageOutcome::Skipped => "skipped",
        MessageOutcome::Failed => "failed",
    };
    counter!(WORKER_MESSAGES, "worker" => worker, "outcome" => outcome).increment(1);
}

pub fn nodes_purged(count: usize) {
    counter!(CLEANUP_PURGED).increment(count as u64);
}

pub fn similarity_edges_linked(count: usize) {
    counter!(SIMILARITY_EDGES).increment(count as u64);
}

/// What became of a change handed to a WebSocket client, as labelled in [`REALTIME_POSTS`].
#[derive(Debug, Clone, Copy)]
pub enum PostOutcome {
    Delivered,
    /// The client had gone (API Gateway answered 410); its connection is forgotten.
    Gone,
    Failed,
}

pub fn realtime_posts(outcome: PostOutcome, count: usize) {
    let outcome = match outcome {
        PostOutcome::Delivered => "delivered",
        PostOutcome::Gone => "gone",
        PostOutcome::Failed => "failed",
    };
    counter!(REALTIME_POSTS, "outcome" => outcome).increment(count as u64);
}

pub fn realtime_delivery(elapsed: Duration) {
    histogram!(REALTIME_DELIVERY).record(elapsed.as_secs_f64());
}

pub fn realtime_connections(change: f64) {
    gauge!(REALTIME_CONNECTIONS).increment(change);
}
