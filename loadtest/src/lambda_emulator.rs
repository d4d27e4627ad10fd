//! The Lambda Runtime API (with the Extensions API) on a loopback port, so that a Lambda
//! binary can be run and measured the way Lambda runs it: the runtime long-polls for
//! invocations, internal extensions long-poll for lifecycle events, and an invocation is
//! only over once the runtime *and* every extension asked for their next event. Between
//! invocations the process can be frozen (SIGSTOP) as Lambda freezes the execution
//! environment, so that nothing the function left running in the background gets to run
//! until the next invocation.
//!
//! The wire format follows what `lambda_runtime` 1.x, `lambda_runtime_api_client` 1.x and
//! `lambda-extension` 1.1 send and expect (paths, `Lambda-Runtime-*` and
//! `Lambda-Extension-*` headers, the INVOKE and SHUTDOWN event bodies).

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail, ensure};
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

/// Largest synchronous response Lambda accepts from a function (6 MB).
pub const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;
/// Bound of every wait the convenience functions make (start, answer, settle).
pub const DEFAULT_WAIT: Duration = Duration::from_secs(60);
/// Longest a stop signal may take to freeze an idle function.
const FREEZE_WAIT: Duration = Duration::from_secs(2);
/// Lines of the function's stdout and stderr kept for error messages.
const OUTPUT_TAIL_LINES: usize = 200;
/// Time an extension gets to handle SHUTDOWN (the event's `deadlineMs`): what Lambda
/// gives when external extensions are registered.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(2_000);
/// Account id in the function ARN and the extension registration answer.
const ACCOUNT_ID: &str = "000000000000";

const RUNTIME_REQUEST_ID: &str = "lambda-runtime-aws-request-id";
const RUNTIME_DEADLINE_MS: &str = "lambda-runtime-deadline-ms";
const RUNTIME_FUNCTION_ARN: &str = "lambda-runtime-invoked-function-arn";
const RUNTIME_TRACE_ID: &str = "lambda-runtime-trace-id";
const RUNTIME_ERROR_TYPE: &str = "lambda-runtime-function-error-type";
const EXTENSION_NAME: &str = "lambda-extension-name";
const EXTENSION_ID: &str = "lambda-extension-identifier";
const EXTENSION_EVENT_ID: &str = "lambda-extension-event-identifier";
const EXTENSION_ACCEPT_FEATURE: &str = "lambda-extension-accept-feature";
const EXTENSION_ERROR_TYPE: &str = "lambda-extension-function-error-type";

/// What the emulated function is: its identity in headers, ARNs and environment.
#[derive(Debug, Clone)]
pub struct FunctionSettings {
    pub name: String,
    pub version: String,
    pub memory_mb: u32,
    pub region: String,
    /// Invocation timeout: only sets the deadline the function is told, the emulator
    /// never cuts an invocation short.
    pub timeout: Duration,
}

impl Default for FunctionSettings {
    fn default() -> Self {
        Self {
            name: "brain2-api".to_owned(),
            version: "$LATEST".to_owned(),
            // Lambda's own default when a function does not set its memory.
            memory_mb: 128,
            region: "us-east-1".to_owned(),
            timeout: Duration::from_secs(30),
        }
    }
}

impl FunctionSettings {
    pub fn function_arn(&self) -> String {
        format!("arn:aws:lambda:{}:{ACCOUNT_ID}:function:{}", self.region, self.name)
    }
}

/// When things happened, as the Runtime API saw them.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    /// The runtime's first `GET /runtime/invocation/next`.
    pub first_runtime_next: Option<Instant>,
    /// The end of the init phase: the runtime and every registered extension waiting.
    pub initialized: Option<Instant>,
    /// Each invocation handed to the runtime.
    pub handed_out: Vec<Instant>,
    /// Each response or function error received.
    pub answered: Vec<Instant>,
    /// Each time the runtime and every extension were waiting again after an invocation.
    pub idle: Vec<Instant>,
}

/// How the runtime ended an invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// `POST /runtime/invocation/{id}/response`.
    Response,
    /// `POST /runtime/invocation/{id}/error`, with its `Lambda-Runtime-Function-Error-Type`,
    /// or a response Lambda would refuse (larger than [`MAX_RESPONSE_BYTES`]).
    FunctionError { error_type: String },
}

/// One invocation as the invoker sees it.
#[derive(Debug, Clone)]
pub struct InvocationOutcome {
    pub request_id: String,
    pub answer: Answer,
    /// The response payload, or the error diagnostic (`{errorType, errorMessage}`).
    pub body: Bytes,
    pub handed_out_at: Instant,
    pub answered_at: Instant,
}

impl InvocationOutcome {
    /// From the runtime receiving the event to the runtime answering it.
    pub fn latency(&self) -> Duration {
        self.answered_at.saturating_duration_since(self.handed_out_at)
    }

    pub fn json(&self) -> Result<Value> {
        serde_json::from_slice(&self.body).context("the function's answer is not JSON")
    }

    /// The HTTP response inside an API Gateway proxy answer; an error if the function
    /// failed or answered something API Gateway could not turn into a response.
    pub fn http_response(&self) -> Result<HttpResponse> {
        if let Answer::FunctionError { error_type } = &self.answer {
            bail!("the function failed ({error_type}): {}", String::from_utf8_lossy(&self.body));
        }
        HttpResponse::from_proxy_answer(&self.json()?)
    }
}

/// An API Gateway proxy response (payload 1.0 or 2.0) as the client would receive it.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    /// Names lower-cased; repeated headers joined with `,` as API Gateway does.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    fn from_proxy_answer(answer: &Value) -> Result<Self> {
        let status = answer["statusCode"].as_u64().context("the proxy answer has no statusCode")?;
        let status = u16::try_from(status).context("statusCode out of range")?;
        let mut headers = BTreeMap::new();
        if let Some(single) = answer["headers"].as_object() {
            for (name, value) in single {
                headers.insert(name.to_ascii_lowercase(), value.as_str().unwrap_or_default().to_owned());
            }
        }
        if let Some(multi) = answer["multiValueHeaders"].as_object() {
            for (name, values) in multi {
                let joined: Vec<&str> = values.as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                if !joined.is_empty() {
                    headers.insert(name.to_ascii_lowercase(), joined.join(","));
                }
            }
        }
        let text = answer["body"].as_str().unwrap_or_default();
        let body = if answer["isBase64Encoded"].as_bool().unwrap_or(false) {
            base64::engine::general_purpose::STANDARD.decode(text).context("the base64 body does not decode")?
        } else {
            text.as_bytes().to_vec()
        };
        Ok(Self { status, headers, body })
    }

    pub fn json(&self) -> Result<Value> {
        serde_json::from_slice(&self.body).context("the response body is not JSON")
    }
}

/// The Runtime and Extensions APIs of one execution environment.
pub struct RuntimeApiEmulator {
    shared: Arc<Shared>,
    address: SocketAddr,
    server: JoinHandle<()>,
}

impl Drop for RuntimeApiEmulator {
    fn drop(&mut self) {
        self.server.abort();
        // Connections outlive the accept loop: answering their pending polls ends them.
        self.shared.update(|state| {
            state.fail("the emulator stopped".to_owned());
            state.release_waiters();
        });
    }
}

impl RuntimeApiEmulator {
    /// Serves the APIs on a free loopback port with the default function settings.
    pub async fn start() -> Result<Self> {
        Self::start_with(FunctionSettings::default()).await
    }

