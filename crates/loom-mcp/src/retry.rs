//! Retrying rate-limited MCP requests under loom-llm's [`RetryPolicy`], and parsing
//! `Retry-After`.

use std::future::Future;
use std::time::{Duration, SystemTime};

use loom_llm::RetryPolicy;

use crate::error::McpError;

/// Runs `op` and retries it while the server answers HTTP 429, which means the request
/// was not executed, so retrying is safe. Other errors are returned at once.
///
/// Waits follow `policy` (back-off with jitter, `Retry-After` as a floor). A
/// `Retry-After` longer than the policy's `max_retry_after` stops the retries: the
/// caller gets the [`McpError::RateLimited`] rather than a parked task.
pub async fn retry_rate_limited<F, Fut, T>(policy: &RetryPolicy, mut op: F) -> Result<T, McpError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, McpError>>,
{
    let mut attempt: u32 = 1;
    loop {
        match op().await {
            Err(error) if attempt < policy.max_attempts() => {
                let Some(retry_after) = error.retry_after() else {
                    return Err(error);
                };
                if retry_after.is_some_and(|ra| ra > policy.max_retry_after()) {
                    return Err(error);
                }
                let delay = policy.delay_for(attempt - 1, retry_after);
                tracing::warn!(
                    server = error.server().unwrap_or_default(),
                    attempt,
                    delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    "MCP server is rate limiting; retrying."
                );
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// A `Retry-After` value: delay seconds or an HTTP date. Negative, non-finite and
/// unparsable values give `None`.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).ok();
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use loom_llm::Jitter;

    use super::*;

    #[test]
    fn retry_after_parses_seconds_and_http_dates() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 0.5 "), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("NaN"), None);
        assert_eq!(parse_retry_after("inf"), None);
        assert_eq!(parse_retry_after("soon"), None);
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        let parsed = parse_retry_after(&later).expect("date");
        assert!(parsed > Duration::from_secs(100) && parsed <= Duration::from_secs(120));
        let past = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(120));
        assert_eq!(parse_retry_after(&past), Some(Duration::ZERO));
    }

    fn limited(retry_after: Option<Duration>) -> McpError {
        McpError::RateLimited {
            server: "h".into(),
            retry_after,
        }
    }

    fn quick() -> RetryPolicy {
        RetryPolicy::default()
            .with_base_delay(Duration::from_millis(1))
            .with_jitter(Jitter::None)
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limited_calls_are_retried_with_retry_after_as_a_floor() {
        let calls = AtomicU32::new(0);
        let started = tokio::time::Instant::now();
        let out = retry_rate_limited(&quick(), || async {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(limited(Some(Duration::from_secs(2))))
            } else {
                Ok(7)
            }
        })
        .await;
        assert_eq!(out, Ok(7));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert!(started.elapsed() >= Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_are_bounded_and_other_errors_are_not_retried() {
        let calls = AtomicU32::new(0);
        let out: Result<(), _> = retry_rate_limited(&quick(), || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(limited(None))
        })
        .await;
        assert!(matches!(out, Err(McpError::RateLimited { .. })));
        assert_eq!(
            calls.load(Ordering::SeqCst),
            3,
            "default policy: 3 attempts"
        );

        calls.store(0, Ordering::SeqCst);
        let out: Result<(), _> = retry_rate_limited(&quick(), || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(McpError::transport("h", "reset"))
        })
        .await;
        assert!(out.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_after_beyond_the_cap_stops_retrying() {
        let calls = AtomicU32::new(0);
        let out: Result<(), _> = retry_rate_limited(&quick(), || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(limited(Some(Duration::from_secs(3600))))
        })
        .await;
        assert!(out.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
