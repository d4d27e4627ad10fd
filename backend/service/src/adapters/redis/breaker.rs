//! A circuit breaker for the shared cache. The cache only saves work, so a cache that is
//! down or slow must cost a request nothing: after a few failures in a row no call goes
//! out for a cool-down, and then one probe at a time finds out whether it is back.
//!
//! Written here rather than taken from a crate: it is a small state machine, and a call it
//! holds back must come out as its own error (`CacheError::Open`), which the health check
//! reports and the metrics count apart from failures.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    /// No call goes out before `until`.
    Open {
        until: Instant,
    },
    /// One probe is out; another may go once `until` passes (a probe whose caller gave up
    /// reports nothing, and must not keep the breaker from ever closing).
    Probing {
        until: Instant,
    },
}

#[derive(Debug)]
pub struct CircuitBreaker {
    state: Mutex<State>,
    failures_to_open: u32,
    cool_down: Duration,
}

impl CircuitBreaker {
    pub fn new(failures_to_open: u32, cool_down: Duration) -> Self {
        Self { state: Mutex::new(State::Closed { failures: 0 }), failures_to_open: failures_to_open.max(1), cool_down }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a plain value, whole after any panic.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether a call may go out now. When it does, its outcome must be reported with
    /// [`CircuitBreaker::succeeded`] or [`CircuitBreaker::failed`].
    pub fn allow(&self) -> bool {
        let mut state = self.state();
        let now = Instant::now();
        match *state {
            State::Closed { .. } => true,
            State::Open { until } | State::Probing { until } if now >= until => {
                *state = State::Probing { until: now + self.cool_down };
                true
            }
            State::Open { .. } | State::Probing { .. } => false,
        }
    }

    pub fn succeeded(&self) {
        *self.state() = State::Closed { failures: 0 };
    }

    pub fn failed(&self) {
        let mut state = self.state();
        *state = match *state {
            State::Closed { failures } if failures + 1 < self.failures_to_open => {
                State::Closed { failures: failures + 1 }
            }
            _ => State::Open { until: Instant::now() + self.cool_down },
        };
    }

    /// Whether calls are being held back (open, or waiting on a probe).
    pub fn is_open(&self) -> bool {
        !matches!(*self.state(), State::Closed { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COOL_DOWN: Duration = Duration::from_secs(2);

    #[tokio::test(start_paused = true)]
    async fn opens_after_failures_in_a_row_and_a_success_in_between_resets_the_count() {
        let breaker = CircuitBreaker::new(3, COOL_DOWN);
        breaker.failed();
        breaker.failed();
        breaker.succeeded();
        breaker.failed();
        breaker.failed();
        assert!(breaker.allow() && !breaker.is_open(), "two failures in a row do not open it");
        breaker.failed();
        assert!(breaker.is_open());
        assert!(!breaker.allow(), "no call goes out while open");
    }

    #[tokio::test(start_paused = true)]
    async fn after_the_cool_down_one_probe_goes_out_and_its_outcome_decides() {
        let breaker = CircuitBreaker::new(1, COOL_DOWN);
        breaker.failed();
        tokio::time::advance(COOL_DOWN - Duration::from_millis(1)).await;
        assert!(!breaker.allow());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(breaker.allow(), "the probe");
        assert!(!breaker.allow(), "one probe at a time");
        breaker.failed();
        assert!(!breaker.allow(), "a failed probe opens it again for a cool-down");
        tokio::time::advance(COOL_DOWN).await;
        assert!(breaker.allow());
        breaker.succeeded();
        assert!(!breaker.is_open());
        assert!(breaker.allow() && breaker.allow(), "closed: every call goes out");
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_that_never_reports_does_not_keep_it_open_for_ever() {
        let breaker = CircuitBreaker::new(1, COOL_DOWN);
        breaker.failed();
        tokio::time::advance(COOL_DOWN).await;
        assert!(breaker.allow());
        // That probe's caller was cancelled and reports nothing.
        tokio::time::advance(COOL_DOWN).await;
        assert!(breaker.allow(), "another probe goes out");
    }
}
