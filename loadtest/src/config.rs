//! What a load-test run measures and against what, from the environment `make loadtest`
//! passes through (every option is also a command-line flag).

use std::path::PathBuf;

use anyhow::{Context, bail};
use brain2::flags::{EventDelivery, Flags};
use clap::Parser;
use clap::ValueEnum as _;

use crate::cloudwatch::Resources;
use crate::scenarios::ScenarioName;

#[derive(Debug, Clone, Parser)]
#[command(name = "brain2-loadtest", about = "p50/p99 and AWS cost per request for each optimisation profile")]
pub struct HarnessConfig {
    /// A deployed API's base URL (ending in /api/v1); unset runs the local stack.
    #[arg(long, env = "TARGET_URL")]
    pub target_url: Option<String>,
    /// Bearer token for the deployed API (every simulated user acts as its user).
    #[arg(long, env = "TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Profiles, comma-separated: `baseline`, `optimized`, or one of them with one flag
    /// flipped: `optimized-no_batch_writes`, `baseline-with_read_cache`, or another event
    /// delivery: `optimized-events_outbox`; `none` measures
    /// only the Lambda function's figures.
    #[arg(long, env = "PROFILES", default_value = "baseline,optimized", value_delimiter = ',')]
    pub profiles: Vec<String>,
    /// Scenarios, comma-separated (default: all).
    #[arg(long, env = "SCENARIOS", value_delimiter = ',', value_enum)]
    pub scenarios: Vec<ScenarioName>,
    /// Seconds each scenario runs.
    #[arg(long, env = "DURATION", default_value_t = 5)]
    pub duration_seconds: usize,
    /// Simulated users at once.
    #[arg(long, env = "USERS", default_value_t = 4)]
    pub users: usize,
    /// Simulated users of `bulk_create_100` and `bulk_delete_100` (at most `USERS`): one
    /// person importing or deleting 100 notes at a time, not many at once.
    #[arg(long, env = "BULK_USERS", default_value_t = 1)]
    pub bulk_users: usize,
    /// Most requests of one timed scenario (all users together), whatever the duration:
    /// goose throttles them to this many over the duration.
    #[arg(long, env = "MAX_REQUESTS", default_value_t = 100_000)]
    pub max_requests: usize,
    /// Batches of 100 each bulk user deletes in bulk_delete_100 (created before it starts); that
    /// scenario runs exactly this many iterations per user instead of a duration.
    #[arg(long, env = "DELETE_BATCHES", default_value_t = 1)]
    pub delete_batches: usize,
    /// Nodes and edges of the user `graph_data` reads.
    #[arg(long, env = "GRAPH_NODES", default_value_t = 500)]
    pub graph_nodes: usize,
    #[arg(long, env = "GRAPH_EDGES", default_value_t = 1_500)]
    pub graph_edges: usize,
    /// Other tenants sharing the table, and their notes each (a Scan reads them all).
    #[arg(long, env = "TENANTS", default_value_t = 10)]
    pub tenants: usize,
    #[arg(long, env = "TENANT_NODES", default_value_t = 20)]
    pub tenant_nodes: usize,
    /// Longest wait, in seconds, for the server's background work (events, cleanup,
    /// similarity) to die down before and after each scenario; six times as long after
    /// seeding, whose background work is the largest.
    #[arg(long, env = "SETTLE_SECONDS", default_value_t = 3)]
    pub settle_seconds: u64,
    /// Simulated round trip to AWS of the local server, in milliseconds.
    #[arg(long, env = "SIM_RTT_MS", default_value_t = 5)]
    pub sim_rtt_ms: u64,
    /// Simulated round trip to the shared cache, in milliseconds (an ElastiCache endpoint in
    /// the function's own VPC answers in about a millisecond or less).
    #[arg(long, env = "SIM_CACHE_RTT_MS", default_value_t = 1)]
    pub sim_cache_rtt_ms: u64,
    /// Instances of the cache-tiers measurement (0: skip it): the optimized profile on that
    /// many `brain2 serve` processes sharing one local stack, requests sent round-robin,
    /// with each instance's memory alone and then with the shared tier under it.
    #[arg(long, env = "CACHE_INSTANCES", default_value_t = 3)]
    pub cache_instances: usize,
    /// Seconds each variant of the cache-tiers measurement runs.
    #[arg(long, env = "CACHE_SECONDS", default_value_t = 20)]
    pub cache_seconds: usize,
    /// Weight of updates in the cache-tiers workload, against reads weighing 50 in all
    /// (0: reads only).
    #[arg(long, env = "CACHE_UPDATE_WEIGHT", default_value_t = 5)]
    pub cache_update_weight: usize,
    /// Clients of the realtime measurement (0: skip it): users of the optimized profile's
    /// `brain2 serve --workers`, each with one WebSocket, each creating notes, timed from
    /// just before the request to the note's `node.created` on the writer's own socket.
    #[arg(long, env = "REALTIME_CLIENTS", default_value_t = 20)]
    pub realtime_clients: usize,
    /// Seconds the realtime clients write.
    #[arg(long, env = "REALTIME_SECONDS", default_value_t = 20)]
    pub realtime_seconds: usize,
    /// Milliseconds between two notes of one realtime client: a person typing notes, not a
    /// bulk import.
    #[arg(long, env = "REALTIME_WRITE_INTERVAL_MS", default_value_t = 1_000)]
    pub realtime_write_interval_ms: u64,
    /// Longest wait, in seconds, after the realtime clients' last write for the messages
    /// still on their way; a note whose message has not come by then is lost.
    #[arg(long, env = "REALTIME_GRACE_SECONDS", default_value_t = 10)]
    pub realtime_grace_seconds: u64,
    /// Cold starts of the Lambda binary to measure (0: none).
    #[arg(long, env = "COLD_RUNS", default_value_t = 10)]
    pub cold_runs: usize,
    /// With a deployed target: read the server side of each profile's run window from
    /// CloudWatch (Lambda, DynamoDB, API Gateway) and add it to the report.
    #[arg(long, env = "CLOUDWATCH", value_parser = brain2::config::switch, default_value = "off", action = clap::ArgAction::Set)]
    pub cloudwatch: bool,
    /// The deployed API function, table, REST API and stage whose metrics CloudWatch keeps
    /// (the stack's outputs name them).
    #[arg(long, env = "CLOUDWATCH_FUNCTION")]
    pub cloudwatch_function: Option<String>,
    #[arg(long, env = "CLOUDWATCH_TABLE")]
    pub cloudwatch_table: Option<String>,
    #[arg(long, env = "CLOUDWATCH_API")]
    pub cloudwatch_api: Option<String>,
    #[arg(long, env = "CLOUDWATCH_STAGE", default_value = "prod")]
    pub cloudwatch_stage: String,
    /// Seconds to wait after the run before reading CloudWatch: metrics arrive late.
    #[arg(long, env = "CLOUDWATCH_DELAY_SECONDS", default_value_t = 150)]
    pub cloudwatch_delay_seconds: u64,
    /// Warm invocations of one Lambda environment to measure (0: none).
    #[arg(long, env = "WARM_INVOCATIONS", default_value_t = 500)]
    pub warm_invocations: usize,
    /// Where the reports go.
    #[arg(long, env = "OUT", default_value = "target/loadtest")]
    pub out: PathBuf,
    /// The `brain2` and `brain2-lambda` binaries (default: beside this one).
    #[arg(long, env = "BRAIN2_BIN")]
    pub brain2_bin: Option<PathBuf>,
    #[arg(long, env = "LAMBDA_BIN")]
    pub lambda_bin: Option<PathBuf>,
}

