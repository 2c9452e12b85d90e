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
//! site answered. A failure of the way out itself ([`FetchError::TransportDown`]: the SOCKS
//! proxy or the Tor client is down) says nothing about the site and is passed up untouched,
//! for the crawler to pause on.
//!
//! A site that has never answered is treated by the request's [`Patience`]: a seed is retried
//! on the backoff schedule until its grace period has passed (an onion service whose
//! descriptor is not published yet, a site offline for minutes); a site only a crawled link
//! vouches for gets a single attempt and is marked down at once when it fails, so a page of
//! made-up addresses costs one attempt each.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bus::{Counter, Stats};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use url::Url;

use crate::jitter::Jitter;
use crate::transport::{Fetcher, Limits, Patience, RawResponse};
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
    /// With `--once`: how long a seed that has never answered keeps being retried.
    pub once_grace_secs: u64,
    /// Without `--once`: the same, for a node that keeps running.
    pub unreached_grace_secs: u64,
    /// Longest `Retry-After` honoured (a site asking for more is retried after this).
    pub max_retry_after_secs: u64,
    /// Attempts of one request a rate-limiting site (`429`, `503`) may refuse before the
    /// answer is final.
    pub rate_limited_retries: u32,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            retries: 3,
            backoff_base_ms: 1000,
            backoff_max_ms: 30_000,
            down_after: 5,
            reprobe_secs: 600,
            once_grace_secs: 300,
            unreached_grace_secs: 6 * 3600,
            max_retry_after_secs: 300,
            rate_limited_retries: 10,
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
    /// The site has answered at least once.
    ever_up: bool,
    /// The first attempt at the site (its grace period starts here).
    first_try: Option<Instant>,
    /// A seed request went to this site: until it answers, every request to it is patient
    /// (a link from another page to a seed that is still publishing is no probe).
    seeded: bool,
}