    pub async fn start_with(settings: FunctionSettings) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.context("binding the Runtime API")?;
        let address = listener.local_addr()?;
        let (changes, _) = watch::channel(0_u64);
        let shared = Arc::new(Shared { settings, state: Mutex::new(Lifecycle::default()), changes });
        let router = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(runtime_next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(invocation_response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(invocation_error))
            .route("/2018-06-01/runtime/init/error", post(runtime_init_error))
            .route("/2020-01-01/extension/register", post(extension_register))
            .route("/2020-01-01/extension/event/next", get(extension_next))
            .route("/2020-01-01/extension/init/error", post(extension_init_error))
            .route("/2020-01-01/extension/exit/error", post(extension_exit_error))
            .layer(DefaultBodyLimit::max(MAX_RESPONSE_BYTES))
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                tracing::error!(%error, "the Runtime API emulator stopped");
            }
        });
        Ok(Self { shared, address, server })
    }

    /// The value of `AWS_LAMBDA_RUNTIME_API` for the function.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn settings(&self) -> &FunctionSettings {
        &self.shared.settings
    }

    /// Freezes process `pid` (SIGSTOP) whenever the runtime and every extension are waiting
    /// and nothing is queued, and thaws it (SIGCONT) before handing out the next event, as
    /// Lambda freezes an idle execution environment. `None` stops freezing and thaws; set
    /// it before the process is reaped, so that a reused pid is never signalled.
    pub fn freeze_when_idle(&self, pid: Option<u32>) {
        self.shared.update(|state| {
            state.thaw();
            state.freeze_target = pid;
        });
    }

    /// Queues one invocation and waits (at most the function's timeout) for its answer.
    pub async fn invoke(&self, payload: Value) -> Result<InvocationOutcome> {
        self.invoke_within(payload, self.shared.settings.timeout).await
    }

    /// Queues one invocation and waits at most `timeout` for its answer. Invocations are
    /// handed out one at a time, each once the previous one is over (extensions included).
    pub async fn invoke_within(&self, payload: Value, timeout: Duration) -> Result<InvocationOutcome> {
        let payload = serde_json::to_vec(&payload)?;
        let request_id = uuid::Uuid::new_v4().to_string();
        let (reply, answer) = oneshot::channel();
        let queued = self.shared.update(|state| match &state.failure {
            Some(failure) => Err(failure.clone()),
            None => {
                state.queue.push_back(Pending { request_id: request_id.clone(), payload, reply });
                Ok(())
            }
        });
        queued.map_err(|failure| anyhow!("the execution environment failed: {failure}"))?;
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(Ok(outcome))) => Ok(outcome),
            Ok(Ok(Err(failure))) => Err(anyhow!("the execution environment failed: {failure}")),
            Ok(Err(_)) => Err(anyhow!("the emulator dropped invocation {request_id}")),
            Err(_) => {
                let description = self.shared.update(|state| {
                    let before = state.queue.len();
                    state.queue.retain(|pending| pending.request_id != request_id);
                    let phase = if state.queue.len() < before { "never handed out" } else { "not answered" };
                    format!("{phase} ({})", state.describe())
                });
                Err(anyhow!("invocation {request_id} timed out after {timeout:?}: {description}"))
            }
        }
    }

    /// Waits for the end of the init phase (the runtime and every registered extension
    /// waiting for their first event) and returns when it ended.
    pub async fn wait_until_initialized(&self, timeout: Duration) -> Result<Instant> {
        self.wait_for("the end of the init phase", timeout, |state| {
            state.failure.clone().map(Err).or_else(|| state.initialized_at.map(Ok))
        })
        .await
    }

    /// Waits until nothing is queued or running and the runtime and every extension are
    /// waiting again: the last invocation is over, extension work included. Returns when
    /// that happened.
    pub async fn wait_until_idle(&self, timeout: Duration) -> Result<Instant> {
        self.wait_for("idleness", timeout, |state| {
            if let Some(failure) = &state.failure {
                return Some(Err(failure.clone()));
            }
            let idle = state.queue.is_empty() && state.in_flight.is_none() && !state.busy && state.everyone_waiting();
            let since = state.timeline.idle.last().copied().or(state.initialized_at);
            if idle { since.map(Ok) } else { None }
        })
        .await
    }

    /// Sends SHUTDOWN to the extensions registered for it, once the environment is idle,
    /// and waits until each has asked for its next event again. No invocation is handed
    /// out afterwards. Returns how many extensions received SHUTDOWN.
    pub async fn shutdown_extensions(&self, timeout: Duration) -> Result<usize> {
        let deadline = Instant::now() + timeout;
        self.wait_until_idle(timeout).await?;
        self.shared.update(|state| {
            state.shutting_down = true;
            state.thaw();
        });
        let remaining = deadline.saturating_duration_since(Instant::now());
        self.wait_for("the extensions' shutdown", remaining, |state| {
            let subscribed: Vec<&RegisteredExtension> =
                state.extensions.iter().filter(|extension| extension.wants_shutdown).collect();
            let done = subscribed.iter().all(|extension| extension.shutdown_delivered && extension.is_waiting());
            done.then_some(Ok(subscribed.len()))
        })
        .await
    }

    pub fn timeline(&self) -> Timeline {
        self.shared.lock().timeline.clone()
    }

    /// Names of the registered extensions, in registration order.
    pub fn extension_names(&self) -> Vec<String> {
        self.shared.lock().extensions.iter().map(|extension| extension.name.clone()).collect()
    }

    /// Why the environment cannot run invocations any more (an init or extension error).
    pub fn failure(&self) -> Option<String> {
        self.shared.lock().failure.clone()
    }

    async fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&Lifecycle) -> Option<Result<T, String>>,
    ) -> Result<T> {
        let mut changes = self.shared.changes.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let description = {
                let state = self.shared.lock();
                if let Some(result) = check(&state) {
                    return result.map_err(|failure| anyhow!("the execution environment failed: {failure}"));
                }
                state.describe()
            };
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => bail!("the emulator stopped while waiting for {what}"),
                Err(_) => bail!("no {what} within {timeout:?}: {description}"),
            }
        }
    }
}

struct Shared {
    settings: FunctionSettings,
    state: Mutex<Lifecycle>,
    /// Bumped after every change of `state`, for the waits.
    changes: watch::Sender<u64>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Lifecycle> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies `change`, hands out what can be handed out, and wakes the waits.
    fn update<R>(&self, change: impl FnOnce(&mut Lifecycle) -> R) -> R {
        let result = {
            let mut state = self.lock();
            let result = change(&mut state);
            state.settle(&self.settings);
            result
        };
        self.changes.send_modify(|generation| *generation += 1);
        result
    }
}

struct Pending {
    request_id: String,
    payload: Vec<u8>,
    reply: oneshot::Sender<Result<InvocationOutcome, String>>,
}

struct InFlight {
    request_id: String,
    reply: oneshot::Sender<Result<InvocationOutcome, String>>,
    handed_out_at: Instant,
}

/// What the runtime's pending `/next` receives.
struct RuntimeEvent {
    request_id: String,
    deadline_ms: u64,
    function_arn: String,
    trace_id: String,
    payload: Vec<u8>,
}

struct RegisteredExtension {
    id: String,
    name: String,
    wants_invoke: bool,
    wants_shutdown: bool,
    /// The extension's pending `/event/next`, if it is waiting.
    waiter: Option<oneshot::Sender<Vec<u8>>>,
    shutdown_delivered: bool,
}

impl RegisteredExtension {
    fn is_waiting(&self) -> bool {
        self.waiter.as_ref().is_some_and(|waiter| !waiter.is_closed())
    }
}

#[derive(Default)]
struct Lifecycle {
    queue: VecDeque<Pending>,
    in_flight: Option<InFlight>,
    /// An invocation was handed out and not every party is waiting again yet.
    busy: bool,
    runtime_waiter: Option<oneshot::Sender<RuntimeEvent>>,
    extensions: Vec<RegisteredExtension>,
    initialized_at: Option<Instant>,
    failure: Option<String>,
    shutting_down: bool,
    freeze_target: Option<u32>,
    frozen: bool,
    timeline: Timeline,
}