impl HarnessConfig {
    pub fn scenarios(&self) -> Vec<ScenarioName> {
        if self.scenarios.is_empty() { ScenarioName::ALL.to_vec() } else { self.scenarios.clone() }
    }

    /// The profiles to measure; none when `PROFILES=none`.
    pub fn profile_specs(&self) -> anyhow::Result<Vec<ProfileSpec>> {
        let names = self.profiles.iter().map(|name| name.trim()).filter(|name| *name != "none");
        names.map(ProfileSpec::parse).collect()
    }

    pub fn bulk_users(&self) -> usize {
        self.bulk_users.clamp(1, self.users.max(1))
    }

    pub fn is_local(&self) -> bool {
        self.target_url.is_none()
    }

    /// The resources to read from CloudWatch, when `CLOUDWATCH` is on.
    pub fn cloudwatch_resources(&self) -> anyhow::Result<Option<Resources>> {
        if !self.cloudwatch {
            return Ok(None);
        }
        if self.is_local() {
            bail!("CLOUDWATCH=1 reads a deployment's metrics: set TARGET_URL and TOKEN too");
        }
        let name = |value: &Option<String>, variable: &str| {
            value.clone().with_context(|| format!("CLOUDWATCH=1 needs {variable} (see docs/deploy.md)"))
        };
        Ok(Some(Resources {
            function: name(&self.cloudwatch_function, "CLOUDWATCH_FUNCTION")?,
            table: name(&self.cloudwatch_table, "CLOUDWATCH_TABLE")?,
            api: name(&self.cloudwatch_api, "CLOUDWATCH_API")?,
            stage: self.cloudwatch_stage.clone(),
        }))
    }

