//! Retries with capped exponential back-off, full jitter and `Retry-After` as a floor.

use std::future::Future;
use std::time::Duration;

use rand::Rng;

use crate::model::ModelError;

/// How a retry delay is randomised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Jitter {
    /// Wait exactly the back-off.
    None,
    /// Wait a uniformly random time in `[0, back-off]` ("full jitter"), so clients that
    /// failed together do not retry together.
    #[default]
    Full,
}

/// When and how often to retry a failed model call.
///
/// Only errors for which [`ModelError::is_retryable`] holds (HTTP 429 and 5xx, transport
/// failures) are retried. The back-off before retry `n` (0-based) is
/// `min(max_delay, base_delay × multiplier^n)`, randomised by [`Jitter`]. A server's
/// `Retry-After` is a floor: the policy never waits less than it asks, but it clamps
/// the floor to `max_retry_after` (default 60 s, twice `max_delay`) so a hostile or
/// broken header cannot park a worker for hours.
///
/// ```
/// use std::time::Duration;
/// use loom_llm::RetryPolicy;
///
/// let policy = RetryPolicy::default().with_max_attempts(5).with_base_delay(Duration::from_millis(100));
/// assert_eq!(policy.max_attempts(), 5);
/// // A Retry-After of 2 s is never undercut.
/// assert!(policy.delay_for(0, Some(Duration::from_secs(2))) >= Duration::from_secs(2));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    max_attempts: u32,
    base_delay: Duration,
    max_delay: Duration,
    multiplier: f64,
    jitter: Jitter,
    max_retry_after: Duration,
}

impl Default for RetryPolicy {
    /// 3 attempts, 1 s base delay doubling up to 30 s, full jitter, `Retry-After` clamped to 60 s.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            multiplier: 2.0,
            jitter: Jitter::Full,
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// A policy that makes one attempt and never retries.
    pub fn none() -> Self {
        Self::default().with_max_attempts(1)
    }

    /// Sets the total number of attempts, the first included; 0 is taken as 1.
    pub fn with_max_attempts(mut self, max_attempts: u32) -> Self {
        self.max_attempts = max_attempts.max(1);
        self
    }

    /// Sets the back-off before the first retry.
    pub fn with_base_delay(mut self, base_delay: Duration) -> Self {
        self.base_delay = base_delay;
        self
    }

    /// Sets the cap of the exponential back-off.
    pub fn with_max_delay(mut self, max_delay: Duration) -> Self {
        self.max_delay = max_delay;
        self
    }

