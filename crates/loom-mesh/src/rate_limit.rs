//! The router's per-tier rate limits: token buckets over dispatches and estimated tokens.
//!
//! Each tier named in `router_rules.yaml` `rate_limits` gets up to two buckets; a tier
//! without an entry is unlimited (mesh spec §5.3):
//!
//! | bucket | capacity | refill (continuous, fractional) | a task costs |
//! |---|---|---|---|
//! | dispatch | `max_concurrent` | `max_concurrent` per minute | 1 |
//! | token budget (only with `tokens_per_minute`) | `tokens_per_minute` | `tokens_per_minute` per minute | [`estimate_tokens`] of its payload |
//!
//! Both buckets start full. A task is admitted only when **both** can pay, and then both
//! are charged; otherwise neither is. loom-ai 0.9.0 documented `tokens_per_minute` but
//! ignored it (mesh spec §19, B11); here it is a real budget. Like the original, the
//! limiter throttles dispatch only (worker completion is not tracked) and a refused task
//! is not queued: the router dead-letters it.
//!
//! A task whose estimate exceeds the whole token budget is charged the budget (it is
//! admitted when the bucket is full and empties it), so an oversized task is slowed
//! down, not refused forever.
//!
//! Time is a parameter (`now: Instant`), so the limiter is deterministic under test.
//!
//! ```
//! use std::collections::BTreeMap;
//! use std::time::{Duration, Instant};
//!
//! use loom_core::config::RateLimit;
//! use loom_core::message::ModelTier;
//! use loom_mesh::rate_limit::RateLimiter;
//!
//! let t0 = Instant::now();
//! let limits = BTreeMap::from([(
//!     ModelTier::Local,
//!     RateLimit { max_concurrent: 1, tokens_per_minute: None },
//! )]);
//! let limiter = RateLimiter::new(&limits, t0);
//! assert!(limiter.try_acquire(ModelTier::Local, t0, || 1).is_ok());
//! assert!(limiter.try_acquire(ModelTier::Local, t0, || 1).is_err());
//! // One dispatch per minute comes back, continuously.
//! assert!(limiter.try_acquire(ModelTier::Local, t0 + Duration::from_secs(60), || 1).is_ok());
//! // Tiers without a limit are unlimited.
//! assert!(limiter.try_acquire(ModelTier::Frontier, t0, || 1).is_ok());
//! ```

use std::collections::BTreeMap;
use std::io;
use std::sync::Mutex;
use std::time::Instant;

use loom_core::config::RateLimit;
use loom_core::message::ModelTier;
use serde::Serialize;

/// Absorbs floating-point drift in refill arithmetic, so that exactly one refill interval
/// always yields a whole token.
const EPSILON: f64 = 1e-9;

/// Per-tier limits for the router; see the [module docs](self).
///
/// Shared by reference between concurrent handlers: each tier's buckets sit behind their
/// own short-lived lock, never held across an `.await`.
#[derive(Debug)]
pub struct RateLimiter {
    /// Indexed by [`tier_index`]; `None` = unlimited.
    tiers: [Option<TierLimiter>; ModelTier::ALL.len()],
}

/// Why a task was refused. Its text completes the router's reason
/// `rate_limited: tier '<tier>' has no available capacity`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RateLimited {
    /// The dispatch bucket (`max_concurrent` per minute) is empty.
    #[error("tier '{tier}' has no available capacity")]
    Dispatches {
        /// The refused tier.
        tier: ModelTier,
    },
    /// The token budget (`tokens_per_minute`) cannot pay for the task's estimate.
    #[error(
        "tier '{tier}' has no available capacity (the task needs about {needed} tokens; {available} of {per_minute} tokens per minute are left)"
    )]
    Tokens {
        /// The refused tier.
        tier: ModelTier,
        /// The task's charge: its estimate, capped at the budget.
        needed: u64,
        /// Whole tokens left in the budget.
        available: u64,
        /// The configured budget.
        per_minute: f64,
    },
}

impl RateLimited {
    /// The refused tier.
    pub fn tier(&self) -> ModelTier {
        match self {
            RateLimited::Dispatches { tier } | RateLimited::Tokens { tier, .. } => *tier,
        }
    }
}

