//! The run's results: `report.json` (for machines), `report.md` (the table), and the
//! table printed at the end.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use goose::metrics::{GooseMetrics, GooseRequestMetricTimingData};
use serde::Serialize;

use crate::bus::WriteToBus;
use crate::cloudwatch::ServerSide;
use crate::lambda_emulator::MinMedianMax;
use crate::lambda_figures::LambdaFigures;
use crate::prometheus::ServerCalls;
use crate::realtime::RealtimeReport;
use crate::tiers::CacheTiersReport;

#[derive(Debug, Serialize)]
pub struct Report {
    pub generated_at: String,
    /// `local` or the deployed base URL.
    pub target: String,
    /// The simulated round trip of a local run; `None` against a deployment.
    pub sim_rtt_ms: Option<u64>,
    pub machine: Machine,
    /// Exec to the first answered invocation of the release Lambda binary.
    pub cold_start_ms: Option<MinMedianMax>,
    pub lambda_zip_bytes: Option<u64>,
    pub lambda: LambdaFigures,
    pub profiles: Vec<ProfileReport>,
    /// The shared cache across several local instances (`CACHE_INSTANCES`); `None` against a
    /// deployment or when skipped.
    pub cache_tiers: Option<CacheTiersReport>,
    /// Changes pushed over WebSockets to local clients (`REALTIME_CLIENTS`); `None` against a
    /// deployment or when skipped.
    pub realtime: Option<RealtimeReport>,
}

#[derive(Debug, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub memory_gib: f64,
    pub cpu: String,
    pub os: String,
}

