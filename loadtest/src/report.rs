//! The run's results: `report.json` (for machines), `report.md` (the table), and the
//! table printed at the end.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use goose::metrics::{GooseMetrics, GooseRequestMetricTimingData};
use serde::Serialize;

use crate::cloudwatch::ServerSide;
use crate::lambda_emulator::MinMedianMax;
use crate::lambda_figures::LambdaFigures;

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
    pub scenarios: Vec<ScenarioReport>,
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
    }
}

fn figure(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |value| format!("{value:.2}"))
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
        out
    }

    pub fn write(&self, folder: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(folder)?;
        std::fs::write(folder.join("report.json"), serde_json::to_string_pretty(self)?)?;
        std::fs::write(folder.join("report.md"), self.markdown())?;
        Ok(())
    }
}