impl RateLimiter {
    /// Builds the buckets for `limits` (tier → limit), all full at `now`. Tiers absent from
    /// `limits` are unlimited.
    ///
    /// `max_concurrent: 0` refuses every task on that tier (as loom-ai 0.9.0 does). A
    /// `tokens_per_minute` that is not a finite positive number is ignored (the config
    /// loader rejects such values).
    pub fn new(limits: &BTreeMap<ModelTier, RateLimit>, now: Instant) -> Self {
        let mut tiers: [Option<TierLimiter>; ModelTier::ALL.len()] = Default::default();
        for (&tier, limit) in limits {
            tiers[tier_index(tier)] = Some(TierLimiter::new(tier, limit, now));
        }
        RateLimiter { tiers }
    }

    /// A limiter that admits everything.
    pub fn unlimited() -> Self {
        RateLimiter {
            tiers: Default::default(),
        }
    }

    /// Whether `tier` has any limit.
    pub fn is_limited(&self, tier: ModelTier) -> bool {
        self.tiers[tier_index(tier)].is_some()
    }

    /// Takes one dispatch (and, when `tier` has a token budget, `estimated_tokens()`
    /// tokens) at `now`, or refuses without charging anything.
    ///
    /// `estimated_tokens` is called only when the tier has a token budget, and before any
    /// lock is taken, so an expensive estimate never blocks other handlers.
    pub fn try_acquire(
        &self,
        tier: ModelTier,
        now: Instant,
        estimated_tokens: impl FnOnce() -> u64,
    ) -> Result<(), RateLimited> {
        match &self.tiers[tier_index(tier)] {
            None => Ok(()),
            Some(limiter) => limiter.try_acquire(now, estimated_tokens),
        }
    }
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self::unlimited()
    }
}

/// Estimates the LLM tokens a task will use from its payload: the length in bytes of
/// the payload's compact JSON encoding divided by 4, rounded up, and at least 1.
///
/// Four bytes per token is the usual rule of thumb for English text with BPE tokenizers;
/// the router cannot know the worker's system prompt or the completion, so this is a
/// rough lower bound of the prompt, good enough for a per-minute budget. The encoding is
/// counted, not stored: nothing is allocated.
pub fn estimate_tokens<T: Serialize + ?Sized>(payload: &T) -> u64 {
    let mut counter = ByteCounter(0);
    // Writing into a counter cannot fail, and a payload that cannot be encoded (a map with
    // non-string keys) is charged for the bytes written before the error.
    if serde_json::to_writer(&mut counter, payload).is_err() {
        tracing::debug!(
            bytes = counter.0,
            "Payload cannot be encoded as JSON; estimating from its prefix."
        );
    }
    counter.0.div_ceil(4).max(1)
}

/// A bucket of `capacity` tokens refilled continuously at `per_minute` tokens per
/// minute, capped at `capacity`. It starts full.
///
/// Refill is lazy: each call adds `elapsed × per_minute / 60` tokens and moves the
/// refill time to `now`. A `now` earlier than the last refill adds nothing (calls may
/// race to the lock with slightly stale clocks).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenBucket {
    capacity: f64,
    per_minute: f64,
    available: f64,
    last_refill: Instant,
}

impl TokenBucket {
    /// A full bucket of `capacity` tokens refilled at `per_minute` per minute. Negative
    /// or NaN values are treated as 0.
    pub fn new(capacity: f64, per_minute: f64, now: Instant) -> Self {
        let capacity = non_negative(capacity);
        TokenBucket {
            capacity,
            per_minute: non_negative(per_minute),
            available: capacity,
            last_refill: now,
        }
    }

    /// The bucket's size.
    pub fn capacity(&self) -> f64 {
        self.capacity
    }

    /// Tokens available at `now` (fractional).
    pub fn available(&mut self, now: Instant) -> f64 {
        self.refill(now);
        self.available
    }

    /// Whether `amount` tokens are available at `now`, without taking them.
    pub fn can_take(&mut self, amount: f64, now: Instant) -> bool {
        self.refill(now);
        self.available + EPSILON >= amount
    }

    /// Takes `amount` tokens if available at `now`; otherwise takes nothing.
    pub fn try_take(&mut self, amount: f64, now: Instant) -> bool {
        if !self.can_take(amount, now) {
            return false;
        }
        self.available = (self.available - amount).max(0.0);
        true
    }

    fn refill(&mut self, now: Instant) {
        if now <= self.last_refill {
            return;
        }
        let elapsed = now.duration_since(self.last_refill).as_secs_f64();
        // Multiply before dividing: 60 s at 1 per minute is exactly 1.0.
        self.available = (self.available + elapsed * self.per_minute / 60.0).min(self.capacity);
        self.last_refill = now;
    }
}

