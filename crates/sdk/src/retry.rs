//! When to retry and how long to wait, as the official Telnyx SDKs decide it (docs/api.md,
//! "Retries"). Pure functions, so the rules are tested without a network.

use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;
use reqwest::StatusCode;

/// A server-requested delay is honoured only up to this long; anything longer (or zero, or
/// negative) falls back to the computed backoff, as the official SDKs do.
const MAX_SERVER_DELAY: Duration = Duration::from_secs(60);

/// Whether an unsuccessful answer should be tried again.
///
/// `x-should-retry` overrides the status both ways; otherwise 408, 409, 429 and 5xx are
/// transient and everything else (400, 401, 403, 404, 422, ...) is final. A request that is not
/// `repeatable` (it spends a one-time credential, or creates something whose secret only its
/// answer carries) is tried again only on 429, which is answered before anything is done, or
/// when the server says so: a 5xx or a 408 may come from a gateway after the server spent the
/// code or refresh token, or made the client, and sending it again would be a replay or a
/// second client.
pub(crate) fn should_retry(status: StatusCode, headers: &HeaderMap, repeatable: bool) -> bool {
    match header_str(headers, "x-should-retry") {
        Some("true") => return true,
        Some("false") => return false,
        _ => {}
    }
    if !repeatable {
        return status == StatusCode::TOO_MANY_REQUESTS;
    }
    matches!(status.as_u16(), 408 | 409 | 429) || status.is_server_error()
}

/// The delay the server asked for: `retry-after-ms` (milliseconds), else `retry-after`
/// (seconds, or an HTTP date relative to `now`), used only when above zero and at most 60 s.
pub(crate) fn server_delay(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    // An unreadable `retry-after-ms` is as if absent, as in the official SDKs.
    let ms = header_str(headers, "retry-after-ms").and_then(|ms| ms.trim().parse::<f64>().ok());
    let asked = if let Some(ms) = ms {
        seconds(ms / 1000.0)
    } else {
        let value = header_str(headers, "retry-after")?.trim();
        match value.parse::<f64>() {
            Ok(secs) => seconds(secs),
            // RFC 9110 §10.2.3: Retry-After = HTTP-date / delay-seconds.
            Err(_) => httpdate::parse_http_date(value)
                .ok()
                .and_then(|at| at.duration_since(now).ok()),
        }
    }?;
    (!asked.is_zero() && asked <= MAX_SERVER_DELAY).then_some(asked)
}

fn seconds(secs: f64) -> Option<Duration> {
    (secs.is_finite() && secs > 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)))
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Exponential backoff: `min(initial × 2ⁿ, max) × jitter` for retry `n` (0 first), with the
/// jitter factor drawn from [0.75, 1] so that many clients do not retry in step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(8),
        }
    }
}

impl Backoff {
    pub(crate) fn delay(&self, retry: u32, jitter: f64) -> Duration {
        let factor = 2f64.powi(retry.min(30) as i32);
        let base = self.initial.as_secs_f64() * factor;
        let capped = base.min(self.max.as_secs_f64());
        Duration::from_secs_f64(capped * jitter.clamp(0.75, 1.0))
    }

    pub(crate) fn delay_with_random_jitter(&self, retry: u32) -> Duration {
        use rand::Rng;
        let jitter = rand::thread_rng().gen_range(0.75..=1.0);
        self.delay(retry, jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn statuses_that_are_retried() {
        let none = HeaderMap::new();
        for s in [408, 409, 429, 500, 502, 503, 504] {
            assert!(
                should_retry(StatusCode::from_u16(s).unwrap(), &none, true),
                "{s}"
            );
        }
        for s in [400, 401, 403, 404, 413, 415, 422] {
            assert!(
                !should_retry(StatusCode::from_u16(s).unwrap(), &none, true),
                "{s}"
            );
        }
        // Not repeatable (a one-time credential, a create): 429 alone (answered before
        // anything is done).
        for s in [408, 409, 500, 502, 503, 504, 400, 401] {
            assert!(
                !should_retry(StatusCode::from_u16(s).unwrap(), &none, false),
                "{s}"
            );
        }
        assert!(should_retry(StatusCode::TOO_MANY_REQUESTS, &none, false));
    }

    #[test]
    fn x_should_retry_overrides_both_ways() {
        let yes = headers(&[("x-should-retry", "true")]);
        let no = headers(&[("x-should-retry", "false")]);
        for repeatable in [false, true] {
            assert!(should_retry(StatusCode::BAD_REQUEST, &yes, repeatable));
            assert!(should_retry(StatusCode::BAD_GATEWAY, &yes, repeatable));
            assert!(!should_retry(StatusCode::CONFLICT, &no, repeatable));
            assert!(!should_retry(
                StatusCode::TOO_MANY_REQUESTS,
                &no,
                repeatable
            ));
        }
    }

    #[test]
    fn server_delay_reads_ms_then_seconds_then_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(
            server_delay(&headers(&[("retry-after-ms", "250")]), now),
            Some(Duration::from_millis(250))
        );
        // retry-after-ms wins over retry-after.
        assert_eq!(
            server_delay(
                &headers(&[("retry-after-ms", "100"), ("retry-after", "5")]),
                now
            ),
            Some(Duration::from_millis(100))
        );
        // An unreadable retry-after-ms is as if absent: retry-after is read.
        assert_eq!(
            server_delay(
                &headers(&[("retry-after-ms", "soon"), ("retry-after", "3")]),
                now
            ),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            server_delay(&headers(&[("retry-after", "3")]), now),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            server_delay(&headers(&[("retry-after", "1.5")]), now),
            Some(Duration::from_millis(1500))
        );
        let in_ten = httpdate::fmt_http_date(now + Duration::from_secs(10));
        assert_eq!(
            server_delay(&headers(&[("retry-after", &in_ten)]), now),
            Some(Duration::from_secs(10))
        );
    }

    #[test]
    fn server_delay_outside_zero_to_sixty_seconds_is_ignored() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        for v in ["0", "-1", "61", "3600", "soon", "NaN"] {
            assert_eq!(
                server_delay(&headers(&[("retry-after", v)]), now),
                None,
                "{v}"
            );
        }
        assert_eq!(
            server_delay(&headers(&[("retry-after", "60")]), now),
            Some(Duration::from_secs(60))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(10));
        assert_eq!(server_delay(&headers(&[("retry-after", &past)]), now), None);
        assert_eq!(server_delay(&HeaderMap::new(), now), None);
    }

    #[test]
    fn backoff_doubles_up_to_eight_seconds_with_jitter() {
        let b = Backoff::default();
        assert_eq!(b.delay(0, 1.0), Duration::from_millis(500));
        assert_eq!(b.delay(1, 1.0), Duration::from_secs(1));
        assert_eq!(b.delay(3, 1.0), Duration::from_secs(4));
        assert_eq!(b.delay(4, 1.0), Duration::from_secs(8));
        assert_eq!(b.delay(10, 1.0), Duration::from_secs(8));
        assert_eq!(b.delay(0, 0.75), Duration::from_millis(375));
        for n in 0..6 {
            let d = b.delay_with_random_jitter(n);
            assert!(d >= b.delay(n, 0.75) && d <= b.delay(n, 1.0), "{d:?}");
        }
    }
}
