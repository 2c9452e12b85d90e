//! Crawler workers: take a crawl request, fetch it politely, and publish what it yielded —
//! the extracted page (to the pages fanout), its links and image URLs (to the frontier), and
//! images (to the matchers). A request is acked only after all of that is published, so a
//! worker that dies mid-request loses nothing.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bus::stats::kinds;
use bus::{Bus, BusError, Consumers, Counter, Handled, Handler, Stats};
use schema::names::{CRAWL_DISCOVERED, CRAWL_REQUESTS, IMAGES, PAGES_EXCHANGE};
use schema::{CrawlRequest, Discovered, FetchedImage, FetchedPage, Message, ResourceKind};
use url::Url;

use crate::extract::{extract, ExtractLimits};
use crate::fetch::{decode_html, fetch, image_magic, Fetched, Sniffed};
use crate::politeness::HostGate;
use crate::transport::Fetcher;
use crate::urls::site_of;
use crate::{CrawlerConfig, FetchError};

/// The crawler role of one process.
pub struct Crawler {
    config: CrawlerConfig,
    fetcher: Arc<dyn Fetcher>,
    gate: HostGate,
    stats: Arc<Stats>,
    extract_limits: ExtractLimits,
}

impl Crawler {
    pub fn new(config: CrawlerConfig, fetcher: Arc<dyn Fetcher>, stats: Arc<Stats>) -> Self {
        let extract_limits = ExtractLimits {
            max_data_uri_bytes: config.max_image_bytes,
            ..ExtractLimits::default()
        };
        Crawler {
            gate: HostGate::new(Duration::from_millis(config.politeness_delay_ms)),
            config,
            fetcher,
            stats,
            extract_limits,
        }
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
    /// here; only a bus failure is returned (the request is then retried).
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
        let limits = self.config.limits(max_bytes);
        let fetched = match fetch(
            self.fetcher.as_ref(),
            &url,
            &limits,
            self.config.max_redirects,
        )
        .await
        {
            Ok(f) => f,
            Err(e) => {
                self.stats.error(e.kind());
                tracing::info!(url = %url, error = %e, "fetch failed");
                return Ok(());
            }
        };
        match (req.kind, fetched.sniffed) {
            (_, Sniffed::Image) => self.publish_image(bus, req, &fetched).await,
            (ResourceKind::Page, Sniffed::Html) => self.publish_page(bus, req, fetched).await,
            (ResourceKind::Image, _) => {
                self.stats.error(FetchError::NotAnImage.kind());
                Ok(())
            }
            (ResourceKind::Page, _) => {
                self.stats.incr(Counter::CrawlerSkippedContent);
                Ok(())
            }
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
            bytes: body.clone(),
        };
        bus.publish("", IMAGES, img.encode()).await?;
        self.stats.incr(Counter::Images);
        Ok(())
    }

    async fn publish_page(
        &self,
        bus: &dyn Bus,
        req: &CrawlRequest,
        fetched: Fetched,
    ) -> Result<(), BusError> {
        let limits = self.extract_limits.clone();
        let page_url = fetched.final_url.clone();
        let body = fetched.response.body;
        let content_type = fetched
            .response
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let sha = schema::sha256_hex(&body);
        let parsed = tokio::task::spawn_blocking(move || {
            let (html, guessed) = decode_html(content_type.as_deref(), &body);
            (extract(&html, &page_url, &limits), guessed)
        })
        .await;
        let Ok((extracted, guessed_encoding)) = parsed else {
            self.stats.error(kinds::EXTRACT_PANIC);
            return Ok(());
        };
        if extracted.truncated_nesting {
            self.stats.error(kinds::HTML_TOO_DEEP);
        }
        if guessed_encoding {
            self.stats.error(kinds::HTML_UNDECLARED_ENCODING);
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
        };
        for inline in &extracted.inline_images {
            if !image_magic(&inline.bytes) {
                self.stats.error(kinds::EXTRACT_BAD_DATA_URI);
                continue;
            }
            let sha = schema::sha256_hex(&inline.bytes);
            let img = FetchedImage {
                url: format!("data:{};sha256={sha}", inline.mime),
                page_url: Some(page.url.clone()),
                content_type: Some(inline.mime.clone()),
                sha256: sha,
                fetched_at: now.clone(),
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
        };
        bus.publish(PAGES_EXCHANGE, "", page.encode()).await?;
        bus.publish("", CRAWL_DISCOVERED, discovered.encode())
            .await?;
        self.stats.incr(Counter::Pages);
        Ok(())
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
