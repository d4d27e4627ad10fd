//! The shared cache across instances (`docs/optimizations.md`, `shared_cache`): the
//! optimized profile on `CACHE_INSTANCES` `brain2 serve` processes sharing one local stack,
//! each request sent to the next instance in turn, as a load balancer spreads requests over
//! Lambda instances. It runs twice on fresh emulators: with each instance's memory alone
//! (`optimized-no_shared_cache`) and with the shared tier under it (`optimized`).
//!
//! The workload is one person's reading with some editing: get_node, neighbors and
//! graph_data, and now and then (`CACHE_UPDATE_WEIGHT`) an update of a note followed by a
//! read of it (sent, as every request, to the instance whose turn it is). Measured: p50/p99
//! and DynamoDB read units per request (the cost headers), hits and misses of each tier
//! (the instances' metrics), and stale reads: every read of a note is checked against the
//! version its only writer, this client, last wrote.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use goose::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::Serialize;
use serde_json::{Value, json};

use crate::config::{HarnessConfig, ProfileSpec};
use crate::local_server::LocalServer;
use crate::prometheus::{exposition, samples};
use crate::report::{ScenarioReport, figure_to, scenario_report};
use crate::run::{Bound, attack, progress, seeded_stack, token_for};
use crate::scenarios::CostTally;
use crate::seed::{Fixture, SeedPlan, note_text};

/// The two variants: a label and the profile it runs.
const VARIANTS: [(&str, &str); 2] = [("memory", "optimized-no_shared_cache"), ("both_tiers", "optimized")];

/// The operations, with their weights: reads of a note, of its neighbours and of the graph's
/// first page, and an update now and then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    GetNode,
    Neighbors,
    GraphData,
    /// An update of a note, then a read of it: two requests, `update_node` and `read_after_write`.
    UpdateNode,
}

/// The reads' weights; updates weigh `CACHE_UPDATE_WEIGHT`.
const READ_WEIGHTS: [(Operation, usize); 3] =
    [(Operation::GetNode, 30), (Operation::Neighbors, 15), (Operation::GraphData, 5)];

/// The names requests are reported under; all but `update_node` are reads.
const GET_NODE: &str = "get_node";
const NEIGHBORS: &str = "neighbors";
const GRAPH_DATA: &str = "graph_data";
const UPDATE_NODE: &str = "update_node";
const READ_AFTER_WRITE: &str = "read_after_write";
const REQUESTS: [&str; 5] = [GET_NODE, NEIGHBORS, GRAPH_DATA, UPDATE_NODE, READ_AFTER_WRITE];
const READS: [&str; 4] = [GET_NODE, NEIGHBORS, GRAPH_DATA, READ_AFTER_WRITE];

#[derive(Debug, Serialize)]
pub struct CacheTiersReport {
    pub instances: usize,
    pub seconds: usize,
    pub users: usize,
    /// The weight of updates against reads weighing 50 in all.
    pub update_weight: usize,
    pub sim_cache_rtt_ms: u64,
    pub variants: Vec<TierVariantReport>,
    /// DynamoDB read units per read request with memory alone over the same with both tiers.
    pub read_units_ratio: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct TierVariantReport {
    /// `memory` or `both_tiers`.
    pub name: String,
    pub profile: String,
    /// Per request name: counts, latencies and DynamoDB capacity per request.
    pub requests: Vec<ScenarioReport>,
    /// Read requests in all, and the DynamoDB read units they consumed per request.
    pub reads: u64,
    pub read_units_per_read: Option<f64>,
    /// `memory` and `shared` to that tier's lookups over every instance.
    pub lookups: BTreeMap<String, TierLookups>,
    /// Reads of a note checked against the version last written, and those that answered an
    /// older version.
    pub checked_reads: u64,
    pub stale_reads: u64,
    /// The shared cache as the first instance's health check saw it at the end.
    pub cache_health: Option<String>,
}

#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct TierLookups {
    pub hits: f64,
    pub misses: f64,
    pub hit_rate: Option<f64>,
}

