//! Sites that rate-limit: a paste site (or any site) that answers `429 Too Many Requests` or
//! `503 Service Unavailable` has answered, but the request is worth another try.
//! [`RateLimitedFetcher`] wraps any transport: such a request is retried after the site's
//! `Retry-After` (seconds or an HTTP date, capped at `max_retry_after_secs`) or the backoff
//! delay, with up to 20 % jitter; every other request to that site waits out the same pause,
//! and from then on requests to the site are spaced (250 ms, doubled on every further refusal,
//! up to 30 s, shrinking by a tenth per request that goes through) so that workers released
//! together do not trip the limit again. After `rate_limited_retries` refusals of one
//! request, or `max_retry_after_secs` of waiting for it in all, the status is passed up (and
//! the page counted as refused).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bus::{Counter, Stats};
use tokio::time::Instant;
use url::Url;

use crate::health::HealthConfig;
use crate::jitter::Jitter;
use crate::transport::{Fetcher, Limits, RawResponse};
use crate::urls::site_of;
use crate::FetchError;

#[derive(Debug, Default)]
struct SiteState {
    /// The site asked for a pause: no request before this instant.
    paused_until: Option<Instant>,
    /// Spacing of requests to a site that refused one (zero until it does).
    spacing: Duration,
    /// The next free request slot under that spacing.
    next_slot: Option<Instant>,
}

/// A transport wrapper that honours `429`/`503` and `Retry-After`.
pub struct RateLimitedFetcher {
    inner: Arc<dyn Fetcher>,
    config: HealthConfig,
    stats: Arc<Stats>,
    sites: Mutex<HashMap<String, SiteState>>,
    rng: Jitter,
}

