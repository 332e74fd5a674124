//! When to try a model call again, and how long to wait first.

use std::time::Duration;

/// The longest wait between attempts, whatever the provider asks.
const MAX_WAIT: Duration = Duration::from_secs(120);
/// The first backoff step.
const BASE: Duration = Duration::from_millis(500);

/// Whether an HTTP status is worth another attempt: rate limits, timeouts
/// and server-side failures.
pub fn retryable(status: u16) -> bool {
    matches!(status, 408 | 409 | 425 | 429) || (500..=599).contains(&status)
}

/// The wait a `Retry-After` (seconds) or `retry-after-ms` header asks for.
/// HTTP-date values are not honoured (the backoff applies instead).
pub fn requested_wait(retry_after: Option<&str>, retry_after_ms: Option<&str>) -> Option<Duration> {
    if let Some(ms) = retry_after_ms.and_then(|v| v.trim().parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0).min(MAX_WAIT));
    }
    let seconds = retry_after?.trim().parse::<f64>().ok()?;
    (seconds.is_finite() && seconds >= 0.0)
        .then(|| Duration::from_secs_f64(seconds.min(MAX_WAIT.as_secs_f64())))
}

/// Exponential backoff with jitter for attempt `attempt` (0-based): a random
/// wait between half and all of `BASE * 2^attempt`, capped.
pub fn backoff(attempt: u32) -> Duration {
    let full = BASE
        .saturating_mul(2u32.saturating_pow(attempt.min(16)))
        .min(MAX_WAIT);
    let mut byte = [0u8; 1];
    let jitter = if getrandom::fill(&mut byte).is_ok() {
        f64::from(byte[0]) / 255.0
    } else {
        0.5
    };
    full.mul_f64(0.5 + 0.5 * jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_retried() {
        for status in [429, 500, 502, 503, 529, 408] {
            assert!(retryable(status), "{status}");
        }
        for status in [400, 401, 403, 404, 422] {
            assert!(!retryable(status), "{status}");
        }
    }

    #[test]
    fn retry_after_is_honoured_and_capped() {
        assert_eq!(
            requested_wait(Some("2"), None),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            requested_wait(Some("2"), Some("150")),
            Some(Duration::from_millis(150))
        );
        assert_eq!(requested_wait(Some("100000"), None), Some(MAX_WAIT));
        assert_eq!(
            requested_wait(Some("Wed, 21 Oct 2015 07:28:00 GMT"), None),
            None
        );
        assert_eq!(requested_wait(Some("-1"), None), None);
        assert_eq!(requested_wait(None, None), None);
    }

    #[test]
    fn backoff_grows_with_jitter_inside_its_bounds() {
        for attempt in 0..6 {
            let full = BASE * 2u32.pow(attempt);
            let wait = backoff(attempt);
            assert!(wait >= full / 2 && wait <= full, "{attempt}: {wait:?}");
        }
        assert!(backoff(40) <= MAX_WAIT);
    }
}
