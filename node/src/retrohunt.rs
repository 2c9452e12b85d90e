//! `retrohunt`: after new fingerprints are imported, check every image sighting the index
//! holds ([`matcher::retrohunt`]) and deliver the alerts — through the bus when there is one
//! (alert consumers then see them like live ones, and the indexer stores them), else straight
//! into the data dir's alert store.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bus::Bus;
use matcher::engine::SightingHash;
use matcher::retrohunt::{retro_hunt, RecordedSighting};
use schema::{Alert, Message};

use crate::{Config, NodeError};

/// What a retro-hunt did.
#[derive(Debug, Clone)]
pub struct RetroHuntReport {
    pub sightings: usize,
    pub fingerprints: usize,
    pub elapsed: Duration,
    /// One per matched sighting.
    pub alerts: Vec<Alert>,
    /// Alerts stored for the first time (all of them when published to a broker, where the
    /// indexer dedupes).
    pub new: usize,
    /// Sightings recorded without views (an older format), skipped.
    pub unrecorded: usize,
}

/// Runs a retro-hunt over the data dir's index; `bus` (a broker) receives the alerts.
pub async fn run(
    data_dir: &Path,
    config: &Config,
    bus: Option<Arc<dyn Bus>>,
) -> Result<RetroHuntReport, NodeError> {
    let engine = matcher::open_engine(data_dir, config.matcher.params())?;
    if engine.is_empty() {
        return Err(NodeError::NoFingerprints(data_dir.to_path_buf()));
    }
    let index = indexer::PageIndex::open(data_dir)?;
    let sightings: Vec<RecordedSighting> = index
        .image_sightings()?
        .into_iter()
        .map(|s| RecordedSighting {
            page_url: (!s.page_url.is_empty()).then_some(s.page_url),
            url: s.url,
            hashes: s
                .hashes
                .iter()
                .filter_map(SightingHash::from_message)
                .collect(),
        })
        .collect();
    let started = Instant::now();
    let found = retro_hunt(&engine, &sightings);
    let new = match bus {
        Some(bus) => publish(bus.as_ref(), &found.alerts).await?,
        None => {
            let mut store = alerts::AlertStore::open(data_dir)?;
            let mut new = 0;
            for a in &found.alerts {
                new += usize::from(store.insert(a)?);
            }
            new
        }
    };
    Ok(RetroHuntReport {
        sightings: found.checked,
        fingerprints: engine.len(),
        elapsed: started.elapsed(),
        alerts: found.alerts,
        new,
        unrecorded: found.unrecorded,
    })
}

async fn publish(bus: &dyn Bus, alerts: &[Alert]) -> Result<usize, NodeError> {
    for a in alerts {
        bus.publish(schema::names::ALERTS_EXCHANGE, &a.routing_key(), a.encode())
            .await?;
    }
    bus.disconnect().await;
    Ok(alerts.len())
}
