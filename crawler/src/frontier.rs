//! The frontier: the single place that decides what gets fetched.
//!
//! It takes seeds and the links crawlers report, normalises and dedupes them, applies the
//! scope rules (which sites to follow, how deep, how many pages per site) and publishes crawl
//! requests. Images are leaves: they are fetched wherever they are hosted (the transport's
//! address checks still apply), but only once each.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bus::stats::Family;
use bus::{Bus, BusError, Consumers, Counter, Handled, Handler, Stats};
use schema::names::{CRAWL_DISCOVERED, CRAWL_REQUESTS};
use schema::{CrawlRequest, Discovered, Message, ResourceKind};
use url::Url;

use crate::urls::{check_onion, is_onion, parse_absolute, site_of};
use crate::{CrawlerConfig, Follow};

#[derive(Default)]
struct State {
    seen: HashSet<String>,
    seed_sites: HashSet<String>,
    pages_per_site: HashMap<String, usize>,
}

/// Dedupe and scope. Shared state behind a mutex; all work is in-memory and quick.
pub struct Frontier {
    config: CrawlerConfig,
    stats: Arc<Stats>,
    state: Mutex<State>,
}

/// A seed that is not an absolute http(s) URL.
#[derive(Debug, thiserror::Error)]
#[error("invalid seed URL {0:?}: {1}")]
pub struct BadSeed(pub String, pub String);

impl Frontier {
    pub fn new(config: CrawlerConfig, stats: Arc<Stats>) -> Self {
        Frontier {
            config,
            stats,
            state: Mutex::new(State::default()),
        }
    }

    /// Checks seeds before anything is published, so a typo fails the command early.
    pub fn parse_seeds(seeds: &[String]) -> Result<Vec<Url>, BadSeed> {
        seeds
            .iter()
            .map(|s| {
                let u = parse_absolute(s).ok_or_else(|| {
                    BadSeed(
                        s.clone(),
                        "expected an absolute http:// or https:// URL".into(),
                    )
                })?;
                check_onion(&u).map_err(|e| BadSeed(s.clone(), e.to_string()))?;
                Ok(u)
            })
            .collect()
    }

    /// Publishes crawl requests for the seeds (depth 0); their sites become in scope.
    pub async fn seed(&self, bus: &dyn Bus, seeds: &[Url]) -> Result<usize, BusError> {
        {
            let mut st = self.lock();
            for s in seeds {
                st.seed_sites.insert(site_of(s));
            }
        }
        let mut n = 0;
        for s in seeds {
            if self.admit(s, ResourceKind::Page, 0) {
                if let Err(e) = self.publish(bus, s, ResourceKind::Page, 0, None).await {
                    self.forget(s, ResourceKind::Page);
                    return Err(e);
                }
                n += 1;
            }
        }
        Ok(n)
    }

