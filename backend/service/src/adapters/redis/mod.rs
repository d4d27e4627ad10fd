//! The shared cache on a Redis-protocol server: ElastiCache Serverless for Valkey in AWS,
//! `redis-server` locally (see `docs/optimizations.md`, "Two cache tiers").
//!
//! Keys: `brain2:{<length>:<user id>}:generation` holds the user's generation, a random
//! 64-bit number; each entry lives at `brain2:{<length>:<user id>}:<generation>:<slot>`.
//! The user id is length-prefixed, so no user id, whatever characters it holds, can name
//! another user's keys; the braces are a hash tag, so all of a user's keys share a cluster
//! slot and one MGET reads several of them.
//!
//! A new generation is a random number set in one command, not a counter: a server that
//! restarted empty starts the user on a number no instance has entries under, where a
//! counter would start again at 1 and meet entries other instances still hold in memory.
//!
//! Every call is bounded (the command timeout, and what is left of the request's
//! deadline) and goes through a circuit breaker; a failure is the caller's cue to read the
//! store instead. A generation change that fails is owed: this instance makes it before it
//! reads the shared cache again, so that it never serves an entry its own write outdated.

pub mod breaker;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use async_trait::async_trait;
use clap::Args;
use fred::prelude::{Builder, ClientLike, Config, Expiration, KeysInterface, Pool, ReconnectPolicy, SetOptions};
use fred::types::config::TlsConnector;

use self::breaker::CircuitBreaker;
use crate::domain::UserId;
use crate::ports::{CacheError, SharedCache};
use crate::telemetry::metric;

/// How long a user's generation is kept without a write. Longer than any entry lives, so
/// a generation never expires under entries that are still read.
const GENERATION_TTL: Duration = Duration::from_secs(24 * 3600);
/// Failures in a row after which the cache is left alone for [`COOL_DOWN`].
const FAILURES_TO_OPEN: u32 = 3;
const COOL_DOWN: Duration = Duration::from_secs(1);
/// Reconnection backoff of each pooled connection, in milliseconds: first and longest wait.
const RECONNECT_MIN_MS: u32 = 50;
const RECONNECT_MAX_MS: u32 = 2_000;

/// Where the shared cache is and how long the service waits for it.
#[derive(Debug, Clone, Args)]
pub struct SharedCacheSettings {
    /// The shared cache (`redis://host:port`, `rediss://` for TLS); unset, the read caches
    /// are this instance's alone.
    #[arg(long = "cache-url", env = "BRAIN2_CACHE_URL")]
    pub cache_url: Option<String>,
    /// Longest wait for one shared-cache command, in milliseconds, before the request reads
    /// the table instead.
    #[arg(long = "cache-timeout-ms", env = "BRAIN2_CACHE_TIMEOUT_MS", default_value_t = 250)]
    pub cache_timeout_ms: u64,
    /// Connections to the shared cache per instance (commands are pipelined on each).
    #[arg(long = "cache-pool-size", env = "BRAIN2_CACHE_POOL_SIZE", default_value_t = 2)]
    pub cache_pool_size: usize,
}

pub struct RedisCache {
    pool: Pool,
    connect: Once,
    breaker: CircuitBreaker,
    timeout: Duration,
    entry_ttl: Duration,
    /// A simulated network's round trip, waited before every command (local measuring only).
    round_trip: Duration,
    /// Users whose generation change failed, made before anything is read again.
    owed: Mutex<HashSet<UserId>>,
}

fn user_tag(user: &UserId) -> String {
    format!("brain2:{{{}:{}}}", user.as_str().len(), user.as_str())
}

fn generation_key(user: &UserId) -> String {
    format!("{}:generation", user_tag(user))
}

fn entry_key(user: &UserId, generation: u64, slot: &str) -> String {
    format!("{}:{generation:016x}:{slot}", user_tag(user))
}

/// The expiry every write of a generation sets.
fn generation_expiry() -> Option<Expiration> {
    Some(Expiration::EX(seconds(GENERATION_TTL)))
}

fn seconds(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs().max(1)).unwrap_or(i64::MAX)
}

/// The URL with its TLS scheme made plain (`rediss` → `redis`, `valkeys` → `valkey`), and
/// whether it had one. Given a TLS scheme, fred builds a TLS client on rustls's process-wide
/// provider, which a build that links two providers does not have (it panics): the
/// service reads the URL as plain and brings its own TLS client.
fn without_tls_scheme(url: &str) -> (String, bool) {
    for (secure, plain) in [("rediss", "redis"), ("valkeys", "valkey")] {
        if let Some(rest) = url.strip_prefix(secure)
            && (rest.starts_with("://") || rest.starts_with("-cluster://"))
        {
            return (format!("{plain}{rest}"), true);
        }
    }
    (url.to_owned(), false)
}