impl Lifecycle {
    fn runtime_waiting(&self) -> bool {
        self.runtime_waiter.as_ref().is_some_and(|waiter| !waiter.is_closed())
    }

    fn everyone_waiting(&self) -> bool {
        self.runtime_waiting() && self.extensions.iter().all(RegisteredExtension::is_waiting)
    }

    fn describe(&self) -> String {
        let waiting: Vec<String> = self
            .extensions
            .iter()
            .map(|extension| format!("{} {}", extension.name, if extension.is_waiting() { "waiting" } else { "busy" }))
            .collect();
        format!(
            "runtime {}, extensions [{}], {} queued, in flight: {}, initialized: {}, failure: {}",
            if self.runtime_waiting() { "waiting" } else { "busy" },
            waiting.join(", "),
            self.queue.len(),
            self.in_flight.as_ref().map_or("none", |in_flight| in_flight.request_id.as_str()),
            self.initialized_at.is_some(),
            self.failure.as_deref().unwrap_or("none"),
        )
    }

    /// Moves the lifecycle on after any change: ends the init phase or an invocation once
    /// every party waits, hands out the next invocation, delivers SHUTDOWN, freezes.
    fn settle(&mut self, settings: &FunctionSettings) {
        let everyone_waiting = self.everyone_waiting();
        if everyone_waiting && self.initialized_at.is_none() {
            let now = Instant::now();
            self.initialized_at = Some(now);
            self.timeline.initialized = Some(now);
        }
        if everyone_waiting && self.busy && self.in_flight.is_none() {
            self.busy = false;
            self.timeline.idle.push(Instant::now());
        }
        if self.shutting_down {
            self.deliver_shutdown();
            return;
        }
        let ready = everyone_waiting && !self.busy && self.initialized_at.is_some() && self.failure.is_none();
        if ready && !self.queue.is_empty() {
            self.hand_out(settings);
        } else if ready {
            self.freeze();
        }
    }

    fn hand_out(&mut self, settings: &FunctionSettings) {
        let (Some(pending), Some(runtime)) = (self.queue.pop_front(), self.runtime_waiter.take()) else {
            return;
        };
        self.thaw();
        let deadline_ms = epoch_millis(SystemTime::now() + settings.timeout);
        let trace_id = trace_id();
        let event = RuntimeEvent {
            request_id: pending.request_id.clone(),
            deadline_ms,
            function_arn: settings.function_arn(),
            trace_id: trace_id.clone(),
            payload: pending.payload,
        };
        if let Err(event) = runtime.send(event) {
            // The runtime's request went away after it was counted as waiting.
            let Pending { request_id, reply, .. } = pending;
            self.queue.push_front(Pending { request_id, payload: event.payload, reply });
            return;
        }
        let invoke = json!({
            "eventType": "INVOKE",
            "deadlineMs": deadline_ms,
            "requestId": pending.request_id,
            "invokedFunctionArn": settings.function_arn(),
            "tracing": {"type": "X-Amzn-Trace-Id", "value": trace_id},
        })
        .to_string()
        .into_bytes();
        for extension in self.extensions.iter_mut().filter(|extension| extension.wants_invoke) {
            if let Some(waiter) = extension.waiter.take() {
                let _ = waiter.send(invoke.clone());
            }
        }
        let now = Instant::now();
        self.timeline.handed_out.push(now);
        self.in_flight = Some(InFlight { request_id: pending.request_id, reply: pending.reply, handed_out_at: now });
        self.busy = true;
    }

    fn deliver_shutdown(&mut self) {
        let shutdown = json!({
            "eventType": "SHUTDOWN",
            "shutdownReason": "spindown",
            "deadlineMs": epoch_millis(SystemTime::now() + SHUTDOWN_GRACE),
        })
        .to_string()
        .into_bytes();
        for extension in self.extensions.iter_mut().filter(|extension| extension.wants_shutdown) {
            if !extension.shutdown_delivered
                && extension.is_waiting()
                && let Some(waiter) = extension.waiter.take()
            {
                extension.shutdown_delivered = waiter.send(shutdown.clone()).is_ok();
            }
        }
    }

    /// Drops every pending poll, which then answers 503: the runtime and extensions stop.
    fn release_waiters(&mut self) {
        self.runtime_waiter = None;
        for extension in &mut self.extensions {
            extension.waiter = None;
        }
    }

    /// Ends the environment: what is queued or running fails with `failure`.
    fn fail(&mut self, failure: String) {
        if let Some(in_flight) = self.in_flight.take() {
            let _ = in_flight.reply.send(Err(failure.clone()));
        }
        for pending in self.queue.drain(..) {
            let _ = pending.reply.send(Err(failure.clone()));
        }
        self.failure.get_or_insert(failure);
        self.thaw();
    }

    fn answer(&mut self, request_id: &str, answer: Answer, body: Bytes) -> bool {
        let Some(in_flight) = self.in_flight.take_if(|in_flight| in_flight.request_id == request_id) else {
            return false;
        };
        let answered_at = Instant::now();
        self.timeline.answered.push(answered_at);
        let outcome = InvocationOutcome {
            request_id: in_flight.request_id,
            answer,
            body,
            handed_out_at: in_flight.handed_out_at,
            answered_at,
        };
        // The invoker may have given up waiting; the invocation is over either way.
        let _ = in_flight.reply.send(Ok(outcome));
        true
    }

    fn freeze(&mut self) {
        if let (Some(pid), false) = (self.freeze_target, self.frozen) {
            self.frozen = send_signal(pid, libc::SIGSTOP).is_ok();
        }
    }

    fn thaw(&mut self) {
        if let (Some(pid), true) = (self.freeze_target, self.frozen) {
            self.frozen = false;
            // A process that is gone needs no thawing.
            let _ = send_signal(pid, libc::SIGCONT);
        }
    }
}

fn send_signal(pid: u32, signal: libc::c_int) -> std::io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| std::io::Error::other("pid out of range"))?;
    // SAFETY: kill(2) takes plain integers and touches no memory of this process.
    if unsafe { libc::kill(pid, signal) } == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

fn epoch_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
}

/// An X-Ray trace header as Lambda passes it (`Root=1-<epoch hex>-<96 bits>;Parent=...`).
fn trace_id() -> String {
    let seconds = epoch_millis(SystemTime::now()) / 1_000;
    let root = uuid::Uuid::new_v4().simple().to_string();
    let parent = uuid::Uuid::new_v4().simple().to_string();
    format!("Root=1-{seconds:08x}-{};Parent={};Sampled=0", &root[..24], &parent[..16])
}

fn api_error(status: StatusCode, error_type: &str, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({"errorMessage": message.into(), "errorType": error_type}))).into_response()
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, axum::Json(json!({"status": "OK"}))).into_response()
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

