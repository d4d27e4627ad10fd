//! Process configuration, read once from the environment at start.

use std::time::Duration;

use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::adapters::aws::network::{FaultPlan, NetworkSimulation};
use crate::flags::{FlagError, Flags, parse_switch};
use crate::http::auth::DEVELOPMENT_SECRET;
use crate::http::middleware::VersionPolicy;

/// How long a cached read may be served without asking DynamoDB again.
const DEFAULT_CACHE_TTL_SECONDS: u64 = 60;
/// Soft-deleted nodes normally go on their `node.deleted` message within seconds; the
/// sweep catches the rest after this long.
const DEFAULT_CLEANUP_GRACE_SECONDS: u64 = 300;
/// Shortest shared secret accepted in Lambda: HS256 wants at least 256 bits of key.
const MIN_PRODUCTION_SECRET_BYTES: usize = 32;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{name} must be {expected}, got {value:?}")]
    Invalid { name: &'static str, expected: &'static str, value: String },
    #[error(
        "refusing to start: BRAIN2_JWT_SECRET is missing, the development default, or shorter than \
         {MIN_PRODUCTION_SECRET_BYTES} bytes; set a strong secret or BRAIN2_AUTH_MODE=apigateway \
         to trust an API Gateway JWT/Cognito authorizer"
    )]
    UnsafeSecret,
    #[error(transparent)]
    Flags(#[from] FlagError),
    #[error("BRAIN2_FAULTS: {0}")]
    Faults(String),
    #[error(
        "refusing to start: BRAIN2_SIM_RTT_MS, BRAIN2_SIM_RTT_JITTER_MS and BRAIN2_FAULTS are for local measurement only"
    )]
    SimulationInProduction,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthSettings {
    /// Verify HS256 tokens; `secret` is `None` when not configured.
    SharedSecret { secret: Option<String> },
    /// Trust the claims API Gateway's authorizer puts in the request context.
    GatewayAuthorizer,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub table_name: String,
    pub event_bus: String,
    pub auth: AuthSettings,
    pub version_policy: VersionPolicy,
    pub flags: Flags,
    /// Put the per-request AWS cost figures in response headers (`x-brain2-aws-*`).
    pub expose_costs: bool,
    /// Print CloudWatch Embedded Metric Format lines (default: in Lambda only).
    pub emf_metrics: bool,
    /// Simulated round trips and injected faults; never in Lambda.
    pub network: NetworkSimulation,
    /// Longest time a cached read may lag behind writes made by other instances.
    pub cache_ttl: Duration,
    /// SQS queue that receives events EventBridge would not take after every retry.
    pub events_dlq_url: Option<String>,
    /// Queues the workers read: `node.deleted` for cleanup, note changes for similarity.
    pub cleanup_queue_url: Option<String>,
    pub similarity_queue_url: Option<String>,
    /// How long a soft-deleted node waits before the sweep purges it without a message.
    pub cleanup_grace: Duration,
}

fn milliseconds(name: &'static str, value: Option<String>) -> Result<Duration, ConfigError> {
    value.map_or(Ok(Duration::ZERO), |raw| {
        raw.parse::<u64>().map(Duration::from_millis).map_err(|_| ConfigError::Invalid {
            name,
            expected: "a whole number of milliseconds",
            value: raw,
        })
    })
}

fn seconds(name: &'static str, default: u64, lookup: impl Fn(&str) -> Option<String>) -> Result<u64, ConfigError> {
    lookup(name).map_or(Ok(default), |raw| {
        raw.parse().map_err(|_| ConfigError::Invalid { name, expected: "a whole number of seconds", value: raw })
    })
}

fn switch(name: &'static str, value: Option<String>, default: bool) -> Result<bool, ConfigError> {
    match value {
        None => Ok(default),
        Some(raw) => parse_switch(&raw).ok_or(ConfigError::Invalid { name, expected: "1 or 0", value: raw }),
    }
}

