//! The frontier: the single place that decides what gets fetched.
//!
//! It takes seeds and the links crawlers report, normalises and dedupes them, applies the
//! scope rules (which sites to follow, how deep, how many pages per site) and publishes crawl
//! requests. Images are leaves: they are fetched wherever they are hosted (the transport's
//! address checks still apply), but only once each and at most `max_images_per_site` per host.
//!
//! Pages are written by the people being watched, so every map here is bounded: a page may
//! introduce at most `max_new_sites_per_page` sites and a site at most
//! `max_new_sites_per_site` in all; there are at most `max_sites` sites and `max_seen`
//! remembered URLs (kept as 128-bit digests). What does not fit is dropped and counted under
//! `frontier.dropped.*`. A newly discovered site gets no more than one cheap attempt before it
//! is believed to exist (see [`crate::health`]).
//!
//! With a [`FrontierStore`] (distributed mode, where the queues survive the process) all of
//! that state is durable: a frontier killed with `kill -9` restarts knowing its seeds, what it
//! requested and each site's spent budget, and republishes what it claimed but never saw
//! confirmed (the outbox protocol in [`crate::store`]). Without one (one process on the
//! embedded bus, whose queues die with it) the state lives in memory.
//!
//! A frontier that watches continuously ([`Frontier::recrawling`], `run` without `--once`)
//! also keeps every page it requested on the recrawl schedule ([`crate::schedule`]): its
//! scheduler ([`Frontier::schedule`]) requests due pages again, and each crawl report moves
//! the page's next visit.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bus::stats::Family;
use bus::{Bus, BusError, Consumers, Counter, Handled, Handler, Stats};
use schema::names::{CRAWL_DISCOVERED, CRAWL_REQUESTS};
use schema::{CrawlRequest, Discovered, Message, PageOutcome, ResourceKind};
use url::Url;

use crate::schedule::{self, Budget, Head, NewPage, RecrawlConfig};
use crate::store::{Claim, FrontierStore, Snapshot, StoreError};
use crate::urls::{check_onion, is_onion, parse_absolute, site_of};
use crate::{CrawlerConfig, Follow};

#[derive(Default)]
struct State {
    /// Digests of the URLs already requested.
    seen: HashSet<u128>,
    seed_sites: HashSet<String>,
    pages_per_site: HashMap<String, usize>,
    images_per_site: HashMap<String, usize>,
    /// Sites each source site introduced.
    new_sites_from: HashMap<String, usize>,
    /// Pages admitted lately, with when (continuous watch: a page that shows links to them
    /// is a listing that moves).
    recent: HashMap<u128, u64>,
    recent_order: std::collections::VecDeque<(u128, u64)>,
}

/// Due rows the scheduler takes at once.
const BATCH: usize = 256;

/// Lately admitted pages remembered (see `State::recent`).
const MAX_RECENT: usize = 100_000;

/// Why a link was dropped for a bound (the `frontier.dropped.*` kinds).
mod drop_kind {
    pub const SITES_PER_PAGE: &str = "site-cap.page";
    pub const SITES_PER_SOURCE: &str = "site-cap.source";
    pub const SITES_TOTAL: &str = "site-cap.total";
    pub const IMAGES_PER_SITE: &str = "image-cap.site";
    pub const SEEN_FULL: &str = "seen-full";
}

/// The report being handled: where its links come from, and how many new sites it has
/// introduced so far.
struct Source {
    site: Option<String>,
    new_sites: usize,
    /// When the reporting page was fetched and first listed (passed on to its images'
    /// requests, for detection latency).
    fetched_at: Option<String>,
    listed_at: Option<String>,
}

/// The 128-bit key the frontier remembers `url` by (seen set and schedule).
pub fn digest(url: &Url) -> u128 {
    use sha2::Digest;
    let d = sha2::Sha256::digest(url.as_str().as_bytes());
    u128::from_le_bytes(d[..16].try_into().expect("16 of 32 bytes"))
}

/// Dedupe and scope. Shared state behind a mutex; decisions are made in memory, and recorded
/// in the store (when there is one) before anything is published.
pub struct Frontier {
    config: CrawlerConfig,
    stats: Arc<Stats>,
    state: Mutex<State>,
    store: Option<Box<dyn FrontierStore>>,
    recrawl: Option<Recrawl>,
}

/// The schedule's settings and this frontier's revisit budget.
struct Recrawl {
    config: RecrawlConfig,
    budget: Mutex<Budget>,
    /// The store holds requested pages but no schedule (state from before there was one):
    /// pages already requested are put on the schedule as crawled pages link to them.
    backfill: std::sync::atomic::AtomicBool,
}

/// A request admitted in memory, waiting to be claimed in the store and published.
struct Admitted {
    url: Url,
    kind: ResourceKind,
    claim: Claim,
}

fn store_failed(e: StoreError) -> BusError {
    // Handled like a broker failure: the report is requeued and tried again.
    BusError::Broker(e.to_string())
}

