//! A simulated network between the service and AWS, for measuring and testing only:
//! a round trip added to every attempt (local emulators answer in about a millisecond,
//! DynamoDB from Lambda takes several) and seeded, reproducible faults injected at the
//! HTTP layer, where the SDK and the store must cope with them exactly as with real ones.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};

use crate::config::milliseconds;

/// Probabilities of injected faults. Each is in [0, 1].
#[derive(Debug, Clone, PartialEq)]
pub struct FaultPlan {
    /// A DynamoDB call answered with `ThrottlingException` (the SDK retries it).
    pub throttle: f64,
    /// A BatchWriteItem/BatchGetItem with part of its items withheld and returned unprocessed.
    pub unprocessed: f64,
    /// Each PutEvents entry failing (withheld, reported with an error code).
    pub putevents_fail: f64,
    pub seed: u64,
}

impl FaultPlan {
    /// Parses `throttle=0.1,unprocessed=0.3,putevents_fail=0.2[,seed=7]`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut plan = Self { throttle: 0.0, unprocessed: 0.0, putevents_fail: 0.0, seed: 0 };
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part.split_once('=').ok_or_else(|| format!("{part:?} is not key=value"))?;
            if key == "seed" {
                plan.seed = value.parse().map_err(|_| format!("seed {value:?} is not a whole number"))?;
                continue;
            }
            let probability: f64 = value
                .parse()
                .ok()
                .filter(|p: &f64| (0.0..=1.0).contains(p))
                .ok_or_else(|| format!("{key}={value}: a probability must be between 0 and 1"))?;
            match key {
                "throttle" => plan.throttle = probability,
                "unprocessed" => plan.unprocessed = probability,
                "putevents_fail" => plan.putevents_fail = probability,
                _ => return Err(format!("unknown fault {key:?} (throttle, unprocessed, putevents_fail, seed)")),
            }
        }
        Ok(plan)
    }
}

/// How many faults a simulation has injected so far; shared by every clone of its settings,
/// so that a test can report what its run went through.
#[derive(Debug, Clone, Default)]
pub struct InjectedFaults(Arc<FaultCounts>);

#[derive(Debug, Default)]
struct FaultCounts {
    throttled: AtomicU64,
    withheld_items: AtomicU64,
    failed_entries: AtomicU64,
}

impl InjectedFaults {
    /// Calls answered with a throttling error.
    pub fn throttled(&self) -> u64 {
        self.0.throttled.load(Ordering::Relaxed)
    }

    /// Batch items returned unprocessed (or keys unread).
    pub fn withheld_items(&self) -> u64 {
        self.0.withheld_items.load(Ordering::Relaxed)
    }

    /// PutEvents entries failed.
    pub fn failed_entries(&self) -> u64 {
        self.0.failed_entries.load(Ordering::Relaxed)
    }

    pub fn total(&self) -> u64 {
        self.throttled() + self.withheld_items() + self.failed_entries()
    }
}

/// Counters are not part of what a simulation is.
impl PartialEq for InjectedFaults {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// Settings of the simulated network; all off by default, and refused in Lambda.
#[derive(Debug, Clone, Default, PartialEq, clap::Args)]
pub struct NetworkSimulation {
    /// Round trip added to every AWS call, in milliseconds (measuring only).
    #[arg(long = "sim-rtt-ms", env = "BRAIN2_SIM_RTT_MS", value_name = "MS", value_parser = milliseconds, default_value = "0")]
    pub round_trip: Duration,
    /// Random extra delay of up to this many milliseconds per AWS call (measuring only).
    #[arg(long = "sim-rtt-jitter-ms", env = "BRAIN2_SIM_RTT_JITTER_MS", value_name = "MS", value_parser = milliseconds, default_value = "0")]
    pub jitter: Duration,
    /// Round trip added to every call of the shared cache, in milliseconds (measuring only).
    #[arg(long = "sim-cache-rtt-ms", env = "BRAIN2_SIM_CACHE_RTT_MS", value_name = "MS", value_parser = milliseconds, default_value = "0")]
    pub cache_round_trip: Duration,
    /// Injected faults, e.g. `throttle=0.1,unprocessed=0.3,putevents_fail=0.2,seed=7` (testing only).
    #[arg(long, env = "BRAIN2_FAULTS", value_name = "SPEC", value_parser = FaultPlan::parse)]
    pub faults: Option<FaultPlan>,
    /// What the simulation has injected so far.
    #[arg(skip)]
    pub injected: InjectedFaults,
}

impl NetworkSimulation {
    /// Whether anything is simulated (which a deployed function refuses).
    pub fn is_active(&self) -> bool {
        self.affects_aws() || !self.cache_round_trip.is_zero()
    }

