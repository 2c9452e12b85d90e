//! `leakwatch retrohunt`: after new fingerprints are imported, check every image the index has
//! already seen and raise alerts for past sightings.
//!
//! Sightings keep no image bytes, only the hashes the matcher recorded for each view of the
//! image ([`matcher::engine::RecordedView`]), so the check is retrieval by PDQ (as recorded
//! and mirrored) and verification by signature on the recorded framing. Alerts carry the same
//! ids as live alerts, so a sighting already alerted on is not alerted twice.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use matcher::engine::{RecordedView, RECORDED_VIEW};
use matcher::{Bank, Engine};
use schema::{Alert, AlertKind, Message};

use crate::config::Config;

pub async fn run(
    data_dir: &Path,
    config: &Config,
    amqp: Option<&str>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let bank = Bank::open(data_dir)?;
    if bank.is_empty() {
        anyhow::bail!(
            "no fingerprints in {}: import some first",
            data_dir.display()
        );
    }
    let engine = Engine::from_bank(&bank, config.matcher.params());
    let index = indexer::PageIndex::open(data_dir)
        .with_context(|| format!("cannot open the index in {}", data_dir.display()))?;
    let sightings = index.image_sightings()?;
    let started = std::time::Instant::now();
    let mut alerts = Vec::new();
    let mut unrecorded = 0usize;
    for s in &sightings {
        let views: Vec<RecordedView> = s
            .hashes
            .iter()
            .filter_map(|h| h.strip_prefix(RECORDED_VIEW)?.strip_prefix(':'))
            .filter_map(RecordedView::from_hex)
            .collect();
        if views.is_empty() {
            unrecorded += 1;
            continue;
        }
        if let Some(best) = engine
            .score_recorded(&views, 1)
            .into_iter()
            .find(|c| c.matched)
        {
            let Some(fp) = bank.get(best.entry) else {
                continue;
            };
            alerts.push(Alert {
                id: Alert::id_for(AlertKind::Image, &fp.label, &s.url),
                kind: AlertKind::Image,
                url: s.url.clone(),
                page_url: (!s.page_url.is_empty()).then(|| s.page_url.clone()),
                label: fp.label.clone(),
                distance: best.distance,
                algorithm: if best.verified { "pdq+grid" } else { "pdq" }.to_string(),
                detected_at: schema::now_rfc3339(),
            });
        }
    }
    let mut new = 0usize;
    if let Some(url) = amqp {
        // Through the bus, so alert consumers see retro-hunt alerts like live ones; the
        // indexer stores them.
        let bus = bus::AmqpBus::connect(url, config.bus.delivery_limit)
            .await
            .with_context(|| format!("failed to connect to {}", crate::pipeline::redact(url)))?;
        use bus::Bus;
        for a in &alerts {
            bus.publish(schema::names::ALERTS_EXCHANGE, &a.routing_key(), a.encode())
                .await?;
        }
        new = alerts.len();
        bus.disconnect().await;
    } else {
        let mut store = indexer::AlertStore::open(data_dir)?;
        for a in &alerts {
            if store.insert(a)? {
                new += 1;
            }
        }
    }
    for a in &alerts {
        if json {
            super::print_json(a)?;
        } else {
            println!("{}\t{}\t{}", a.label, a.distance, a.url);
        }
    }
    eprintln!(
        "retro-hunt: {} sightings checked against {} fingerprints in {:.1}s: {} matched, {} new \
         alerts{}",
        sightings.len(),
        bank.len(),
        started.elapsed().as_secs_f64(),
        alerts.len(),
        new,
        if unrecorded > 0 {
            format!(", {unrecorded} sightings recorded without views (older format) skipped")
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}
