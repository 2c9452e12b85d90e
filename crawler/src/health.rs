//! Site health: onion services come and go, so a failure is retried with backoff, and a site
//! that keeps failing is marked down for a while instead of burning a circuit per queued URL.
//!
//! [`HealthyFetcher`] wraps any transport. Per site (host and port) it keeps the count of
//! consecutive failures. A request that fails in a way that may pass (connection, timeout,
//! onion service not found while its descriptor is being published, a circuit that collapsed)
//! is retried after an exponentially growing delay with jitter. After `down_after`
//! consecutive failed requests the site is down: its requests fail at once with
//! [`FetchError::SiteDown`] until `reprobe_secs` have passed, when one request probes it again
//! (a success brings it back, a failure keeps it down for another period).
//!
//! Only transport failures count against a site: an HTTP 404 or an oversized body means the
//! site answered.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bus::{Counter, Stats};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use url::Url;

use crate::transport::{Fetcher, Limits, RawResponse};
use crate::urls::site_of;
use crate::FetchError;

/// The `[health]` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// Extra attempts of one request after a transient failure.
    pub retries: u32,
    /// First retry delay; doubled on every further retry.
    pub backoff_base_ms: u64,
    /// Cap on one retry delay.
    pub backoff_max_ms: u64,
    /// Consecutive failed requests after which a site is marked down.
    pub down_after: u32,
    /// How long a down site is left alone before one request probes it again.
    pub reprobe_secs: u64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            retries: 3,
            backoff_base_ms: 1000,
            backoff_max_ms: 30_000,
            down_after: 5,
            reprobe_secs: 600,
        }
    }
}

impl HealthConfig {
    /// The delay before retry number `attempt` (0-based): base × 2^attempt, capped, then
    /// scaled by a jitter factor in [0.5, 1.0) so that many workers do not retry in lockstep.
    pub fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        let exp = self
            .backoff_base_ms
            .saturating_mul(1u64 << attempt.min(20))
            .min(self.backoff_max_ms);
        Duration::from_millis((exp as f64 * (0.5 + 0.5 * jitter.clamp(0.0, 1.0))) as u64)
    }
}

#[derive(Debug, Default)]
struct SiteState {
    consecutive_failures: u32,
    /// Set while the site is down: no request before this instant.
    down_until: Option<Instant>,
}

/// A transport wrapper adding retries, backoff and per-site up/down state.
pub struct HealthyFetcher {
    inner: Arc<dyn Fetcher>,
    config: HealthConfig,
    stats: Arc<Stats>,
    sites: Mutex<HashMap<String, SiteState>>,
    rng: AtomicU64,
}

/// Whether a failure may pass on its own (worth a retry, counts against the site).
pub fn is_transient(e: &FetchError) -> bool {
    matches!(
        e,
        FetchError::Connect(_) | FetchError::Timeout | FetchError::Tor { .. }
    ) && !matches!(
        e,
        FetchError::Tor {
            kind: crate::TorFailure::Refused,
            ..
        }
    )
}