/// Mozilla's roots, as the SDK's clients trust them (`adapters::aws`), on ring.
fn tls_connector() -> Result<TlsConnector, CacheError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().cloned());
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|error| CacheError::Failed(error.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(config))
}

impl RedisCache {
    /// A pool of connections to `settings.cache_url` (connected on first use); entries live
    /// for `entry_ttl`; every command first waits `round_trip` (zero but in a measurement of a
    /// local stack, where the server is a loopback call away).
    pub fn new(
        url: &str,
        settings: &SharedCacheSettings,
        entry_ttl: Duration,
        round_trip: Duration,
    ) -> Result<Self, CacheError> {
        let invalid = |error: fred::error::Error| CacheError::Failed(format!("BRAIN2_CACHE_URL: {error}"));
        let (plain, tls) = without_tls_scheme(url);
        let mut config = Config::from_url(&plain).map_err(invalid)?;
        if tls {
            config.tls = Some(tls_connector()?.into());
        }
        // A cache that is down at start must not stop the service: connections keep trying.
        config.fail_fast = false;
        let timeout = Duration::from_millis(settings.cache_timeout_ms.max(1));
        let pool = Builder::from_config(config)
            .with_connection_config(|connection| {
                connection.connection_timeout = timeout.max(Duration::from_secs(1));
                connection.internal_command_timeout = timeout.max(Duration::from_secs(1));
                // A command is not resent on another connection: the caller reads the table.
                connection.max_command_attempts = 1;
            })
            .with_performance_config(|performance| performance.default_command_timeout = timeout)
            .set_policy(ReconnectPolicy::new_exponential(0, RECONNECT_MIN_MS, RECONNECT_MAX_MS, 2))
            .build_pool(settings.cache_pool_size.max(1))
            .map_err(invalid)?;
        Ok(Self {
            pool,
            connect: Once::new(),
            breaker: CircuitBreaker::new(FAILURES_TO_OPEN, COOL_DOWN),
            timeout,
            entry_ttl,
            round_trip,
            owed: Mutex::new(HashSet::new()),
        })
    }

    /// Runs one command through the breaker, bounded by the timeout and the request's deadline.
    async fn call<T>(&self, command: impl Future<Output = Result<T, fred::error::Error>>) -> Result<T, CacheError> {
        if !self.breaker.allow() {
            metric::shared_cache_failure("open");
            return Err(CacheError::Open);
        }
        // Connecting spawns the pool's tasks, so it waits for a runtime: the first call.
        self.connect.call_once(|| drop(self.pool.connect()));
        let limit = crate::deadline::remaining().map_or(self.timeout, |left| left.min(self.timeout));
        let command = async {
            if !self.round_trip.is_zero() {
                tokio::time::sleep(self.round_trip).await;
            }
            command.await
        };
        let outcome = match tokio::time::timeout(limit, command).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(CacheError::Failed(error.to_string())),
            Err(_) => Err(CacheError::Timeout),
        };
        match &outcome {
            Ok(_) => self.breaker.succeeded(),
            Err(error) => {
                self.breaker.failed();
                metric::shared_cache_failure(if *error == CacheError::Timeout { "timeout" } else { "error" });
                tracing::debug!(%error, "shared cache call failed");
            }
        }
        outcome
    }

    fn owed(&self) -> std::sync::MutexGuard<'_, HashSet<UserId>> {
        self.owed.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn set_new_generation(&self, user: &UserId) -> Result<(), CacheError> {
        let generation = rand::random::<u64>().to_string();
        self.call(self.pool.set::<(), _, _>(generation_key(user), generation, generation_expiry(), None, false)).await
    }

    /// Makes the generation changes this instance owes; fails while any is still owed.
    async fn settle_owed(&self) -> Result<(), CacheError> {
        let owed: Vec<UserId> = self.owed().iter().cloned().collect();
        for user in owed {
            self.set_new_generation(&user).await?;
            self.owed().remove(&user);
        }
        Ok(())
    }

    /// Whether the breaker is holding calls back.
    #[cfg(test)]
    fn is_open(&self) -> bool {
        self.breaker.is_open()
    }
}

