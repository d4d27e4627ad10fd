//! The one retry policy of the adapters, where they retry on top of the SDK: items
//! DynamoDB left unprocessed, queries it throttled, PutEvents entries EventBridge refused.
//! The SDK's own retries give up when its retry quota drains under sustained throttling;
//! these keep going a little longer, with exponential backoff and random jitter (`backon`,
//! seeded from the operating system) so that concurrent callers do not retry in step.
//! Store retries also stop when the request's deadline ([`crate::deadline`]) leaves no
//! time for another attempt; event retries do not, as their last resort is the
//! dead-letter queue, never a drop.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder, Retryable};

use crate::deadline;

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: usize,
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// Whether retries stop at the deadline of the request being served.
    pub within_deadline: bool,
}

/// DynamoDB: enough to ride out a short throttling burst while keeping a request well
/// inside an API Gateway timeout.
pub const STORE_RETRY: RetryPolicy = RetryPolicy {
    attempts: 6,
    first_delay: Duration::from_millis(25),
    max_delay: Duration::from_millis(800),
    within_deadline: true,
};

/// EventBridge entries, retried alone before they go to the dead-letter queue.
pub const EVENT_RETRY: RetryPolicy = RetryPolicy {
    attempts: 4,
    first_delay: Duration::from_millis(50),
    max_delay: Duration::from_millis(400),
    within_deadline: false,
};

impl RetryPolicy {
    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.first_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.attempts.saturating_sub(1))
            .with_jitter()
    }

    /// The waits before each retry: one fewer than the attempts, and (`within_deadline`)
    /// none once a wait would leave the request no time for the attempt after it.
    pub fn delays(&self) -> impl Iterator<Item = Duration> + Send + Sync + Unpin + use<> {
        let within_deadline = self.within_deadline;
        self.backoff().build().take_while(move |delay| !within_deadline || deadline::allows(*delay))
    }

    /// Calls until it succeeds, fails with an error `retryable` refuses, or the attempts
    /// run out; the last result is returned.
    pub async fn run<T, E, Fut>(&self, call: impl FnMut() -> Fut, retryable: impl FnMut(&E) -> bool) -> Result<T, E>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        call.retry(self.delays()).when(retryable).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    const FAST: RetryPolicy = RetryPolicy {
        attempts: 4,
        first_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(4),
        within_deadline: true,
    };

    #[test]
    fn delays_are_one_fewer_than_attempts_and_bounded() {
        for policy in [STORE_RETRY, EVENT_RETRY] {
            let delays: Vec<Duration> = policy.delays().collect();
            assert_eq!(delays.len(), policy.attempts - 1);
            // Jitter adds up to the delay itself on top of it.
            assert!(delays.iter().all(|delay| *delay >= policy.first_delay && *delay <= policy.max_delay * 2));
        }
    }

    #[test]
    fn jitter_spreads_concurrent_callers() {
        let first: Vec<Vec<Duration>> = (0..8).map(|_| STORE_RETRY.delays().collect()).collect();
        assert!(first.windows(2).any(|pair| pair[0] != pair[1]), "eight callers waited exactly alike");
    }

    /// Runs `FAST` over a call whose n-th attempt (from 1) answers `outcome(n)`; returns
    /// the result and the number of attempts made.
    async fn attempts(
        outcome: fn(usize) -> Result<usize, &'static str>,
        retryable: fn(&&'static str) -> bool,
    ) -> (Result<usize, &'static str>, usize) {
        let calls = AtomicUsize::new(0);
        let result = FAST.run(|| async { outcome(calls.fetch_add(1, Ordering::SeqCst) + 1) }, retryable).await;
        (result, calls.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn stops_at_success_at_a_final_error_or_after_the_last_attempt() {
        let busy_twice = |n| if n < 3 { Err("busy") } else { Ok(n) };
        assert_eq!(attempts(busy_twice, |_| true).await, (Ok(3), 3));
        assert_eq!(attempts(|_| Err("malformed"), |error| *error == "busy").await, (Err("malformed"), 1));
        assert_eq!(attempts(|_| Err("busy"), |_| true).await, (Err("busy"), FAST.attempts));
    }

    #[tokio::test]
    async fn store_retries_stop_at_the_deadline_and_event_retries_do_not() {
        let spent = tokio::time::Instant::now();
        let (store, events) =
            deadline::scope(spent, async { (STORE_RETRY.delays().count(), EVENT_RETRY.delays().count()) }).await;
        assert_eq!(store, 0, "a spent deadline leaves no time for a store retry");
        assert_eq!(events, EVENT_RETRY.attempts - 1, "events are retried, then dead-lettered");
        let (result, calls) = deadline::scope(spent, attempts(|_| Err("busy"), |_| true)).await;
        assert_eq!((result, calls), (Err("busy"), 1), "one attempt, no retry after the deadline");
    }
}