/// A seed that is not an absolute http(s) URL.
#[derive(Debug, thiserror::Error)]
#[error("invalid seed URL {0:?}: {1}")]
pub struct BadSeed(pub String, pub String);

impl Frontier {
    /// A frontier whose state lives in memory only.
    pub fn new(config: CrawlerConfig, stats: Arc<Stats>) -> Self {
        Frontier {
            config,
            stats,
            state: Mutex::new(State::default()),
            store: None,
            recrawl: None,
        }
    }

    /// Whether the durable store answers (`Ok` without one).
    pub async fn store_reachable(&self) -> Result<(), StoreError> {
        match &self.store {
            Some(store) => store.ping().await,
            None => Ok(()),
        }
    }

    /// A frontier backed by `store`, warmed with what it remembers.
    pub async fn with_store(
        config: CrawlerConfig,
        stats: Arc<Stats>,
        store: Box<dyn FrontierStore>,
    ) -> Result<Self, StoreError> {
        let snapshot = store.load().await?;
        let f = Frontier {
            config,
            stats,
            state: Mutex::new(State::default()),
            store: Some(store),
            recrawl: None,
        };
        f.warm(snapshot);
        Ok(f)
    }

    /// Keeps every requested page on the recrawl schedule (needs a store; without one this
    /// does nothing).
    pub fn recrawling(mut self, config: RecrawlConfig) -> Self {
        if self.store.is_some() && config.enabled {
            self.recrawl = Some(Recrawl {
                budget: Mutex::new(Budget::new(&config)),
                config,
                backfill: Default::default(),
            });
        }
        self
    }

    fn warm(&self, snap: Snapshot) {
        let mut st = self.lock();
        st.seen.extend(snap.seen);
        for row in snap.sites {
            if row.seed {
                st.seed_sites.insert(row.site.clone());
            }
            if row.pages > 0 {
                st.pages_per_site
                    .insert(row.site.clone(), row.pages as usize);
            }
            if row.images > 0 {
                st.images_per_site
                    .insert(row.site.clone(), row.images as usize);
            }
            if row.introduced > 0 {
                st.new_sites_from.insert(row.site, row.introduced as usize);
            }
        }
        tracing::info!(
            seen = st.seen.len(),
            seed_sites = st.seed_sites.len(),
            "frontier state loaded"
        );
    }