/// One limited tier: its dispatch bucket and optional token budget.
#[derive(Debug)]
struct TierLimiter {
    tier: ModelTier,
    /// The token budget, if any (known without locking, to skip the estimate).
    tokens_per_minute: Option<f64>,
    buckets: Mutex<TierBuckets>,
}

#[derive(Debug)]
struct TierBuckets {
    dispatches: TokenBucket,
    tokens: Option<TokenBucket>,
}

impl TierLimiter {
    fn new(tier: ModelTier, limit: &RateLimit, now: Instant) -> Self {
        let max = f64::from(limit.max_concurrent);
        let tokens_per_minute = limit
            .tokens_per_minute
            .filter(|t| t.is_finite() && *t > 0.0);
        TierLimiter {
            tier,
            tokens_per_minute,
            buckets: Mutex::new(TierBuckets {
                dispatches: TokenBucket::new(max, max, now),
                tokens: tokens_per_minute.map(|t| TokenBucket::new(t, t, now)),
            }),
        }
    }

    fn try_acquire(
        &self,
        now: Instant,
        estimated_tokens: impl FnOnce() -> u64,
    ) -> Result<(), RateLimited> {
        // Capped at the budget so that an oversized task can still pass a full bucket.
        let charge = self
            .tokens_per_minute
            .map(|budget| (estimated_tokens() as f64).min(budget));
        // A poisoned lock only means another handler panicked mid-update; the buckets
        // are plain numbers and still usable.
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let TierBuckets { dispatches, tokens } = &mut *buckets;
        if !dispatches.can_take(1.0, now) {
            return Err(RateLimited::Dispatches { tier: self.tier });
        }
        if let (Some(bucket), Some(charge)) = (tokens.as_mut(), charge) {
            if !bucket.try_take(charge, now) {
                return Err(RateLimited::Tokens {
                    tier: self.tier,
                    needed: charge.ceil() as u64,
                    available: (bucket.available(now) + EPSILON).floor() as u64,
                    per_minute: bucket.capacity(),
                });
            }
        }
        dispatches.try_take(1.0, now);
        Ok(())
    }
}

fn tier_index(tier: ModelTier) -> usize {
    match tier {
        ModelTier::Local => 0,
        ModelTier::Standard => 1,
        ModelTier::Frontier => 2,
    }
}

fn non_negative(x: f64) -> f64 {
    if x > 0.0 { x } else { 0.0 }
}

/// An `io::Write` that only counts bytes.
struct ByteCounter(u64);