async fn runtime_next(State(shared): State<Arc<Shared>>) -> Response {
    let (sender, receiver) = oneshot::channel();
    let conflict = shared.update(|state| {
        state.timeline.first_runtime_next.get_or_insert_with(Instant::now);
        // One invocation at a time: a second concurrent poll is a runtime bug here
        // (managed concurrency, `AWS_LAMBDA_MAX_CONCURRENCY`, is not emulated).
        let conflict = state.runtime_waiting();
        if !conflict {
            state.runtime_waiter = Some(sender);
        }
        conflict
    });
    if conflict {
        return api_error(StatusCode::CONFLICT, "Runtime.ConcurrentPoll", "a runtime poll is already pending");
    }
    let Ok(event) = receiver.await else {
        return api_error(StatusCode::SERVICE_UNAVAILABLE, "Runtime.EmulatorStopped", "the emulator stopped");
    };
    let mut headers = HeaderMap::new();
    let values = [
        (RUNTIME_REQUEST_ID, event.request_id),
        (RUNTIME_DEADLINE_MS, event.deadline_ms.to_string()),
        (RUNTIME_FUNCTION_ARN, event.function_arn),
        (RUNTIME_TRACE_ID, event.trace_id),
    ];
    for (name, value) in values {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    (StatusCode::OK, headers, event.payload).into_response()
}

async fn invocation_response(
    State(shared): State<Arc<Shared>>,
    UrlPath(request_id): UrlPath<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (answer, body, too_large) = match body {
        Ok(body) => (Answer::Response, body, false),
        Err(rejection) => {
            let error_type = "Function.ResponseSizeTooLarge".to_owned();
            let diagnostic = json!({"errorType": error_type, "errorMessage": rejection.body_text()}).to_string();
            (Answer::FunctionError { error_type }, Bytes::from(diagnostic), true)
        }
    };
    let known = shared.update(|state| state.answer(&request_id, answer, body));
    match (known, too_large) {
        (false, _) => api_error(StatusCode::BAD_REQUEST, "InvalidRequestID", format!("no invocation {request_id}")),
        (true, true) => api_error(StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLarge", "response too large"),
        (true, false) => accepted(),
    }
}

async fn invocation_error(
    State(shared): State<Arc<Shared>>,
    UrlPath(request_id): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let error_type = header_text(&headers, RUNTIME_ERROR_TYPE).unwrap_or("Unhandled").to_owned();
    let known = shared.update(|state| state.answer(&request_id, Answer::FunctionError { error_type }, body));
    if known { accepted() } else { api_error(StatusCode::BAD_REQUEST, "InvalidRequestID", "unknown request id") }
}

async fn runtime_init_error(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let error_type = header_text(&headers, RUNTIME_ERROR_TYPE).unwrap_or("Runtime.Unknown");
    let failure = format!("runtime init error {error_type}: {}", String::from_utf8_lossy(&body));
    shared.update(|state| state.fail(failure));
    accepted()
}

async fn extension_register(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(name) = header_text(&headers, EXTENSION_NAME).filter(|name| !name.is_empty()) else {
        return api_error(StatusCode::BAD_REQUEST, "InvalidRequest", "missing Lambda-Extension-Name");
    };
    let events: Vec<String> = match serde_json::from_slice::<Value>(&body) {
        Ok(request) => match request["events"].as_array() {
            Some(events) => events.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            None => Vec::new(),
        },
        Err(error) => return api_error(StatusCode::BAD_REQUEST, "InvalidRequest", error.to_string()),
    };
    if let Some(unknown) = events.iter().find(|event| !matches!(event.as_str(), "INVOKE" | "SHUTDOWN")) {
        return api_error(StatusCode::BAD_REQUEST, "InvalidEventType", format!("unknown event type {unknown}"));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let too_late = shared.update(|state| {
        // Extensions register during the init phase only.
        let too_late = state.initialized_at.is_some();
        if !too_late {
            state.extensions.push(RegisteredExtension {
                id: id.clone(),
                name: name.to_owned(),
                wants_invoke: events.iter().any(|event| event == "INVOKE"),
                wants_shutdown: events.iter().any(|event| event == "SHUTDOWN"),
                waiter: None,
                shutdown_delivered: false,
            });
        }
        too_late
    });
    if too_late {
        return api_error(StatusCode::FORBIDDEN, "Extension.RegisterAfterInit", "the init phase is over");
    }
    let settings = &shared.settings;
    let mut answer = json!({
        "functionName": settings.name,
        "functionVersion": settings.version,
        "handler": "bootstrap",
    });
    if header_text(&headers, EXTENSION_ACCEPT_FEATURE).is_some_and(|features| features.contains("accountId")) {
        answer["accountId"] = json!(ACCOUNT_ID);
    }
    let mut response = (StatusCode::OK, axum::Json(answer)).into_response();
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(EXTENSION_ID, value);
    }
    response
}

async fn extension_next(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let id = header_text(&headers, EXTENSION_ID).unwrap_or_default().to_owned();
    let (sender, receiver) = oneshot::channel();
    let known = shared.update(|state| {
        let extension = state.extensions.iter_mut().find(|extension| extension.id == id);
        extension.map(|extension| extension.waiter = Some(sender)).is_some()
    });
    if !known {
        return api_error(StatusCode::FORBIDDEN, "Extension.UnknownExtensionIdentifier", "unknown extension id");
    }
    let Ok(event) = receiver.await else {
        return api_error(StatusCode::SERVICE_UNAVAILABLE, "Extension.EmulatorStopped", "the emulator stopped");
    };
    let mut response = (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], event).into_response();
    if let Ok(value) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        response.headers_mut().insert(EXTENSION_EVENT_ID, value);
    }
    response
}

fn extension_error(shared: &Shared, phase: &str, headers: &HeaderMap, body: &Bytes) -> Response {
    let id = header_text(headers, EXTENSION_ID).unwrap_or_default();
    let error_type = header_text(headers, EXTENSION_ERROR_TYPE).unwrap_or("Extension.Unknown");
    let known = shared.update(|state| {
        let Some(name) = state.extensions.iter().find(|extension| extension.id == id).map(|e| e.name.clone()) else {
            return false;
        };
        state.fail(format!("extension {name} {phase} error {error_type}: {}", String::from_utf8_lossy(body)));
        true
    });
    if known {
        accepted()
    } else {
        api_error(StatusCode::FORBIDDEN, "Extension.UnknownExtensionIdentifier", "unknown extension id")
    }
}

async fn extension_init_error(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    extension_error(&shared, "init", &headers, &body)
}

async fn extension_exit_error(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    extension_error(&shared, "exit", &headers, &body)
}

/// An API Gateway HTTP API (payload format 2.0) proxy event, as `lambda_http` parses it.
/// `query` is the raw query string without `?`. Header names are lower-cased and repeated
/// headers joined with `,`; `Cookie` moves to `cookies`, as API Gateway does.
pub fn api_gateway_v2_event(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
    body: Option<String>,
) -> Value {
    const DOMAIN: &str = "brain2local.execute-api.us-east-1.amazonaws.com";
    let mut merged: BTreeMap<String, String> = BTreeMap::new();
    let mut cookies: Vec<String> = Vec::new();
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        if name == "cookie" {
            cookies.extend(value.split(';').map(str::trim).filter(|cookie| !cookie.is_empty()).map(str::to_owned));
            continue;
        }
        merged.entry(name).and_modify(|joined| *joined = format!("{joined},{value}")).or_insert((*value).to_owned());
    }
    merged.entry("host".to_owned()).or_insert_with(|| DOMAIN.to_owned());
    merged.entry("x-forwarded-proto".to_owned()).or_insert_with(|| "https".to_owned());
    merged.entry("x-forwarded-port".to_owned()).or_insert_with(|| "443".to_owned());
    merged.entry("x-forwarded-for".to_owned()).or_insert_with(|| "127.0.0.1".to_owned());
    if let Some(body) = &body {
        merged.entry("content-length".to_owned()).or_insert_with(|| body.len().to_string());
    }
    let user_agent = merged.get("user-agent").cloned().unwrap_or_else(|| "brain2-loadtest".to_owned());
    let now = chrono::Utc::now();
    let mut event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": merged,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": "brain2local",
            "domainName": DOMAIN,
            "domainPrefix": "brain2local",
            "http": {
                "method": method.to_ascii_uppercase(),
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": user_agent,
            },
            "requestId": uuid::Uuid::new_v4().simple().to_string(),
            "routeKey": "$default",
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "timeEpoch": now.timestamp_millis(),
        },
        "isBase64Encoded": false,
    });
    if !cookies.is_empty() {
        event["cookies"] = json!(cookies);
    }
    let parameters = query_parameters(query);
    if !parameters.is_empty() {
        event["queryStringParameters"] = json!(parameters);
    }
    if let Some(body) = body {
        event["body"] = json!(body);
    }
    event
}

