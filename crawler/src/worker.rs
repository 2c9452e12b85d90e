//! Crawler workers: take a crawl request, fetch it politely, and publish what it yielded —
//! the extracted page (to the pages fanout), its links and image URLs (to the frontier), and
//! images (to the matchers). A request is acked only after all of that is published, so a
//! worker that dies mid-request loses nothing.
//!
//! When the way out is down (the SOCKS proxy or the Tor client, [`FetchError::TransportDown`])
//! a worker keeps its request and tries it again on a backoff schedule until the transport is
//! back or the node stops: fetching pauses, queued requests stay queued, and the crawler
//! reports itself not ready meanwhile ([`Crawler::transport_up`]).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bus::stats::{kinds, Timing};
use bus::{Bus, BusError, Consumers, Counter, Handled, Handler, Stats};
use schema::names::{
    CRAWL_DISCOVERED, CRAWL_REQUESTS, IMAGES, PAGES_FOR_INDEXER, PAGES_FOR_MATCHER,
};
use schema::{
    CrawlRequest, Discovered, FetchedImage, FetchedPage, Message, PageOutcome, ResourceKind,
    Validators,
};
use sha2::{Digest, Sha256};
use url::Url;

use crate::archive::ArchiveLimits;
use crate::extract::{extract, ExtractLimits};
use crate::fetch::{decode_html, fetch, image_magic, Fetched, Sniffed};
use crate::parse::Cut;
use crate::politeness::HostGate;
use crate::textbody::{base64_images, extract_text};
use crate::transport::{Fetcher, Limits, Patience};
use crate::urls::{is_onion, site_of};
use crate::{CrawlerConfig, FetchError};

/// The crawler role of one process.
pub struct Crawler {
    config: CrawlerConfig,
    fetcher: Arc<dyn Fetcher>,
    gate: HostGate,
    stats: Arc<Stats>,
    extract_limits: ExtractLimits,
    archive_limits: ArchiveLimits,
    /// Workers currently waiting for the transport to come back.
    waiting_for_transport: AtomicUsize,
    /// What the last [`Crawler::probe_transport`] found (up until one finds otherwise).
    probed_up: AtomicBool,
    /// Sites that answered at least once (any HTTP response).
    reached: Mutex<HashSet<String>>,
}

/// Longest wait between two tries of a request while the transport is down.
const OUTAGE_BACKOFF_MAX: Duration = Duration::from_secs(5);

impl Crawler {
    pub fn new(config: CrawlerConfig, fetcher: Arc<dyn Fetcher>, stats: Arc<Stats>) -> Self {
        let extract_limits = ExtractLimits {
            max_data_uri_bytes: config.max_image_bytes,
            ..ExtractLimits::default()
        };
        let archive_limits = ArchiveLimits {
            max_entry_bytes: config.max_image_bytes,
            ..ArchiveLimits::default()
        };
        Crawler {
            archive_limits,
            gate: HostGate::new(Duration::from_millis(config.politeness_delay_ms)),
            config,
            fetcher,
            stats,
            extract_limits,
            waiting_for_transport: AtomicUsize::new(0),
            probed_up: AtomicBool::new(true),
            reached: Mutex::new(HashSet::new()),
        }
    }

    /// Spaces requests to these sites by their own delay (a paste site's rate limit).
    pub fn with_site_delays(mut self, delays: HashMap<String, Duration>) -> Self {
        self.gate = self.gate.with_site_delays(delays);
        self
    }

    /// False while a worker waits for the transport (proxy or Tor client) to come back, or
    /// since the last [`Crawler::probe_transport`] found it down.
    pub fn transport_up(&self) -> bool {
        self.waiting_for_transport.load(Ordering::SeqCst) == 0
            && self.probed_up.load(Ordering::SeqCst)
    }

    /// Asks the transport whether the way out is up (also when no request is being
    /// fetched: an idle crawler behind a dead Tor client is not ready). Logs each change.
    pub async fn probe_transport(&self) -> bool {
        let result = self.fetcher.probe().await;
        let up = result.is_ok();
        if self.probed_up.swap(up, Ordering::SeqCst) != up {
            match result {
                Ok(()) => tracing::info!("the transport is up again"),
                Err(e) => tracing::warn!(error = %e, "the transport is down"),
            }
        }
        up
    }

    /// Whether `site` (as [`site_of`] names it) has answered at least once.
    pub fn reached(&self, site: &str) -> bool {
        self.lock_reached().contains(site)
    }