    /// Publishes what a previous run claimed but never saw confirmed. Call before serving.
    pub async fn recover(&self, bus: &dyn Bus) -> Result<usize, BusError> {
        let Some(store) = &self.store else {
            return Ok(0);
        };
        let pending = store.pending().await.map_err(store_failed)?;
        let mut done = Vec::with_capacity(pending.len());
        for (digest, request) in pending {
            bus.publish("", CRAWL_REQUESTS, request).await?;
            done.push(digest);
        }
        store.done(&done).await.map_err(store_failed)?;
        if !done.is_empty() {
            tracing::warn!(republished = done.len(), "republished unconfirmed requests");
        }
        if let Some(recrawl) = &self.recrawl {
            let old_state = !self.lock().seen.is_empty();
            if old_state && store.scheduled().await.map_err(store_failed)? == 0 {
                tracing::warn!(
                    "frontier state from before the recrawl schedule: pages already requested \
                     are scheduled as crawled pages link to them (give the --seed URLs again \
                     so that the crawl has somewhere to start)"
                );
                recrawl
                    .backfill
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        if self.recrawl.is_some() && !bus.is_durable() {
            // First fetches still queued when the process stopped died with its queues.
            let n = store
                .refetch_unfetched(schedule::now_ms())
                .await
                .map_err(store_failed)?;
            if n > 0 {
                tracing::warn!(pages = n, "pages never fetched are due again");
            }
        }
        Ok(done.len())
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

    /// Puts `sites` in scope without requesting anything from them: paste sites, whose
    /// listings [`crate::pastes::Poller`] reads.
    pub async fn allow_sites(&self, sites: &[String]) -> Result<(), BusError> {
        if sites.is_empty() {
            return Ok(());
        }
        if let Some(store) = &self.store {
            store.add_seed_sites(sites).await.map_err(store_failed)?;
        }
        self.lock().seed_sites.extend(sites.iter().cloned());
        Ok(())
    }

    /// Publishes crawl requests for the seeds (depth 0); their sites become in scope.
    pub async fn seed(&self, bus: &dyn Bus, seeds: &[Url]) -> Result<usize, BusError> {
        let sites: Vec<String> = seeds.iter().map(site_of).collect();
        if let Some(store) = &self.store {
            store.add_seed_sites(&sites).await.map_err(store_failed)?;
        }
        self.lock().seed_sites.extend(sites);
        let mut src = Source {
            site: None,
            new_sites: 0,
            fetched_at: None,
            listed_at: None,
        };
        let admitted: Vec<Admitted> = seeds
            .iter()
            .filter_map(|s| self.admit(s, ResourceKind::Page, 0, None, &mut src))
            .collect();
        // Seeds requested by an earlier run are not requested again; they are (still) on the
        // schedule.
        let pages: Vec<(Url, u32)> = seeds.iter().map(|s| (s.clone(), 0)).collect();
        self.add_to_schedule(&pages).await?;
        self.claim_and_publish(bus, admitted).await
    }

    /// Handles one discovery report: requests for the new pages and images.
    pub async fn handle(&self, bus: &dyn Bus, d: &Discovered) -> Result<(), BusError> {
        let depth = d.depth.saturating_add(1);
        self.learn_seeds(&d.links).await?;
        let mut src = Source {
            site: parse_absolute(&d.from).map(|u| site_of(&u)),
            new_sites: 0,
            fetched_at: d.fetched_at.clone(),
            listed_at: d.listed_at.clone(),
        };
        let pages = d.links.iter().map(|l| (l, ResourceKind::Page));
        let images = d.images.iter().map(|l| (l, ResourceKind::Image));
        let mut admitted = Vec::new();
        for (link, kind) in pages.chain(images) {
            let Some(u) = parse_absolute(link) else {
                continue;
            };
            if let Err(e) = check_onion(&u) {
                // A mangled or obsolete onion link: dropped, with its reason counted.
                self.stats.incr_kind(Family::FrontierDropped, e.kind());
                continue;
            }
            admitted.extend(self.admit(&u, kind, depth, Some(&d.from), &mut src));
        }
        let pages: Vec<(Url, u32)> = admitted
            .iter()
            .filter(|a| a.kind == ResourceKind::Page)
            .map(|a| (a.url.clone(), depth))
            .collect();
        self.add_to_schedule(&pages).await?;
        self.backfill(d, depth, &pages).await?;
        self.claim_and_publish(bus, admitted).await?;
        self.flag_mirrors(d).await?;
        let fresh = !pages.is_empty() || self.shows_recent_pages(d);
        self.revisited(d, fresh).await
    }

    /// While backfilling (see `Recrawl::backfill`): schedules the in-scope page links of `d`
    /// that were requested before (the new ones, `admitted`, are scheduled already).
    async fn backfill(
        &self,
        d: &Discovered,
        depth: u32,
        admitted: &[(Url, u32)],
    ) -> Result<(), BusError> {
        let Some(recrawl) = &self.recrawl else {
            return Ok(());
        };
        if !recrawl.backfill.load(std::sync::atomic::Ordering::Relaxed)
            || depth > self.config.max_depth
        {
            return Ok(());
        }
        let known: Vec<(Url, u32)> = {
            let st = self.lock();
            d.links
                .iter()
                .filter_map(|l| parse_absolute(l))
                .filter(|u| st.seed_sites.contains(&site_of(u)) || self.followed(u))
                .filter(|u| st.seen.contains(&digest(u)))
                .filter(|u| !admitted.iter().any(|(a, _)| a == u))
                .map(|u| (u, depth))
                .collect()
        };
        // Not noted as recent: they are old pages, not fresh links.
        self.schedule_rows(&known, schedule::now_ms()).await
    }

    /// Whether a report whose links changed links to pages admitted within the last two entry
    /// intervals (found first on another listing, as a board shows what the index showed).
    fn shows_recent_pages(&self, d: &Discovered) -> bool {
        let Some(recrawl) = &self.recrawl else {
            return false;
        };
        let since = schedule::now_ms().saturating_sub(2 * recrawl.config.first_interval_ms(0));
        let st = self.lock();
        d.links
            .iter()
            .filter_map(|l| parse_absolute(l))
            .any(|u| st.recent.get(&digest(&u)).is_some_and(|&t| t >= since))
    }

    /// Remembers `pages` as admitted at `now`, forgetting the oldest beyond [`MAX_RECENT`].
    fn note_recent(&self, pages: &[(Url, u32)], now: u64) {
        let mut st = self.lock();
        for (u, _) in pages {
            let d = digest(u);
            st.recent.insert(d, now);
            st.recent_order.push_back((d, now));
        }
        while st.recent_order.len() > MAX_RECENT {
            if let Some((d, t)) = st.recent_order.pop_front() {
                if st.recent.get(&d) == Some(&t) {
                    st.recent.remove(&d);
                }
            }
        }
    }

    /// Records the mirrors a page announces, for an analyst: they are not made seeds, and are
    /// crawled only as the follow rules crawl any link.
    async fn flag_mirrors(&self, d: &Discovered) -> Result<(), BusError> {
        let Some(from) = parse_absolute(&d.from) else {
            return Ok(());
        };
        let site = site_of(&from);
        let mut mirrors: Vec<String> = d
            .mirrors
            .iter()
            .filter_map(|m| parse_absolute(m))
            .filter(|m| is_onion(m) && check_onion(m).is_ok())
            .map(|m| site_of(&m))
            .filter(|m| *m != site)
            .take(crate::mirror::MAX_PER_PAGE)
            .collect();
        mirrors.sort();
        mirrors.dedup();
        if mirrors.is_empty() {
            return Ok(());
        }
        let new = match &self.store {
            Some(store) => store
                .add_mirrors(&site, &mirrors, schedule::now_ms())
                .await
                .map_err(store_failed)?,
            None => mirrors,
        };
        for m in new {
            self.stats.incr(Counter::MirrorsAnnounced);
            tracing::warn!(site = %site, mirror = %m, page = %d.from, "a site announces a mirror");
        }
        Ok(())
    }

    /// Puts newly requested pages on the schedule: first due one interval from now (when
    /// they are retried if their report never comes back).
    async fn add_to_schedule(&self, pages: &[(Url, u32)]) -> Result<(), BusError> {
        if self.store.is_none() || self.recrawl.is_none() || pages.is_empty() {
            return Ok(());
        }
        let now = schedule::now_ms();
        self.note_recent(pages, now);
        self.schedule_rows(pages, now).await
    }

    /// Schedule rows for `pages`, first due one interval after `now`.
    async fn schedule_rows(&self, pages: &[(Url, u32)], now: u64) -> Result<(), BusError> {
        let (Some(store), Some(recrawl)) = (&self.store, &self.recrawl) else {
            return Ok(());
        };
        if pages.is_empty() {
            return Ok(());
        }
        let rows: Vec<NewPage> = pages
            .iter()
            .map(|(u, depth)| {
                let interval_ms = recrawl.config.first_interval_ms(*depth);
                NewPage {
                    digest: digest(u),
                    url: u.to_string(),
                    site: site_of(u),
                    depth: *depth,
                    interval_ms,
                    due_ms: now + interval_ms,
                    listed_ms: now,
                }
            })
            .collect();
        store.schedule(&rows).await.map_err(store_failed)
    }

    /// Moves the reported page's next visit by what its fetch found.
    async fn revisited(&self, d: &Discovered, fresh_links: bool) -> Result<(), BusError> {
        let (Some(store), Some(recrawl)) = (&self.store, &self.recrawl) else {
            return Ok(());
        };
        let Some(url) = parse_absolute(d.scheduled_url()) else {
            return Ok(());
        };
        let Some(row) = store.row(digest(&url)).await.map_err(store_failed)? else {
            return Ok(());
        };
        // Reports arrive right after their fetch; the frontier's own clock keeps the
        // schedule consistent across crawler machines.
        let links_changed =
            row.validators.links.is_some() && row.validators.links != d.validators.links;
        let now = schedule::now_ms();
        let mut visit = schedule::next_visit(
            &row,
            d.outcome,
            links_changed && fresh_links,
            d.validators.clone(),
            now,
            &recrawl.config,
        );
        if d.outcome == PageOutcome::Changed {
            let links: Vec<u128> = d
                .links
                .iter()
                .filter_map(|l| parse_absolute(l))
                .map(|u| digest(&u))
                .collect();
            let head = Head::of(links.iter().copied());
            if let Some(old) = row.head.as_deref().map(Head::decode) {
                self.revisit_bumped(&head.bumped_since(&old), &links, now)
                    .await?;
            }
            visit.head = Some(head.encode());
        }
        store.record(&visit).await.map_err(store_failed)
    }

    /// Makes the pages a listing bumped (moved to its top: a reply) due now, when they were
    /// fetched before.
    async fn revisit_bumped(
        &self,
        bumped: &[u64],
        links: &[u128],
        now: u64,
    ) -> Result<(), BusError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let fresh_since = self.recrawl.as_ref().map_or(now, |r| {
            now.saturating_sub(2 * r.config.first_interval_ms(0))
        });
        for prefix in bumped {
            let Some(&d) = links.iter().find(|d| (**d >> 64) as u64 == *prefix) else {
                continue;
            };
            // A page first heard of lately is new here, not bumped: it was just fetched.
            if self
                .lock()
                .recent
                .get(&d)
                .is_some_and(|&t| t >= fresh_since)
            {
                continue;
            }
            let Some(row) = store.row(d).await.map_err(store_failed)? else {
                continue;
            };
            if row.fetches > 0 && row.due_ms > now {
                store.postpone(d, now).await.map_err(store_failed)?;
                self.stats.incr(Counter::RevisitsBumped);
            }
        }
        Ok(())
    }

    /// Requests due pages again, within the revisit budget, until the bus closes. A store or
    /// broker failure is logged and waited out: the lease on what was taken retries it.
    pub async fn schedule(self: Arc<Self>, bus: Arc<dyn Bus>) -> Result<(), BusError> {
        let (Some(store), Some(recrawl)) = (&self.store, &self.recrawl) else {
            return Ok(());
        };
        let cfg = &recrawl.config;
        let tick = std::time::Duration::from_millis(cfg.tick_ms.max(10));
        // Revisits of one site the budget holds back are spread over the slots it will free,
        // not all made due at the same instant.
        let spacing = 3_600_000 / u64::from(cfg.site_revisits_per_hour.max(1));
        while !bus.is_closed() {
            let now = schedule::now_ms();
            let due = match store.take_due(now, BATCH).await {
                Ok(due) => due,
                Err(e) => {
                    tracing::warn!(error = %e, "recrawl schedule unavailable");
                    tokio::time::sleep(tick).await;
                    continue;
                }
            };
            let full = due.len() == BATCH;
            let mut held: HashMap<String, u64> = HashMap::new();
            for row in due {
                let spent = recrawl
                    .budget
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .spend(&row.site, now);
                if let Err(next) = spent {
                    self.stats.incr(Counter::RevisitsDeferred);
                    let k = held.entry(row.site.clone()).or_default();
                    let at = next + *k * spacing;
                    *k += 1;
                    if let Err(e) = store.postpone(row.digest, at).await {
                        tracing::warn!(error = %e, "could not postpone a revisit");
                    }
                    continue;
                }
                let request = CrawlRequest {
                    url: row.url.clone(),
                    kind: ResourceKind::Page,
                    depth: row.depth,
                    revisit: Some(row.validators.clone()),
                    ..Default::default()
                };
                if let Err(e) = bus.publish("", CRAWL_REQUESTS, request.encode()).await {
                    if bus.is_closed() {
                        return Ok(());
                    }
                    tracing::warn!(error = %e, "could not request a revisit; retried later");
                    break;
                }
                self.stats.incr(Counter::Revisits);
            }
            if !full {
                tokio::time::sleep(tick).await;
            }
        }
        Ok(())
    }

    /// Asks the store whether the sites of links out of scope here are seeds another frontier
    /// added after this one started.
    async fn learn_seeds(&self, links: &[String]) -> Result<(), BusError> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        let unknown: HashSet<String> = {
            let st = self.lock();
            links
                .iter()
                .filter_map(|l| parse_absolute(l))
                .filter(|u| !self.followed(u))
                .map(|u| site_of(&u))
                .filter(|s| !st.seed_sites.contains(s))
                .collect()
        };
        if unknown.is_empty() {
            return Ok(());
        }
        let unknown: Vec<String> = unknown.into_iter().collect();
        let found = store.seeds_among(&unknown).await.map_err(store_failed)?;
        self.lock().seed_sites.extend(found);
        Ok(())
    }

    /// Whether the follow rule alone puts `url` in scope.
    fn followed(&self, url: &Url) -> bool {
        match self.config.follow {
            Follow::Seeds => false,
            Follow::OnionAndSeeds => is_onion(url),
            Follow::All => true,
        }
    }

    /// Records `admitted` in the store (when there is one), publishes what this frontier
    /// claimed, then marks it published. On a failure, whatever was not published is
    /// forgotten in memory, so the redelivered report admits it again (the store still has
    /// it pending, so it is claimed again).
    async fn claim_and_publish(
        &self,
        bus: &dyn Bus,
        admitted: Vec<Admitted>,
    ) -> Result<usize, BusError> {
        let claimed = match &self.store {
            None => (0..admitted.len()).collect(),
            Some(store) => {
                let claims: Vec<Claim> = admitted.iter().map(|a| a.claim.clone()).collect();
                match store.claim(&claims).await {
                    Ok(c) => c,
                    Err(e) => {
                        admitted.iter().for_each(|a| self.forget(&a.url, a.kind));
                        return Err(store_failed(e));
                    }
                }
            }
        };
        let mut published = Vec::with_capacity(claimed.len());
        for (n, &i) in claimed.iter().enumerate() {
            let a = &admitted[i];
            if let Err(e) = bus
                .publish("", CRAWL_REQUESTS, a.claim.request.clone())
                .await
            {
                claimed[n..]
                    .iter()
                    .for_each(|&j| self.forget(&admitted[j].url, admitted[j].kind));
                return Err(e);
            }
            published.push(a.claim.digest);
        }
        if let Some(store) = &self.store {
            store.done(&published).await.map_err(store_failed)?;
        }
        Ok(published.len())
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

    /// Whether to fetch `url`; records it as seen (in memory) when yes.
    fn admit(
        &self,
        url: &Url,
        kind: ResourceKind,
        depth: u32,
        referrer: Option<&str>,
        src: &mut Source,
    ) -> Option<Admitted> {
        let site = site_of(url);
        let mut st = self.lock();
        if kind == ResourceKind::Page && !self.in_scope(&st, url, &site, depth) {
            return None;
        }
        let key = digest(url);
        if st.seen.contains(&key) {
            return None;
        }
        if st.seen.len() >= self.config.max_seen {
            return self.dropped(drop_kind::SEEN_FULL);
        }
        let mut introduced_by = None;
        match kind {
            ResourceKind::Page => {
                if !st.pages_per_site.contains_key(&site) && !st.seed_sites.contains(&site) {
                    if let Some(reason) = self.new_site_refused(&st, src) {
                        return self.dropped(reason);
                    }
                    src.new_sites += 1;
                    if let Some(from) = &src.site {
                        *st.new_sites_from.entry(from.clone()).or_default() += 1;
                        introduced_by = Some(from.clone());
                    }
                }
                let count = st.pages_per_site.entry(site.clone()).or_default();
                if *count >= self.config.max_pages_per_site {
                    self.stats.incr(Counter::FrontierSitePageCap);
                    return None;
                }
                *count += 1;
            }
            ResourceKind::Image => {
                if st.images_per_site.len() >= self.config.max_sites
                    && !st.images_per_site.contains_key(&site)
                {
                    return self.dropped(drop_kind::SITES_TOTAL);
                }
                let count = st.images_per_site.entry(site.clone()).or_default();
                if *count >= self.config.max_images_per_site {
                    return self.dropped(drop_kind::IMAGES_PER_SITE);
                }
                *count += 1;
            }
        }
        st.seen.insert(key);
        let request = CrawlRequest {
            url: url.to_string(),
            kind,
            depth,
            referrer: referrer.map(str::to_string),
            listed_at: match kind {
                ResourceKind::Page => Some(schema::now_rfc3339()),
                ResourceKind::Image => src.listed_at.clone(),
            },
            page_fetched_at: match kind {
                ResourceKind::Image => src.fetched_at.clone(),
                ResourceKind::Page => None,
            },
            revisit: None,
        };
        Some(Admitted {
            url: url.clone(),
            kind,
            claim: Claim {
                digest: key,
                request: request.encode(),
                site,
                image: kind == ResourceKind::Image,
                introduced_by,
            },
        })
    }

    /// Depth and follow rules for a page link.
    fn in_scope(&self, st: &State, url: &Url, site: &str, depth: u32) -> bool {
        if depth > self.config.max_depth {
            self.stats.incr(Counter::FrontierTooDeep);
            return false;
        }
        let in_scope = st.seed_sites.contains(site) || self.followed(url);
        if !in_scope {
            self.stats.incr(Counter::FrontierOutOfScope);
        }
        in_scope
    }

    /// Which bound, if any, keeps a report from introducing one more site.
    fn new_site_refused(&self, st: &State, src: &Source) -> Option<&'static str> {
        let c = &self.config;
        if src.site.is_some() && src.new_sites >= c.max_new_sites_per_page {
            return Some(drop_kind::SITES_PER_PAGE);
        }
        let from_source = src
            .site
            .as_ref()
            .and_then(|s| st.new_sites_from.get(s))
            .copied()
            .unwrap_or(0);
        if from_source >= c.max_new_sites_per_site {
            return Some(drop_kind::SITES_PER_SOURCE);
        }
        if st.pages_per_site.len() >= c.max_sites {
            return Some(drop_kind::SITES_TOTAL);
        }
        None
    }

    fn dropped<T>(&self, reason: &str) -> Option<T> {
        self.stats.incr_kind(Family::FrontierDropped, reason);
        None
    }

    /// Undoes [`Frontier::admit`] for a URL whose request could not be published.
    fn forget(&self, url: &Url, kind: ResourceKind) {
        let mut st = self.lock();
        st.seen.remove(&digest(url));
        let per_site = match kind {
            ResourceKind::Page => &mut st.pages_per_site,
            ResourceKind::Image => &mut st.images_per_site,
        };
        if let Some(c) = per_site.get_mut(&site_of(url)) {
            *c = c.saturating_sub(1);
        }
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
    use crate::schedule::ScheduleStore;
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
            ..Default::default()
        };
        f.handle(&bus, &d).await.unwrap();
        let deep = Discovered {
            from: "http://a.test/x".into(),
            depth: 2,
            links: vec!["http://a.test/deeper".into()],
            images: vec![],
            ..Default::default()
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
            ..Default::default()
        };
        bus.close(); // the broker is gone: publishing fails
        assert!(f.handle(&bus, &d).await.is_err());
        let bus = EmbeddedBus::default(); // it is back; the report is redelivered
        f.handle(&bus, &d).await.unwrap();
        let got: Vec<String> = drain(&bus).await.into_iter().map(|r| r.url).collect();
        assert_eq!(got, ["http://a.test/x"]);
    }