/// `queryStringParameters` as API Gateway fills it: decoded, repeated names joined with `,`.
fn query_parameters(query: &str) -> BTreeMap<String, String> {
    let mut parameters: BTreeMap<String, String> = BTreeMap::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (name, value) = (percent_decode(name), percent_decode(value));
        parameters.entry(name).and_modify(|joined| *joined = format!("{joined},{value}")).or_insert(value);
    }
    parameters
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = bytes.get(index + 1..index + 3).and_then(|hex| std::str::from_utf8(hex).ok());
        match (bytes[index], hex.and_then(|hex| u8::from_str_radix(hex, 16).ok())) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                index += 3;
            }
            (b'+', _) => {
                decoded.push(b' ');
                index += 1;
            }
            (byte, _) => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// A Lambda binary running as Lambda runs it, against a [`RuntimeApiEmulator`]. Killed
/// when dropped; [`LambdaProcess::kill`] also reaps it.
pub struct LambdaProcess {
    child: Child,
    pid: u32,
    spawned_at: Instant,
    output: Arc<Mutex<VecDeque<String>>>,
    /// The tasks draining stdout and stderr; they end when the streams close.
    drains: Vec<JoinHandle<()>>,
}

impl Drop for LambdaProcess {
    fn drop(&mut self) {
        // `kill_on_drop` does the same; explicit, because a leftover function would keep
        // running against the emulators. Tokio reaps the killed child.
        let _ = self.child.start_kill();
    }
}

impl LambdaProcess {
    /// Starts `binary` with the environment Lambda gives a custom runtime (and nothing
    /// of this process's own), then `env` on top.
    pub fn spawn(
        binary: &Path,
        runtime_api: SocketAddr,
        settings: &FunctionSettings,
        env: &[(String, String)],
    ) -> Result<Self> {
        let lambda_env = [
            ("PATH", "/usr/local/bin:/usr/bin:/bin:/opt/bin".to_owned()),
            ("LANG", "en_US.UTF-8".to_owned()),
            ("TZ", ":UTC".to_owned()),
            ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string()),
            ("AWS_LAMBDA_FUNCTION_NAME", settings.name.clone()),
            ("AWS_LAMBDA_FUNCTION_VERSION", settings.version.clone()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", settings.memory_mb.to_string()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{}", settings.name)),
            ("AWS_LAMBDA_LOG_STREAM_NAME", format!("emulated/[{}]{}", settings.version, uuid::Uuid::new_v4().simple())),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
            ("AWS_REGION", settings.region.clone()),
            ("AWS_DEFAULT_REGION", settings.region.clone()),
        ];
        let mut command = Command::new(binary);
        command
            .env_clear()
            .envs(lambda_env)
            .envs(env.iter().map(|(name, value)| (name.as_str(), value.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let spawned_at = Instant::now();
        let mut child = command.spawn().with_context(|| format!("starting {}", binary.display()))?;
        let pid = child.id().context("the function exited at once")?;
        let output = Arc::new(Mutex::new(VecDeque::with_capacity(OUTPUT_TAIL_LINES)));
        let mut drains = Vec::with_capacity(2);
        if let Some(stdout) = child.stdout.take() {
            drains.push(tokio::spawn(keep_tail(stdout, output.clone())));
        }
        if let Some(stderr) = child.stderr.take() {
            drains.push(tokio::spawn(keep_tail(stderr, output.clone())));
        }
        Ok(Self { child, pid, spawned_at, output, drains })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Just before the exec: the start of a cold start.
    pub fn spawned_at(&self) -> Instant {
        self.spawned_at
    }

    /// User plus system CPU time of the whole process so far (all threads), with the
    /// kernel's resolution of one clock tick.
    pub fn cpu_time(&self) -> Result<Duration> {
        let fields = self.stat_fields()?;
        let ticks = |index: usize| -> Result<u64> {
            let field = fields.get(index).context("/proc stat line too short")?;
            field.parse().with_context(|| format!("bad /proc stat field {field}"))
        };
        // After the command name: state is field 3 of proc(5), utime 14 and stime 15.
        let total = ticks(11)? + ticks(12)?;
        Ok(Duration::from_secs_f64(total as f64 / clock_ticks_per_second() as f64))
    }

    /// Whether the process is stopped (frozen by the emulator), from its /proc state.
    pub fn is_stopped(&self) -> Result<bool> {
        let fields = self.stat_fields()?;
        Ok(fields.first().is_some_and(|state| state == "T"))
    }

    /// Peak resident set size (VmHWM): what Lambda reports as "Max Memory Used".
    pub fn peak_rss_kib(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).context("reading /proc status")?;
        let line = status.lines().find(|line| line.starts_with("VmHWM:")).context("no VmHWM in /proc status")?;
        let kib = line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim();
        kib.parse().with_context(|| format!("bad VmHWM {kib}"))
    }

    /// The last lines the function wrote (stdout and stderr interleaved).
    pub fn output_tail(&self) -> Vec<String> {
        self.output.lock().unwrap_or_else(PoisonError::into_inner).iter().cloned().collect()
    }

    /// Resolves when the process exits (it never does on its own unless it failed), once
    /// what it wrote last is in [`LambdaProcess::output_tail`].
    pub async fn exited(&mut self) -> std::io::Result<ExitStatus> {
        let status = self.child.wait().await?;
        // The pipes close with the process, unless it left a child holding them: bounded.
        for drain in &mut self.drains {
            let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
        }
        Ok(status)
    }

    /// Kills the process and reaps it.
    pub async fn kill(mut self) -> Result<()> {
        // A stopped process dies of SIGKILL all the same; an exited one needs reaping only.
        let _ = self.child.start_kill();
        self.child.wait().await.context("reaping the function")?;
        Ok(())
    }

    /// The fields of /proc/<pid>/stat after the command name (which may hold spaces).
    fn stat_fields(&self) -> Result<Vec<String>> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).context("reading /proc stat")?;
        let (_, after_name) = stat.rsplit_once(')').context("malformed /proc stat")?;
        Ok(after_name.split_whitespace().map(str::to_owned).collect())
    }
}

fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf(3) only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    // Linux's USER_HZ on every architecture Lambda runs.
    u64::try_from(ticks).ok().filter(|ticks| *ticks > 0).unwrap_or(100)
}

/// Drains one output stream (so the function never blocks on a full pipe) and keeps its
/// last lines.
async fn keep_tail(stream: impl AsyncRead + Unpin, tail: Arc<Mutex<VecDeque<String>>>) {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line).trim_end().to_owned();
                let mut tail = tail.lock().unwrap_or_else(PoisonError::into_inner);
                if tail.len() == OUTPUT_TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(text);
            }
        }
    }
}

/// A Lambda function in its emulated execution environment: the Runtime API, the process,
/// frozen between invocations. Every wait also ends if the process exits.
pub struct LambdaFunction {
    emulator: RuntimeApiEmulator,
    process: LambdaProcess,
}

impl LambdaFunction {
    /// Starts the emulator and `binary` with the default function settings.
    pub async fn start(binary: &Path, env: &[(String, String)]) -> Result<Self> {
        Self::start_with(binary, env, FunctionSettings::default()).await
    }

    pub async fn start_with(binary: &Path, env: &[(String, String)], settings: FunctionSettings) -> Result<Self> {
        let emulator = RuntimeApiEmulator::start_with(settings).await?;
        let process = LambdaProcess::spawn(binary, emulator.address(), emulator.settings(), env)?;
        emulator.freeze_when_idle(Some(process.pid()));
        Ok(Self { emulator, process })
    }