    fn lock_reached(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.reached.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `config.workers` concurrent workers until the bus closes.
    pub async fn run(self: Arc<Self>, bus: Arc<dyn Bus>) -> Result<(), BusError> {
        let consumers = Consumers {
            queue: CRAWL_REQUESTS,
            prefetch: self.config.prefetch,
            workers: self.config.workers,
        };
        let stats = self.stats.clone();
        bus::serve::<CrawlRequest, _>(bus, consumers, stats, self).await
    }

    /// Fetches one request and publishes its results. Fetch failures are counted and settled
    /// here; only a bus failure is returned (the request is then retried). Every page request
    /// ends with a report to the frontier, whatever its outcome: the recrawl schedule and the
    /// sites' liveness are kept from them.
    pub async fn handle(&self, bus: &dyn Bus, req: &CrawlRequest) -> Result<(), BusError> {
        let Ok(url) = Url::parse(&req.url) else {
            self.stats.error(FetchError::BadUrl.kind());
            return Ok(());
        };
        self.gate.wait(&site_of(&url)).await;
        let max_bytes = match req.kind {
            ResourceKind::Page => self.config.max_page_bytes,
            ResourceKind::Image => self.config.max_image_bytes,
        };
        let limits = Limits {
            patience: patience(req, &url),
            conditional: req.revisit.clone(),
            ..self.config.limits(max_bytes)
        };
        let fetched = self.fetch_through_outages(bus, &url, &limits).await?;
        if fetched
            .as_ref()
            .map_or_else(FetchError::site_answered, |_| true)
        {
            self.lock_reached().insert(site_of(&url));
        }
        let fetched = match fetched {
            Ok(f) => f,
            Err(e) => {
                self.stats.error(e.kind());
                tracing::info!(url = %url, error = %e, "fetch failed");
                let outcome = if e.site_answered() {
                    PageOutcome::Refused
                } else {
                    PageOutcome::Unreachable
                };
                return self.report(bus, req, outcome, Validators::default()).await;
            }
        };
        match (req.kind, fetched.sniffed) {
            (ResourceKind::Page, Sniffed::NotModified) => {
                self.stats.incr(Counter::PagesNotModified);
                let kept = req.revisit.clone().unwrap_or_default();
                self.report(bus, req, PageOutcome::Unchanged, kept).await
            }
            (ResourceKind::Image, Sniffed::Image) => self.publish_image(bus, req, &fetched).await,
            (ResourceKind::Page, Sniffed::Image) => {
                // A page URL that serves an image: judged by its bytes on a revisit.
                let (seen, unchanged) = self.judge_bytes(req, &fetched.response.body);
                if unchanged {
                    return self.report(bus, req, PageOutcome::Unchanged, seen).await;
                }
                self.publish_image(bus, req, &fetched).await?;
                self.report(bus, req, PageOutcome::Changed, seen).await
            }
            (ResourceKind::Page, Sniffed::Archive) => self.publish_archive(bus, req, fetched).await,
            (ResourceKind::Page, Sniffed::Html | Sniffed::Text) => {
                self.publish_page(bus, req, fetched).await
            }
            (ResourceKind::Image, _) => {
                self.stats.error(FetchError::NotAnImage.kind());
                Ok(())
            }
            (ResourceKind::Page, _) => {
                self.stats.incr(Counter::CrawlerSkippedContent);
                self.report(bus, req, PageOutcome::Refused, Validators::default())
                    .await
            }
        }
    }

    /// Tells the frontier how a page request ended (nothing for images: they are leaves).
    async fn report(
        &self,
        bus: &dyn Bus,
        req: &CrawlRequest,
        outcome: PageOutcome,
        validators: Validators,
    ) -> Result<(), BusError> {
        if req.kind != ResourceKind::Page {
            return Ok(());
        }
        let report = Discovered {
            from: req.url.clone(),
            depth: req.depth,
            outcome,
            fetched_at: Some(schema::now_rfc3339()),
            validators,
            ..Default::default()
        };
        bus.publish("", CRAWL_DISCOVERED, report.encode()).await
    }

    /// One fetch (redirects followed), its duration recorded unless the transport was down.
    async fn timed_fetch(&self, url: &Url, limits: &Limits) -> Result<Fetched, FetchError> {
        let started = std::time::Instant::now();
        let r = fetch(
            self.fetcher.as_ref(),
            url,
            limits,
            self.config.max_redirects,
        )
        .await;
        if !matches!(r, Err(FetchError::TransportDown(_))) {
            self.stats.observe(Timing::Fetch, started.elapsed());
        }
        r
    }

    /// Fetches `url`, waiting out transport outages. The outer error is the bus closing while
    /// the transport was still down (the request is then left for another run).
    async fn fetch_through_outages(
        &self,
        bus: &dyn Bus,
        url: &Url,
        limits: &Limits,
    ) -> Result<Result<Fetched, FetchError>, BusError> {
        let mut r = self.timed_fetch(url, limits).await;
        if !matches!(r, Err(FetchError::TransportDown(_))) {
            return Ok(r);
        }
        self.waiting_for_transport.fetch_add(1, Ordering::SeqCst);
        let mut delay = Duration::from_millis(250);
        while let Err(e @ FetchError::TransportDown(_)) = &r {
            if bus.is_closed() {
                break;
            }
            tracing::warn!(url = %url, error = %e, ?delay, "transport down: request held");
            self.stats.error(e.kind());
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(OUTAGE_BACKOFF_MAX);
            r = self.timed_fetch(url, limits).await;
        }
        self.waiting_for_transport.fetch_sub(1, Ordering::SeqCst);
        match r {
            Err(FetchError::TransportDown(why)) => {
                tracing::warn!(url = %url, error = %why, "stopping while the transport is down");
                Err(BusError::Closed)
            }
            r => Ok(r),
        }
    }

    async fn publish_image(
        &self,
        bus: &dyn Bus,
        req: &CrawlRequest,
        fetched: &Fetched,
    ) -> Result<(), BusError> {
        let body = &fetched.response.body;
        let img = FetchedImage {
            url: fetched.final_url.to_string(),
            page_url: req.referrer.clone(),
            content_type: fetched.response.header("content-type").map(str::to_string),
            sha256: schema::sha256_hex(body),
            fetched_at: schema::now_rfc3339(),
            page_fetched_at: req.page_fetched_at.clone(),
            listed_at: req.listed_at.clone(),
            exchange: Some(fetched.response.exchange(&fetched.final_url)),
            bytes: body.clone(),
        };
        bus.publish("", IMAGES, img.encode()).await?;
        self.stats.incr(Counter::Images);
        Ok(())
    }

    /// A body judged by its bytes (an image or an attachment behind a page URL): its
    /// validators, and whether a revisit found it as it was (counted).
    fn judge_bytes(&self, req: &CrawlRequest, body: &[u8]) -> (Validators, bool) {
        let seen = Validators {
            content: Some(schema::sha256_hex(body)),
            ..Default::default()
        };
        let unchanged = req
            .revisit
            .as_ref()
            .is_some_and(|r| r.content == seen.content);
        if unchanged {
            self.stats.incr(Counter::PagesUnchanged);
        }
        (seen, unchanged)
    }

    /// Publishes the images inside an attachment, each as `ARCHIVE_URL#PATH/IN/ARCHIVE`.
    async fn publish_archive(
        &self,
        bus: &dyn Bus,
        req: &CrawlRequest,
        fetched: Fetched,
    ) -> Result<(), BusError> {
        let (seen, unchanged) = self.judge_bytes(req, &fetched.response.body);
        if unchanged {
            return self.report(bus, req, PageOutcome::Unchanged, seen).await;
        }
        let limits = self.archive_limits.clone();
        let body = fetched.response.body;
        let Ok(unpacked) =
            tokio::task::spawn_blocking(move || crate::archive::unpack(&body, &limits)).await
        else {
            self.stats.error(kinds::ARCHIVE_PANIC);
            return self.report(bus, req, PageOutcome::Changed, seen).await;
        };
        for p in &unpacked.problems {
            tracing::info!(url = %fetched.final_url, problem = p.kind(), "archive partly unread");
            self.stats.error(p.kind());
        }
        let now = schema::now_rfc3339();
        for member in unpacked.images {
            let mut url = fetched.final_url.clone();
            url.set_fragment(Some(&member.name));
            let img = FetchedImage {
                url: url.to_string(),
                page_url: req.referrer.clone(),
                content_type: Some(crate::textbody::mime_of(&member.bytes).to_string()),
                sha256: schema::sha256_hex(&member.bytes),
                fetched_at: now.clone(),
                page_fetched_at: req.page_fetched_at.clone(),
                listed_at: req.listed_at.clone(),
                exchange: None,
                bytes: member.bytes,
            };
            bus.publish("", IMAGES, img.encode()).await?;
            self.stats.incr(Counter::Images);
        }
        self.report(bus, req, PageOutcome::Changed, seen).await
    }

    async fn publish_page(
        &self,
        bus: &dyn Bus,
        req: &CrawlRequest,
        fetched: Fetched,
    ) -> Result<(), BusError> {
        let limits = self.extract_limits.clone();
        let page_url = fetched.final_url.clone();
        let etag = validator(&fetched.response, "etag");
        let last_modified = validator(&fetched.response, "last-modified");
        let exchange = fetched.response.exchange(&fetched.final_url);
        let body = fetched.response.body;
        let content_type = fetched
            .response
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let sha = schema::sha256_hex(&body);
        let sniffed = fetched.sniffed;
        let parsed = tokio::task::spawn_blocking(move || {
            let (decoded, guessed) = decode_html(content_type.as_deref(), &body);
            let (mut extracted, hidden) = if sniffed == Sniffed::Text {
                extract_text(&decoded, &page_url, &limits)
            } else {
                let extracted = extract(&decoded, &page_url, &limits);
                // Base64 pasted into a page's visible text (a `<pre>` block, a comment).
                let room = limits
                    .max_images
                    .saturating_sub(extracted.inline_images.len());
                let hidden = base64_images(&extracted.text, limits.max_data_uri_bytes, room);
                (extracted, hidden)
            };
            for img in &hidden.images {
                if !extracted.inline_images.contains(img) {
                    extracted.inline_images.push(img.clone());
                }
            }
            (extracted, guessed, hidden.too_large, body)
        })
        .await;
        let Ok((extracted, guessed_encoding, too_large, body)) = parsed else {
            self.stats.error(kinds::EXTRACT_PANIC);
            return Ok(());
        };
        for _ in 0..too_large {
            self.stats.error(kinds::EXTRACT_BASE64_TOO_LARGE);
        }
        match extracted.cut {
            Some(Cut::TooDeep) => self.stats.error(kinds::HTML_TOO_DEEP),
            Some(Cut::TooSlow) => self.stats.error(kinds::HTML_TOO_SLOW),
            None => {}
        }
        if guessed_encoding {
            self.stats.error(kinds::HTML_UNDECLARED_ENCODING);
        }
        let validators = Validators {
            etag,
            last_modified,
            content: Some(content_digest(&extracted)),
            links: Some(links_digest(&extracted)),
            inline: inline_prefixes(&extracted),
        };
        let revisit = req.revisit.as_ref();
        if revisit.is_some_and(|r| r.content.is_some() && r.content == validators.content) {
            // The same text, links and images as last time: nothing to index or match again.
            self.stats.incr(Counter::PagesUnchanged);
            return self
                .report(bus, req, PageOutcome::Unchanged, validators)
                .await;
        }
        let now = schema::now_rfc3339();
        let page = FetchedPage {
            url: fetched.final_url.to_string(),
            host: site_of(&fetched.final_url),
            title: extracted.title,
            text: extracted.text,
            sha256: sha,
            fetched_at: now.clone(),
            depth: req.depth,
            links: extracted.links.iter().map(Url::to_string).collect(),
            images: extracted.images.iter().map(Url::to_string).collect(),
            listed_at: req.listed_at.clone(),
            exchange: Some(exchange),
            body,
        };
        // Inline images the last fetch of this page already sent to the matchers.
        let matched: HashSet<&str> = revisit
            .and_then(|r| r.inline.as_deref())
            .map(|s| s.split(',').collect())
            .unwrap_or_default();
        for inline in &extracted.inline_images {
            if !image_magic(&inline.bytes) {
                self.stats.error(kinds::EXTRACT_BAD_DATA_URI);
                continue;
            }
            let sha = schema::sha256_hex(&inline.bytes);
            if matched.contains(&sha[..INLINE_PREFIX]) {
                continue;
            }
            let img = FetchedImage {
                url: format!("data:{};sha256={sha}", inline.mime),
                page_url: Some(page.url.clone()),
                content_type: Some(inline.mime.clone()),
                sha256: sha,
                fetched_at: now.clone(),
                page_fetched_at: Some(now.clone()),
                listed_at: req.listed_at.clone(),
                exchange: None,
                bytes: inline.bytes.clone(),
            };
            bus.publish("", IMAGES, img.encode()).await?;
            self.stats.incr(Counter::Images);
        }
        let discovered = Discovered {
            from: page.url.clone(),
            depth: req.depth,
            links: page.links.clone(),
            images: page.images.clone(),
            requested: (page.url != req.url).then(|| req.url.clone()),
            outcome: PageOutcome::Changed,
            fetched_at: Some(now.clone()),
            validators,
            mirrors: extracted.mirrors.iter().map(Url::to_string).collect(),
            listed_at: req.listed_at.clone(),
        };
        // The raw response goes to the matchers only (the evidence of a text alert); the
        // indexer gets the page without it.
        let bare = FetchedPage {
            body: Vec::new(),
            exchange: None,
            ..page.clone()
        };
        let (for_matcher, for_indexer) = (page.encode(), bare.encode());
        tokio::try_join!(
            bus.publish("", PAGES_FOR_MATCHER, for_matcher),
            bus.publish("", PAGES_FOR_INDEXER, for_indexer),
        )?;
        bus.publish("", CRAWL_DISCOVERED, discovered.encode())
            .await?;
        self.stats.incr(Counter::Pages);
        Ok(())
    }
}

/// A validator header of `resp`, when it is short enough to keep.
fn validator(resp: &crate::transport::RawResponse, name: &str) -> Option<String> {
    resp.header(name)
        .filter(|v| v.len() <= crate::transport::MAX_VALIDATOR_BYTES)
        .map(str::to_string)
}

/// What a page's change is judged on: its title, visible text, links and images, not its
/// markup (a rotating token in a script does not make a forum thread new), and not the values
/// of the numbers in its text: a footer's clock or "37 users online" changes on every fetch.
/// A number appearing where there was none is a change; one number turning into another in
/// place is not.
fn content_digest(e: &crate::extract::Extracted) -> String {
    let mut h = Sha256::new();
    h.update(numbers_masked(&e.title).as_bytes());
    h.update([0]);
    h.update(numbers_masked(&e.text).as_bytes());
    add_links(&mut h, e);
    for i in &e.inline_images {
        h.update([1]);
        h.update(&i.bytes);
    }
    hex128(h)
}

/// Hex digits of an inline image's sha256 remembered per page, and how many images are.
const INLINE_PREFIX: usize = 16;
const MAX_INLINE_REMEMBERED: usize = 64;

/// The page's inline images, for the next revisit to skip (`None` without any).
fn inline_prefixes(e: &crate::extract::Extracted) -> Option<String> {
    let v: Vec<String> = e
        .inline_images
        .iter()
        .take(MAX_INLINE_REMEMBERED)
        .map(|i| schema::sha256_hex(&i.bytes)[..INLINE_PREFIX].to_string())
        .collect();
    (!v.is_empty()).then(|| v.join(","))
}

/// `s` with every run of digits replaced by one `#`.
fn numbers_masked(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_number = false;
    for c in s.chars() {
        if c.is_numeric() {
            if !in_number {
                out.push('#');
            }
            in_number = true;
        } else {
            out.push(c);
            in_number = false;
        }
    }
    out
}

/// The links and images alone (whether the page is a listing that moves).
fn links_digest(e: &crate::extract::Extracted) -> String {
    let mut h = Sha256::new();
    add_links(&mut h, e);
    hex128(h)
}

fn add_links(h: &mut Sha256, e: &crate::extract::Extracted) {
    for u in e.links.iter().chain(&e.images) {
        h.update([0]);
        h.update(u.as_str().as_bytes());
    }
}

fn hex128(h: Sha256) -> String {
    let d = h.finalize();
    format!(
        "{:032x}",
        u128::from_be_bytes(d[..16].try_into().expect("16 of 32 bytes"))
    )
}

/// How hard to try a site that never answered: seeds are waited for, a page on an onion only a
/// crawled link vouches for gets one attempt, everything else the usual retries.
fn patience(req: &CrawlRequest, url: &Url) -> Patience {
    match (req.kind, req.depth) {
        (ResourceKind::Page, 0) => Patience::Seed,
        (ResourceKind::Page, _) if is_onion(url) => Patience::Probe,
        _ => Patience::Normal,
    }
}

#[async_trait]
impl Handler<CrawlRequest> for Crawler {
    /// Fetch failures are counted and settled in [`Crawler::handle`]; only a bus failure
    /// (the request is then retried) is an error.
    async fn handle(&self, bus: &dyn Bus, req: CrawlRequest) -> Result<Handled, BusError> {
        Crawler::handle(self, bus, &req).await?;
        Ok(Handled::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::RawResponse;
    use base64::Engine;
    use bus::EmbeddedBus;

    /// A site of one page whose body the test sets; answers 304 to a matching `ETag`.
    struct OnePage(Mutex<(String, &'static str)>);

    #[async_trait]
    impl Fetcher for OnePage {
        async fn get(&self, _: &Url, limits: &Limits) -> Result<RawResponse, FetchError> {
            let (body, etag) = self.0.lock().unwrap().clone();
            let mut headers = http::HeaderMap::new();
            headers.insert("etag", etag.parse().unwrap());
            headers.insert("content-type", "text/html".parse().unwrap());
            let not_modified = limits
                .conditional
                .as_ref()
                .is_some_and(|v| v.etag.as_deref() == Some(etag));
            Ok(RawResponse {
                request_headers: http::HeaderMap::new(),
                status: if not_modified { 304 } else { 200 },
                headers,
                body: if not_modified {
                    vec![]
                } else {
                    body.into_bytes()
                },
            })
        }
    }

    /// What one request yielded: pages and images published, and the report.
    async fn crawl(c: &Crawler, revisit: Option<Validators>) -> (usize, usize, Discovered) {
        let bus = EmbeddedBus::default();
        let req = CrawlRequest {
            url: "http://forum.test/t/1".into(),
            depth: 1,
            revisit,
            ..Default::default()
        };
        c.handle(&bus, &req).await.unwrap();
        let count = |q: &str| {
            let bus = bus.clone();
            let q = q.to_string();
            async move {
                let mut c = bus.consume(&q, 100).await.unwrap();
                let mut out = vec![];
                while let Ok(Some(d)) =
                    tokio::time::timeout(Duration::from_millis(50), c.next()).await
                {
                    out.push(d.payload.clone());
                    d.ack().await.unwrap();
                }
                out
            }
        };
        let images = count(IMAGES).await.len();
        let reports = count(CRAWL_DISCOVERED).await;
        let report = Discovered::decode(&reports[0]).unwrap();
        (c.stats.get(Counter::Pages) as usize, images, report)
    }

    #[test]
    fn numbers_are_masked_by_run() {
        assert_eq!(
            numbers_masked("Server time 07:32:05, 37 online"),
            "Server time #:#:#, # online"
        );
        assert_eq!(numbers_masked("KX7-4821 ٣٤ x"), "KX#-# # x");
        assert_ne!(numbers_masked("reply"), numbers_masked("reply 123456789"));
    }

    #[tokio::test]
    async fn a_revisit_publishes_only_what_changed() {
        let png = base64::engine::general_purpose::STANDARD.encode(b"\x89PNG\r\n\x1a\nabc");
        let html = |reply: &str| {
            format!("<title>t</title><p>leak</p><img src='data:image/png;base64,{png}'>{reply}")
        };
        let site = Arc::new(OnePage(Mutex::new((
            html("<p>Server time 07:32:05</p>"),
            "\"v1\"",
        ))));
        let stats = Arc::new(Stats::default());
        let cfg = CrawlerConfig {
            politeness_delay_ms: 0,
            ..Default::default()
        };
        let c = Crawler::new(cfg, site.clone(), stats.clone());
        let (pages, images, first) = crawl(&c, None).await;
        assert_eq!((pages, images, first.outcome), (1, 1, PageOutcome::Changed));
        // The site's ETag holds: 304, nothing published.
        let (pages, images, r) = crawl(&c, Some(first.validators.clone())).await;
        assert_eq!((pages, images, r.outcome), (1, 0, PageOutcome::Unchanged));
        assert_eq!(stats.get(Counter::PagesNotModified), 1);
        // A new ETag, the same content but for the footer's clock: found unchanged.
        *site.0.lock().unwrap() = (html("<p>Server time 07:32:09</p>"), "\"v2\"");
        let (pages, images, r) = crawl(&c, Some(first.validators.clone())).await;
        assert_eq!((pages, images, r.outcome), (1, 0, PageOutcome::Unchanged));
        assert_eq!(stats.get(Counter::PagesUnchanged), 1);
        // A reply: the page is published again, its inline image is not matched again.
        *site.0.lock().unwrap() = (html("<p>reply</p>"), "\"v3\"");
        let (pages, images, r) = crawl(&c, Some(first.validators.clone())).await;
        assert_eq!((pages, images, r.outcome), (2, 0, PageOutcome::Changed));
        assert_ne!(r.validators.content, first.validators.content);
        assert_eq!(r.validators.links, first.validators.links);
    }
}
