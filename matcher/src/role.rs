//! The matcher role: consumes fetched images and pages, publishes image verdicts (for the
//! index and later retro-hunts) and alerts.
//!
//! Decoding and hashing are CPU work and run on the blocking pool, one per worker; a delivery
//! is acked only after its verdict and alerts are published.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bus::stats::{kinds, Family};
use bus::{Bus, BusError, Consumers, Counter, Handled, Handler, Stats};
use schema::names::{ALERTS_EXCHANGE, IMAGES, PAGES_FOR_MATCHER, VERDICTS};
use schema::{FetchedImage, FetchedPage, IdentifierSighting, ImageHash, ImageVerdict, Message};

use evidence::Vault;

use crate::engine::Engine;
use crate::{match_bytes, ImageError, MatcherConfig, Outcome, Sighted, Watchlist};

/// The matcher role of one process.
pub struct Matcher {
    config: MatcherConfig,
    engine: Arc<Engine>,
    watchlist: Arc<Watchlist>,
    stats: Arc<Stats>,
    raised: Mutex<Recent>,
    evidence: Option<Evidence>,
    negatives: Option<alerts::negatives::NegativeList>,
}

/// Where alerts' evidence is kept, and for how long.
struct Evidence {
    vault: Arc<Mutex<Vault>>,
    retention_days: u32,
}

