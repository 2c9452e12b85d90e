//! The indexer role: the single writer of the index and the alert store.
//!
//! Pages and image verdicts are added to the Tantivy writer and their deliveries held until
//! the next commit; only then are they acked. Commits happen every `commit_every_docs`
//! documents or `commit_interval_ms`, whichever first, after `idle_commit_ms` without a new
//! message, and once more when the bus closes.
//! Alerts are written and fsynced one by one (they are rare and precious) before their ack.
//! A page's title, text and URLs, and an image's URLs, pass through [`Redact`] first: watched
//! identifiers never reach the index.

use std::sync::Arc;
use std::time::Duration;

use alerts::{AlertStore, StoreError};
use bus::consumer::decode;
use bus::stats::Timing;
use bus::{Bus, BusError, Counter, Delivery, Stats};
use schema::names::{ALERTS_FOR_STORE, PAGES_FOR_INDEXER, VERDICTS};
use schema::{Alert, FetchedPage, ImageVerdict, Message};
use tantivy::IndexWriter;

use crate::{IndexError, IndexerConfig, PageIndex, Redact};

/// Why the indexer stopped.
#[derive(Debug, thiserror::Error)]
pub enum IndexerError {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Alerts(#[from] StoreError),
}

/// The indexer role of one process.
pub struct Indexer {
    config: IndexerConfig,
    index: Arc<PageIndex>,
    alerts: AlertStore,
    stats: Arc<Stats>,
    redact: Arc<dyn Redact>,
}

impl Indexer {
    pub fn new(
        config: IndexerConfig,
        index: Arc<PageIndex>,
        alerts: AlertStore,
        stats: Arc<Stats>,
        redact: Arc<dyn Redact>,
    ) -> Self {
        Indexer {
            config,
            index,
            alerts,
            stats,
            redact,
        }
    }

    /// Consumes pages, verdicts and alerts until the bus closes, then commits what is pending.
    pub async fn run(mut self, bus: Arc<dyn Bus>) -> Result<(), IndexerError> {
        let writer = self.index.writer(self.config.writer_heap_bytes)?;
        let mut writer = Some(writer);
        let prefetch = self.config.commit_every_docs.clamp(1, u16::MAX as usize) as u16;
        let mut pages = bus.consume(PAGES_FOR_INDEXER, prefetch).await?;
        let mut verdicts = bus.consume(VERDICTS, prefetch).await?;
        let mut alerts = bus.consume(ALERTS_FOR_STORE, 64).await?;
        let mut pending: Vec<Delivery> = Vec::new();
        let interval = Duration::from_millis(self.config.commit_interval_ms.max(10));
        let idle = Duration::from_millis(self.config.idle_commit_ms.max(1));
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (mut pages_open, mut verdicts_open, mut alerts_open) = (true, true, true);
        while pages_open || verdicts_open || alerts_open {
            tokio::select! {
                d = pages.next(), if pages_open => match d {
                    Some(d) => self.on_page(writer.as_ref(), d, &mut pending).await?,
                    None => pages_open = false,
                },
                d = verdicts.next(), if verdicts_open => match d {
                    Some(d) => self.on_verdict(writer.as_ref(), d, &mut pending).await?,
                    None => verdicts_open = false,
                },
                d = alerts.next(), if alerts_open => match d {
                    Some(d) => self.on_alert(d).await?,
                    None => alerts_open = false,
                },
                _ = tick.tick() => {
                    if !pending.is_empty() {
                        self.commit(&mut writer, &mut pending).await?;
                    }
                }
                _ = tokio::time::sleep(idle), if !pending.is_empty() => {
                    self.commit(&mut writer, &mut pending).await?;
                }
            }
            if pending.len() >= self.config.commit_every_docs {
                self.commit(&mut writer, &mut pending).await?;
            }
        }
        if !pending.is_empty() {
            self.commit(&mut writer, &mut pending).await?;
        }
        Ok(())
    }

    async fn on_page(
        &self,
        w: Option<&IndexWriter>,
        d: Delivery,
        pending: &mut Vec<Delivery>,
    ) -> Result<(), IndexerError> {
        let what = (PAGES_FOR_INDEXER, Counter::IndexedPages);
        self.on_document(w, d, pending, what, redacted_page, PageIndex::upsert_page)
            .await
    }