impl Machine {
    pub fn this_one() -> Self {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let cpu = read("/proc/cpuinfo")
            .lines()
            .find_map(|line| {
                line.strip_prefix("model name").map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
            })
            .unwrap_or_default();
        let memory_kib: f64 = read("/proc/meminfo")
            .lines()
            .find_map(|line| line.strip_prefix("MemTotal:")?.trim().strip_suffix("kB")?.trim().parse().ok())
            .unwrap_or(0.0);
        Self {
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            memory_gib: (memory_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
            cpu,
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ProfileReport {
    pub name: String,
    pub flags: BTreeMap<String, bool>,
    /// How the server delivered events to the bus (`inline`, `background`, `outbox`), as
    /// its health report says.
    pub event_delivery: Option<String>,
    pub scenarios: Vec<ScenarioReport>,
    /// The server's AWS calls over every scenario of the profile, each with the background
    /// work that followed it; `None` against a deployment.
    pub server_calls: Option<ServerCalls>,
    /// What CloudWatch saw of the profile's run window (`CLOUDWATCH=1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloudwatch: Option<ServerSide>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScenarioReport {
    pub name: String,
    pub requests: usize,
    pub errors: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// AWS calls made before the response, from the cost headers.
    pub aws_calls_per_request: Option<f64>,
    /// Every AWS call of the server process during the scenario (background publisher and
    /// workers included), from its metrics, per request.
    pub total_aws_calls_per_request: Option<f64>,
    pub capacity_units_per_request: Option<f64>,
    /// Whether the server's background work stood still before and after the scenario
    /// (within `SETTLE_SECONDS`); if not, the total includes work of a neighbouring scenario.
    pub background_settled: Option<bool>,
    /// The server's AWS calls from before the scenario until its background work stood
    /// still, per operation; `None` against a deployment.
    pub server_calls: Option<ServerCalls>,
    /// The scenario's events as they reached the profile's events queue; `None` against a
    /// deployment (no queue to read).
    pub write_to_bus: Option<WriteToBus>,
}

/// The response times of every request the scenario made (all methods), with goose's
/// coordinated-omission backfill where it made one, so a stalled server shows in p99.
fn timings(metrics: &GooseMetrics, scenario: &str) -> (GooseRequestMetricTimingData, usize, usize) {
    let mut merged = GooseRequestMetricTimingData::default();
    let (mut successes, mut failures) = (0, 0);
    // Goose keys its aggregates by method and request name; requests are named after the scenario.
    for aggregate in metrics.requests.values().filter(|aggregate| aggregate.path == scenario) {
        successes += aggregate.success_count;
        failures += aggregate.fail_count;
        let data = aggregate.coordinated_omission_data.as_ref().unwrap_or(&aggregate.raw_data);
        for (&bucket, &count) in data.times_us.iter() {
            let before = merged.times_us.get(&bucket).copied().unwrap_or(0);
            merged.times_us.insert(bucket, before + count);
        }
        merged.minimum_time_us =
            if merged.counter == 0 { data.minimum_time_us } else { merged.minimum_time_us.min(data.minimum_time_us) };
        merged.maximum_time_us = merged.maximum_time_us.max(data.maximum_time_us);
        merged.total_time_us += data.total_time_us;
        merged.counter += data.counter;
    }
    (merged, successes, failures)
}

/// What goose measured of one scenario, plus the cost figures counted beside it.
pub fn scenario_report(
    metrics: &GooseMetrics,
    scenario: &str,
    aws_calls_per_request: Option<f64>,
    capacity_units_per_request: Option<f64>,
    total_aws_calls: Option<f64>,
) -> ScenarioReport {
    let (times, successes, failures) = timings(metrics, scenario);
    let requests = successes + failures;
    let ms = |us: u64| (us as f64 / 10.0).round() / 100.0;
    ScenarioReport {
        name: scenario.to_owned(),
        requests,
        errors: failures,
        p50_ms: ms(times.percentile_us(0.50)),
        p95_ms: ms(times.percentile_us(0.95)),
        p99_ms: ms(times.percentile_us(0.99)),
        max_ms: ms(times.maximum_time_us),
        aws_calls_per_request,
        total_aws_calls_per_request: total_aws_calls.filter(|_| requests > 0).map(|calls| calls / requests as f64),
        capacity_units_per_request,
        background_settled: None,
        server_calls: None,
        write_to_bus: None,
    }
}

fn figure(value: Option<f64>) -> String {
    figure_to(value, 2)
}

/// `value` to `decimals` places, or `-` without one.
pub(crate) fn figure_to(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "-".to_owned(), |value| format!("{value:.decimals$}"))
}

/// `812 (2.86)`: a count and its figure per request.
fn count_per_request(count: f64, per_request: Option<f64>) -> String {
    format!("{count:.0} ({})", figure(per_request))
}

/// `12 / 40 / 95`, or `-` without events.
fn latencies(bus: &WriteToBus) -> String {
    match (bus.p50_ms, bus.p99_ms, bus.max_ms) {
        (Some(p50), Some(p99), Some(max)) => format!("{p50:.0} / {p99:.0} / {max:.0}"),
        _ => "-".to_owned(),
    }
}

/// What the figures of a scenario's events leave out or set apart, if anything.
fn left_out_note(bus: &WriteToBus) -> Option<String> {
    let notes = [
        (bus.whole_second_events, "with a whole-second occurredAt (counted, not in the latency)"),
        (bus.earlier_events, "of events written before the scenario (left out)"),
        (bus.unreadable, "that were not events (left out)"),
        (bus.discarded_before, "discarded before the scenario began"),
    ];
    let mut notes: Vec<String> =
        notes.iter().filter(|(count, _)| *count > 0).map(|(count, what)| format!("{count} {what}")).collect();
    if !bus.drained {
        notes.push("the queue was not empty when the drain's time ran out".to_owned());
    }
    (!notes.is_empty()).then(|| notes.join("; "))
}

/// `DynamoDB 120, DynamoDB Streams 48`: calls per service, from `Service.Operation` keys.
fn per_service(by_operation: &BTreeMap<String, f64>) -> String {
    let mut services: BTreeMap<&str, f64> = BTreeMap::new();
    for (key, calls) in by_operation {
        let service = key.rsplit_once('.').map_or(key.as_str(), |(service, _)| service);
        *services.entry(service).or_insert(0.0) += calls;
    }
    let services: Vec<String> = services.iter().map(|(service, calls)| format!("{service} {calls:.0}")).collect();
    if services.is_empty() { "-".to_owned() } else { services.join(", ") }
}

impl Report {
    /// The p50 and p99 of `optimized` over `baseline`, per scenario both ran.
    pub fn ratios(&self) -> Vec<(String, f64, f64)> {
        let profile = |name: &str| self.profiles.iter().find(|profile| profile.name == name);
        let (Some(baseline), Some(optimized)) = (profile("baseline"), profile("optimized")) else { return Vec::new() };
        optimized
            .scenarios
            .iter()
            .filter_map(|fast| {
                let slow = baseline.scenarios.iter().find(|slow| slow.name == fast.name)?;
                (slow.p50_ms > 0.0 && slow.p99_ms > 0.0)
                    .then(|| (fast.name.clone(), fast.p50_ms / slow.p50_ms, fast.p99_ms / slow.p99_ms))
            })
            .collect()
    }

    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let rtt = self.sim_rtt_ms.map_or_else(String::new, |rtt| format!(", simulated AWS round trip {rtt} ms"));
        let _ = writeln!(
            out,
            "Target: {}{rtt}; {} ({} cores, {} GiB); {}.\n",
            self.target, self.machine.cpu, self.machine.cores, self.machine.memory_gib, self.generated_at
        );
        let _ = writeln!(
            out,
            "| scenario | profile | requests | errors | p50 ms | p95 ms | p99 ms | max ms | AWS calls/req (request path) | capacity/req | AWS calls/req (total) |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        let names: Vec<&str> = self.profiles.iter().flat_map(|p| p.scenarios.iter().map(|s| s.name.as_str())).collect();
        let mut seen = Vec::new();
        for name in names {
            if seen.contains(&name) {
                continue;
            }
            seen.push(name);
            for profile in &self.profiles {
                let Some(s) = profile.scenarios.iter().find(|s| s.name == name) else { continue };
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} | {} |",
                    s.name,
                    profile.name,
                    s.requests,
                    s.errors,
                    s.p50_ms,
                    s.p95_ms,
                    s.p99_ms,
                    s.max_ms,
                    figure(s.aws_calls_per_request),
                    figure(s.capacity_units_per_request),
                    figure(s.total_aws_calls_per_request)
                        + if s.background_settled == Some(false) { " †" } else { "" }
                );
            }
        }
        if self.profiles.iter().flat_map(|p| &p.scenarios).any(|s| s.background_settled == Some(false)) {
            let _ = writeln!(
                out,
                "\n† the server's background work had not stood still within SETTLE_SECONDS before or after the scenario: its total includes work of a neighbouring scenario."
            );
        }
        self.events_markdown(&mut out);
        let ratios = self.ratios();
        if !ratios.is_empty() {
            let _ = writeln!(out, "\n| scenario | p50 optimized/baseline | p99 optimized/baseline |\n|---|---:|---:|");
            for (name, p50, p99) in ratios {
                let _ = writeln!(out, "| {name} | {p50:.3} | {p99:.3} |");
            }
        }
        let observed: Vec<(&str, &ServerSide)> =
            self.profiles.iter().filter_map(|p| Some((p.name.as_str(), p.cloudwatch.as_ref()?))).collect();
        if !observed.is_empty() {
            let _ = writeln!(
                out,
                "\nCloudWatch, per profile's run window:\n\n| profile | window | invocations | Lambda p50/p99 ms | init p50/p99 ms | RCU | WCU | API latency p50/p99 ms | integration p50/p99 ms | cache hits/misses |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
            );
            let pair = |a: Option<f64>, b: Option<f64>| format!("{} / {}", figure(a), figure(b));
            for (name, seen) in observed {
                let _ = writeln!(
                    out,
                    "| {name} | {} to {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    seen.window_start,
                    seen.window_end,
                    figure(seen.lambda_invocations),
                    pair(seen.lambda_duration_ms.p50, seen.lambda_duration_ms.p99),
                    pair(seen.lambda_init_duration_ms.p50, seen.lambda_init_duration_ms.p99),
                    figure(seen.dynamodb_read_capacity_units),
                    figure(seen.dynamodb_write_capacity_units),
                    pair(seen.api_latency_ms.p50, seen.api_latency_ms.p99),
                    pair(seen.api_integration_latency_ms.p50, seen.api_integration_latency_ms.p99),
                    pair(seen.api_cache_hits, seen.api_cache_misses),
                );
            }
        }
        let lambda = &self.lambda;
        let span = |figure: &Option<MinMedianMax>| {
            figure.map_or_else(|| "-".to_owned(), |f| format!("{:.1} / {:.1} / {:.1}", f.min, f.median, f.max))
        };
        let _ = writeln!(
            out,
            "\nLambda (release `brain2-lambda`, x86_64, under the Runtime API emulator, read cache off):\n\n| figure | value |\n|---|---:|"
        );
        let _ = writeln!(
            out,
            "| cold: exec to first `/next`, ms (min / median / max of {}) | {} |",
            lambda.cold_runs,
            span(&lambda.cold_exec_to_first_next_ms)
        );
        let _ = writeln!(
            out,
            "| cold: exec to first answered invocation, ms | {} |",
            span(&lambda.cold_exec_to_first_response_ms)
        );
        if let Some(warm) = &lambda.warm {
            let _ = writeln!(
                out,
                "| warm p50 / p99 per invocation, ms ({} in a row) | {:.3} / {:.3} |",
                warm.invocations, warm.p50_ms, warm.p99_ms
            );
            let _ = writeln!(
                out,
                "| warm p50 / p99 until idle (extension included), ms | {:.3} / {:.3} |",
                warm.p50_until_idle_ms, warm.p99_until_idle_ms
            );
            let _ = writeln!(out, "| process CPU per warm invocation, ms | {:.3} |", warm.cpu_ms_per_invocation);
            let _ = writeln!(out, "| peak RSS, MiB | {:.1} |", warm.peak_rss_kib as f64 / 1024.0);
        }
        let _ = writeln!(out, "| stripped binary, bytes | {} |", lambda.binary_bytes);
        let _ = writeln!(out, "| zip, bytes | {} |", lambda.zip_bytes);
        if let Some(tiers) = &self.cache_tiers {
            out += &tiers.markdown();
        }
        if let Some(realtime) = &self.realtime {
            out += &realtime.markdown();
        }
        out
    }

    /// The events each scenario put on the bus and the server's AWS calls with the
    /// background work, then the calls of each profile as a whole; nothing when no profile
    /// has them (a deployed target).
    fn events_markdown(&self, out: &mut String) {
        let scenarios = || self.profiles.iter().flat_map(|p| p.scenarios.iter().map(move |s| (p, s)));
        if !scenarios().any(|(_, s)| s.write_to_bus.is_some() || s.server_calls.is_some()) {
            return;
        }
        let _ = writeln!(
            out,
            "\nEvents on the bus (write-to-bus: the queue's SentTimestamp − the event's occurredAt) and the server's AWS calls with its background work:\n\n| scenario | profile | delivery | events (distinct) | events/s | write-to-bus p50 / p99 / max ms | PutEvents (/req) | stream reads | AWS calls, all (/req) |\n|---|---|---|---:|---:|---:|---:|---:|---:|"
        );
        let mut left_out = Vec::new();
        let mut names: Vec<&str> = Vec::new();
        for (_, s) in scenarios() {
            if !names.contains(&s.name.as_str()) {
                names.push(&s.name);
            }
        }
        for name in names {
            for (profile, s) in scenarios().filter(|(_, s)| s.name == name) {
                let bus = s.write_to_bus.as_ref();
                let calls = s.server_calls.as_ref();
                let mark = bus.and_then(left_out_note).map_or("", |note| {
                    left_out.push(format!("{} / {}: {note}", s.name, profile.name));
                    " ‡"
                });
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    s.name,
                    profile.name,
                    profile.event_delivery.as_deref().unwrap_or("-"),
                    bus.map_or_else(|| "-".to_owned(), |bus| format!("{} ({}){mark}", bus.events, bus.distinct_events)),
                    bus.and_then(|bus| bus.events_per_second)
                        .map_or_else(|| "-".to_owned(), |rate| format!("{rate:.1}")),
                    bus.map_or_else(|| "-".to_owned(), latencies),
                    calls.map_or_else(|| "-".to_owned(), |c| count_per_request(c.put_events, c.put_events_per_request)),
                    calls.map_or_else(|| "-".to_owned(), |c| format!("{:.0}", c.stream_reading)),
                    calls.map_or_else(|| "-".to_owned(), |c| count_per_request(c.all, c.all_per_request)),
                );
            }
        }
        if !left_out.is_empty() {
            let _ = writeln!(out, "\n‡ messages of the events queue set apart:\n");
            for note in left_out {
                let _ = writeln!(out, "- {note}");
            }
        }
        let totals: Vec<(&ProfileReport, &ServerCalls)> =
            self.profiles.iter().filter_map(|p| Some((p, p.server_calls.as_ref()?))).collect();
        if totals.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "\nThe server's AWS calls over all the profile's scenarios, background work included:\n\n| profile | delivery | AWS calls, all (/req) | PutEvents (/req) | stream reads | queue polls | per service |\n|---|---|---:|---:|---:|---:|---|"
        );
        for (profile, calls) in totals {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {:.0} | {:.0} | {} |",
                profile.name,
                profile.event_delivery.as_deref().unwrap_or("-"),
                count_per_request(calls.all, calls.all_per_request),
                count_per_request(calls.put_events, calls.put_events_per_request),
                calls.stream_reading,
                calls.queue_polling,
                per_service(&calls.by_operation),
            );
        }
    }

    pub fn write(&self, folder: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(folder)?;
        std::fs::write(folder.join("report.json"), serde_json::to_string_pretty(self)?)?;
        std::fs::write(folder.join("report.md"), self.markdown())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prometheus::AwsCalls;

    fn scenario(name: &str) -> ScenarioReport {
        ScenarioReport {
            name: name.to_owned(),
            requests: 4,
            errors: 0,
            p50_ms: 10.0,
            p95_ms: 11.0,
            p99_ms: 12.0,
            max_ms: 13.0,
            aws_calls_per_request: Some(1.0),
            total_aws_calls_per_request: Some(2.0),
            capacity_units_per_request: Some(4.0),
            background_settled: Some(true),
            server_calls: None,
            write_to_bus: None,
        }
    }

    fn report(profiles: Vec<ProfileReport>) -> Report {
        Report {
            generated_at: "2026-11-24T12:00:00Z".to_owned(),
            target: "local".to_owned(),
            sim_rtt_ms: Some(5),
            machine: Machine { cores: 2, memory_gib: 23.5, cpu: "test".to_owned(), os: "linux x86_64".to_owned() },
            cold_start_ms: None,
            lambda_zip_bytes: None,
            lambda: LambdaFigures {
                binary_bytes: 2,
                zip_bytes: 1,
                cold_runs: 0,
                cold_exec_to_first_next_ms: None,
                cold_exec_to_first_response_ms: None,
                warm: None,
            },
            profiles,
            cache_tiers: None,
            realtime: None,
        }
    }

    fn profile(name: &str, delivery: &str, scenarios: Vec<ScenarioReport>) -> ProfileReport {
        ProfileReport {
            name: name.to_owned(),
            flags: BTreeMap::new(),
            event_delivery: Some(delivery.to_owned()),
            scenarios,
            server_calls: None,
            cloudwatch: None,
        }
    }

    fn calls() -> AwsCalls {
        AwsCalls::parse(
            "brain2_aws_calls_total{service=\"DynamoDB\",operation=\"TransactWriteItems\"} 4\n\
             brain2_aws_calls_total{service=\"EventBridge\",operation=\"PutEvents\"} 1\n\
             brain2_aws_calls_total{service=\"DynamoDB Streams\",operation=\"GetRecords\"} 20\n\
             brain2_aws_calls_total{service=\"SQS\",operation=\"ReceiveMessage\"} 7\n",
        )
    }

    #[test]
    fn events_and_server_calls_get_a_table_of_their_own() {
        let mut outbox = scenario("create_node");
        outbox.server_calls = Some(ServerCalls::new(&calls(), 4));
        outbox.write_to_bus = Some(WriteToBus {
            events: 5,
            distinct_events: 4,
            p50_ms: Some(120.0),
            p99_ms: Some(260.0),
            max_ms: Some(261.0),
            events_per_second: Some(2.0),
            whole_second_events: 2,
            earlier_events: 3,
            unreadable: 0,
            discarded_before: 0,
            drained: true,
        });
        let mut quiet = scenario("get_node");
        quiet.server_calls = Some(ServerCalls::default());
        quiet.write_to_bus = Some(WriteToBus { drained: true, ..WriteToBus::default() });
        let mut outbox_profile = profile("optimized-events_outbox", "outbox", vec![quiet, outbox]);
        outbox_profile.server_calls = Some(ServerCalls::new(&calls(), 8));
        let markdown = report(vec![outbox_profile]).markdown();
        assert!(
            markdown.contains(
                "| create_node | optimized-events_outbox | outbox | 5 (4) ‡ | 2.0 | 120 / 260 / 261 | 1 (0.25) | 20 | 32 (8.00) |"
            ),
            "{markdown}"
        );
        assert!(
            markdown.contains("| get_node | optimized-events_outbox | outbox | 0 (0) | - | - | 0 (-) | 0 | 0 (-) |"),
            "{markdown}"
        );
        assert!(
            markdown.contains(
                "- create_node / optimized-events_outbox: 2 with a whole-second occurredAt (counted, not in the latency); 3 of events written before the scenario (left out)"
            ),
            "{markdown}"
        );
        assert!(
            markdown.contains(
                "| optimized-events_outbox | outbox | 32 (4.00) | 1 (0.12) | 20 | 7 | DynamoDB 4, DynamoDB Streams 20, EventBridge 1, SQS 7 |"
            ),
            "{markdown}"
        );
    }

    #[test]
    fn a_deployed_run_has_no_events_table_and_null_figures() {
        let deployed = report(vec![profile("optimized", "background", vec![scenario("create_node")])]);
        let markdown = deployed.markdown();
        assert!(markdown.contains("| create_node | optimized | 4 | 0 |"), "{markdown}");
        assert!(!markdown.contains("Events on the bus"), "{markdown}");
        let json = serde_json::to_value(&deployed).unwrap();
        let profile = &json["profiles"][0];
        assert_eq!(profile["event_delivery"], "background");
        assert!(profile["server_calls"].is_null());
        assert!(profile["scenarios"][0]["write_to_bus"].is_null());
        assert!(profile["scenarios"][0]["server_calls"].is_null());
    }

    #[test]
    fn the_new_figures_serialise_under_their_names() {
        let mut measured = scenario("create_node");
        measured.server_calls = Some(ServerCalls::new(&calls(), 4));
        measured.write_to_bus = Some(WriteToBus::default());
        let json = serde_json::to_value(&measured).unwrap();
        let bus = json["write_to_bus"].as_object().unwrap();
        let names: Vec<&str> = bus.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "events",
                "distinct_events",
                "p50_ms",
                "p99_ms",
                "max_ms",
                "events_per_second",
                "whole_second_events",
                "earlier_events",
                "unreadable",
                "discarded_before",
                "drained"
            ]
        );
        let calls = &json["server_calls"];
        assert_eq!(calls["put_events"], 1.0);
        assert_eq!(calls["stream_reading"], 20.0);
        assert_eq!(calls["by_operation"]["DynamoDB Streams.GetRecords"], 20.0);
    }
}