/// The cache-tiers measurement, when the run is local and `CACHE_INSTANCES` is not 0.
pub async fn measure(
    config: &HarnessConfig,
    run_id: &str,
    jwt_secret: &str,
) -> anyhow::Result<Option<CacheTiersReport>> {
    if !config.is_local() || config.cache_instances == 0 {
        return Ok(None);
    }
    let mut variants = Vec::with_capacity(VARIANTS.len());
    for (index, (label, profile)) in VARIANTS.into_iter().enumerate() {
        let name = format!("ct{index}-{run_id}");
        variants.push(measure_variant(config, label, &ProfileSpec::parse(profile)?, &name, jwt_secret).await?);
    }
    let units = |label: &str| variants.iter().find(|variant| variant.name == label)?.read_units_per_read;
    let read_units_ratio =
        units("memory").zip(units("both_tiers")).and_then(|(memory, both)| (both > 0.0).then(|| memory / both));
    Ok(Some(CacheTiersReport {
        instances: config.cache_instances,
        seconds: config.cache_seconds.max(1),
        users: config.users,
        update_weight: config.cache_update_weight,
        sim_cache_rtt_ms: config.sim_cache_rtt_ms,
        variants,
        read_units_ratio,
    }))
}

async fn measure_variant(
    config: &HarnessConfig,
    label: &str,
    profile: &ProfileSpec,
    name: &str,
    jwt_secret: &str,
) -> anyhow::Result<TierVariantReport> {
    let step = format!("cache tiers, {label}");
    let folder = config.out.join(format!("cache_tiers-{label}"));
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder)?;
    let plan = SeedPlan {
        graph_nodes: config.graph_nodes,
        graph_edges: config.graph_edges,
        tenants: 0,
        tenant_nodes: 0,
        delete_batches: 0,
        delete_batch_users: 0,
    };
    let labelled = ProfileSpec { name: step.clone(), ..profile.clone() };
    let token_of = |user: &str| token_for(config, jwt_secret, user);
    let (stack, resources, fixture) = seeded_stack(&labelled, name, &plan, config.users, token_of, jwt_secret).await?;
    let environment = stack.aws().service_environment(&resources.table, &resources.bus, &resources.provisioned);
    let brain2 = HarnessConfig::sibling_binary(&config.brain2_bin, "brain2")?;
    progress(format_args!("{step}: starting {} instances", config.cache_instances));
    let mut servers = Vec::with_capacity(config.cache_instances);
    for instance in 0..config.cache_instances {
        let log = folder.join(format!("server{instance}.log"));
        // One instance runs the workers (relay, similarity, cleanup), as the stack's worker
        // functions run beside however many API instances there are.
        servers
            .push(LocalServer::start(&brain2, &environment, profile, config, jwt_secret, &log, instance == 0).await?);
    }
    let client = reqwest::Client::new();
    let before = lookups(&client, &servers).await?;
    let workload = Arc::new(Workload::new(&servers, Arc::new(fixture)));
    progress(format_args!("{step}: {} s round-robin over {} instances", config.cache_seconds, servers.len()));
    let bound = Bound::Duration { seconds: config.cache_seconds.max(1), max_requests: config.max_requests };
    let metrics =
        attack(workload.scenario(config.cache_update_weight)?, config.users, &servers[0].base_url, bound, &folder)
            .await?;
    let after = lookups(&client, &servers).await?;
    let cache_health = cache_health(&client, &servers[0].base_url, &workload.fixture.graph_token).await;
    for server in servers {
        server.stop().await?;
    }
    drop(stack);
    let report = workload.report(label, profile, &metrics, &before, &after, cache_health);
    progress(summary(&report));
    Ok(report)
}

/// What the clients share: the instances, whose turn is next, and what was written.
struct Workload {
    instances: Vec<String>,
    next: AtomicUsize,
    fixture: Arc<Fixture>,
    /// The version of each note this client last wrote or read (1 for a note never updated).
    versions: Mutex<HashMap<String, u64>>,
    tallies: BTreeMap<&'static str, CostTally>,
    checked_reads: AtomicU64,
    stale_reads: AtomicU64,
}

impl Workload {
    fn new(servers: &[LocalServer], fixture: Arc<Fixture>) -> Self {
        Self {
            instances: servers.iter().map(|server| server.base_url.trim_end_matches('/').to_owned()).collect(),
            next: AtomicUsize::new(0),
            fixture,
            versions: Mutex::new(HashMap::new()),
            tallies: REQUESTS.iter().map(|name| (*name, CostTally::default())).collect(),
            checked_reads: AtomicU64::new(0),
            stale_reads: AtomicU64::new(0),
        }
    }

    fn scenario(self: &Arc<Self>, update_weight: usize) -> Result<Scenario, GooseError> {
        let mut scenario = Scenario::new("cache_tiers");
        let updates = (update_weight > 0).then_some((Operation::UpdateNode, update_weight));
        for (operation, weight) in READ_WEIGHTS.into_iter().chain(updates) {
            let workload = self.clone();
            let run: TransactionFunction = Arc::new(move |user| {
                let workload = workload.clone();
                Box::pin(async move { workload.perform(operation, user).await })
            });
            scenario = scenario.register_transaction(Transaction::new(run).set_weight(weight)?);
        }
        Ok(scenario)
    }