    /// A valid v3 onion address made from `i` (right checksum and version).
    fn onion(i: u32) -> String {
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(&i.to_le_bytes());
        crate::onion::address_from_key(&key)
    }

    #[tokio::test]
    async fn a_page_of_made_up_onions_adds_a_bounded_number_of_sites() {
        let cfg = CrawlerConfig {
            max_new_sites_per_page: 20,
            max_new_sites_per_site: 30,
            max_images_per_site: 5,
            ..Default::default()
        };
        let stats = Arc::new(Stats::default());
        let f = Frontier::new(cfg, stats.clone());
        let bus = EmbeddedBus::default();
        let seeds = Frontier::parse_seeds(&["http://a.test/".into()]).unwrap();
        f.seed(&bus, &seeds).await.unwrap();
        let flood = |from: &str, range: std::ops::Range<u32>| Discovered {
            from: from.into(),
            depth: 0,
            links: range.map(|i| format!("http://{}/", onion(i))).collect(),
            images: (0..50)
                .map(|i| format!("http://cdn.test/{i}.jpg"))
                .collect(),
            ..Default::default()
        };
        f.handle(&bus, &flood("http://a.test/", 0..2_000))
            .await
            .unwrap();
        f.handle(&bus, &flood("http://a.test/2", 2_000..4_000))
            .await
            .unwrap();
        // Links to sites already admitted still count as pages of those sites.
        let known = Discovered {
            from: "http://a.test/3".into(),
            depth: 0,
            links: vec![
                format!("http://{}/more", onion(0)),
                "http://a.test/4".into(),
            ],
            images: vec![],
            ..Default::default()
        };
        f.handle(&bus, &known).await.unwrap();
        let got = drain(&bus).await;
        let pages = got.iter().filter(|r| r.kind == ResourceKind::Page).count();
        let images = got.iter().filter(|r| r.kind == ResourceKind::Image).count();
        // The seed, 20 sites from the first page, 10 more (30 per source site) from the second,
        // then one more page on a known onion and one on the seed's site.
        assert_eq!((pages, images), (1 + 20 + 10 + 2, 5));
        let dropped = stats.by_kind(Family::FrontierDropped);
        // The first page hits its own cap; the second, its site's (30 in all) after 10.
        assert_eq!(dropped.get("site-cap.page"), Some(&1_980));
        assert_eq!(dropped.get("site-cap.source"), Some(&1_990));
        assert_eq!(dropped.get("image-cap.site"), Some(&(45 + 45)));
    }

