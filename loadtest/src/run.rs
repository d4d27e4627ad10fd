//! One load-test run: for each profile, a fresh seeded table with its own server on the
//! run's emulators (or the deployed API), every scenario under goose with the server's
//! metrics scraped and its bus's events queue drained around it; then the cache tiers, the
//! realtime updates, the Lambda figures and the reports.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use brain2::flags::EventDelivery;
use goose::config::{GooseConfiguration, RUN_FOLDER};
use goose::metrics::GooseCoordinatedOmissionMitigation;
use goose::prelude::*;

use crate::bus::{WriteToBus, drain};
use crate::config::{HarnessConfig, ProfileSpec};
use crate::local_server::LocalServer;
use crate::local_stack::{LocalStack, ProfileResources, SeedServer};
use crate::prometheus::{AwsCalls, ServerCalls, settled_aws_calls};
use crate::report::{Machine, ProfileReport, Report, ScenarioReport, scenario_report};
use crate::scenarios::{CostTally, ScenarioName, scenario};
use crate::seed::{Api, Fixture, SeedPlan, seed};

/// Background work (event publishing, the outbox relay, cleanup, similarity) counts for a
/// scenario until the server's AWS call count, polling aside, has stood still this long.
const QUIET_AFTER_SCENARIO: Duration = Duration::from_millis(1_500);
/// Longest drain of a profile's events queue; at 10 messages a receive, minutes of events.
const DRAIN_LIMIT: Duration = Duration::from_secs(60);
const REQUEST_TIMEOUT_SECONDS: &str = "180";

/// A progress line, with the seconds since the run began.
pub fn progress(line: impl std::fmt::Display) {
    static START: std::sync::LazyLock<std::time::Instant> = std::sync::LazyLock::new(std::time::Instant::now);
    eprintln!("[loadtest {:>4}s] {line}", START.elapsed().as_secs());
}

/// A queue of every event of a profile's bus, and a client to read it.
struct EventsQueue {
    sqs: aws_sdk_sqs::Client,
    url: String,
}

/// Where one profile's requests go, and what runs there.
struct Target {
    base_url: String,
    metrics_url: Option<String>,
    /// The profile's `<bus>-events` queue, which every event of its bus reaches.
    events_queue: Option<EventsQueue>,
    server: Option<LocalServer>,
    /// The profile's emulators, stopped when the target is dropped.
    _stack: Option<LocalStack>,
}

pub async fn run(config: &HarnessConfig) -> anyhow::Result<Report> {
    let profiles = config.profile_specs()?;
    let scenarios = config.scenarios();
    std::fs::create_dir_all(&config.out)?;
    let jwt_secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let cloudwatch = config.cloudwatch_resources()?;
    progress("starting");
    let mut reports = Vec::with_capacity(profiles.len());
    let mut windows = Vec::with_capacity(profiles.len());
    for (index, profile) in profiles.iter().enumerate() {
        let folder = config.out.join(&profile.name);
        let _ = std::fs::remove_dir_all(&folder);
        std::fs::create_dir_all(&folder)?;
        progress(format_args!("{}: starting", profile.name));
        let name = format!("lt{index}-{run_id}");
        let (target, fixture) = prepare_target(config, profile, &name, &jwt_secret, &scenarios, &folder).await?;
        let started = SystemTime::now();
        let report = measure_profile(config, profile, &target, fixture, &scenarios, &folder).await;
        windows.push((started, SystemTime::now()));
        if let Some(server) = target.server {
            let stopping = std::time::Instant::now();
            server.stop().await?;
            progress(format_args!("{}: server stopped in {:.1} s", profile.name, stopping.elapsed().as_secs_f64()));
        }
        reports.push(report?);
    }
    let cache_tiers = crate::tiers::measure(config, &run_id, &jwt_secret).await?;
    let realtime = crate::realtime::measure(config, &run_id, &jwt_secret).await?;
    let lambda = crate::lambda_figures::measure(config, &run_id, &jwt_secret).await?;
    if let Some(resources) = &cloudwatch {
        read_cloudwatch(config, resources, &windows, &mut reports).await?;
    }
    Ok(Report {
        generated_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        target: config.target_url.clone().unwrap_or_else(|| "local".to_owned()),
        sim_rtt_ms: config.is_local().then_some(config.sim_rtt_ms),
        machine: Machine::this_one(),
        cold_start_ms: lambda.cold_exec_to_first_response_ms,
        lambda_zip_bytes: Some(lambda.zip_bytes),
        lambda,
        profiles: reports,
        cache_tiers,
        realtime,
    })
}