impl io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use loom_core::config::{DEFAULT_MAX_CONCURRENT, load_router_rules};
    use loom_testkit::TempWorkspace;
    use serde_json::json;

    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    fn limits(entries: &[(ModelTier, u32, Option<f64>)]) -> BTreeMap<ModelTier, RateLimit> {
        entries
            .iter()
            .map(|&(tier, max_concurrent, tokens_per_minute)| {
                (
                    tier,
                    RateLimit {
                        max_concurrent,
                        tokens_per_minute,
                    },
                )
            })
            .collect()
    }

    /// How many unit-cost acquires succeed in a row at `now`.
    fn burst(limiter: &RateLimiter, tier: ModelTier, now: Instant) -> usize {
        (0..1000)
            .take_while(|_| limiter.try_acquire(tier, now, || 1).is_ok())
            .count()
    }

    #[test]
    fn max_concurrent_defaults_to_ten_when_absent() {
        let ws = TempWorkspace::new().expect("temp dir");
        let path = ws
            .write(
                "router_rules.yaml",
                "rate_limits:\n  local: {tokens_per_minute: 100000}\n",
            )
            .expect("write rules");
        let rules = load_router_rules(&path).expect("valid rules");
        assert_eq!(
            rules.rate_limits[&ModelTier::Local].max_concurrent,
            DEFAULT_MAX_CONCURRENT
        );
        let t0 = Instant::now();
        let limiter = RateLimiter::new(&rules.rate_limits, t0);
        assert_eq!(burst(&limiter, ModelTier::Local, t0), 10);
    }

    #[test]
    fn unconfigured_tiers_and_empty_config_are_unlimited() {
        let t0 = Instant::now();
        let limiter = RateLimiter::new(&limits(&[(ModelTier::Local, 1, None)]), t0);
        assert!(limiter.is_limited(ModelTier::Local));
        assert!(!limiter.is_limited(ModelTier::Standard));
        assert_eq!(burst(&limiter, ModelTier::Standard, t0), 1000);
        assert_eq!(burst(&limiter, ModelTier::Frontier, t0), 1000);

        let empty = RateLimiter::new(&BTreeMap::new(), t0);
        for tier in ModelTier::ALL {
            assert!(!empty.is_limited(tier));
            assert_eq!(burst(&empty, tier, t0), 1000);
        }
        assert_eq!(burst(&RateLimiter::unlimited(), ModelTier::Local, t0), 1000);
    }

    #[test]
    fn bucket_starts_full_and_refuses_when_empty() {
        let t0 = Instant::now();
        let limiter = RateLimiter::new(&limits(&[(ModelTier::Local, 1, None)]), t0);
        assert_eq!(limiter.try_acquire(ModelTier::Local, t0, || 1), Ok(()));
        let refused = limiter.try_acquire(ModelTier::Local, t0, || 1);
        assert_eq!(
            refused,
            Err(RateLimited::Dispatches {
                tier: ModelTier::Local
            })
        );
        assert_eq!(
            refused.map_err(|e| format!("rate_limited: {e}")),
            Err("rate_limited: tier 'local' has no available capacity".to_owned())
        );
    }

    #[test]
    fn dispatches_refill_continuously_at_max_concurrent_per_minute() {
        let t0 = Instant::now();
        let limiter = RateLimiter::new(&limits(&[(ModelTier::Standard, 10, None)]), t0);
        assert_eq!(burst(&limiter, ModelTier::Standard, t0), 10);
        // 10 per minute = one every 6 s, fractional in between.
        assert_eq!(burst(&limiter, ModelTier::Standard, t0 + secs(5.9)), 0);
        assert_eq!(burst(&limiter, ModelTier::Standard, t0 + secs(6.0)), 1);
        assert_eq!(burst(&limiter, ModelTier::Standard, t0 + secs(11.9)), 0);
        assert_eq!(burst(&limiter, ModelTier::Standard, t0 + secs(12.0)), 1);
        // 30 s later: 5 more, exactly.
        assert_eq!(burst(&limiter, ModelTier::Standard, t0 + secs(42.0)), 5);
    }

    #[test]
    fn refill_is_capped_at_capacity() {
        let t0 = Instant::now();
        let limiter = RateLimiter::new(&limits(&[(ModelTier::Frontier, 3, None)]), t0);
        assert_eq!(burst(&limiter, ModelTier::Frontier, t0), 3);
        // An hour idle refills to 3, not 180.
        assert_eq!(burst(&limiter, ModelTier::Frontier, t0 + secs(3600.0)), 3);

        let mut bucket = TokenBucket::new(2.0, 2.0, t0);
        assert_eq!(bucket.available(t0 + secs(600.0)), 2.0);
    }

    #[test]
    fn a_clock_going_backwards_adds_nothing() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(1.0, 60.0, t0 + secs(10.0));
        assert!(bucket.try_take(1.0, t0 + secs(10.0)));
        assert!(!bucket.try_take(1.0, t0));
        assert!(bucket.try_take(1.0, t0 + secs(11.0)));
    }

    #[test]
    fn zero_max_concurrent_refuses_everything() {
        let t0 = Instant::now();
        let limiter = RateLimiter::new(&limits(&[(ModelTier::Local, 0, None)]), t0);
        assert_eq!(burst(&limiter, ModelTier::Local, t0 + secs(3600.0)), 0);
    }

    #[test]
    fn token_budget_is_charged_with_the_estimate_and_refills_per_minute() {
        let t0 = Instant::now();
        let limiter = RateLimiter::new(&limits(&[(ModelTier::Local, 100, Some(600.0))]), t0);
        assert_eq!(limiter.try_acquire(ModelTier::Local, t0, || 250), Ok(()));
        assert_eq!(limiter.try_acquire(ModelTier::Local, t0, || 250), Ok(()));
        // 100 left: a 250-token task is refused, and says why.
        let refused = limiter.try_acquire(ModelTier::Local, t0, || 250);
        assert_eq!(
            refused,
            Err(RateLimited::Tokens {
                tier: ModelTier::Local,
                needed: 250,
                available: 100,
                per_minute: 600.0
            })
        );
        let reason = format!("rate_limited: {}", refused.expect_err("refused"));
        assert!(
            reason.starts_with("rate_limited: tier 'local' has no available capacity"),
            "{reason}"
        );
        // A small task still fits.
        assert_eq!(limiter.try_acquire(ModelTier::Local, t0, || 100), Ok(()));
        assert!(limiter.try_acquire(ModelTier::Local, t0, || 1).is_err());
        // 600 per minute = 10 per second: 25 s later, 250 are back.
        assert!(
            limiter
                .try_acquire(ModelTier::Local, t0 + secs(24.9), || 250)
                .is_err()
        );
        assert_eq!(
            limiter.try_acquire(ModelTier::Local, t0 + secs(25.0), || 250),
            Ok(())
        );
    }

    #[test]
    fn both_buckets_must_allow_and_a_refusal_charges_neither() {
        let t0 = Instant::now();
        let tier = ModelTier::Standard;
        let limiter = RateLimiter::new(&limits(&[(tier, 2, Some(100.0))]), t0);
        assert_eq!(limiter.try_acquire(tier, t0, || 100), Ok(()));
        assert_eq!(left(&limiter, tier, t0), (1.0, 0.0));
        // The token budget refuses: the dispatch is not spent.
        assert!(matches!(
            limiter.try_acquire(tier, t0, || 10),
            Err(RateLimited::Tokens { .. })
        ));
        assert_eq!(left(&limiter, tier, t0), (1.0, 0.0));
        // 6 s later 10 tokens are back (and 0.2 dispatches): the task passes.
        assert_eq!(limiter.try_acquire(tier, t0 + secs(6.0), || 10), Ok(()));
        // The dispatch bucket refuses: the tokens are not spent.
        let at = t0 + secs(12.0);
        assert_eq!(
            limiter.try_acquire(tier, at, || 5),
            Err(RateLimited::Dispatches { tier })
        );
        let (dispatches, tokens) = left(&limiter, tier, at);
        assert!((dispatches - 0.4).abs() < 1e-6, "{dispatches}");
        assert!((tokens - 10.0).abs() < 1e-6, "{tokens}");
    }

    #[test]
    fn an_oversized_task_is_charged_the_whole_budget() {
        let t0 = Instant::now();
        let limiter = RateLimiter::new(&limits(&[(ModelTier::Local, 10, Some(100.0))]), t0);
        assert_eq!(limiter.try_acquire(ModelTier::Local, t0, || 5000), Ok(()));
        assert_eq!(left(&limiter, ModelTier::Local, t0).1, 0.0);
        assert!(
            limiter
                .try_acquire(ModelTier::Local, t0 + secs(59.0), || 5000)
                .is_err()
        );
        assert_eq!(
            limiter.try_acquire(ModelTier::Local, t0 + secs(60.0), || 5000),
            Ok(())
        );
    }

    #[test]
    fn the_estimate_is_skipped_without_a_token_budget() {
        let t0 = Instant::now();
        let limiter = RateLimiter::new(&limits(&[(ModelTier::Local, 5, None)]), t0);
        let estimated = std::cell::Cell::new(false);
        let outcome = limiter.try_acquire(ModelTier::Local, t0, || {
            estimated.set(true);
            1
        });
        assert_eq!(outcome, Ok(()));
        assert!(!estimated.get());
    }

    #[test]
    fn invalid_token_budgets_are_ignored() {
        let t0 = Instant::now();
        for budget in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let limiter = RateLimiter::new(&limits(&[(ModelTier::Local, 3, Some(budget))]), t0);
            assert_eq!(burst(&limiter, ModelTier::Local, t0), 3, "budget {budget}");
        }
    }

    #[test]
    fn estimate_is_a_quarter_of_the_payload_json_bytes_rounded_up() {
        let payload = json!({"text": "hello world"});
        let bytes = serde_json::to_vec(&payload).expect("encodes").len() as u64;
        assert_eq!(bytes, 22);
        assert_eq!(estimate_tokens(&payload), 6);
        assert_eq!(estimate_tokens(&json!({})), 1);
        let big = json!({"text": "x".repeat(4000)});
        assert_eq!(estimate_tokens(&big), (4000 + 11_u64).div_ceil(4));
    }

    /// (dispatches, tokens) left in `tier`'s buckets at `now`.
    fn left(limiter: &RateLimiter, tier: ModelTier, now: Instant) -> (f64, f64) {
        let limiter = limiter.tiers[tier_index(tier)]
            .as_ref()
            .expect("limited tier");
        let mut buckets = limiter.buckets.lock().expect("lock");
        let dispatches = buckets.dispatches.available(now);
        let tokens = buckets
            .tokens
            .as_mut()
            .expect("token budget")
            .available(now);
        (dispatches, tokens)
    }
}