/// A transport wrapper adding retries, backoff and per-site up/down state.
pub struct HealthyFetcher {
    inner: Arc<dyn Fetcher>,
    config: HealthConfig,
    stats: Arc<Stats>,
    sites: Mutex<HashMap<String, SiteState>>,
    rng: Jitter,
    grace: Duration,
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
    /// `once`: the node stops when the crawl settles, so seeds get `once_grace_secs`.
    pub fn new(
        inner: Arc<dyn Fetcher>,
        config: HealthConfig,
        stats: Arc<Stats>,
        once: bool,
    ) -> Self {
        let grace = Duration::from_secs(if once {
            config.once_grace_secs
        } else {
            config.unreached_grace_secs
        });
        HealthyFetcher {
            inner,
            config,
            stats,
            sites: Mutex::new(HashMap::new()),
            rng: Jitter::from_clock(),
            grace,
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

    fn jitter(&self) -> f64 {
        self.rng.next()
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

    /// Until when a failing request to `site` may keep being retried regardless of the retry
    /// count: the end of a seed's grace period, while the site has never answered.
    fn patient_until(&self, site: &str, patience: Patience) -> Option<Instant> {
        let mut sites = self.lock();
        let st = sites.entry(site.to_string()).or_default();
        let first = *st.first_try.get_or_insert_with(Instant::now);
        st.seeded |= patience == Patience::Seed;
        (st.seeded && !st.ever_up).then_some(first + self.grace)
    }

    /// Whether a failure of this request to `site` should mark it down at once: a probe of a
    /// site that has never answered and is no seed.
    fn is_probe(&self, site: &str, patience: Patience) -> bool {
        patience == Patience::Probe && !self.lock().get(site).is_some_and(|s| s.ever_up || s.seeded)
    }

    fn succeeded(&self, site: &str) {
        let mut sites = self.lock();
        let st = sites.entry(site.to_string()).or_default();
        st.ever_up = true;
        if st.down_until.take().is_some() {
            self.stats.incr(Counter::SiteRecovered);
            tracing::info!(site, "site is back up");
        }
        st.consecutive_failures = 0;
    }

    /// Counts a failed request; `at_once` marks the site down whatever the count.
    fn failed(&self, site: &str, at_once: bool) {
        let mut sites = self.lock();
        let st = sites.entry(site.to_string()).or_default();
        st.consecutive_failures = st.consecutive_failures.saturating_add(1);
        let enough = at_once || st.consecutive_failures >= self.config.down_after.max(1);
        if enough && st.down_until.is_none() {
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
    async fn probe(&self) -> Result<(), FetchError> {
        self.inner.probe().await
    }

    async fn get(&self, url: &Url, limits: &Limits) -> Result<RawResponse, FetchError> {
        let site = site_of(url);
        if !self.admit(&site) {
            return Err(FetchError::SiteDown);
        }
        let patient_until = self.patient_until(&site, limits.patience);
        let probe = self.is_probe(&site, limits.patience);
        let mut attempt = 0;
        loop {
            match self.inner.get(url, limits).await {
                Ok(r) => {
                    self.succeeded(&site);
                    return Ok(r);
                }
                // The way out is down, not the site: neither counted nor retried here.
                Err(e @ FetchError::TransportDown(_)) => return Err(e),
                Err(e) if is_transient(&e) => {
                    let delay = self.config.backoff(attempt, self.jitter());
                    let patient = patient_until.is_some_and(|t| Instant::now() + delay < t);
                    if probe || (attempt >= self.config.retries && !patient) {
                        self.failed(&site, probe);
                        return Err(e);
                    }
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
    use std::sync::atomic::{AtomicUsize, Ordering};

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
                request_headers: http::HeaderMap::new(),
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
            once_grace_secs: 120,
            unreached_grace_secs: 600,
            max_retry_after_secs: 30,
            rate_limited_retries: 2,
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
        let h = HealthyFetcher::new(inner.clone(), cfg(), stats.clone(), true);
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
        let h = HealthyFetcher::new(inner.clone(), cfg(), stats.clone(), true);
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
        let h = HealthyFetcher::new(inner.clone(), cfg(), stats.clone(), true);
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

    fn seed_limits(patience: Patience) -> Limits {
        Limits {
            patience,
            ..Limits::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_seed_that_never_answered_is_retried_for_its_grace_period() {
        let stats = Arc::new(Stats::default());
        let not_found = FetchError::Tor {
            kind: crate::TorFailure::OnionNotFound,
            detail: "descriptor not found".into(),
        };
        // Not found for about a minute (with 3 s backoffs): far beyond the 2 retries.
        let inner = flaky(25, not_found);
        let h = HealthyFetcher::new(inner.clone(), cfg(), stats.clone(), true);
        let u = Url::parse("http://a.test/").unwrap();
        let r = h.get(&u, &seed_limits(Patience::Seed)).await.unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(inner.calls.load(Ordering::SeqCst), 26);
        assert_eq!(stats.get(Counter::SiteMarkedDown), 0);
        // Past the grace period a seed gives up like any request.
        let inner = flaky(1_000, FetchError::Connect("refused".into()));
        let h = HealthyFetcher::new(inner.clone(), cfg(), stats.clone(), true);
        let start = Instant::now();
        assert!(h.get(&u, &seed_limits(Patience::Seed)).await.is_err());
        let waited = start.elapsed();
        assert!(waited <= Duration::from_secs(121), "{waited:?}");
        assert!(waited >= Duration::from_secs(110), "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_unknown_site_gets_one_attempt_then_is_down() {
        let stats = Arc::new(Stats::default());
        let inner = flaky(1_000, FetchError::Connect("refused".into()));
        let h = HealthyFetcher::new(inner.clone(), cfg(), stats.clone(), true);
        let u = Url::parse("http://made-up.test/").unwrap();
        assert!(h.get(&u, &seed_limits(Patience::Probe)).await.is_err());
        assert_eq!(inner.calls.load(Ordering::SeqCst), 1);
        assert_eq!(h.sites_down(), 1);
        let e = h.get(&u, &seed_limits(Patience::Probe)).await.unwrap_err();
        assert!(matches!(e, FetchError::SiteDown));
        // A site that has answered before gets the usual retries for the same request.
        let inner = flaky(1, FetchError::Connect("refused".into()));
        let h = HealthyFetcher::new(inner.clone(), cfg(), stats.clone(), true);
        let ok = Url::parse("http://ok.test/").unwrap();
        h.get(&ok, &seed_limits(Patience::Seed)).await.unwrap();
        inner.calls.store(0, Ordering::SeqCst);
        h.get(&ok, &seed_limits(Patience::Probe)).await.unwrap();
        assert_eq!(inner.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_transport_outage_is_not_the_sites_fault() {
        let stats = Arc::new(Stats::default());
        let inner = flaky(100, FetchError::TransportDown("proxy refused".into()));
        let h = HealthyFetcher::new(inner.clone(), cfg(), stats.clone(), true);
        let u = Url::parse("http://a.test/").unwrap();
        for _ in 0..10 {
            let e = h.get(&u, &Limits::default()).await.unwrap_err();
            assert!(matches!(e, FetchError::TransportDown(_)));
        }
        assert_eq!(inner.calls.load(Ordering::SeqCst), 10);
        assert_eq!((h.sites_down(), stats.get(Counter::SiteRetries)), (0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_link_to_a_seed_still_publishing_is_no_probe() {
        let stats = Arc::new(Stats::default());
        let not_found = FetchError::Tor {
            kind: crate::TorFailure::OnionNotFound,
            detail: "descriptor not found".into(),
        };
        let inner = flaky(10, not_found);
        let h = Arc::new(HealthyFetcher::new(
            inner.clone(),
            cfg(),
            stats.clone(),
            true,
        ));
        let seed = Url::parse("http://seed.test/").unwrap();
        let linked = Url::parse("http://seed.test/from-another-page").unwrap();
        // The seed request starts first; a link to the same site from another page arrives
        // while the site is still not answering. Neither gives up, nor marks the site down.
        let (h1, s1) = (h.clone(), seed.clone());
        let first = tokio::spawn(async move { h1.get(&s1, &seed_limits(Patience::Seed)).await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        let second = h.get(&linked, &seed_limits(Patience::Probe)).await;
        assert!(second.is_ok(), "{second:?}");
        assert!(first.await.unwrap().is_ok());
        assert_eq!(stats.get(Counter::SiteMarkedDown), 0);
    }
}