/// Adds what CloudWatch saw of each profile's window, once its metrics have arrived.
async fn read_cloudwatch(
    config: &HarnessConfig,
    resources: &crate::cloudwatch::Resources,
    windows: &[(SystemTime, SystemTime)],
    reports: &mut [ProfileReport],
) -> anyhow::Result<()> {
    let last_end = windows.iter().map(|(_, end)| *end).max().unwrap_or_else(SystemTime::now);
    let ready = last_end + Duration::from_secs(config.cloudwatch_delay_seconds);
    if let Ok(wait) = ready.duration_since(SystemTime::now()) {
        progress(format_args!("cloudwatch: waiting {}s for the run's metrics to arrive", wait.as_secs()));
        tokio::time::sleep(wait).await;
    }
    let client = crate::cloudwatch::client().await;
    for (report, (start, end)) in reports.iter_mut().zip(windows) {
        report.cloudwatch = Some(crate::cloudwatch::read(&client, resources, *start, *end).await?);
    }
    Ok(())
}

/// The seeded target of one profile: the deployed API, or fresh emulators with a table,
/// bus and queues named `name`, seeded through an in-process server, then the profile's
/// own `brain2 serve` on them. Each profile has emulators of its own: DynamoDB Local keeps
/// every table's stream records in one store and slows down as they pile up, so a profile
/// on emulators another profile has written to would measure the previous profile's writes.
async fn prepare_target(
    config: &HarnessConfig,
    profile: &ProfileSpec,
    name: &str,
    jwt_secret: &str,
    scenarios: &[ScenarioName],
    folder: &Path,
) -> anyhow::Result<(Target, Arc<Fixture>)> {
    let deletes = scenarios.iter().any(|s| s.consumes_delete_batches());
    let plan = SeedPlan {
        graph_nodes: config.graph_nodes,
        graph_edges: config.graph_edges,
        tenants: config.tenants,
        tenant_nodes: config.tenant_nodes,
        delete_batches: if deletes { config.delete_batches } else { 0 },
        delete_batch_users: config.bulk_users(),
    };
    let token_of = |user: &str| token_for(config, jwt_secret, user);
    if !config.is_local() {
        let base_url = config.target_url.clone().context("a deployed run needs TARGET_URL")?;
        let base_url = base_url.trim_end_matches('/').to_owned();
        progress(format_args!("{}: seeding", profile.name));
        let fixture = seed(&Api::new(&base_url), &plan, config.users, token_of, name).await?;
        let target = Target { base_url, metrics_url: None, events_queue: None, server: None, _stack: None };
        return Ok((target, Arc::new(fixture)));
    }
    let (stack, resources, fixture) = seeded_stack(profile, name, &plan, config.users, token_of, jwt_secret).await?;
    let events_queue = EventsQueue {
        sqs: (*stack.aws().clients().await.sqs).clone(),
        url: resources.provisioned.events_queue_url.clone(),
    };
    let brain2 = HarnessConfig::sibling_binary(&config.brain2_bin, "brain2")?;
    let environment = single_instance_environment(&stack, &resources);
    let log = folder.join("server.log");
    let server = LocalServer::start(&brain2, &environment, profile, config, jwt_secret, &log, true).await?;
    let target = Target {
        base_url: server.base_url.clone(),
        metrics_url: Some(server.metrics_url.clone()),
        events_queue: Some(events_queue),
        server: Some(server),
        _stack: Some(stack),
    };
    Ok((target, Arc::new(fixture)))
}

/// The environment of the only `brain2 serve` on `stack`, without the local stack's
/// redis-server: a shared tier that one instance alone reads only adds a round trip to its
/// cached reads. What the tier does across instances is measured on its own (`cache_tiers`).
pub(crate) fn single_instance_environment(stack: &LocalStack, resources: &ProfileResources) -> Vec<(String, String)> {
    stack
        .aws()
        .service_environment(&resources.table, &resources.bus, &resources.provisioned)
        .into_iter()
        .filter(|(name, _)| name != "BRAIN2_CACHE_URL")
        .collect()
}

/// Fresh emulators (and a redis-server) with a table, bus and queues named `name`, seeded
/// for `users` simulated users through an in-process server; with the outbox, the seed's
/// stream records are passed over.
pub(crate) async fn seeded_stack(
    profile: &ProfileSpec,
    name: &str,
    plan: &SeedPlan,
    users: usize,
    token_of: impl Fn(&str) -> anyhow::Result<String>,
    jwt_secret: &str,
) -> anyhow::Result<(LocalStack, ProfileResources, Fixture)> {
    progress(format_args!("{}: starting DynamoDB Local and moto", profile.name));
    let stack = LocalStack::start(&std::env::current_dir()?).await?;
    let resources = stack.provision(name).await?;
    progress(format_args!("{}: seeding", profile.name));
    let seeder = SeedServer::start(stack.aws(), &resources, jwt_secret).await?;
    let fixture = seed(&Api::new(&seeder.base_url), plan, users, token_of, name).await;
    seeder.stop().await?;
    let fixture = fixture?;
    if profile.flags.event_delivery == EventDelivery::Outbox {
        let records = stack.skip_stream_records(&resources.table).await?;
        progress(format_args!("{}: the relay will start after the seed's {records} stream records", profile.name));
    }
    Ok((stack, resources, fixture))
}