    /// Sets the growth factor of the back-off; values below 1 (or NaN) are taken as 1.
    pub fn with_multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = if multiplier >= 1.0 { multiplier } else { 1.0 };
        self
    }

    /// Sets the jitter.
    pub fn with_jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// Sets the longest `Retry-After` honoured as a floor; longer values are clamped to it.
    pub fn with_max_retry_after(mut self, max_retry_after: Duration) -> Self {
        self.max_retry_after = max_retry_after;
        self
    }

    /// The total number of attempts, the first included.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The back-off before the first retry.
    pub fn base_delay(&self) -> Duration {
        self.base_delay
    }

    /// The cap of the exponential back-off.
    pub fn max_delay(&self) -> Duration {
        self.max_delay
    }

    /// The growth factor of the back-off.
    pub fn multiplier(&self) -> f64 {
        self.multiplier
    }

    /// The jitter.
    pub fn jitter(&self) -> Jitter {
        self.jitter
    }

    /// The longest `Retry-After` honoured as a floor.
    pub fn max_retry_after(&self) -> Duration {
        self.max_retry_after
    }

    /// The un-jittered back-off before retry `attempt` (0-based):
    /// `min(max_delay, base_delay × multiplier^attempt)`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exponent = i32::try_from(attempt).unwrap_or(i32::MAX);
        let secs = self.base_delay.as_secs_f64() * self.multiplier.powi(exponent);
        let cap = self.max_delay.as_secs_f64();
        // `min` also maps an overflow to infinity and then to the cap.
        Duration::try_from_secs_f64(secs.min(cap)).unwrap_or(self.max_delay)
    }

    /// How long to wait before retry `attempt` (0-based), given the server's `Retry-After`.
    pub fn delay_for(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        self.delay_with_rng(attempt, retry_after, &mut rand::rng())
    }

    /// [`delay_for`](Self::delay_for) with a caller-chosen random source, for tests.
    pub fn delay_with_rng<R: Rng + ?Sized>(
        &self,
        attempt: u32,
        retry_after: Option<Duration>,
        rng: &mut R,
    ) -> Duration {
        let backoff = self.backoff(attempt);
        let jittered = match self.jitter {
            Jitter::None => backoff,
            Jitter::Full => {
                let nanos = u64::try_from(backoff.as_nanos()).unwrap_or(u64::MAX);
                Duration::from_nanos(rng.random_range(0..=nanos))
            }
        };
        let floor = retry_after.map_or(Duration::ZERO, |ra| ra.min(self.max_retry_after));
        jittered.max(floor)
    }

    /// Runs `op` until it succeeds, fails with a non-retryable error, or
    /// [`max_attempts`](Self::max_attempts) attempts have failed; returns the last error.
    pub async fn run<F, Fut, T>(&self, mut op: F) -> Result<T, ModelError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ModelError>>,
    {
        let mut attempt: u32 = 1;
        loop {
            match op().await {
                Ok(value) => return Ok(value),
                Err(error) if error.is_retryable() && attempt < self.max_attempts => {
                    let delay = self.delay_for(attempt - 1, error.retry_after());
                    tracing::warn!(
                        attempt,
                        max_attempts = self.max_attempts,
                        delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        error = %error,
                        "Model call failed; retrying."
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    /// Every await in these tests is bounded.
    async fn within<F: std::future::Future>(future: F) -> F::Output {
        tokio::time::timeout(std::time::Duration::from_secs(10), future)
            .await
            .expect("test future timed out")
    }

    fn http(status: u16, retry_after: Option<Duration>) -> ModelError {
        ModelError::Http {
            url: "http://x".into(),
            status,
            body_preview: String::new(),
            retry_after,
        }
    }

    #[test]
    fn defaults_are_three_attempts_one_second_doubling_to_thirty() {
        let p = RetryPolicy::default();
        assert_eq!(p.max_attempts(), 3);
        assert_eq!(p.base_delay(), Duration::from_secs(1));
        assert_eq!(p.max_delay(), Duration::from_secs(30));
        assert!((p.multiplier() - 2.0).abs() < f64::EPSILON);
        assert_eq!(p.jitter(), Jitter::Full);
        assert_eq!(RetryPolicy::none().max_attempts(), 1);
    }

    #[test]
    fn backoff_grows_exponentially_and_is_capped() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(0), Duration::from_secs(1));
        assert_eq!(p.backoff(1), Duration::from_secs(2));
        assert_eq!(p.backoff(4), Duration::from_secs(16));
        assert_eq!(p.backoff(5), Duration::from_secs(30));
        assert_eq!(p.backoff(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn full_jitter_stays_within_zero_and_backoff() {
        let p = RetryPolicy::default();
        let mut rng = StdRng::seed_from_u64(7);
        let mut distinct = std::collections::BTreeSet::new();
        for attempt in 0..8 {
            for _ in 0..50 {
                let d = p.delay_with_rng(attempt, None, &mut rng);
                assert!(d <= p.backoff(attempt), "{d:?} > {:?}", p.backoff(attempt));
                distinct.insert(d);
            }
        }
        assert!(distinct.len() > 100, "jitter should spread the delays");
    }

    #[test]
    fn seeded_delays_are_reproducible() {
        let p = RetryPolicy::default();
        let a: Vec<_> = {
            let mut rng = StdRng::seed_from_u64(42);
            (0..5)
                .map(|n| p.delay_with_rng(n, None, &mut rng))
                .collect()
        };
        let b: Vec<_> = {
            let mut rng = StdRng::seed_from_u64(42);
            (0..5)
                .map(|n| p.delay_with_rng(n, None, &mut rng))
                .collect()
        };
        assert_eq!(a, b);
    }

    #[test]
    fn no_jitter_waits_the_backoff() {
        let p = RetryPolicy::default().with_jitter(Jitter::None);
        assert_eq!(p.delay_for(2, None), Duration::from_secs(4));
    }

    #[test]
    fn retry_after_is_a_floor() {
        let p = RetryPolicy::default().with_base_delay(Duration::from_millis(1));
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..100 {
            let d = p.delay_with_rng(0, Some(Duration::from_secs(5)), &mut rng);
            assert_eq!(d, Duration::from_secs(5));
        }
        // A longer jittered back-off still wins over a short Retry-After.
        let p = RetryPolicy::default().with_jitter(Jitter::None);
        assert_eq!(
            p.delay_for(3, Some(Duration::from_secs(1))),
            Duration::from_secs(8)
        );
    }

    #[test]
    fn retry_after_is_clamped_to_max_retry_after() {
        let p = RetryPolicy::default().with_jitter(Jitter::None);
        assert_eq!(
            p.delay_for(0, Some(Duration::from_secs(3600))),
            Duration::from_secs(60)
        );
        let p = p.with_max_retry_after(Duration::from_secs(10));
        assert_eq!(
            p.delay_for(0, Some(Duration::from_secs(3600))),
            Duration::from_secs(10)
        );
    }

    #[test]
    fn builder_sanitises_values() {
        let p = RetryPolicy::default()
            .with_max_attempts(0)
            .with_multiplier(0.5);
        assert_eq!(p.max_attempts(), 1);
        assert!((p.multiplier() - 1.0).abs() < f64::EPSILON);
        assert!(
            (RetryPolicy::default()
                .with_multiplier(f64::NAN)
                .multiplier()
                - 1.0)
                .abs()
                < f64::EPSILON
        );
    }

    fn fast() -> RetryPolicy {
        RetryPolicy::default()
            .with_base_delay(Duration::from_millis(1))
            .with_max_delay(Duration::from_millis(2))
    }

    #[tokio::test]
    async fn run_retries_retryable_errors_until_success() {
        let calls = AtomicU32::new(0);
        let result = within(fast().run(|| async {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            if n < 2 { Err(http(503, None)) } else { Ok(n) }
        }))
        .await;
        assert_eq!(result.expect("third attempt succeeds"), 2);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn run_gives_up_after_max_attempts_with_the_last_error() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = within(fast().run(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(http(500, None))
        }))
        .await;
        assert!(matches!(result, Err(ModelError::Http { status: 500, .. })));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn run_does_not_retry_client_errors() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = within(fast().run(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(http(400, None))
        }))
        .await;
        assert!(matches!(result, Err(ModelError::Http { status: 400, .. })));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn none_policy_makes_one_attempt() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = within(RetryPolicy::none().run(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(http(429, None))
        }))
        .await;
        assert!(result.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
