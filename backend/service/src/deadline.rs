//! The end-to-end deadline of a request. API Gateway gives up on a request after 29 s;
//! without a deadline of its own, SDK attempts times store retries could keep working
//! (and keep a Lambda instance busy) long after the client has gone. The HTTP layer sets
//! the deadline for the task serving the request; the store's retry loops and its SDK
//! calls read it and stop when it is spent, so that a bulk operation can still report
//! what it did before the request itself is cut off.
//!
//! Outside a request (background workers, the event publisher) there is no deadline.

use std::time::Duration;

use tokio::time::Instant;

tokio::task_local! {
    static DEADLINE: Instant;
}

/// Runs `work` with `at` as the time by which the store must have given up retrying.
pub async fn scope<F: Future>(at: Instant, work: F) -> F::Output {
    DEADLINE.scope(at, work).await
}

/// Time left before the deadline of the current request; `None` outside a request.
pub fn remaining() -> Option<Duration> {
    DEADLINE.try_with(|at| at.saturating_duration_since(Instant::now())).ok()
}

/// Whether the current request's deadline has passed.
pub fn expired() -> bool {
    remaining().is_some_and(|left| left.is_zero())
}

/// Whether waiting `delay` before another attempt still leaves time for that attempt.
pub fn allows(delay: Duration) -> bool {
    remaining().is_none_or(|left| left > delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_deadline_is_seen_inside_its_scope_only() {
        assert_eq!(remaining(), None);
        assert!(!expired() && allows(Duration::from_secs(3600)));
        let later = Instant::now() + Duration::from_secs(600);
        scope(later, async {
            assert!(!expired());
            assert!(allows(Duration::from_millis(50)));
            assert!(!allows(Duration::from_secs(3600)));
        })
        .await;
        scope(Instant::now(), async {
            assert!(expired());
            assert!(!allows(Duration::ZERO));
        })
        .await;
        assert_eq!(remaining(), None);
    }
}