    #[tokio::test]
    async fn the_seen_set_is_bounded() {
        let cfg = CrawlerConfig {
            max_seen: 10,
            ..Default::default()
        };
        let stats = Arc::new(Stats::default());
        let f = Frontier::new(cfg, stats.clone());
        let bus = EmbeddedBus::default();
        let seeds = Frontier::parse_seeds(&["http://a.test/".into()]).unwrap();
        f.seed(&bus, &seeds).await.unwrap();
        let d = Discovered {
            from: "http://a.test/".into(),
            depth: 0,
            links: (0..100).map(|i| format!("http://a.test/{i}")).collect(),
            images: vec![],
            ..Default::default()
        };
        f.handle(&bus, &d).await.unwrap();
        assert_eq!(drain(&bus).await.len(), 10);
        assert_eq!(
            stats.by_kind(Family::FrontierDropped).get("seen-full"),
            Some(&91)
        );
    }

    #[tokio::test]
    async fn a_restarted_frontier_remembers_seeds_requests_and_budgets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(crate::store::SQLITE_FILE);
        let open = || async {
            let store = Box::new(crate::store::SqliteStore::open(&path).unwrap());
            let cfg = CrawlerConfig {
                max_pages_per_site: 3,
                ..Default::default()
            };
            Frontier::with_store(cfg, Arc::new(Stats::default()), store)
                .await
                .unwrap()
        };
        let f = open().await;
        let bus = EmbeddedBus::default();
        let seeds = Frontier::parse_seeds(&["http://a.test/".into()]).unwrap();
        f.seed(&bus, &seeds).await.unwrap();
        assert_eq!(drain(&bus).await.len(), 1);
        let report = |from: &str, links: &[&str]| Discovered {
            from: from.into(),
            depth: 0,
            links: links.iter().map(|l| l.to_string()).collect(),
            images: vec![],
            ..Default::default()
        };
        f.handle(&bus, &report("http://a.test/", &["http://a.test/1"]))
            .await
            .unwrap();
        assert_eq!(drain(&bus).await.len(), 1);
        // The broker goes away mid-report: claimed, not published.
        let dead = EmbeddedBus::default();
        dead.close();
        let lost = report("http://a.test/1", &["http://a.test/2"]);
        assert!(f.handle(&dead, &lost).await.is_err());
        drop(f); // kill -9