    pub fn emulator(&self) -> &RuntimeApiEmulator {
        &self.emulator
    }

    pub fn process(&self) -> &LambdaProcess {
        &self.process
    }

    /// One invocation, bounded by the function's timeout.
    pub async fn invoke(&mut self, payload: Value) -> Result<InvocationOutcome> {
        let timeout = self.emulator.settings().timeout;
        let Self { emulator, process } = self;
        tokio::select! {
            outcome = emulator.invoke_within(payload, timeout) => outcome.map_err(|error| with_output(error, process)),
            status = process.exited() => Err(exited_early(status, process)),
        }
    }

    pub async fn wait_until_initialized(&mut self, timeout: Duration) -> Result<Instant> {
        let Self { emulator, process } = self;
        tokio::select! {
            at = emulator.wait_until_initialized(timeout) => at.map_err(|error| with_output(error, process)),
            status = process.exited() => Err(exited_early(status, process)),
        }
    }

    /// Waits until the invocation is over (extensions included) and the process is
    /// frozen: from then on it runs nothing until the next invocation.
    pub async fn wait_until_idle(&mut self, timeout: Duration) -> Result<Instant> {
        let Self { emulator, process } = self;
        let idle_at = tokio::select! {
            at = emulator.wait_until_idle(timeout) => at.map_err(|error| with_output(error, process))?,
            status = process.exited() => return Err(exited_early(status, process)),
        };
        // SIGSTOP takes effect when the kernel next schedules the process, not at once.
        let deadline = Instant::now() + FREEZE_WAIT;
        while !process.is_stopped()? {
            ensure!(Instant::now() < deadline, "the idle function was not frozen within {FREEZE_WAIT:?}");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(idle_at)
    }

    /// Kills and reaps the process, then stops the emulator.
    pub async fn stop(self) -> Result<()> {
        // Never signal a pid that may be reused once the process is reaped.
        self.emulator.freeze_when_idle(None);
        self.process.kill().await
    }
}

fn with_output(error: anyhow::Error, process: &LambdaProcess) -> anyhow::Error {
    error.context(format!("the function's last output:\n{}", process.output_tail().join("\n")))
}

fn exited_early(status: std::io::Result<ExitStatus>, process: &LambdaProcess) -> anyhow::Error {
    let status = status.map_or_else(|error| error.to_string(), |status| status.to_string());
    anyhow!("the function exited ({status}); its last output:\n{}", process.output_tail().join("\n"))
}

/// Milliseconds with sub-millisecond precision, for reports.
fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

/// The smallest, median and largest of repeated measurements.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MinMedianMax {
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

impl MinMedianMax {
    /// `None` without samples. The median of an even count is the mean of the middle two.
    pub fn of(samples: &[f64]) -> Option<Self> {
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let (&min, &max) = (sorted.first()?, sorted.last()?);
        let middle = sorted.len() / 2;
        let median = if sorted.len() % 2 == 1 { sorted[middle] } else { (sorted[middle - 1] + sorted[middle]) / 2.0 };
        Some(Self { min, median, max })
    }
}

/// Nearest-rank percentile (`percent` in 0..=100) of unsorted samples.
pub fn percentile(samples: &[f64], percent: f64) -> Option<f64> {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (percent.clamp(0.0, 100.0) / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.saturating_sub(1)).copied()
}

/// One cold start, from the exec of the binary.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ColdStart {
    /// Until the runtime first asked for an invocation.
    pub exec_to_first_next_ms: f64,
    /// Until the end of the init phase (runtime and extensions all waiting): Lambda's
    /// "Init Duration".
    pub exec_to_initialized_ms: f64,
    /// Until the first invocation was answered.
    pub exec_to_first_response_ms: f64,
}

/// Warm invocations of one execution environment.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct WarmRun {
    pub invocations: usize,
    /// From the runtime receiving the event to its response.
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// From the runtime receiving the event until the runtime and every extension wait
    /// again: what Lambda bills, post-response extension work included.
    pub p50_until_idle_ms: f64,
    pub p99_until_idle_ms: f64,
    /// CPU time of the process over the warm invocations only (frozen in between), per
    /// invocation; its resolution is one clock tick over all of them.
    pub cpu_ms_per_invocation: f64,
    /// Peak resident set size over the process's life, cold start included.
    pub peak_rss_kib: u64,
}

fn ensure_answered(outcome: &InvocationOutcome) -> Result<()> {
    match &outcome.answer {
        Answer::Response => Ok(()),
        Answer::FunctionError { error_type } => {
            bail!("invocation failed ({error_type}): {}", String::from_utf8_lossy(&outcome.body))
        }
    }
}

/// Starts `binary` fresh, invokes it once with `first_event`, and reports how long its
/// cold start took. Fails if the function does not answer or answers with an error.
pub async fn measure_cold_start(binary: &Path, env: &[(String, String)], first_event: Value) -> Result<ColdStart> {
    let mut function = LambdaFunction::start(binary, env).await?;
    let measured: Result<ColdStart> = async {
        let outcome = function.invoke(first_event).await?;
        ensure_answered(&outcome)?;
        let timeline = function.emulator().timeline();
        let spawned_at = function.process().spawned_at();
        let since_exec = |at: Option<Instant>, what: &str| -> Result<f64> {
            let at = at.with_context(|| format!("no {what} was recorded"))?;
            Ok(millis(at.saturating_duration_since(spawned_at)))
        };
        Ok(ColdStart {
            exec_to_first_next_ms: since_exec(timeline.first_runtime_next, "runtime poll")?,
            exec_to_initialized_ms: since_exec(timeline.initialized, "end of init")?,
            exec_to_first_response_ms: millis(outcome.answered_at.saturating_duration_since(spawned_at)),
        })
    }
    .await;
    let stopped = function.stop().await;
    let cold_start = measured?;
    stopped?;
    Ok(cold_start)
}

/// [`measure_warm_with`] sending the same event every time.
pub async fn measure_warm(
    binary: &Path,
    env: &[(String, String)],
    event: &Value,
    invocations: usize,
) -> Result<WarmRun> {
    measure_warm_with(binary, env, invocations, |_| event.clone()).await
}