    /// Handles one discovery report: requests for the new pages and images.
    pub async fn handle(&self, bus: &dyn Bus, d: &Discovered) -> Result<(), BusError> {
        let depth = d.depth.saturating_add(1);
        let pages = d.links.iter().map(|l| (l, ResourceKind::Page));
        let images = d.images.iter().map(|l| (l, ResourceKind::Image));
        for (link, kind) in pages.chain(images) {
            let Some(u) = parse_absolute(link) else {
                continue;
            };
            if let Err(e) = check_onion(&u) {
                // A mangled or obsolete onion link: dropped, with its reason counted.
                self.stats.incr_kind(Family::FrontierDropped, e.kind());
                continue;
            }
            if self.admit(&u, kind, depth) {
                if let Err(e) = self.publish(bus, &u, kind, depth, Some(&d.from)).await {
                    // Not published: forget it, so the redelivered report publishes it again.
                    self.forget(&u, kind);
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Consumes discovery reports until the bus closes.
    pub async fn run(self: Arc<Self>, bus: Arc<dyn Bus>) -> Result<(), BusError> {
        let consumers = Consumers {
            queue: CRAWL_DISCOVERED,
            prefetch: self.config.frontier_prefetch,
            workers: 1,
        };
        let stats = self.stats.clone();
        bus::serve::<Discovered, _>(bus, consumers, stats, self).await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether to fetch `url`; records it as seen when yes.
    fn admit(&self, url: &Url, kind: ResourceKind, depth: u32) -> bool {
        let site = site_of(url);
        let mut st = self.lock();
        if kind == ResourceKind::Page {
            if depth > self.config.max_depth {
                self.stats.incr(Counter::FrontierTooDeep);
                return false;
            }
            let in_scope = st.seed_sites.contains(&site)
                || match self.config.follow {
                    Follow::Seeds => false,
                    Follow::OnionAndSeeds => is_onion(url),
                    Follow::All => true,
                };
            if !in_scope {
                self.stats.incr(Counter::FrontierOutOfScope);
                return false;
            }
        }
        if st.seen.contains(url.as_str()) {
            return false;
        }
        if kind == ResourceKind::Page {
            let count = st.pages_per_site.entry(site).or_default();
            if *count >= self.config.max_pages_per_site {
                self.stats.incr(Counter::FrontierSitePageCap);
                return false;
            }
            *count += 1;
        }
        st.seen.insert(url.to_string());
        true
    }

    /// Undoes [`Frontier::admit`] for a URL whose request could not be published.
    fn forget(&self, url: &Url, kind: ResourceKind) {
        let mut st = self.lock();
        st.seen.remove(url.as_str());
        if kind == ResourceKind::Page {
            if let Some(c) = st.pages_per_site.get_mut(&site_of(url)) {
                *c = c.saturating_sub(1);
            }
        }
    }

    async fn publish(
        &self,
        bus: &dyn Bus,
        url: &Url,
        kind: ResourceKind,
        depth: u32,
        referrer: Option<&str>,
    ) -> Result<(), BusError> {
        let req = CrawlRequest {
            url: url.to_string(),
            kind,
            depth,
            referrer: referrer.map(str::to_string),
        };
        bus.publish("", CRAWL_REQUESTS, req.encode()).await
    }
}

#[async_trait]
impl Handler<Discovered> for Frontier {
    async fn handle(&self, bus: &dyn Bus, d: Discovered) -> Result<Handled, BusError> {
        Frontier::handle(self, bus, &d).await?;
        Ok(Handled::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bus::EmbeddedBus;

    const ONION: &str = "2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion";

    async fn drain(bus: &EmbeddedBus) -> Vec<CrawlRequest> {
        let mut c = bus.consume(CRAWL_REQUESTS, 100).await.unwrap();
        let mut out = vec![];
        while bus.outstanding() > 0 {
            let d = c.next().await.unwrap();
            out.push(CrawlRequest::decode(&d.payload).unwrap());
            d.ack().await.unwrap();
        }
        out
    }

    #[tokio::test]
    async fn dedupes_scopes_and_limits_depth() {
        let cfg = CrawlerConfig {
            max_depth: 2,
            ..Default::default()
        };
        let stats = Arc::new(Stats::default());
        let f = Frontier::new(cfg, stats.clone());
        let bus = EmbeddedBus::default();
        let seeds = Frontier::parse_seeds(&["http://a.test/".into()]).unwrap();
        assert_eq!(f.seed(&bus, &seeds).await.unwrap(), 1);
        let d = Discovered {
            from: "http://a.test/".into(),
            depth: 0,
            links: vec![
                "http://a.test/x".into(),
                "http://a.test/x".into(),
                "http://a.test/".into(),
                "http://clear.test/y".into(),
                format!("http://{ONION}/"),
                format!("http://{}/", ONION.replacen("2gzy", "2gzz", 1)),
                "http://abcdefghijklmnop.onion/".into(),
            ],
            images: vec![
                "http://cdn.test/i.png".into(),
                "http://cdn.test/i.png".into(),
            ],
        };
        f.handle(&bus, &d).await.unwrap();
        let deep = Discovered {
            from: "http://a.test/x".into(),
            depth: 2,
            links: vec!["http://a.test/deeper".into()],
            images: vec![],
        };
        f.handle(&bus, &deep).await.unwrap();
        let got: Vec<(String, ResourceKind)> = drain(&bus)
            .await
            .into_iter()
            .map(|r| (r.url, r.kind))
            .collect();
        assert_eq!(
            got,
            vec![
                ("http://a.test/".into(), ResourceKind::Page),
                ("http://a.test/x".into(), ResourceKind::Page),
                (format!("http://{ONION}/"), ResourceKind::Page),
                ("http://cdn.test/i.png".into(), ResourceKind::Image),
            ]
        );
        let dropped = stats.by_kind(Family::FrontierDropped);
        assert_eq!(dropped.get("onion.bad-checksum"), Some(&1));
        assert_eq!(dropped.get("onion.v2-obsolete"), Some(&1));
        assert!(Frontier::parse_seeds(&["not a url".into()]).is_err());
        let e = Frontier::parse_seeds(&["http://abcdefghijklmnop.onion/".into()]).unwrap_err();
        assert!(e.to_string().contains("obsolete"), "{e}");
    }

    #[tokio::test]
    async fn a_request_that_could_not_be_published_is_published_on_redelivery() {
        let f = Frontier::new(CrawlerConfig::default(), Arc::new(Stats::default()));
        let bus = EmbeddedBus::default();
        let seeds = Frontier::parse_seeds(&["http://a.test/".into()]).unwrap();
        f.seed(&bus, &seeds).await.unwrap();
        drain(&bus).await;
        let d = Discovered {
            from: "http://a.test/".into(),
            depth: 0,
            links: vec!["http://a.test/x".into()],
            images: vec![],
        };
        bus.close(); // the broker is gone: publishing fails
        assert!(f.handle(&bus, &d).await.is_err());
        let bus = EmbeddedBus::default(); // it is back; the report is redelivered
        f.handle(&bus, &d).await.unwrap();
        let got: Vec<String> = drain(&bus).await.into_iter().map(|r| r.url).collect();
        assert_eq!(got, ["http://a.test/x"]);
    }
}