        // Restarted without --seed: the seed's site is still in scope, the claimed request
        // is republished, nothing already requested is requested again, budgets hold.
        let f = open().await;
        let bus = EmbeddedBus::default();
        assert_eq!(f.recover(&bus).await.unwrap(), 1);
        let got: Vec<String> = drain(&bus).await.into_iter().map(|r| r.url).collect();
        assert_eq!(got, ["http://a.test/2"]);
        f.handle(&bus, &lost).await.unwrap(); // the redelivered report
        f.handle(
            &bus,
            &report(
                "http://a.test/2",
                &[
                    "http://a.test/",
                    "http://a.test/1",
                    "http://a.test/3",
                    "http://a.test/4",
                ],
            ),
        )
        .await
        .unwrap();
        let got: Vec<String> = drain(&bus).await.into_iter().map(|r| r.url).collect();
        // /, /1 and /2 spent the site's budget of three pages before the restart.
        assert!(got.is_empty(), "{got:?}");
        assert_eq!(f.recover(&bus).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn the_revisit_budget_holds_and_spreads_what_it_defers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(crate::store::SQLITE_FILE);
        let store = Box::new(crate::store::SqliteStore::open(&path).unwrap());
        let stats = Arc::new(Stats::default());
        // 600 revisits an hour: 10 at once, then one every 6 s.
        let recrawl = RecrawlConfig {
            min_interval_secs: 1,
            site_revisits_per_hour: 600,
            tick_ms: 20,
            ..Default::default()
        };
        let f = Frontier::with_store(CrawlerConfig::default(), stats.clone(), store)
            .await
            .unwrap()
            .recrawling(recrawl);
        let now = schedule::now_ms();
        let pages: Vec<NewPage> = (0..30)
            .map(|i| NewPage {
                digest: i,
                url: format!("http://a.test/{i}"),
                site: "a.test".into(),
                depth: 1,
                interval_ms: 3_600_000,
                due_ms: now,
                listed_ms: now,
            })
            .collect();
        f.store.as_ref().unwrap().schedule(&pages).await.unwrap();
        let bus = EmbeddedBus::default();
        let dynbus: Arc<dyn Bus> = Arc::new(bus.clone());
        let f = Arc::new(f);
        let scheduler = tokio::spawn(f.clone().schedule(dynbus));
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let got = drain(&bus).await;
        bus.close();
        scheduler.await.unwrap().unwrap();
        assert_eq!(got.len(), 10, "the burst, and no more");
        assert!(got.iter().all(|r| r.revisit.is_some()));
        assert_eq!(stats.get(Counter::Revisits), 10);
        assert_eq!(stats.get(Counter::RevisitsDeferred), 20);
        // The 20 held back fall due one budget slot apart, not all at once.
        let store = crate::store::SqliteStore::open(&path).unwrap();
        let mut dues: Vec<u64> = Vec::new();
        for d in 0..30u128 {
            let r = store.row(d).await.unwrap().unwrap();
            if r.due_ms < now + 3_000_000 {
                dues.push(r.due_ms);
            }
        }
        dues.sort();
        assert_eq!(dues.len(), 20);
        assert!(dues.windows(2).all(|w| w[1] - w[0] == 6_000), "{dues:?}");
    }