impl RateLimitedFetcher {
    pub fn new(inner: Arc<dyn Fetcher>, config: HealthConfig, stats: Arc<Stats>) -> Self {
        RateLimitedFetcher {
            inner,
            config,
            stats,
            sites: Mutex::new(HashMap::new()),
            rng: Jitter::from_clock(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, SiteState>> {
        self.sites.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn jitter(&self) -> f64 {
        self.rng.next()
    }

    /// Waits out a pause the site asked for, then for a slot under its spacing.
    async fn pause(&self, site: &str) {
        let slot = {
            let mut sites = self.lock();
            let Some(st) = sites.get_mut(site) else {
                return;
            };
            let now = Instant::now();
            let slot = [st.paused_until, st.next_slot]
                .into_iter()
                .flatten()
                .fold(now, Instant::max);
            if !st.spacing.is_zero() {
                st.next_slot = Some(slot + st.spacing);
            }
            slot
        };
        tokio::time::sleep_until(slot).await;
    }

    /// A request went through: the spacing a refusal imposed shrinks again, slowly.
    fn relax(&self, site: &str) {
        let mut sites = self.lock();
        if let Some(st) = sites.get_mut(site) {
            st.spacing = st.spacing.mul_f64(0.9);
            if st.spacing < Duration::from_millis(50) {
                st.spacing = Duration::ZERO;
                st.next_slot = None;
            }
        }
    }

    /// The pause a refusal asks for (see the module doc); the site is paused that long for
    /// every request, and its spacing grows.
    fn asked_pause(&self, site: &str, r: &RawResponse, attempt: u32, left: Duration) -> Duration {
        let cap = Duration::from_secs(self.config.max_retry_after_secs);
        let base = r
            .header("retry-after")
            .and_then(retry_after)
            .unwrap_or_else(|| self.config.backoff(attempt, self.jitter()))
            .min(cap);
        let delay = base.mul_f64(1.0 + 0.2 * self.jitter()).min(left);
        let until = Instant::now() + delay;
        let mut sites = self.lock();
        let st = sites.entry(site.to_string()).or_default();
        st.paused_until = Some(st.paused_until.map_or(until, |t| t.max(until)));
        st.spacing = (st.spacing * 2).clamp(Duration::from_millis(250), Duration::from_secs(30));
        delay
    }
}

#[async_trait]
impl Fetcher for RateLimitedFetcher {
    async fn probe(&self) -> Result<(), FetchError> {
        self.inner.probe().await
    }

    async fn get(&self, url: &Url, limits: &Limits) -> Result<RawResponse, FetchError> {
        let site = site_of(url);
        let mut attempt = 0;
        // One request waits at most this long in all, however often the site refuses it: a
        // site that asks for ever (429, Retry-After: 300, every time) costs one worker a
        // bounded time, not the crawl.
        let budget = Duration::from_secs(self.config.max_retry_after_secs);
        let started = Instant::now();
        loop {
            self.pause(&site).await;
            let r = self.inner.get(url, limits).await?;
            if !matches!(r.status, 429 | 503) {
                self.relax(&site);
                return Ok(r);
            }
            let left = budget.saturating_sub(started.elapsed());
            if attempt >= self.config.rate_limited_retries || left.is_zero() {
                return Ok(r);
            }
            let delay = self.asked_pause(&site, &r, attempt, left);
            self.stats.incr(Counter::SiteRateLimited);
            tracing::info!(url = %url, status = r.status, ?delay, "site asks to slow down");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }
}

/// A `Retry-After` value: delay seconds, or an HTTP date (RFC 7231 IMF-fixdate).
pub fn retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate(v)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    Some(Duration::from_secs(at.saturating_sub(now)))
}

/// Seconds since the epoch of `Sun, 06 Nov 1994 08:49:37 GMT`.
fn httpdate(v: &str) -> Option<u64> {
    let parts: Vec<&str> = v.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| m == month)? as u64 + 1;
    let (day, year): (u64, u64) = (day.parse().ok()?, year.parse().ok()?);
    let hms: Vec<u64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, s] = hms.as_slice() else {
        return None;
    };
    if !(1970..=9999).contains(&year) || !(1..=31).contains(&day) || *h > 23 || *m > 59 || *s > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, mo) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * mo + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + m * 60 + s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn cfg() -> HealthConfig {
        HealthConfig {
            max_retry_after_secs: 30,
            rate_limited_retries: 2,
            ..HealthConfig::default()
        }
    }

    /// Answers `429` with `Retry-After: 2` to the first `limited` requests, then 200.
    struct Limiter {
        limited: usize,
        calls: AtomicUsize,
    }

    #[async_trait]
    impl Fetcher for Limiter {
        async fn get(&self, _: &Url, _: &Limits) -> Result<RawResponse, FetchError> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            let mut headers = http::HeaderMap::new();
            let status = if n < self.limited {
                headers.insert("retry-after", http::HeaderValue::from_static("2"));
                429
            } else {
                200
            };
            Ok(RawResponse {
                request_headers: http::HeaderMap::new(),
                status,
                headers,
                body: Vec::new(),
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_rate_limited_site_is_retried_after_the_pause_it_asks_for() {
        let stats = Arc::new(Stats::default());
        let inner = Arc::new(Limiter {
            limited: 2,
            calls: AtomicUsize::new(0),
        });
        let h = RateLimitedFetcher::new(inner.clone(), cfg(), stats.clone());
        let u = Url::parse("http://paste.test/raw/1").unwrap();
        let start = Instant::now();
        assert_eq!(h.get(&u, &Limits::default()).await.unwrap().status, 200);
        assert_eq!(inner.calls.load(Ordering::SeqCst), 3);
        assert_eq!(stats.get(Counter::SiteRateLimited), 2);
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_secs(4) && waited < Duration::from_secs(5),
            "{waited:?}"
        );
        // Past `retries`, the 429 is the answer.
        let stubborn = Arc::new(Limiter {
            limited: 100,
            calls: AtomicUsize::new(0),
        });
        let h = RateLimitedFetcher::new(stubborn.clone(), cfg(), stats);
        assert_eq!(h.get(&u, &Limits::default()).await.unwrap().status, 429);
        assert_eq!(stubborn.calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_site_that_always_refuses_costs_a_bounded_wait() {
        let stats = Arc::new(Stats::default());
        let stubborn = Arc::new(Limiter {
            limited: usize::MAX,
            calls: AtomicUsize::new(0),
        });
        let config = HealthConfig {
            max_retry_after_secs: 5,
            rate_limited_retries: 100,
            ..HealthConfig::default()
        };
        let h = RateLimitedFetcher::new(stubborn.clone(), config, stats);
        let u = Url::parse("http://paste.test/raw/1").unwrap();
        let start = Instant::now();
        assert_eq!(h.get(&u, &Limits::default()).await.unwrap().status, 429);
        // Pauses end with the budget; one last slot under the grown spacing may follow.
        assert!(
            start.elapsed() <= Duration::from_millis(6_100),
            "{:?}",
            start.elapsed()
        );
        assert!(stubborn.calls.load(Ordering::SeqCst) <= 5);
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        assert_eq!(retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(httpdate("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon"), None);
        assert_eq!(httpdate("Sun, 99 Nov 1994 08:49:37 GMT"), None);
    }
}