    fn versions(&self) -> std::sync::MutexGuard<'_, HashMap<String, u64>> {
        self.versions.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn known_version(&self, node: &str) -> u64 {
        self.versions().get(node).copied().unwrap_or(1)
    }

    /// Records a version seen, keeping the highest: a write whose answer was lost is
    /// learnt from the next read.
    fn saw_version(&self, node: &str, version: u64) {
        let mut versions = self.versions();
        let known = versions.entry(node.to_owned()).or_insert(1);
        *known = (*known).max(version);
    }

    async fn perform(&self, operation: Operation, user: &mut GooseUser) -> TransactionResult {
        let own = &self.fixture.users[user.weighted_users_index % self.fixture.users.len()];
        let (node, content) = {
            let mut rng = StdRng::from_entropy();
            (own.node_ids.choose(&mut rng).cloned().unwrap_or_default(), note_text(&mut rng))
        };
        match operation {
            Operation::GetNode => self.read_node(user, &own.token, &node, GET_NODE).await,
            Operation::Neighbors => {
                let path = format!("/nodes/{node}/neighbors");
                self.send(user, &own.token, GooseMethod::Get, &path, None, NEIGHBORS).await.map(drop)
            }
            Operation::GraphData => {
                let token = &self.fixture.graph_token;
                self.send(user, token, GooseMethod::Get, "/graph-data", None, GRAPH_DATA).await.map(drop)
            }
            Operation::UpdateNode => {
                let body = json!({ "content": content, "version": self.known_version(&node) });
                let path = format!("/nodes/{node}");
                let updated = self.send(user, &own.token, GooseMethod::Put, &path, Some(body), UPDATE_NODE).await?;
                if let Some(version) = updated.as_ref().and_then(|node| node["version"].as_u64()) {
                    self.saw_version(&node, version);
                }
                self.read_node(user, &own.token, &node, READ_AFTER_WRITE).await
            }
        }
    }

    /// Reads a note and checks it is not older than what this client last wrote of it.
    async fn read_node(&self, user: &mut GooseUser, token: &str, node: &str, name: &'static str) -> TransactionResult {
        let expected = self.known_version(node);
        let read = self.send(user, token, GooseMethod::Get, &format!("/nodes/{node}"), None, name).await?;
        if let Some(version) = read.as_ref().and_then(|node| node["version"].as_u64()) {
            self.checked_reads.fetch_add(1, Ordering::Relaxed);
            if version < expected {
                self.stale_reads.fetch_add(1, Ordering::Relaxed);
            }
            self.saw_version(node, version);
        }
        Ok(())
    }

    /// Sends one request to the next instance; the body of a successful answer.
    async fn send(
        &self,
        user: &mut GooseUser,
        token: &str,
        method: GooseMethod,
        path: &str,
        body: Option<Value>,
        name: &'static str,
    ) -> Result<Option<Value>, Box<TransactionError>> {
        let instance = &self.instances[self.next.fetch_add(1, Ordering::Relaxed) % self.instances.len()];
        let url = format!("{instance}{path}");
        let mut builder = user.get_request_builder(&method, &url)?.bearer_auth(token);
        if let Some(body) = body {
            builder = builder.json(&body);
        }
        let request =
            GooseRequest::builder().method(method).path(url.as_str()).name(name).set_request_builder(builder).build();
        let answer = user.request(request).await?;
        let Ok(response) = answer.response else { return Ok(None) };
        if let Some(tally) = self.tallies.get(name) {
            tally.record(response.headers());
        }
        if !response.status().is_success() {
            return Ok(None);
        }
        Ok(response.json().await.ok())
    }