#[async_trait]
impl SharedCache for RedisCache {
    async fn generation(&self, user: &UserId) -> Result<u64, CacheError> {
        self.settle_owed().await?;
        let fresh = rand::random::<u64>();
        // SET NX GET: the current generation, or ours when the user had none, in one command.
        let current: Option<String> = self
            .call(self.pool.set(
                generation_key(user),
                fresh.to_string(),
                generation_expiry(),
                Some(SetOptions::NX),
                true,
            ))
            .await?;
        match current {
            None => Ok(fresh),
            Some(stored) => stored.parse().map_err(|_| CacheError::Failed(format!("generation {stored:?}"))),
        }
    }

    async fn advance(&self, user: &UserId) -> Result<(), CacheError> {
        let result = self.set_new_generation(user).await;
        if result.is_err() {
            self.owed().insert(user.clone());
        }
        result
    }

    async fn get(&self, user: &UserId, generation: u64, slots: &[String]) -> Result<Vec<Option<Vec<u8>>>, CacheError> {
        if slots.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = slots.iter().map(|slot| entry_key(user, generation, slot)).collect();
        let values: Vec<Option<Vec<u8>>> = self.call(self.pool.mget(keys)).await?;
        if values.len() != slots.len() {
            return Err(CacheError::Failed(format!("MGET of {} keys answered {}", slots.len(), values.len())));
        }
        Ok(values)
    }

    async fn put(&self, user: &UserId, generation: u64, slot: &str, value: Vec<u8>) -> Result<(), CacheError> {
        let expire = Some(Expiration::EX(seconds(self.entry_ttl)));
        self.call(self.pool.set::<(), _, _>(entry_key(user, generation, slot), value, expire, None, false)).await
    }

    async fn check(&self) -> Result<(), CacheError> {
        self.call(self.pool.ping::<fred::types::Value>(None)).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str) -> UserId {
        UserId::parse(id).unwrap()
    }

    #[test]
    fn keys_of_users_whose_ids_run_into_each_other_never_meet() {
        // Without the length prefix, "a}:1" would write under the tag "a".
        let (plain, tricky) = (user("a"), user("a}:0000000000000001:n"));
        assert_ne!(generation_key(&plain), generation_key(&tricky));
        assert_ne!(entry_key(&plain, 1, "n:x"), entry_key(&tricky, 1, "n:x"));
        assert!(!entry_key(&tricky, 1, "n:x").starts_with(&user_tag(&plain)));
        assert_eq!(entry_key(&plain, 255, "g:50"), "brain2:{1:a}:00000000000000ff:g:50");
    }

    #[test]
    fn tls_schemes_are_read_as_plain_with_tls_noted() {
        assert_eq!(without_tls_scheme("rediss://cache:6379"), ("redis://cache:6379".into(), true));
        assert_eq!(without_tls_scheme("rediss-cluster://cache:6379"), ("redis-cluster://cache:6379".into(), true));
        assert_eq!(without_tls_scheme("valkeys://cache:6379"), ("valkey://cache:6379".into(), true));
        assert_eq!(without_tls_scheme("redis://cache:6379"), ("redis://cache:6379".into(), false));
        assert_eq!(without_tls_scheme("redissomething://x"), ("redissomething://x".into(), false));
    }

    #[test]
    fn a_malformed_url_is_refused_at_start() {
        let settings = SharedCacheSettings { cache_url: None, cache_timeout_ms: 100, cache_pool_size: 1 };
        assert!(RedisCache::new("not a url", &settings, Duration::from_secs(60), Duration::ZERO).is_err());
        assert!(RedisCache::new("redis://127.0.0.1:1", &settings, Duration::from_secs(60), Duration::ZERO).is_ok());
        assert!(
            RedisCache::new("rediss://cache.example:6379", &settings, Duration::from_secs(60), Duration::ZERO).is_ok()
        );
    }

    #[tokio::test]
    async fn a_cache_nobody_answers_is_left_alone_after_failures_and_owes_the_generation() {
        // Port 1 on loopback: connections are refused at once.
        let settings = SharedCacheSettings { cache_url: None, cache_timeout_ms: 200, cache_pool_size: 1 };
        let cache = RedisCache::new("redis://127.0.0.1:1", &settings, Duration::from_secs(60), Duration::ZERO).unwrap();
        let someone = user("someone");
        assert!(cache.advance(&someone).await.is_err());
        assert!(cache.owed().contains(&someone), "the failed change is owed");
        for _ in 0..FAILURES_TO_OPEN {
            let _ = cache.check().await;
        }
        assert!(cache.is_open());
        assert_eq!(cache.generation(&someone).await, Err(CacheError::Open));
    }
}
