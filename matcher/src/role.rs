//! The matcher role: consumes fetched images and pages, publishes image verdicts (for the
//! index and later retro-hunts) and alerts.
//!
//! Decoding and hashing are CPU work and run on the blocking pool, one per worker; a delivery
//! is acked only after its verdict and alerts are published.

use std::sync::Arc;

use bus::{Bus, BusError, Delivery, Stats};
use schema::names::{ALERTS_EXCHANGE, IMAGES, PAGES_FOR_MATCHER, VERDICTS};
use schema::{Alert, AlertKind, FetchedImage, FetchedPage, ImageHash, ImageVerdict, Message};

use crate::engine::Engine;
use crate::{match_bytes, Bank, ImageError, MatcherConfig, Watchlist};

/// The matcher role of one process.
pub struct Matcher {
    config: MatcherConfig,
    bank: Arc<Bank>,
    engine: Arc<Engine>,
    watchlist: Arc<Watchlist>,
    stats: Arc<Stats>,
}

impl Matcher {
    pub fn new(config: MatcherConfig, bank: Bank, watchlist: Watchlist, stats: Arc<Stats>) -> Self {
        let engine = Arc::new(Engine::from_bank(&bank, config.params()));
        Matcher {
            config,
            bank: Arc::new(bank),
            engine,
            watchlist: Arc::new(watchlist),
            stats,
        }
    }

    /// Runs image workers and a page worker until the bus closes.
    pub async fn run(self: Arc<Self>, bus: Arc<dyn Bus>) -> Result<(), BusError> {
        let workers = self.config.effective_workers();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..workers {
            let mut consumer = bus.consume(IMAGES, self.config.prefetch).await?;
            let (me, bus) = (self.clone(), bus.clone());
            tasks.spawn(async move {
                while let Some(d) = consumer.next().await {
                    me.on_image(bus.as_ref(), d).await?;
                }
                Ok::<(), BusError>(())
            });
        }
        let mut pages = bus.consume(PAGES_FOR_MATCHER, 16).await?;
        let (me, pbus) = (self.clone(), bus.clone());
        tasks.spawn(async move {
            while let Some(d) = pages.next().await {
                me.on_page(pbus.as_ref(), d).await?;
            }
            Ok(())
        });
        let mut result = Ok(());
        while let Some(r) = tasks.join_next().await {
            if let Ok(Err(e)) = r {
                result = Err(e);
            }
        }
        result
    }

    async fn on_image(&self, bus: &dyn Bus, d: Delivery) -> Result<(), BusError> {
        let img = match FetchedImage::decode(&d.payload) {
            Ok(i) => i,
            Err(e) => {
                self.stats.error("bus.undecodable");
                tracing::warn!(error = %e, "undecodable image message");
                return d.nack(false).await;
            }
        };
        let (bank, engine, config) = (self.bank.clone(), self.engine.clone(), self.config.clone());
        if crate::hashing::looks_truncated(&img.bytes) {
            // Decoders render what arrived; the partial image is still hashed, as a partial
            // upload of a stolen photo is still a sighting.
            self.stats.error("image.truncated");
        }
        let bytes = img.bytes.clone();
        let result =
            tokio::task::spawn_blocking(move || match_bytes(&bytes, &bank, &engine, &config, 1))
                .await;
        let outcome = match result {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                match e {
                    // Icons and flat pictures: refused by design, not failures.
                    ImageError::TooSmall { .. } | ImageError::LowQuality { .. } => {
                        self.stats.incr(&format!("skipped.{}", e.kind()));
                    }
                    _ => self.stats.error(e.kind()),
                }
                tracing::info!(url = %img.url, error = %e, "image not hashed");
                return d.ack().await;
            }
            Err(_) => {
                self.stats.error("image.panic");
                return d.ack().await;
            }
        };
        self.stats.incr("images.hashed");
        let matched: Vec<&crate::Candidate> =
            outcome.candidates.iter().filter(|c| c.matched).collect();
        let verdict = ImageVerdict {
            url: img.url.clone(),
            page_url: img.page_url.clone(),
            sha256: img.sha256.clone(),
            fetched_at: img.fetched_at.clone(),
            width: outcome.width,
            height: outcome.height,
            hashes: outcome
                .hashes
                .iter()
                .map(|(algorithm, hex)| ImageHash {
                    algorithm: algorithm.clone(),
                    hex: hex.clone(),
                })
                .collect(),
            matched: matched.iter().map(|c| c.label.clone()).collect(),
        };
        bus.publish("", VERDICTS, verdict.encode()).await?;
        if let Some(best) = matched.first() {
            let alert = Alert {
                id: Alert::id_for(AlertKind::Image, &best.label, &img.url),
                kind: AlertKind::Image,
                url: img.url.clone(),
                page_url: img.page_url.clone(),
                label: best.label.clone(),
                distance: best.distance,
                algorithm: best.algorithm.clone(),
                detected_at: schema::now_rfc3339(),
            };
            bus.publish(ALERTS_EXCHANGE, &alert.routing_key(), alert.encode())
                .await?;
            self.stats.incr("alerts.raised");
            tracing::info!(url = %img.url, label = %best.label, distance = best.distance, "stolen image sighted");
        }
        d.ack().await
    }

    async fn on_page(&self, bus: &dyn Bus, d: Delivery) -> Result<(), BusError> {
        let page = match FetchedPage::decode(&d.payload) {
            Ok(p) => p,
            Err(e) => {
                self.stats.error("bus.undecodable");
                tracing::warn!(error = %e, "undecodable page message");
                return d.nack(false).await;
            }
        };
        let wl = self.watchlist.clone();
        let text = format!("{}\n{}", page.title, page.text);
        let hits = tokio::task::spawn_blocking(move || wl.scan(&text))
            .await
            .unwrap_or_default();
        for label in hits {
            let alert = Alert {
                id: Alert::id_for(AlertKind::Text, &label, &page.url),
                kind: AlertKind::Text,
                url: page.url.clone(),
                page_url: Some(page.url.clone()),
                label,
                distance: 0,
                algorithm: "hmac-sha256".into(),
                detected_at: schema::now_rfc3339(),
            };
            bus.publish(ALERTS_EXCHANGE, &alert.routing_key(), alert.encode())
                .await?;
            self.stats.incr("alerts.raised");
            tracing::info!(url = %page.url, label = %alert.label, "stolen identifier sighted");
        }
        d.ack().await
    }
}