fn timestamp(name: &'static str, value: Option<String>) -> Result<Option<DateTime<Utc>>, ConfigError> {
    value
        .map(|raw| {
            DateTime::parse_from_rfc3339(&raw).map(|t| t.with_timezone(&Utc)).map_err(|_| ConfigError::Invalid {
                name,
                expected: "an RFC 3339 timestamp",
                value: raw,
            })
        })
        .transpose()
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))
    }

    /// Reads settings through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let auth = match lookup("BRAIN2_AUTH_MODE").as_deref() {
            None | Some("jwt") => AuthSettings::SharedSecret { secret: lookup("BRAIN2_JWT_SECRET") },
            Some("apigateway") => AuthSettings::GatewayAuthorizer,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "BRAIN2_AUTH_MODE",
                    expected: "jwt or apigateway",
                    value: other.to_owned(),
                });
            }
        };
        let faults =
            lookup("BRAIN2_FAULTS").map(|spec| FaultPlan::parse(&spec)).transpose().map_err(ConfigError::Faults)?;
        let cache_ttl_seconds = seconds("BRAIN2_CACHE_TTL_SECONDS", DEFAULT_CACHE_TTL_SECONDS, &lookup)?;
        Ok(Self {
            flags: Flags::from_lookup(&lookup)?,
            expose_costs: switch("BRAIN2_EXPOSE_COSTS", lookup("BRAIN2_EXPOSE_COSTS"), false)?,
            emf_metrics: switch(
                "BRAIN2_EMF_METRICS",
                lookup("BRAIN2_EMF_METRICS"),
                lookup("AWS_LAMBDA_FUNCTION_NAME").is_some(),
            )?,
            network: NetworkSimulation {
                round_trip: milliseconds("BRAIN2_SIM_RTT_MS", lookup("BRAIN2_SIM_RTT_MS"))?,
                jitter: milliseconds("BRAIN2_SIM_RTT_JITTER_MS", lookup("BRAIN2_SIM_RTT_JITTER_MS"))?,
                faults,
            },
            cache_ttl: Duration::from_secs(cache_ttl_seconds),
            events_dlq_url: lookup("BRAIN2_EVENTS_DLQ_URL"),
            cleanup_queue_url: lookup("BRAIN2_CLEANUP_QUEUE_URL"),
            similarity_queue_url: lookup("BRAIN2_SIMILARITY_QUEUE_URL"),
            cleanup_grace: Duration::from_secs(seconds(
                "BRAIN2_CLEANUP_GRACE_SECONDS",
                DEFAULT_CLEANUP_GRACE_SECONDS,
                &lookup,
            )?),
            table_name: lookup("BRAIN2_TABLE").unwrap_or_else(|| "brain2".to_owned()),
            event_bus: lookup("BRAIN2_EVENT_BUS").unwrap_or_else(|| "brain2".to_owned()),
            auth,
            version_policy: VersionPolicy {
                deprecated_at: timestamp("BRAIN2_API_V1_DEPRECATED_AT", lookup("BRAIN2_API_V1_DEPRECATED_AT"))?,
                sunset_at: timestamp("BRAIN2_API_V1_SUNSET_AT", lookup("BRAIN2_API_V1_SUNSET_AT"))?,
            },
        })
    }

    /// The secret tokens are verified with; locally the development default.
    pub fn jwt_secret(&self) -> &str {
        match &self.auth {
            AuthSettings::SharedSecret { secret: Some(secret) } => secret,
            _ => DEVELOPMENT_SECRET,
        }
    }

    /// A deployed function must not accept tokens anyone can sign with a published secret,
    /// nor slow itself down or break itself on purpose.
    pub fn ensure_safe_for_production(&self) -> Result<(), ConfigError> {
        if self.network.is_active() {
            return Err(ConfigError::SimulationInProduction);
        }
        match &self.auth {
            AuthSettings::GatewayAuthorizer => Ok(()),
            AuthSettings::SharedSecret { secret: Some(secret) }
                if secret != DEVELOPMENT_SECRET && secret.len() >= MIN_PRODUCTION_SECRET_BYTES =>
            {
                Ok(())
            }
            AuthSettings::SharedSecret { .. } => Err(ConfigError::UnsafeSecret),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Settings::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.table_name, "brain2");
        assert_eq!(s.event_bus, "brain2");
        assert_eq!(s.jwt_secret(), DEVELOPMENT_SECRET);
    }

    #[test]
    fn production_refuses_missing_default_or_short_secret() {
        assert!(settings(&[]).unwrap().ensure_safe_for_production().is_err());
        let default = settings(&[("BRAIN2_JWT_SECRET", DEVELOPMENT_SECRET)]).unwrap();
        assert!(default.ensure_safe_for_production().is_err());
        assert!(settings(&[("BRAIN2_JWT_SECRET", "short")]).unwrap().ensure_safe_for_production().is_err());
        let strong = "s".repeat(MIN_PRODUCTION_SECRET_BYTES);
        assert!(settings(&[("BRAIN2_JWT_SECRET", &strong)]).unwrap().ensure_safe_for_production().is_ok());
        let gateway = settings(&[("BRAIN2_AUTH_MODE", "apigateway")]).unwrap();
        assert!(gateway.ensure_safe_for_production().is_ok());
    }

    #[test]
    fn simulation_settings_and_refusal_in_production() {
        let strong = "s".repeat(MIN_PRODUCTION_SECRET_BYTES);
        let s =
            settings(&[("BRAIN2_JWT_SECRET", &strong), ("BRAIN2_SIM_RTT_MS", "5"), ("BRAIN2_FAULTS", "throttle=0.1")])
                .unwrap();
        assert_eq!(s.network.round_trip, Duration::from_millis(5));
        assert_eq!(s.network.faults.as_ref().unwrap().throttle, 0.1);
        assert!(matches!(s.ensure_safe_for_production(), Err(ConfigError::SimulationInProduction)));
        assert!(settings(&[("BRAIN2_FAULTS", "throttle=9")]).is_err());
        assert!(settings(&[("BRAIN2_SIM_RTT_MS", "fast")]).is_err());
        assert!(!settings(&[]).unwrap().expose_costs);
        assert!(settings(&[("BRAIN2_EXPOSE_COSTS", "1")]).unwrap().expose_costs);
        assert_eq!(settings(&[("BRAIN2_PROFILE", "baseline")]).unwrap().flags, Flags::BASELINE);
    }

    #[test]
    fn rejects_unknown_auth_mode_and_bad_dates() {
        assert!(settings(&[("BRAIN2_AUTH_MODE", "none")]).is_err());
        assert!(settings(&[("BRAIN2_API_V1_SUNSET_AT", "tomorrow")]).is_err());
        let s = settings(&[("BRAIN2_API_V1_SUNSET_AT", "2027-01-01T00:00:00Z")]).unwrap();
        assert!(s.version_policy.sunset_at.is_some());
    }
}