/// How often the vault is purged of evidence past its retention.
const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Alert ids this matcher published lately: a page re-published because it changed (a reply
/// added to a thread that holds a stolen identifier) does not raise its alert again. Bounded;
/// the indexer's alert store dedupes whatever gets past it (another matcher, a restart).
struct Recent {
    ids: HashSet<String>,
    order: VecDeque<String>,
}

/// Alert ids remembered per matcher process.
const RECENT_ALERTS: usize = 100_000;

impl Recent {
    /// Whether `id` was raised lately.
    fn contains(&self, id: &str) -> bool {
        self.ids.contains(id)
    }

    fn insert(&mut self, id: &str) {
        if self.ids.insert(id.to_string()) {
            self.order.push_back(id.to_string());
            if self.order.len() > RECENT_ALERTS {
                if let Some(old) = self.order.pop_front() {
                    self.ids.remove(&old);
                }
            }
        }
    }
}

impl Matcher {
    /// A matcher over `engine` (see [`crate::open_engine`]).
    pub fn new(
        config: MatcherConfig,
        engine: Engine,
        watchlist: Watchlist,
        stats: Arc<Stats>,
    ) -> Self {
        Matcher {
            config,
            engine: Arc::new(engine),
            watchlist: Arc::new(watchlist),
            stats,
            raised: Mutex::new(Recent {
                ids: HashSet::new(),
                order: VecDeque::new(),
            }),
            evidence: None,
            negatives: None,
        }
    }

    /// Never alerts on an image on the data dir's negative list (marked a false positive
    /// by an analyst), wherever it is posted; the list is followed as it changes.
    pub fn with_negatives(mut self, data_dir: &std::path::Path) -> Self {
        self.negatives = Some(alerts::negatives::NegativeList::new(data_dir));
        self
    }

    /// Whether this image was marked a false positive.
    fn negative_listed(&self, sha256: &str) -> bool {
        self.negatives.as_ref().is_some_and(|n| n.contains(sha256))
    }

    /// Keeps, for every alert this matcher raises, the response that carried the sighting in
    /// `vault`; evidence older than `retention_days` is purged while the matcher runs.
    pub fn with_evidence(mut self, vault: Vault, retention_days: u32) -> Self {
        self.evidence = Some(Evidence {
            vault: Arc::new(Mutex::new(vault)),
            retention_days,
        });
        self
    }

    /// Whether alert `id` still needs its evidence kept (a vault is set, the alert was not
    /// raised lately by this matcher); checked before the records' bytes are copied.
    fn wants_evidence(&self, id: &str) -> bool {
        self.evidence.is_some() && !self.recent().contains(id)
    }

    /// Keeps `records()` as the evidence of `alert` (on the blocking pool), unless this
    /// matcher raised it lately or the vault already has it. A failure is counted and logged:
    /// the alert is raised all the same.
    async fn keep_evidence<F>(&self, alert: &schema::Alert, records: F)
    where
        F: FnOnce() -> Vec<evidence::warc::Record> + Send + 'static,
    {
        let Some(ev) = &self.evidence else {
            return;
        };
        if self.recent().contains(&alert.id) {
            return;
        }
        let (vault, id) = (ev.vault.clone(), alert.id.clone());
        let kept = tokio::task::spawn_blocking(move || {
            let mut v = vault.lock().unwrap_or_else(|p| p.into_inner());
            if v.has(&id) {
                return Ok(false);
            }
            v.keep(&id, &records())
        })
        .await;
        match kept {
            Ok(Ok(true)) => self.stats.incr(Counter::EvidenceKept),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => {
                self.stats.error(kinds::EVIDENCE_NOT_KEPT);
                tracing::error!(alert = %alert.id, error = %e, "evidence not kept");
            }
            Err(_) => self.stats.error(kinds::EVIDENCE_NOT_KEPT),
        }
    }

    /// Purges evidence past its retention now and every [`PURGE_EVERY`], forever.
    async fn purge_evidence(self: Arc<Self>) {
        let Some(ev) = &self.evidence else {
            return;
        };
        let mut tick = tokio::time::interval(PURGE_EVERY);
        loop {
            tick.tick().await;
            let (vault, days) = (ev.vault.clone(), ev.retention_days);
            let now = schema::unix_from_rfc3339(&schema::now_rfc3339()).unwrap_or(0);
            let purged = tokio::task::spawn_blocking(move || {
                vault
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .purge(days, now)
            })
            .await;
            match purged {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::info!(files = n, "evidence past retention purged"),
                Ok(Err(e)) => tracing::error!(error = %e, "evidence purge failed"),
                Err(_) => tracing::error!("evidence purge panicked"),
            }
        }
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.raised.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Publishes `alert` unless this matcher raised it lately.
    async fn raise(&self, bus: &dyn Bus, alert: &schema::Alert) -> Result<bool, BusError> {
        if self.recent().contains(&alert.id) {
            return Ok(false);
        }
        bus.publish(ALERTS_EXCHANGE, &alert.routing_key(), alert.encode())
            .await?;
        self.recent().insert(&alert.id);
        self.stats.incr(Counter::AlertsRaised);
        Ok(true)
    }

    /// Runs image workers and a page worker until the bus closes.
    pub async fn run(self: Arc<Self>, bus: Arc<dyn Bus>) -> Result<(), BusError> {
        let images = Consumers {
            queue: IMAGES,
            prefetch: self.config.prefetch,
            workers: self.config.effective_workers(),
        };
        let pages = Consumers {
            queue: PAGES_FOR_MATCHER,
            prefetch: 16,
            workers: 1,
        };
        let stats = self.stats.clone();
        let purger = tokio::spawn(self.clone().purge_evidence());
        let (i, p) = tokio::join!(
            bus::serve::<FetchedImage, _>(bus.clone(), images, stats.clone(), self.clone()),
            bus::serve::<FetchedPage, _>(bus, pages, stats, self),
        );
        purger.abort();
        i.and(p)
    }

    /// Decodes and matches on the blocking pool; `None` when the image is not hashed (too
    /// small or flat by design, or broken), which is counted here.
    async fn match_image(&self, img: &FetchedImage) -> Option<Outcome> {
        let (engine, config) = (self.engine.clone(), self.config.clone());
        if crate::hashing::looks_truncated(&img.bytes) {
            // Decoders render what arrived; the partial image is still hashed, as a partial
            // upload of a stolen photo is still a sighting.
            self.stats.error(kinds::IMAGE_TRUNCATED);
        }
        let bytes = img.bytes.clone();
        let result =
            tokio::task::spawn_blocking(move || match_bytes(&bytes, &engine, &config, 1)).await;
        match result {
            Ok(Ok(r)) => Some(r),
            Ok(Err(e)) => {
                match e {
                    // Icons and flat pictures: refused by design, not failures.
                    ImageError::TooSmall { .. } | ImageError::LowQuality { .. } => {
                        self.stats.incr_kind(Family::Skipped, e.kind());
                    }
                    _ => self.stats.error(e.kind()),
                }
                tracing::info!(url = %img.url, error = %e, "image not hashed");
                None
            }
            Err(_) => {
                self.stats.error(kinds::IMAGE_PANIC);
                None
            }
        }
    }
}

#[async_trait]
impl Handler<FetchedImage> for Matcher {
    /// Publishes the image's verdict (for the index and later retro-hunts), then at most one
    /// alert: an image alert naming the one stolen photo it is a copy of, or a scene alert
    /// for a frame of a stolen photo's camera that is none of the photos.
    async fn handle(&self, bus: &dyn Bus, img: FetchedImage) -> Result<Handled, BusError> {
        let Some(outcome) = self.match_image(&img).await else {
            return Ok(Handled::Done);
        };
        self.stats.incr(Counter::ImagesHashed);
        let mut sighted = outcome.sighted.as_ref();
        if sighted.is_some() && self.negative_listed(&img.sha256) {
            tracing::info!(url = %img.url, "negative-listed image: no alert");
            self.stats
                .incr_kind(Family::Skipped, "image.negative-listed");
            sighted = None;
        }
        let verdict = ImageVerdict {
            url: img.url.clone(),
            page_url: img.page_url.clone(),
            sha256: img.sha256.clone(),
            fetched_at: img.fetched_at.clone(),
            width: outcome.width,
            height: outcome.height,
            hashes: outcome.hashes.iter().map(ImageHash::from).collect(),
            matched: match sighted {
                Some(Sighted::Image { label, .. }) => vec![label.clone()],
                _ => vec![],
            },
        };
        bus.publish("", VERDICTS, verdict.encode()).await?;
        let page = img.page_url.as_deref();
        let mut alert = match sighted {
            Some(Sighted::Image {
                label,
                distance,
                algorithm,
            }) => {
                tracing::info!(url = %img.url, %label, distance, "stolen image sighted");
                alerts::image(label, &img.url, page, *distance, algorithm)
            }
            Some(Sighted::Scene {
                label,
                distance,
                nearest,
            }) => {
                tracing::info!(url = %img.url, %label, "frame of a stolen photo's camera sighted");
                alerts::scene(label, &img.url, page, *distance, nearest)
            }
            None => return Ok(Handled::Done),
        };
        alert.page_fetched_at = img.page_fetched_at.clone();
        alert.listed_at = img.listed_at.clone();
        if self.wants_evidence(&alert.id) {
            let img = img.clone();
            self.keep_evidence(&alert, move || evidence::warc::of_image(&img))
                .await;
        }
        self.raise(bus, &alert).await?;
        Ok(Handled::Done)
    }
}

#[async_trait]
impl Handler<FetchedPage> for Matcher {
    /// Scans the page's title and text for watched identifiers; one text alert per watched
    /// identifier seen, placed at its first sighting.
    async fn handle(&self, bus: &dyn Bus, page: FetchedPage) -> Result<Handled, BusError> {
        let wl = self.watchlist.clone();
        let (title, text) = (page.title.clone(), page.text.clone());
        let hits = tokio::task::spawn_blocking(move || sightings(&wl, &title, &text))
            .await
            .unwrap_or_default();
        for (label, sighting) in hits {
            let mut alert = alerts::text(&label, &page.url, sighting);
            alert.page_fetched_at = Some(page.fetched_at.clone());
            alert.listed_at = page.listed_at.clone();
            if self.wants_evidence(&alert.id) {
                let page = page.clone();
                self.keep_evidence(&alert, move || evidence::warc::of_page(&page))
                    .await;
            }
            if self.raise(bus, &alert).await? {
                tracing::info!(url = %page.url, label = %alert.label, "stolen identifier sighted");
            }
        }
        Ok(Handled::Done)
    }
}

/// The first sighting of each watched identifier in a page, title first.
fn sightings(wl: &Watchlist, title: &str, text: &str) -> Vec<(String, IdentifierSighting)> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (field, s) in [("title", title), ("text", text)] {
        for hit in wl.find(s) {
            if hit.whole && seen.insert(hit.entry) {
                let sighting = IdentifierSighting {
                    kind: hit.kind.as_str().to_string(),
                    masked: hit.masked,
                    field: field.to_string(),
                    offset: s[..hit.start].chars().count(),
                };
                out.push((hit.label, sighting));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Bank;
    use bus::EmbeddedBus;

    fn page(text: &str) -> FetchedPage {
        FetchedPage {
            url: "http://forum.test/t/1".into(),
            host: "forum.test".into(),
            title: "thread".into(),
            text: text.into(),
            sha256: String::new(),
            fetched_at: schema::now_rfc3339(),
            depth: 1,
            links: vec![],
            images: vec![],
            listed_at: None,
            exchange: None,
            body: vec![],
        }
    }

    #[tokio::test]
    async fn a_changed_page_does_not_raise_its_alert_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut wl = Watchlist::open(dir.path()).unwrap();
        wl.add("KX7-4821", crate::identifiers::Kind::Plate, Some("plate-1"))
            .unwrap();
        let stats = Arc::new(Stats::default());
        let m = Matcher::new(
            MatcherConfig::default(),
            crate::open_engine(dir.path(), MatcherConfig::default().params()).unwrap(),
            wl,
            stats.clone(),
        );
        let bus = EmbeddedBus::default();
        let first = page("fresh batch KX7-4821");
        Handler::handle(&m, &bus, first).await.unwrap();
        // A reply was added: the page changed, the plate is still there.
        let edited = page("fresh batch KX7-4821 -- reply: thanks");
        Handler::handle(&m, &bus, edited).await.unwrap();
        assert_eq!(stats.get(Counter::AlertsRaised), 1);
        // The same plate on another page is another sighting.
        let mut other = page("KX7-4821 again");
        other.url = "http://forum.test/t/2".into();
        Handler::handle(&m, &bus, other).await.unwrap();
        assert_eq!(stats.get(Counter::AlertsRaised), 2);
    }

    fn image(url: &str, img: &image::RgbImage) -> FetchedImage {
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 85)
            .encode_image(img)
            .unwrap();
        FetchedImage {
            url: url.into(),
            page_url: Some("http://forum.test/t/9".into()),
            content_type: Some("image/jpeg".into()),
            sha256: schema::sha256_hex(&bytes),
            fetched_at: schema::now_rfc3339(),
            page_fetched_at: None,
            listed_at: None,
            exchange: None,
            bytes,
        }
    }

    /// Through the role and the bus, as the indexer receives them: a copy of a stolen photo
    /// is an image alert naming it; twins of stolen photos (same model and camera, other
    /// paint, plate and driver) are never image alerts, and frames of a stolen camera come
    /// out as scene alerts with the nearest photos as context.
    #[tokio::test]
    async fn copies_alert_as_their_photo_and_twins_as_their_camera() {
        let pairs = testbed::twin_photos(31, 8, 2);
        let dir = tempfile::tempdir().unwrap();
        let mut bank = Bank::open(dir.path()).unwrap();
        for (i, (a, _)) in pairs.iter().enumerate() {
            let img = image::DynamicImage::ImageRgb8(a.clone());
            let fp = crate::fingerprint_image(&img, format!("a-{i}"), format!("{i:064x}"));
            assert!(bank.insert(fp.unwrap()));
        }
        bank.save().unwrap();
        let config = MatcherConfig::default();
        let engine = crate::open_engine(dir.path(), config.params()).unwrap();
        let stats = Arc::new(Stats::default());
        let m = Matcher::new(
            config,
            engine,
            Watchlist::open(dir.path()).unwrap(),
            stats.clone(),
        );
        let bus = EmbeddedBus::default();
        Handler::handle(&m, &bus, image("http://x/copy.jpg", &pairs[0].0))
            .await
            .unwrap();
        for (i, (_, twin)) in pairs.iter().enumerate() {
            Handler::handle(&m, &bus, image(&format!("http://x/twin-{i}.jpg"), twin))
                .await
                .unwrap();
        }
        let raised = stats.get(Counter::AlertsRaised);
        let mut alerts = bus
            .consume(schema::names::ALERTS_FOR_STORE, 64)
            .await
            .unwrap();
        let mut got = Vec::new();
        for _ in 0..raised {
            let d = alerts.next().await.unwrap();
            got.push(schema::Alert::decode(&d.payload).unwrap());
            d.ack().await.unwrap();
        }
        let copy: Vec<_> = got
            .iter()
            .filter(|a| a.url == "http://x/copy.jpg")
            .collect();
        assert_eq!(copy.len(), 1, "{got:#?}");
        assert_eq!(
            (copy[0].kind, copy[0].label.as_str()),
            (schema::AlertKind::Image, "a-0")
        );
        let twins: Vec<_> = got.iter().filter(|a| a.url.contains("twin-")).collect();
        assert!(
            twins.iter().all(|a| a.kind == schema::AlertKind::Scene),
            "a twin was named as a stolen photo: {twins:#?}"
        );
        assert!(
            twins.len() >= 4,
            "only {} of 8 twins seen as scenes",
            twins.len()
        );
        for a in &twins {
            assert!(
                a.label.starts_with("cluster-a-") && !a.context.is_empty(),
                "{a:?}"
            );
            assert_eq!(a.routing_key(), "alert.scene");
        }
    }

    #[test]
    fn recent_alerts_are_bounded() {
        let mut r = Recent {
            ids: HashSet::new(),
            order: VecDeque::new(),
        };
        for i in 0..RECENT_ALERTS + 10 {
            r.insert(&i.to_string());
        }
        assert_eq!(r.ids.len(), RECENT_ALERTS);
        assert!(!r.contains("0") && r.contains(&(RECENT_ALERTS + 9).to_string()));
    }
}