    /// Whether calls to AWS cross the simulated network.
    pub fn affects_aws(&self) -> bool {
        !self.round_trip.is_zero() || !self.jitter.is_zero() || self.faults.is_some()
    }

    /// Wraps an HTTP client so every request crosses the simulated network.
    pub fn wrap(&self, inner: SharedHttpClient) -> SharedHttpClient {
        let seed = self.faults.as_ref().map_or(0, |faults| faults.seed);
        let state =
            Arc::new(SimulationState { simulation: self.clone(), rng: Mutex::new(StdRng::seed_from_u64(seed)) });
        SharedHttpClient::new(SimulatedClient { inner, state })
    }
}

#[derive(Debug)]
struct SimulationState {
    simulation: NetworkSimulation,
    rng: Mutex<StdRng>,
}

impl SimulationState {
    fn chance(&self, probability: f64) -> bool {
        probability > 0.0 && self.rng.lock().is_ok_and(|mut rng| rng.gen_bool(probability))
    }

    fn delay(&self) -> Duration {
        let jitter = self.simulation.jitter.as_micros() as u64;
        let extra = if jitter == 0 { 0 } else { self.rng.lock().map_or(0, |mut rng| rng.gen_range(0..=jitter)) };
        self.simulation.round_trip + Duration::from_micros(extra)
    }

    /// Indices of `count` items to withhold: about half, at least one.
    fn pick_withheld(&self, count: usize) -> Vec<bool> {
        let mut withheld: Vec<bool> = (0..count).map(|_| self.chance(0.5)).collect();
        if count > 0 && !withheld.contains(&true) {
            withheld[0] = true;
        }
        withheld
    }
}

#[derive(Debug)]
struct SimulatedClient {
    inner: SharedHttpClient,
    state: Arc<SimulationState>,
}

impl HttpClient for SimulatedClient {
    fn http_connector(&self, settings: &HttpConnectorSettings, components: &RuntimeComponents) -> SharedHttpConnector {
        let inner = self.inner.http_connector(settings, components);
        SharedHttpConnector::new(SimulatedConnector { inner, state: self.state.clone() })
    }
}

#[derive(Debug)]
struct SimulatedConnector {
    inner: SharedHttpConnector,
    state: Arc<SimulationState>,
}

impl HttpConnector for SimulatedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let (inner, state) = (self.inner.clone(), self.state.clone());
        HttpConnectorFuture::new(async move {
            let delay = state.delay();
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let Some(faults) = state.simulation.faults.clone() else { return inner.call(request).await };
            let target = request.headers().get("x-amz-target").unwrap_or_default().to_owned();
            let Some((service, operation)) = target.split_once('.') else { return inner.call(request).await };
            match (service, operation) {
                ("DynamoDB_20120810", _) if state.chance(faults.throttle) => {
                    state.simulation.injected.0.throttled.fetch_add(1, Ordering::Relaxed);
                    Ok(throttled())
                }
                ("DynamoDB_20120810", "BatchWriteItem" | "BatchGetItem") if state.chance(faults.unprocessed) => {
                    withhold_batch_items(&state, &inner, request, operation == "BatchWriteItem").await
                }
                ("AWSEvents", "PutEvents") if faults.putevents_fail > 0.0 => {
                    fail_event_entries(&state, &inner, request, faults.putevents_fail).await
                }
                _ => inner.call(request).await,
            }
        })
    }
}