/// A token for `user`: signed by `brain2 token` with the run's secret locally, or the one
/// token of a deployed run.
pub fn token_for(config: &HarnessConfig, jwt_secret: &str, user: &str) -> anyhow::Result<String> {
    if let Some(token) = &config.token {
        return Ok(token.clone());
    }
    if config.target_url.is_some() {
        bail!("a deployed run needs TOKEN");
    }
    local_token(config, jwt_secret, user)
}

/// A token signed by `brain2 token` with the run's own secret.
pub fn local_token(config: &HarnessConfig, jwt_secret: &str, user: &str) -> anyhow::Result<String> {
    let brain2 = HarnessConfig::sibling_binary(&config.brain2_bin, "brain2")?;
    let output = std::process::Command::new(brain2)
        .args(["token", "--user", user])
        .env("BRAIN2_JWT_SECRET", jwt_secret)
        .output()
        .context("running brain2 token")?;
    if !output.status.success() {
        bail!("brain2 token failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(String::from_utf8(output.stdout)?.trim().to_owned())
}

async fn measure_profile(
    config: &HarnessConfig,
    profile: &ProfileSpec,
    target: &Target,
    fixture: Arc<Fixture>,
    scenarios: &[ScenarioName],
    folder: &Path,
) -> anyhow::Result<ProfileReport> {
    let client = reqwest::Client::new();
    // The flags in force are shown to an authenticated caller only.
    let health = client.get(format!("{}/health", target.base_url)).bearer_auth(&fixture.graph_token);
    let health: serde_json::Value = health.send().await?.json().await?;
    let flags = serde_json::from_value(health["flags"].clone()).unwrap_or_default();
    let event_delivery = health["eventDelivery"].as_str().map(str::to_owned);
    let settle_limit = Duration::from_secs(config.settle_seconds);
    // The count once the previous scenario's background work stood still is the next one's start.
    let mut last_settled = None;
    let mut profile_calls: Option<AwsCalls> = None;
    let mut reports = Vec::with_capacity(scenarios.len());
    for (position, name) in scenarios.iter().enumerate() {
        progress(format_args!("{}: {} ({}/{})", profile.name, name.as_str(), position + 1, scenarios.len()));
        let tally = Arc::new(CostTally::default());
        let before = match (&target.metrics_url, last_settled.take()) {
            (Some(_), Some(count)) => Some(count),
            (Some(url), None) => Some(settled_aws_calls(&client, url, QUIET_AFTER_SCENARIO, settle_limit).await?),
            (None, _) => None,
        };
        // The queue holds only this scenario's events: whatever is there now goes.
        let discarded = match &target.events_queue {
            Some(queue) => drain(&queue.sqs, &queue.url, DRAIN_LIMIT).await?.messages(),
            None => 0,
        };
        let goose = scenario(*name, &target.base_url, fixture.clone(), tally.clone())?;
        let bound = if name.consumes_delete_batches() {
            Bound::Iterations(config.delete_batches)
        } else {
            Bound::Duration { seconds: config.duration_seconds.max(1), max_requests: config.max_requests }
        };
        let users = if name.is_bulk() { config.bulk_users() } else { config.users };
        let started_at = chrono::Utc::now().timestamp_millis();
        let running = std::time::Instant::now();
        let metrics = attack(goose, users, &target.base_url, bound, &folder.join(name.as_str())).await?;
        let seconds = running.elapsed().as_secs_f64();
        let after = match &target.metrics_url {
            Some(url) => Some(settled_aws_calls(&client, url, QUIET_AFTER_SCENARIO, settle_limit).await?),
            None => None,
        };
        let during = before.as_ref().zip(after.as_ref()).map(|(before, after)| after.calls.since(&before.calls));
        let mut report = scenario_report(
            &metrics,
            name.as_str(),
            tally.aws_calls_per_response(),
            tally.capacity_per_response(),
            during.as_ref().map(AwsCalls::without_queue_polling),
        );
        report.background_settled =
            before.as_ref().zip(after.as_ref()).map(|(before, after)| before.settled && after.settled);
        report.server_calls = during.as_ref().map(|calls| ServerCalls::new(calls, report.requests));
        if let Some(queue) = &target.events_queue {
            let drained = drain(&queue.sqs, &queue.url, DRAIN_LIMIT).await?;
            let mut figures = WriteToBus::of(&drained, started_at, seconds);
            figures.discarded_before = discarded;
            report.write_to_bus = Some(figures);
        }
        if let Some(during) = during {
            profile_calls = Some(profile_calls.map_or_else(|| during.clone(), |calls: AwsCalls| calls.plus(&during)));
        }
        last_settled = after;
        progress(summary(&report));
        reports.push(report);
    }
    let requests = reports.iter().map(|report| report.requests).sum();
    Ok(ProfileReport {
        name: profile.name.clone(),
        flags,
        event_delivery,
        server_calls: profile_calls.map(|calls| ServerCalls::new(&calls, requests)),
        scenarios: reports,
        cloudwatch: None,
    })
}

fn summary(report: &ScenarioReport) -> String {
    let figure = |value: Option<f64>| value.map_or_else(|| "-".to_owned(), |value| format!("{value:.1}"));
    let unsettled = if report.background_settled == Some(false) { " (background still busy)" } else { "" };
    let mut line = format!(
        "  {} requests, {} errors, p50 {:.1} ms, p99 {:.1} ms, AWS calls/request {} (request path) {} (total{unsettled}), capacity/request {}",
        report.requests,
        report.errors,
        report.p50_ms,
        report.p99_ms,
        figure(report.aws_calls_per_request),
        figure(report.total_aws_calls_per_request),
        figure(report.capacity_units_per_request)
    );
    if let Some(calls) = &report.server_calls {
        line += &format!(", PutEvents {:.0}, stream reads {:.0}", calls.put_events, calls.stream_reading);
    }
    if let Some(bus) = &report.write_to_bus {
        line += &format!(
            "; events {} ({} distinct), write-to-bus p50 {} ms, p99 {} ms, max {} ms",
            bus.events,
            bus.distinct_events,
            figure(bus.p50_ms),
            figure(bus.p99_ms),
            figure(bus.max_ms)
        );
    }
    line
}

/// What ends a goose run (goose takes a duration or an iteration count, not both).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Bound {
    /// Each user makes this many iterations.
    Iterations(usize),
    /// The run lasts this long, with at most `max_requests` requests in all.
    Duration { seconds: usize, max_requests: usize },
}

/// One goose run of one scenario: every user from the start, coordinated-omission
/// mitigation on, bounded, its HTML report in `folder`.
pub(crate) async fn attack(
    scenario: Scenario,
    users: usize,
    host: &str,
    bound: Bound,
    folder: &Path,
) -> anyhow::Result<GooseMetrics> {
    let folder = folder.to_string_lossy().into_owned();
    let goose_error = |error: GooseError| anyhow::anyhow!("goose: {error:?}");
    let mut attack = GooseAttack::initialize_with_config(GooseConfiguration::default())
        .map_err(goose_error)?
        .register_scenario(scenario)
        .set_default(GooseDefault::Host, host)
        .and_then(|a| a.set_default(GooseDefault::Users, users))
        .and_then(|a| a.set_default(GooseDefault::IncreaseRate, users.to_string().as_str()))
        .and_then(|a| {
            a.set_default(GooseDefault::CoordinatedOmissionMitigation, GooseCoordinatedOmissionMitigation::Average)
        })
        .and_then(|a| a.set_default(GooseDefault::OutputDir, folder.as_str()))
        .and_then(|a| a.set_default(GooseDefault::ReportFile, RUN_FOLDER))
        .and_then(|a| a.set_default(GooseDefault::NoTelnet, true))
        .and_then(|a| a.set_default(GooseDefault::NoPrintMetrics, true))
        .and_then(|a| a.set_default(GooseDefault::Quiet, 1))
        // The old backend's bulk delete takes tens of seconds here; measure it, do not cut it.
        .and_then(|a| a.set_default(GooseDefault::Timeout, REQUEST_TIMEOUT_SECONDS))
        .map_err(goose_error)?;
    attack = match bound {
        Bound::Iterations(iterations) => attack.set_default(GooseDefault::Iterations, iterations.max(1)),
        Bound::Duration { seconds, max_requests } => attack
            .set_default(GooseDefault::RunTime, seconds)
            .and_then(|a| a.set_default(GooseDefault::ThrottleRequests, max_requests.div_ceil(seconds).max(1))),
    }
    .map_err(goose_error)?;
    attack.execute().await.map_err(goose_error)
}