    async fn on_verdict(
        &self,
        w: Option<&IndexWriter>,
        d: Delivery,
        pending: &mut Vec<Delivery>,
    ) -> Result<(), IndexerError> {
        let what = (VERDICTS, Counter::IndexedImages);
        self.on_document(
            w,
            d,
            pending,
            what,
            redacted_verdict,
            PageIndex::upsert_image,
        )
        .await
    }

    /// Decodes a message, masks it on the blocking pool (a long page costs a scan per mask
    /// pass), adds it to the writer and holds its delivery for the next commit; an
    /// undecodable message is dead-lettered at once.
    async fn on_document<M: Message + Send + 'static>(
        &self,
        w: Option<&IndexWriter>,
        d: Delivery,
        pending: &mut Vec<Delivery>,
        (queue, counter): (&'static str, Counter),
        redact: fn(&dyn Redact, M) -> M,
        upsert: fn(&PageIndex, &IndexWriter, &M) -> Result<(), IndexError>,
    ) -> Result<(), IndexerError> {
        let Some((m, d)) = decode::<M>(d, &self.stats, queue).await? else {
            return Ok(());
        };
        let redactor = self.redact.clone();
        let m = tokio::task::spawn_blocking(move || redact(redactor.as_ref(), m))
            .await
            .map_err(|e| IndexError::Io {
                path: self.index.path().to_path_buf(),
                source: std::io::Error::other(e.to_string()),
            })?;
        if let Some(w) = w {
            upsert(&self.index, w, &m)?;
        }
        self.stats.incr(counter);
        pending.push(d);
        Ok(())
    }

    async fn on_alert(&mut self, d: Delivery) -> Result<(), IndexerError> {
        let Some((a, d)) = decode::<Alert>(d, &self.stats, ALERTS_FOR_STORE).await? else {
            return Ok(());
        };
        self.stats.incr(if self.alerts.insert(&a)? {
            Counter::AlertsNew
        } else {
            Counter::AlertsDuplicate
        });
        d.ack().await?;
        Ok(())
    }

    /// Commits on the blocking pool, then acks everything the commit made durable.
    async fn commit(
        &self,
        writer: &mut Option<IndexWriter>,
        pending: &mut Vec<Delivery>,
    ) -> Result<(), IndexerError> {
        let Some(mut w) = writer.take() else {
            return Ok(());
        };
        let started = std::time::Instant::now();
        let (w, res) = tokio::task::spawn_blocking(move || {
            let r = w.commit();
            (w, r)
        })
        .await
        .map_err(|e| IndexError::Io {
            path: self.index.path().to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })?;
        *writer = Some(w);
        res.map_err(IndexError::from)?;
        self.stats.observe(Timing::IndexCommit, started.elapsed());
        self.stats.incr(Counter::IndexerCommits);
        for d in pending.drain(..) {
            d.ack().await?;
        }
        Ok(())
    }
}

/// `page` as it may be stored: title, text, URL and image URLs masked, the raw body dropped. A paste named after
/// what it holds (`/raw/KX7-4821`) names it in its URL too.
fn redacted_page(redact: &dyn Redact, mut page: FetchedPage) -> FetchedPage {
    // The raw response is evidence for the matcher, never the index's.
    page.body = Vec::new();
    page.exchange = None;
    page.title = redact.redact(&page.title).into_owned();
    page.text = redact.redact(&page.text).into_owned();
    page.url = redact.redact(&page.url).into_owned();
    for i in &mut page.images {
        *i = redact.redact(i).into_owned();
    }
    page
}

/// `v` as it may be stored: its URL (an attachment's member names, `…zip#KX7-4821.jpg`) and
/// its page's URL masked.
fn redacted_verdict(redact: &dyn Redact, mut v: ImageVerdict) -> ImageVerdict {
    v.url = redact.redact(&v.url).into_owned();
    v.page_url = v.page_url.map(|u| redact.redact(&u).into_owned());
    v
}