    fn report(
        &self,
        label: &str,
        profile: &ProfileSpec,
        metrics: &GooseMetrics,
        before: &BTreeMap<(String, String), f64>,
        after: &BTreeMap<(String, String), f64>,
        cache_health: Option<String>,
    ) -> TierVariantReport {
        let requests: Vec<ScenarioReport> = REQUESTS
            .iter()
            .map(|name| {
                let tally = &self.tallies[name];
                scenario_report(metrics, name, tally.aws_calls_per_response(), tally.capacity_per_response(), None)
            })
            .collect();
        let (mut reads, mut units) = (0, 0.0);
        for name in READS {
            let tally = &self.tallies[name];
            reads += tally.responses();
            units += tally.capacity_units();
        }
        let count = |tier: &str, result: &str| {
            let key = (tier.to_owned(), result.to_owned());
            after.get(&key).copied().unwrap_or(0.0) - before.get(&key).copied().unwrap_or(0.0)
        };
        let lookups = ["memory", "shared"]
            .into_iter()
            .map(|tier| {
                let (hits, misses) = (count(tier, "hit"), count(tier, "miss"));
                let hit_rate = (hits + misses > 0.0).then(|| hits / (hits + misses));
                (tier.to_owned(), TierLookups { hits, misses, hit_rate })
            })
            .collect();
        TierVariantReport {
            name: label.to_owned(),
            profile: profile.name.clone(),
            requests,
            reads,
            read_units_per_read: (reads > 0).then(|| units / reads as f64),
            lookups,
            checked_reads: self.checked_reads.load(Ordering::Relaxed),
            stale_reads: self.stale_reads.load(Ordering::Relaxed),
            cache_health,
        }
    }
}

/// Cache lookups of every instance so far, by (tier, result).
async fn lookups(client: &reqwest::Client, servers: &[LocalServer]) -> anyhow::Result<BTreeMap<(String, String), f64>> {
    let mut totals = BTreeMap::new();
    for server in servers {
        for (labels, value) in samples(&exposition(client, &server.metrics_url).await?, "brain2_cache_lookups_total") {
            let label = |name: &str| labels.get(name).cloned().unwrap_or_default();
            *totals.entry((label("tier"), label("result"))).or_insert(0.0) += value;
        }
    }
    Ok(totals)
}

/// The `cache` component of an instance's health report (shown to an authenticated caller).
async fn cache_health(client: &reqwest::Client, base_url: &str, token: &str) -> Option<String> {
    let health = client.get(format!("{base_url}/health")).bearer_auth(token).send().await.ok()?;
    let health: Value = health.json().await.ok()?;
    let components = health["components"].as_array()?;
    let cache = components.iter().find(|component| component["name"] == "cache")?;
    cache["status"].as_str().map(str::to_owned)
}

fn summary(report: &TierVariantReport) -> String {
    let mut line = format!(
        "  {}: {} reads, DynamoDB read units/read {}, stale reads {} of {} checked",
        report.name,
        report.reads,
        figure_to(report.read_units_per_read, 3),
        report.stale_reads,
        report.checked_reads
    );
    for (tier, lookups) in &report.lookups {
        let _ = write!(line, ", {tier} hit rate {}", percent(lookups.hit_rate));
    }
    line
}

fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "-".to_owned(), |rate| format!("{:.1}%", rate * 100.0))
}

impl CacheTiersReport {
    /// The section of `report.md`.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\n## Cache tiers: {} instances, round-robin, {} users, {} s each, updates {} to 50 reads, simulated cache round trip {} ms\n",
            self.instances, self.users, self.seconds, self.update_weight, self.sim_cache_rtt_ms
        );
        let _ = writeln!(out, "| request | tiers | requests | errors | p50 ms | p99 ms | DynamoDB capacity/req |");
        let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|");
        for name in REQUESTS {
            for variant in &self.variants {
                let Some(request) = variant.requests.iter().find(|request| request.name == name) else { continue };
                let _ = writeln!(
                    out,
                    "| {name} | {} | {} | {} | {:.2} | {:.2} | {} |",
                    variant.name,
                    request.requests,
                    request.errors,
                    request.p50_ms,
                    request.p99_ms,
                    figure_to(request.capacity_units_per_request, 3)
                );
            }
        }
        let _ = writeln!(
            out,
            "\n| tiers | reads | DynamoDB read units/read | memory hit rate | shared hit rate | stale reads (checked) | cache health |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---|");
        for variant in &self.variants {
            let rate = |tier: &str| percent(variant.lookups.get(tier).and_then(|lookups| lookups.hit_rate));
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} ({}) | {} |",
                variant.name,
                variant.reads,
                figure_to(variant.read_units_per_read, 3),
                rate("memory"),
                rate("shared"),
                variant.stale_reads,
                variant.checked_reads,
                variant.cache_health.as_deref().unwrap_or("-")
            );
        }
        let _ = writeln!(
            out,
            "\nDynamoDB read units per read, memory alone over both tiers: {}x.",
            figure_to(self.read_units_ratio, 2)
        );
        out
    }
}