impl HealthyFetcher {
    pub fn new(inner: Arc<dyn Fetcher>, config: HealthConfig, stats: Arc<Stats>) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9_7f4a_7c15);
        HealthyFetcher {
            inner,
            config,
            stats,
            sites: Mutex::new(HashMap::new()),
            rng: AtomicU64::new(seed | 1),
        }
    }

    /// Sites currently marked down.
    pub fn sites_down(&self) -> usize {
        let now = Instant::now();
        self.lock()
            .values()
            .filter(|s| s.down_until.is_some_and(|t| t > now))
            .count()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, SiteState>> {
        self.sites.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A pseudo-random number in [0, 1) (xorshift; jitter needs no more).
    fn jitter(&self) -> f64 {
        let mut x = self.rng.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.store(x, Ordering::Relaxed);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Whether a request to `site` may go out now; a down site past its re-probe time lets
    /// one request through and stays down for the others until that probe settles.
    fn admit(&self, site: &str) -> bool {
        let now = Instant::now();
        let mut sites = self.lock();
        let st = sites.entry(site.to_string()).or_default();
        match st.down_until {
            Some(t) if t > now => false,
            Some(_) => {
                st.down_until = Some(now + Duration::from_secs(self.config.reprobe_secs));
                self.stats.incr(Counter::SiteReprobes);
                true
            }
            None => true,
        }
    }

    fn succeeded(&self, site: &str) {
        let mut sites = self.lock();
        if let Some(st) = sites.get_mut(site) {
            if st.down_until.take().is_some() {
                self.stats.incr(Counter::SiteRecovered);
                tracing::info!(site, "site is back up");
            }
            st.consecutive_failures = 0;
        }
    }

    fn failed(&self, site: &str) {
        let mut sites = self.lock();
        let st = sites.entry(site.to_string()).or_default();
        st.consecutive_failures = st.consecutive_failures.saturating_add(1);
        if st.consecutive_failures >= self.config.down_after.max(1) && st.down_until.is_none() {
            st.down_until = Some(Instant::now() + Duration::from_secs(self.config.reprobe_secs));
            self.stats.incr(Counter::SiteMarkedDown);
            tracing::warn!(
                site,
                failures = st.consecutive_failures,
                reprobe_secs = self.config.reprobe_secs,
                "site marked down"
            );
        }
    }
}

#[async_trait]
impl Fetcher for HealthyFetcher {
    async fn get(&self, url: &Url, limits: &Limits) -> Result<RawResponse, FetchError> {
        let site = site_of(url);
        if !self.admit(&site) {
            return Err(FetchError::SiteDown);
        }
        let mut attempt = 0;
        loop {
            match self.inner.get(url, limits).await {
                Ok(r) => {
                    self.succeeded(&site);
                    return Ok(r);
                }
                Err(e) if is_transient(&e) => {
                    if attempt >= self.config.retries {
                        self.failed(&site);
                        return Err(e);
                    }
                    let delay = self.config.backoff(attempt, self.jitter());
                    self.stats.incr(Counter::SiteRetries);
                    tracing::debug!(url = %url, error = %e, attempt, ?delay, "retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                Err(e) => {
                    // The site answered (or the URL is unusable): it is up.
                    self.succeeded(&site);
                    return Err(e);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Fails the first `fail` requests with `error`, then answers 200.
    struct Flaky {
        fail: usize,
        error: FetchError,
        calls: AtomicUsize,
    }

    #[async_trait]
    impl Fetcher for Flaky {
        async fn get(&self, _: &Url, _: &Limits) -> Result<RawResponse, FetchError> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            if n < self.fail {
                return Err(self.error.clone());
            }
            Ok(RawResponse {
                status: 200,
                headers: http::HeaderMap::new(),
                body: b"ok".to_vec(),
            })
        }
    }

    fn flaky(fail: usize, error: FetchError) -> Arc<Flaky> {
        Arc::new(Flaky {
            fail,
            error,
            calls: AtomicUsize::new(0),
        })
    }

    fn cfg() -> HealthConfig {
        HealthConfig {
            retries: 2,
            backoff_base_ms: 1000,
            backoff_max_ms: 3000,
            down_after: 2,
            reprobe_secs: 60,
        }
    }

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let c = cfg();
        assert_eq!(c.backoff(0, 1.0), Duration::from_millis(1000));
        assert_eq!(c.backoff(1, 1.0), Duration::from_millis(2000));
        assert_eq!(c.backoff(5, 1.0), Duration::from_millis(3000));
        assert_eq!(c.backoff(0, 0.0), Duration::from_millis(500));
        assert_eq!(c.backoff(63, 1.0), Duration::from_millis(3000));
    }

    #[tokio::test(start_paused = true)]
    async fn an_onion_not_yet_published_is_retried_until_it_answers() {
        let stats = Arc::new(Stats::default());
        let not_found = FetchError::Tor {
            kind: crate::TorFailure::OnionNotFound,
            detail: "descriptor not found".into(),
        };
        let inner = flaky(2, not_found);
        let h = HealthyFetcher::new(inner.clone(), cfg(), stats.clone());
        let u = Url::parse("http://a.test/").unwrap();
        let start = Instant::now();
        assert_eq!(h.get(&u, &Limits::default()).await.unwrap().status, 200);
        assert_eq!(inner.calls.load(Ordering::SeqCst), 3);
        assert_eq!(stats.get(Counter::SiteRetries), 2);
        // Two backoffs: at least 0.5 s + 1 s with the smallest jitter.
        assert!(start.elapsed() >= Duration::from_millis(1500));
        assert_eq!(h.sites_down(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_site_is_marked_down_then_reprobed() {
        let stats = Arc::new(Stats::default());
        let inner = flaky(6, FetchError::Connect("refused".into()));
        let h = HealthyFetcher::new(inner.clone(), cfg(), stats.clone());
        let u = Url::parse("http://a.test/x").unwrap();
        let other = Url::parse("http://b.test/").unwrap();
        for _ in 0..2 {
            assert!(h.get(&u, &Limits::default()).await.is_err());
        }
        assert_eq!(inner.calls.load(Ordering::SeqCst), 6);
        assert_eq!(stats.get(Counter::SiteMarkedDown), 1);
        assert_eq!(h.sites_down(), 1);
        // Down: refused without touching the network.
        let e = h.get(&u, &Limits::default()).await.unwrap_err();
        assert!(matches!(e, FetchError::SiteDown));
        assert_eq!(inner.calls.load(Ordering::SeqCst), 6);
        // Another site is not affected (it gets the next answer, a success).
        assert!(h.get(&other, &Limits::default()).await.is_ok());
        // After the re-probe time one request goes out and brings the site back.
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(h.get(&u, &Limits::default()).await.is_ok());
        assert_eq!(stats.get(Counter::SiteRecovered), 1);
        assert_eq!(h.sites_down(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn answers_are_not_failures() {
        let stats = Arc::new(Stats::default());
        let inner = flaky(100, FetchError::Status(404));
        let h = HealthyFetcher::new(inner.clone(), cfg(), stats.clone());
        let u = Url::parse("http://a.test/").unwrap();
        for _ in 0..5 {
            assert!(matches!(
                h.get(&u, &Limits::default()).await,
                Err(FetchError::Status(404))
            ));
        }
        assert_eq!(inner.calls.load(Ordering::SeqCst), 5);
        assert_eq!((stats.get(Counter::SiteRetries), h.sites_down()), (0, 0));
    }
}