    /// A binary built beside this one (`make loadtest` builds them together).
    pub fn sibling_binary(configured: &Option<PathBuf>, name: &str) -> anyhow::Result<PathBuf> {
        if let Some(path) = configured {
            return Ok(path.clone());
        }
        let exe = std::env::current_exe().context("locating this executable")?;
        // Test executables live one folder deeper (`target/<profile>/deps`).
        let candidates = exe.ancestors().skip(1).take(2).map(|dir| dir.join(name));
        for candidate in candidates {
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
        bail!("{name} was not found beside {}: build the workspace first", exe.display())
    }
}

/// A named set of flags: a base profile, optionally with one flag flipped.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileSpec {
    pub name: String,
    pub flags: Flags,
}

impl ProfileSpec {
    pub fn parse(name: &str) -> anyhow::Result<Self> {
        let (base, change) = match name.split_once('-') {
            Some((base, change)) => (base, Some(change)),
            None => (name, None),
        };
        let mut flags = match base {
            "optimized" => Flags::OPTIMIZED,
            "baseline" => Flags::BASELINE,
            other => bail!("unknown profile {other:?}: use optimized or baseline"),
        };
        if let Some(change) = change {
            flags = if let Some(delivery) = change.strip_prefix("events_") {
                let delivery = EventDelivery::from_str(delivery, false)
                    .map_err(|_| anyhow::anyhow!("{name:?}: events are delivered inline, background or outbox"))?;
                flags.with_event_delivery(delivery)
            } else {
                let (flag, on) = if let Some(flag) = change.strip_prefix("no_") {
                    (flag, false)
                } else if let Some(flag) = change.strip_prefix("with_") {
                    (flag, true)
                } else {
                    bail!("{name:?}: a change reads `-no_<flag>`, `-with_<flag>` or `-events_<delivery>`");
                };
                flags.with(flag, on).with_context(|| format!("{name:?}: unknown flag {flag:?}"))?
            };
        }
        Ok(Self { name: name.to_owned(), flags })
    }

    /// The environment that gives `brain2 serve` exactly these flags.
    pub fn environment(&self) -> Vec<(String, String)> {
        let delivery = ("BRAIN2_EVENT_DELIVERY".to_owned(), self.flags.event_delivery.as_str().to_owned());
        self.flags
            .entries()
            .into_iter()
            .map(|(flag, on)| {
                (format!("BRAIN2_FLAG_{}", flag.to_ascii_uppercase()), if on { "on" } else { "off" }.into())
            })
            .chain([delivery])
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_none_measures_no_profile() {
        let config =
            |profiles: &str| HarnessConfig::try_parse_from(["brain2-loadtest", "--profiles", profiles]).unwrap();
        assert!(config("none").profile_specs().unwrap().is_empty());
        let names: Vec<String> =
            config("baseline,optimized").profile_specs().unwrap().into_iter().map(|p| p.name).collect();
        assert_eq!(names, ["baseline", "optimized"]);
        assert!(config("fastest").profile_specs().is_err());
    }

    #[test]
    fn profiles_with_one_flag_flipped() {
        assert_eq!(ProfileSpec::parse("baseline").unwrap().flags, Flags::BASELINE);
        let spec = ProfileSpec::parse("optimized-no_batch_writes").unwrap();
        assert_eq!(spec.flags, Flags::OPTIMIZED.with("batch_writes", false).unwrap());
        let spec = ProfileSpec::parse("baseline-with_read_cache").unwrap();
        assert_eq!(spec.flags, Flags::BASELINE.with("read_cache", true).unwrap());
        assert!(ProfileSpec::parse("fast").is_err());
        assert!(ProfileSpec::parse("optimized-no_such_flag").is_err());
        assert!(ProfileSpec::parse("optimized-batch_writes").is_err());
        let environment = ProfileSpec::parse("optimized-no_soft_delete").unwrap().environment();
        assert!(environment.contains(&("BRAIN2_FLAG_SOFT_DELETE".into(), "off".into())));
        assert_eq!(environment.len(), Flags::OPTIMIZED.entries().len() + 1);
        let spec = ProfileSpec::parse("optimized-events_outbox").unwrap();
        assert_eq!(spec.flags, Flags::OPTIMIZED.with_event_delivery(EventDelivery::Outbox));
        assert!(spec.environment().contains(&("BRAIN2_EVENT_DELIVERY".into(), "outbox".into())));
        assert!(ProfileSpec::parse("baseline-events_later").is_err());
    }
}