fn json_response(status: u16, body: &Value) -> HttpResponse {
    let mut response =
        HttpResponse::new(StatusCode::try_from(status).expect("valid status"), SdkBody::from(body.to_string()));
    response.headers_mut().insert("content-type", "application/x-amz-json-1.0");
    response
}

fn throttled() -> HttpResponse {
    json_response(
        400,
        &json!({"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException", "message": "Rate exceeded (simulated)"}),
    )
}

fn connector_error(message: String) -> ConnectorError {
    ConnectorError::other(message.into(), None)
}

fn request_json(request: &HttpRequest) -> Result<Value, ConnectorError> {
    let bytes = request.body().bytes().ok_or_else(|| connector_error("streaming request body".into()))?;
    serde_json::from_slice(bytes).map_err(|e| connector_error(format!("request body is not JSON: {e}")))
}

fn replace_body(request: &mut HttpRequest, body: &Value) {
    let bytes = body.to_string().into_bytes();
    request.headers_mut().insert("content-length", bytes.len().to_string());
    *request.body_mut() = SdkBody::from(bytes);
}

async fn forward_json(inner: &SharedHttpConnector, request: HttpRequest) -> Result<(u16, Value), ConnectorError> {
    let response = inner.call(request).await?;
    let status = response.status().as_u16();
    let bytes = ByteStream::new(response.into_body())
        .collect()
        .await
        .map_err(|e| connector_error(format!("reading response: {e}")))?
        .into_bytes();
    let json = serde_json::from_slice(&bytes).map_err(|e| connector_error(format!("response is not JSON: {e}")))?;
    Ok((status, json))
}

/// Sends only part of a batch and reports the rest as unprocessed, the way DynamoDB does
/// under load: the withheld items are really not written (or read), so a caller that does
/// not retry them loses them, and a test notices.
async fn withhold_batch_items(
    state: &SimulationState,
    inner: &SharedHttpConnector,
    mut request: HttpRequest,
    is_write: bool,
) -> Result<HttpResponse, ConnectorError> {
    let mut body = request_json(&request)?;
    let mut withheld_by_table = Map::new();
    let mut forwarded_any = false;
    if let Some(tables) = body.get_mut("RequestItems").and_then(Value::as_object_mut) {
        for (table, entry) in tables.iter_mut() {
            let items = if is_write { Some(entry) } else { entry.get_mut("Keys") };
            let Some(Value::Array(items)) = items else { continue };
            let picks = state.pick_withheld(items.len());
            let withheld = picks.iter().filter(|withhold| **withhold).count() as u64;
            state.simulation.injected.0.withheld_items.fetch_add(withheld, Ordering::Relaxed);
            let (withheld, kept): (Vec<_>, Vec<_>) =
                std::mem::take(items).into_iter().zip(picks).partition(|(_, withhold)| *withhold);
            *items = kept.into_iter().map(|(item, _)| item).collect();
            forwarded_any |= !items.is_empty();
            let withheld: Vec<Value> = withheld.into_iter().map(|(item, _)| item).collect();
            withheld_by_table.insert(table.clone(), json!(withheld));
        }
        tables.retain(|_, entry| {
            let items = if is_write { Some(&*entry) } else { entry.get("Keys") };
            items.and_then(Value::as_array).is_some_and(|items| !items.is_empty())
        });
    }
    let original_tables = request_json(&request)?["RequestItems"].clone();
    let (status, mut response) = if forwarded_any {
        replace_body(&mut request, &body);
        forward_json(inner, request).await?
    } else {
        (200, json!({}))
    };
    if status != 200 {
        return Ok(json_response(status, &response));
    }
    let unprocessed_key = if is_write { "UnprocessedItems" } else { "UnprocessedKeys" };
    let unprocessed = response
        .as_object_mut()
        .ok_or_else(|| connector_error("response is not an object".into()))?
        .entry(unprocessed_key)
        .or_insert_with(|| json!({}));
    for (table, withheld) in withheld_by_table {
        if withheld.as_array().is_none_or(Vec::is_empty) {
            continue;
        }
        if is_write {
            let list = unprocessed[&table].as_array().cloned().unwrap_or_default();
            unprocessed[&table] =
                json!(list.into_iter().chain(withheld.as_array().cloned().unwrap_or_default()).collect::<Vec<_>>());
        } else {
            // Unprocessed keys keep the table's read options (projection, consistency).
            let mut entry = original_tables[&table].clone();
            entry["Keys"] = withheld;
            unprocessed[&table] = entry;
        }
    }
    if !is_write && response.get("Responses").is_none() {
        response["Responses"] = json!({});
    }
    Ok(json_response(200, &response))
}

