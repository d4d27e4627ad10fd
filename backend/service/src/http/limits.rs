//! Overload protection: a per-user rate limit and an end-to-end deadline for each request.
//!
//! The rate limit is keyed by the authenticated user, never by address: behind API
//! Gateway every request comes from a handful of addresses, and one user's burst must not
//! use up another's share. Requests without a valid token share one bucket: they can only
//! reach the cached `/health` and 401 answers, and they cannot crowd out any user.
//!
//! The deadline bounds each request below API Gateway's 29 s: the store stops retrying
//! a little before it ([`STORE_RESERVE_SHARE`]) so that bulk operations can still report
//! per item what they did, and a request still running at the deadline answers 503.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use super::AppState;
use super::problem::ApiError;
use crate::deadline;

/// The share of a request's deadline kept back from the store, so that a bulk operation
/// whose retries were cut short still has time to build and send its report.
pub const STORE_RESERVE_SHARE: u32 = 5;
/// Most time kept back from the store, whatever the deadline.
const MAX_STORE_RESERVE: Duration = Duration::from_secs(2);
/// The bucket of every request that carries no valid token.
const ANONYMOUS: &str = "";
/// Buckets of users idle long enough to be full again are dropped every this many checks,
/// so the limiter's memory follows the users active now, not every user ever seen.
const PRUNE_EVERY_CHECKS: u64 = 1024;

/// A generous default: far above what a person's client sends, low enough that one
/// user's runaway script cannot take an instance's whole capacity.
pub const DEFAULT_RATE_LIMIT_PER_SECOND: u32 = 50;
pub const DEFAULT_RATE_LIMIT_BURST: u32 = 100;

/// How many requests a user may make: `per_second` on average, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: NonZeroU32,
    pub burst: NonZeroU32,
}

pub struct UserRateLimiter {
    limiter: DefaultKeyedRateLimiter<String>,
    checks: AtomicU64,
}

impl UserRateLimiter {
    pub fn new(limit: RateLimit) -> Self {
        let quota = Quota::per_second(limit.per_second).allow_burst(limit.burst);
        Self { limiter: DefaultKeyedRateLimiter::keyed(quota), checks: AtomicU64::new(0) }
    }

    /// `Ok` when `key` may make a request now, else how long it should wait.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY_CHECKS == PRUNE_EVERY_CHECKS - 1 {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        self.limiter
            .check_key(&key.to_owned())
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// Users (and the anonymous bucket) tracked now.
    pub fn tracked_keys(&self) -> usize {
        self.limiter.len()
    }
}

/// The limits of every request, from the HTTP settings.
pub struct Overload {
    /// How long a request may take in all.
    pub deadline: Duration,
    /// `None`: no rate limit.
    pub limiter: Option<UserRateLimiter>,
}

impl Overload {
    pub fn new(deadline: Duration, rate_limit: Option<RateLimit>) -> Self {
        Self { deadline, limiter: rate_limit.map(UserRateLimiter::new) }
    }

    /// When the store must have given up: a share of the deadline before it.
    pub fn store_budget(&self) -> Duration {
        self.deadline - (self.deadline / STORE_RESERVE_SHARE).min(MAX_STORE_RESERVE)
    }
}

/// The rate-limit key of a request: its authenticated user, or the anonymous bucket.
fn caller_key(state: &AppState, parts: &Parts) -> String {
    state.authenticator.authenticate(parts).map_or_else(|_| ANONYMOUS.to_owned(), |user| user.as_str().to_owned())
}

/// 429 `rate-limited` with `Retry-After` in whole seconds (at least one).
fn too_many_requests(wait: Duration) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let detail = format!("too many requests for this user; retry in {} s", seconds.max(1));
    let mut response = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate-limited", detail).into_response();
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}

pub async fn rate_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(limiter) = &state.overload.limiter else { return next.run(request).await };
    let (parts, body) = request.into_parts();
    if let Err(wait) = limiter.check(&caller_key(&state, &parts)) {
        return too_many_requests(wait);
    }
    next.run(Request::from_parts(parts, body)).await
}

/// Runs the request under its deadline: the store sees [`Overload::store_budget`], and a
/// request still running at the deadline itself answers 503 `deadline-exceeded`.
pub async fn enforce_deadline(State(state): State<AppState>, request: Request, next: Next) -> Response {
    within_deadline(&state.overload, next.run(request)).await
}

async fn within_deadline(overload: &Overload, work: impl Future<Output = Response>) -> Response {
    let started = tokio::time::Instant::now();
    let work = deadline::scope(started + overload.store_budget(), work);
    match tokio::time::timeout_at(started + overload.deadline, work).await {
        Ok(response) => response,
        Err(_) => ApiError::deadline_exceeded().into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(per_second: u32, burst: u32) -> RateLimit {
        RateLimit { per_second: NonZeroU32::new(per_second).unwrap(), burst: NonZeroU32::new(burst).unwrap() }
    }

    #[test]
    fn each_user_has_a_bucket_of_their_own() {
        let limiter = UserRateLimiter::new(limit(1, 3));
        for _ in 0..3 {
            assert!(limiter.check("alice").is_ok());
        }
        let wait = limiter.check("alice").unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1), "{wait:?}");
        assert!(limiter.check("bob").is_ok(), "alice's burst does not use up bob's share");
        assert_eq!(limiter.tracked_keys(), 2);
    }

    #[test]
    fn retry_after_is_whole_seconds_and_at_least_one() {
        for (wait, expected) in [(Duration::from_millis(1), "1"), (Duration::from_millis(1500), "2")] {
            let response = too_many_requests(wait);
            assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(response.headers()[header::RETRY_AFTER], expected);
        }
    }

    #[tokio::test]
    async fn work_that_never_ends_answers_503_at_the_deadline() {
        let overload = Overload::new(Duration::from_millis(50), None);
        let response = within_deadline(&overload, std::future::pending()).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        let seen = within_deadline(&overload, async {
            let left = deadline::remaining().expect("the work runs under the deadline");
            assert!(left <= overload.store_budget(), "{left:?}");
            StatusCode::OK.into_response()
        })
        .await;
        assert_eq!(seen.status(), StatusCode::OK);
    }

    #[test]
    fn the_store_stops_before_the_request_does() {
        let overload = Overload::new(Duration::from_secs(20), None);
        assert_eq!(overload.store_budget(), Duration::from_secs(18));
        let short = Overload::new(Duration::from_millis(1000), None);
        assert_eq!(short.store_budget(), Duration::from_millis(800));
    }
}