    #[tokio::test]
    async fn state_from_before_the_schedule_is_scheduled_as_it_is_linked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(crate::store::SQLITE_FILE);
        let open = |recrawl: bool| {
            let path = path.clone();
            async move {
                let store = Box::new(crate::store::SqliteStore::open(&path).unwrap());
                let cfg = RecrawlConfig {
                    enabled: recrawl,
                    ..Default::default()
                };
                Frontier::with_store(CrawlerConfig::default(), Arc::new(Stats::default()), store)
                    .await
                    .unwrap()
                    .recrawling(cfg)
            }
        };
        let report = Discovered {
            from: "http://a.test/".into(),
            depth: 0,
            links: vec!["http://a.test/x".into(), "http://a.test/y".into()],
            ..Default::default()
        };
        // An older frontier requested the seed, /x and /y, and kept no schedule.
        let old = open(false).await;
        let bus = EmbeddedBus::default();
        old.seed(
            &bus,
            &Frontier::parse_seeds(&["http://a.test/".into()]).unwrap(),
        )
        .await
        .unwrap();
        old.handle(&bus, &report).await.unwrap();
        assert_eq!(drain(&bus).await.len(), 3);
        drop(old);
        let f = open(true).await;
        let bus = EmbeddedBus::default();
        f.recover(&bus).await.unwrap();
        let store = f.store.as_ref().unwrap();
        assert_eq!(store.scheduled().await.unwrap(), 0);
        // The seed's page is fetched again and still links to /x and /y: they go on the
        // schedule, without being requested again now.
        f.handle(&bus, &report).await.unwrap();
        assert!(drain(&bus).await.is_empty());
        assert_eq!(store.scheduled().await.unwrap(), 2);
    }

    #[tokio::test]
    async fn frontiers_sharing_a_store_share_seeds_and_claims() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(crate::store::SQLITE_FILE);
        let open = || async {
            let store = Box::new(crate::store::SqliteStore::open(&path).unwrap());
            let stats = Arc::new(Stats::default());
            Frontier::with_store(CrawlerConfig::default(), stats, store)
                .await
                .unwrap()
        };
        // The second frontier starts before the first is given its seeds.
        let (f1, f2) = (open().await, open().await);
        let bus = EmbeddedBus::default();
        let seeds = Frontier::parse_seeds(&["http://a.test/".into()]).unwrap();
        f1.seed(&bus, &seeds).await.unwrap();
        let d = Discovered {
            from: "http://a.test/".into(),
            depth: 0,
            links: vec!["http://a.test/x".into(), "http://a.test/y".into()],
            images: vec![],
            ..Default::default()
        };
        // Both get a copy of the report (a redelivery): each URL is requested once.
        f2.handle(&bus, &d).await.unwrap();
        f1.handle(&bus, &d).await.unwrap();
        let got: Vec<String> = drain(&bus).await.into_iter().map(|r| r.url).collect();
        assert_eq!(
            got,
            ["http://a.test/", "http://a.test/x", "http://a.test/y"]
        );
    }
}