/// Fails some PutEvents entries: they are not sent, and come back with an error code in
/// their position, counted in `FailedEntryCount`, as EventBridge reports partial failures.
async fn fail_event_entries(
    state: &SimulationState,
    inner: &SharedHttpConnector,
    mut request: HttpRequest,
    probability: f64,
) -> Result<HttpResponse, ConnectorError> {
    let mut body = request_json(&request)?;
    let entries = body["Entries"].as_array().cloned().unwrap_or_default();
    let failing: Vec<bool> = entries.iter().map(|_| state.chance(probability)).collect();
    let failures = failing.iter().filter(|fail| **fail).count() as u64;
    state.simulation.injected.0.failed_entries.fetch_add(failures, Ordering::Relaxed);
    if !failing.contains(&true) {
        return inner.call(request).await;
    }
    let kept: Vec<Value> =
        entries.iter().zip(&failing).filter(|(_, fail)| !**fail).map(|(entry, _)| entry.clone()).collect();
    let mut forwarded_results = Vec::new();
    let mut failed_count = 0;
    if !kept.is_empty() {
        body["Entries"] = json!(kept);
        replace_body(&mut request, &body);
        let (status, response) = forward_json(inner, request).await?;
        if status != 200 {
            return Ok(json_response(status, &response));
        }
        failed_count += response["FailedEntryCount"].as_u64().unwrap_or(0);
        forwarded_results = response["Entries"].as_array().cloned().unwrap_or_default();
    }
    let mut forwarded = forwarded_results.into_iter();
    let results: Vec<Value> = failing
        .iter()
        .map(|fail| {
            if *fail {
                failed_count += 1;
                json!({"ErrorCode": "InternalFailure", "ErrorMessage": "Simulated failure"})
            } else {
                forwarded.next().unwrap_or_else(|| json!({}))
            }
        })
        .collect();
    Ok(json_response(200, &json!({"FailedEntryCount": failed_count, "Entries": results})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fault_plans() {
        let plan = FaultPlan::parse("throttle=0.1, unprocessed=0.3,putevents_fail=0.2,seed=7").unwrap();
        assert_eq!(plan, FaultPlan { throttle: 0.1, unprocessed: 0.3, putevents_fail: 0.2, seed: 7 });
        assert!(FaultPlan::parse("throttle=2").is_err());
        assert!(FaultPlan::parse("explode=0.1").is_err());
        assert!(FaultPlan::parse("throttle").is_err());
        assert!(FaultPlan::parse("").unwrap().throttle == 0.0);
    }

    #[test]
    fn withholding_always_keeps_at_least_one_back() {
        let state =
            SimulationState { simulation: NetworkSimulation::default(), rng: Mutex::new(StdRng::seed_from_u64(1)) };
        for count in 1..30 {
            assert!(state.pick_withheld(count).contains(&true));
        }
        assert!(state.pick_withheld(0).is_empty());
    }
}
