//! How long to wait before the next attempt, and when to stop.
//!
//! One place does this arithmetic for every channel: channels only say
//! whether an error is retryable (and what `Retry-After` asked for).
//! Exponential backoff with ±20% jitter; a server's `Retry-After` wins but
//! is clamped, so a hostile or confused server cannot park a page for a day.

use std::time::Duration;

use crate::delivery::{Class, SendError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// The wait after the first failure; doubled after each further one.
    pub base: Duration,
    /// No computed wait is longer than this.
    pub cap: Duration,
    /// No attempt starts later than this after the first one: a page that
    /// could not go out for this long is dead-lettered, not sent stale.
    pub max_age: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base: Duration::from_secs(1),
            cap: Duration::from_secs(600),
            max_age: Duration::from_secs(3600),
        }
    }
}

impl RetryPolicy {
    /// Like [`Self::next_delay`], also giving up when the next attempt
    /// would start more than `max_age` after the first (`age` is the time
    /// since the first attempt).
    pub fn next_delay_within(
        &self,
        attempt: u32,
        age: Duration,
        error: &SendError,
    ) -> Option<Duration> {
        self.next_delay(attempt, error)
            .filter(|wait| age.saturating_add(*wait) <= self.max_age)
    }

    /// The wait before attempt `attempt + 1`, or `None` when the error is
    /// permanent or `attempt` was the last one allowed.
    pub fn next_delay(&self, attempt: u32, error: &SendError) -> Option<Duration> {
        let Class::Retry { after } = error.class else {
            return None;
        };
        if attempt >= self.max_attempts {
            return None;
        }
        let exp = attempt.saturating_sub(1).min(30);
        let backoff = self.base.saturating_mul(1u32 << exp).min(self.cap);
        let jittered = backoff.mul_f64(0.8 + 0.4 * fastrand::f64());
        Some(match after {
            // The server knows its own load best; clamp to [base, cap].
            Some(wish) => wish.clamp(self.base, self.cap.max(self.base)),
            None => jittered,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::Reason;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            base: Duration::from_secs(2),
            cap: Duration::from_secs(10),
            max_age: Duration::from_secs(60),
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_and_stops_at_the_cap() {
        let err = SendError::retry(Reason::Server, "503");
        for (attempt, nominal) in [(1, 2.0), (2, 4.0), (3, 8.0)] {
            let d = policy().next_delay(attempt, &err).unwrap().as_secs_f64();
            assert!(
                (nominal * 0.8..=nominal * 1.2).contains(&d),
                "attempt {attempt}: {d}"
            );
        }
        assert_eq!(policy().next_delay(4, &err), None);
    }

    #[test]
    fn no_attempt_starts_past_the_max_age() {
        let err = SendError::retry(Reason::Server, "503");
        let p = policy();
        assert!(p
            .next_delay_within(1, Duration::from_secs(10), &err)
            .is_some());
        assert_eq!(p.next_delay_within(1, Duration::from_secs(59), &err), None);
    }

    #[test]
    fn permanent_errors_are_never_retried() {
        let err = SendError::permanent(Reason::Client, "550");
        assert_eq!(policy().next_delay(1, &err), None);
    }

    #[test]
    fn retry_after_wins_but_is_clamped() {
        let mut err = SendError::retry(Reason::RateLimited, "429");
        err.class = Class::Retry {
            after: Some(Duration::from_secs(7)),
        };
        assert_eq!(policy().next_delay(1, &err), Some(Duration::from_secs(7)));
        err.class = Class::Retry {
            after: Some(Duration::from_secs(86_400)),
        };
        assert_eq!(policy().next_delay(1, &err), Some(Duration::from_secs(10)));
    }
}