/// Starts `binary`, warms it with `event(0)`, then measures `invocations` warm invocations
/// with `event(1)`, `event(2)`, ...: each is handed out once the previous one is over,
/// and the process is frozen in between. Fails on any function error.
pub async fn measure_warm_with(
    binary: &Path,
    env: &[(String, String)],
    invocations: usize,
    mut event: impl FnMut(usize) -> Value,
) -> Result<WarmRun> {
    ensure!(invocations > 0, "no warm invocations to measure");
    let mut function = LambdaFunction::start(binary, env).await?;
    let measured: Result<WarmRun> = async {
        ensure_answered(&function.invoke(event(0)).await?)?;
        function.wait_until_idle(DEFAULT_WAIT).await?;
        let cpu_before = function.process().cpu_time()?;
        let mut latencies = Vec::with_capacity(invocations);
        let mut until_idle = Vec::with_capacity(invocations);
        for index in 1..=invocations {
            let outcome = function.invoke(event(index)).await?;
            ensure_answered(&outcome)?;
            let idle_at = function.wait_until_idle(DEFAULT_WAIT).await?;
            latencies.push(millis(outcome.latency()));
            until_idle.push(millis(idle_at.saturating_duration_since(outcome.handed_out_at)));
        }
        let cpu = function.process().cpu_time()?.saturating_sub(cpu_before);
        let summary = |samples: &[f64], percent: f64| percentile(samples, percent).unwrap_or_default();
        Ok(WarmRun {
            invocations,
            p50_ms: summary(&latencies, 50.0),
            p99_ms: summary(&latencies, 99.0),
            p50_until_idle_ms: summary(&until_idle, 50.0),
            p99_until_idle_ms: summary(&until_idle, 99.0),
            cpu_ms_per_invocation: millis(cpu) / invocations as f64,
            peak_rss_kib: function.process().peak_rss_kib()?,
        })
    }
    .await;
    let stopped = function.stop().await;
    let warm = measured?;
    stopped?;
    Ok(warm)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_secs(10);

    /// Plays the runtime or an extension over plain HTTP, as the Lambda crates do.
    struct Client {
        http: reqwest::Client,
        base: String,
    }

    impl Client {
        fn new(emulator: &RuntimeApiEmulator) -> Self {
            Self { http: reqwest::Client::new(), base: format!("http://{}", emulator.address()) }
        }

        async fn register(&self, name: &str, events: &[&str]) -> String {
            let response = self
                .http
                .post(format!("{}/2020-01-01/extension/register", self.base))
                .header("Lambda-Extension-Name", name)
                .header("Lambda-Extension-Accept-Feature", "accountId")
                .json(&json!({ "events": events }))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            let id = response.headers()["lambda-extension-identifier"].to_str().unwrap().to_owned();
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["functionName"], "brain2-api");
            assert_eq!(body["accountId"], ACCOUNT_ID);
            id
        }

        fn extension_next(&self, id: &str) -> JoinHandle<Value> {
            let request = self
                .http
                .get(format!("{}/2020-01-01/extension/event/next", self.base))
                .header("Lambda-Extension-Identifier", id);
            tokio::spawn(async move { request.send().await.unwrap().json().await.unwrap() })
        }

        /// The runtime's poll: the invocation's request id and payload.
        fn runtime_next(&self) -> JoinHandle<(String, HeaderMap, Value)> {
            let request = self.http.get(format!("{}/2018-06-01/runtime/invocation/next", self.base));
            tokio::spawn(async move {
                let response = request.send().await.unwrap();
                assert_eq!(response.status(), 200);
                let headers = response.headers().clone();
                let id = headers[RUNTIME_REQUEST_ID].to_str().unwrap().to_owned();
                (id, headers, response.json().await.unwrap())
            })
        }

        async fn respond(&self, id: &str, body: Value) -> u16 {
            let url = format!("{}/2018-06-01/runtime/invocation/{id}/response", self.base);
            self.http.post(url).json(&body).send().await.unwrap().status().as_u16()
        }
    }

    async fn within<T>(task: JoinHandle<T>) -> T {
        tokio::time::timeout(WAIT, task).await.expect("answered in time").unwrap()
    }

    /// Whether `task` is still pending after a while: a poll nobody should answer yet.
    async fn still_pending<T>(task: &mut JoinHandle<T>) -> bool {
        tokio::time::timeout(Duration::from_millis(300), task).await.is_err()
    }

    #[tokio::test]
    async fn the_next_invocation_waits_for_every_extension() {
        let emulator = RuntimeApiEmulator::start().await.unwrap();
        let client = Client::new(&emulator);
        let extension = client.register("flusher", &["INVOKE"]).await;

        let first_invoke = client.extension_next(&extension);
        let first_poll = client.runtime_next();
        emulator.wait_until_initialized(WAIT).await.unwrap();
        let invoker = {
            let payload = json!({"n": 1});
            async { emulator.invoke_within(payload, WAIT).await }
        };
        let respond = async {
            let (id, headers, payload) = within(first_poll).await;
            assert_eq!(payload, json!({"n": 1}));
            assert!(headers[RUNTIME_DEADLINE_MS].to_str().unwrap().parse::<u64>().is_ok());
            assert_eq!(headers[RUNTIME_FUNCTION_ARN], emulator.settings().function_arn().as_str());
            assert!(headers[RUNTIME_TRACE_ID].to_str().unwrap().starts_with("Root=1-"));
            let invoke = within(first_invoke).await;
            assert_eq!(invoke["eventType"], "INVOKE");
            assert_eq!(invoke["requestId"], id.as_str());
            assert_eq!(client.respond(&id, json!({"answer": 1})).await, 202);
            id
        };
        let (outcome, id) = tokio::join!(invoker, respond);
        let outcome = outcome.unwrap();
        assert_eq!(outcome.request_id, id);
        assert_eq!(outcome.answer, Answer::Response);
        assert_eq!(outcome.json().unwrap(), json!({"answer": 1}));

        // The runtime is back while the extension is still working on the first invocation.
        let mut second_poll = client.runtime_next();
        let second = emulator.invoke_within(json!({"n": 2}), WAIT);
        let finish_extension_work = async {
            assert!(still_pending(&mut second_poll).await, "handed out while the extension was busy");
            assert!(emulator.wait_until_idle(Duration::from_millis(100)).await.is_err());
            let second_invoke = client.extension_next(&extension);
            let (second_id, _, payload) = within(second_poll).await;
            assert_eq!(payload, json!({"n": 2}));
            assert_eq!(within(second_invoke).await["requestId"], second_id.as_str());
            assert_eq!(client.respond(&second_id, json!({"answer": 2})).await, 202);
        };
        let (second, ()) = tokio::join!(second, finish_extension_work);
        assert_eq!(second.unwrap().json().unwrap(), json!({"answer": 2}));

        let _third_invoke = client.extension_next(&extension);
        let _third_poll = client.runtime_next();
        let idle_at = emulator.wait_until_idle(WAIT).await.unwrap();
        let timeline = emulator.timeline();
        assert_eq!(timeline.handed_out.len(), 2);
        assert_eq!(timeline.answered.len(), 2);
        assert_eq!(timeline.idle.last(), Some(&idle_at));
        assert_eq!(emulator.extension_names(), ["flusher"]);
    }

    #[tokio::test]
    async fn extensions_register_only_during_init() {
        let emulator = RuntimeApiEmulator::start().await.unwrap();
        let client = Client::new(&emulator);
        let _poll = client.runtime_next();
        emulator.wait_until_initialized(WAIT).await.unwrap();

        let response = client
            .http
            .post(format!("{}/2020-01-01/extension/register", client.base))
            .header("Lambda-Extension-Name", "late")
            .json(&json!({"events": ["INVOKE"]}))
            .send()
            .await
            .unwrap();

        assert_eq!(response.status(), 403);
        assert!(emulator.extension_names().is_empty());
    }

    #[tokio::test]
    async fn an_init_error_fails_the_waiting_invocation() {
        let emulator = RuntimeApiEmulator::start().await.unwrap();
        let client = Client::new(&emulator);
        let invocation = emulator.invoke_within(json!({}), WAIT);
        let report = async {
            let response = client
                .http
                .post(format!("{}/2018-06-01/runtime/init/error", client.base))
                .header("Lambda-Runtime-Function-Error-Type", "Runtime.InitError")
                .json(&json!({"errorType": "Runtime.InitError", "errorMessage": "no table"}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 202);
        };
        let (outcome, ()) = tokio::join!(invocation, report);

        let error = outcome.unwrap_err().to_string();
        assert!(error.contains("no table"), "{error}");
        assert!(emulator.failure().is_some());
    }

    #[tokio::test]
    async fn a_function_error_is_an_outcome_not_a_failure() {
        let emulator = RuntimeApiEmulator::start().await.unwrap();
        let client = Client::new(&emulator);
        let poll = client.runtime_next();
        let invocation = emulator.invoke_within(json!({}), WAIT);
        let fail = async {
            let (id, _, _) = within(poll).await;
            let response = client
                .http
                .post(format!("{}/2018-06-01/runtime/invocation/{id}/error", client.base))
                .header("Lambda-Runtime-Function-Error-Type", "unhandled")
                .json(&json!({"errorType": "Boom", "errorMessage": "it broke"}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 202);
        };
        let (outcome, ()) = tokio::join!(invocation, fail);

        let outcome = outcome.unwrap();
        assert_eq!(outcome.answer, Answer::FunctionError { error_type: "unhandled".to_owned() });
        assert_eq!(outcome.json().unwrap()["errorMessage"], "it broke");
        assert!(outcome.http_response().is_err());
        assert!(emulator.failure().is_none());
    }

    #[tokio::test]
    async fn shutdown_reaches_the_extensions_that_asked_for_it() {
        let emulator = RuntimeApiEmulator::start().await.unwrap();
        let client = Client::new(&emulator);
        let watcher = client.register("watcher", &["INVOKE", "SHUTDOWN"]).await;
        let invoke_only = client.register("invoke-only", &["INVOKE"]).await;
        let shutdown = client.extension_next(&watcher);
        let mut other = client.extension_next(&invoke_only);
        let _poll = client.runtime_next();

        let shutting_down = emulator.shutdown_extensions(WAIT);
        let acknowledge = async {
            let event = within(shutdown).await;
            assert_eq!(event["eventType"], "SHUTDOWN");
            assert_eq!(event["shutdownReason"], "spindown");
            assert!(event["deadlineMs"].as_u64().is_some());
            // Asking for the next event is how an extension says it is done.
            let mut after_shutdown = client.extension_next(&watcher);
            assert!(still_pending(&mut after_shutdown).await, "an event after SHUTDOWN");
        };
        let (delivered, ()) = tokio::join!(shutting_down, acknowledge);

        assert_eq!(delivered.unwrap(), 1);
        assert!(still_pending(&mut other).await, "SHUTDOWN reached an extension that did not register for it");
    }

    #[test]
    fn http_api_events_carry_what_lambda_http_reads() {
        let event = api_gateway_v2_event(
            "post",
            "/api/v1/nodes",
            "limit=5&tag=a%20b&tag=c",
            &[("Authorization", "Bearer t"), ("Cookie", "a=1; b=2"), ("X-Multi", "1"), ("x-multi", "2")],
            Some("{}".to_owned()),
        );

        assert_eq!(event["version"], "2.0");
        assert_eq!(event["rawPath"], "/api/v1/nodes");
        assert_eq!(event["rawQueryString"], "limit=5&tag=a%20b&tag=c");
        assert_eq!(event["requestContext"]["http"]["method"], "POST");
        assert_eq!(event["requestContext"]["http"]["path"], "/api/v1/nodes");
        assert_eq!(event["requestContext"]["stage"], "$default");
        assert_eq!(event["routeKey"], "$default");
        assert_eq!(event["headers"]["authorization"], "Bearer t");
        assert_eq!(event["headers"]["x-multi"], "1,2");
        assert_eq!(event["headers"]["content-length"], "2");
        assert!(event["headers"].get("cookie").is_none());
        assert_eq!(event["cookies"], json!(["a=1", "b=2"]));
        assert_eq!(event["queryStringParameters"], json!({"limit": "5", "tag": "a b,c"}));
        assert_eq!(event["body"], "{}");
        assert_eq!(event["isBase64Encoded"], false);
    }

    #[test]
    fn proxy_answers_become_http_responses() {
        let answer = |body: Value| InvocationOutcome {
            request_id: "id".to_owned(),
            answer: Answer::Response,
            body: Bytes::from(body.to_string()),
            handed_out_at: Instant::now(),
            answered_at: Instant::now(),
        };
        let plain =
            answer(json!({"statusCode": 201, "headers": {"Content-Type": "application/json"}, "body": "{\"a\":1}"}));
        let encoded = answer(json!({"statusCode": 200, "body": "aGk=", "isBase64Encoded": true}));

        let plain = plain.http_response().unwrap();
        assert_eq!(plain.status, 201);
        assert_eq!(plain.headers["content-type"], "application/json");
        assert_eq!(plain.json().unwrap(), json!({"a": 1}));
        assert_eq!(encoded.http_response().unwrap().body, b"hi");
        assert!(answer(json!({"body": ""})).http_response().is_err());
    }

    #[test]
    fn summaries_of_samples() {
        assert_eq!(MinMedianMax::of(&[3.0, 1.0, 2.0]), Some(MinMedianMax { min: 1.0, median: 2.0, max: 3.0 }));
        assert_eq!(MinMedianMax::of(&[4.0, 1.0, 2.0, 3.0]).unwrap().median, 2.5);
        assert_eq!(MinMedianMax::of(&[]), None);
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&samples, 50.0), Some(50.0));
        assert_eq!(percentile(&samples, 99.0), Some(99.0));
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn query_strings_decode_as_api_gateway_decodes_them() {
        assert_eq!(percent_decode("a%2Fb+c%zz"), "a/b c%zz");
        assert_eq!(
            query_parameters("flag&x=1"),
            BTreeMap::from([("flag".into(), String::new()), ("x".into(), "1".into())])
        );
    }

    /// An executable script of this test's own, removed when dropped.
    struct Script(std::path::PathBuf);

    impl Script {
        fn with(body: &str) -> Self {
            use std::os::unix::fs::PermissionsExt;
            let path = std::env::temp_dir().join(format!("brain2-bootstrap-{}", uuid::Uuid::new_v4().simple()));
            std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            Self(path)
        }
    }

    impl Drop for Script {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// The process state letter (`R`, `S`, `T`, `Z`...), or `None` once it is reaped.
    fn process_state(pid: u32) -> Option<String> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        Some(stat.rsplit_once(')')?.1.split_whitespace().next()?.to_owned())
    }

    async fn eventually(mut condition: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if condition() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        condition()
    }

    #[tokio::test]
    async fn the_function_gets_the_lambda_environment_and_nothing_of_ours() {
        let emulator = RuntimeApiEmulator::start().await.unwrap();
        let script = Script::with(
            "echo \"$AWS_LAMBDA_RUNTIME_API|$AWS_LAMBDA_FUNCTION_NAME|$AWS_LAMBDA_FUNCTION_MEMORY_SIZE|$BRAIN2_MARKER|${HOME:-no home}\"\nexec sleep 30",
        );
        let env = [("BRAIN2_MARKER".to_owned(), "given".to_owned())];

        let process = LambdaProcess::spawn(&script.0, emulator.address(), emulator.settings(), &env).unwrap();

        let expected = format!("{}|brain2-api|128|given|no home", emulator.address());
        assert!(eventually(|| process.output_tail().contains(&expected)).await, "{:?}", process.output_tail());
        assert!(process.peak_rss_kib().unwrap() > 0);
        assert!(process.cpu_time().is_ok());
        assert!(!process.is_stopped().unwrap());
        process.kill().await.unwrap();
    }

    #[tokio::test]
    async fn a_dropped_process_is_killed() {
        let emulator = RuntimeApiEmulator::start().await.unwrap();
        let script = Script::with("exec sleep 30");
        let process = LambdaProcess::spawn(&script.0, emulator.address(), emulator.settings(), &[]).unwrap();
        let pid = process.pid();
        assert!(process_state(pid).is_some_and(|state| state != "Z"));

        drop(process);

        assert!(eventually(|| process_state(pid).is_none_or(|state| state == "Z")).await, "{:?}", process_state(pid));
    }

    #[tokio::test]
    async fn an_exiting_function_ends_the_wait_for_its_answer() {
        let script = Script::with("echo 'cannot start' >&2\nexit 3");

        let mut function = LambdaFunction::start(&script.0, &[]).await.unwrap();
        let error = function.invoke(json!({})).await.unwrap_err().to_string();

        assert!(error.contains("exit status: 3") && error.contains("cannot start"), "{error}");
        function.stop().await.unwrap();
    }
}
