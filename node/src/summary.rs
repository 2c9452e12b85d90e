//! What a run did: the typed summary `run --once` prints (as text or JSON), built from the
//! node's counters when it stops.

use std::collections::BTreeMap;

use bus::stats::Family;
use bus::{Counter, Stats};
use serde::Serialize;

/// What a run did. The JSON field names are an interface (`run --json`).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub pages: u64,
    pub images: u64,
    pub images_hashed: u64,
    /// Alerts stored for the first time by this run.
    pub new_alerts: u64,
    /// Alerts raised again for sightings already alerted (not stored twice).
    pub repeated_alerts: u64,
    pub total_alerts: usize,
    /// Images not matched by design (`image.too-small`, `image.low-quality`), by reason.
    pub images_skipped: BTreeMap<String, u64>,
    pub errors: BTreeMap<String, u64>,
    pub dead_lettered: u64,
    /// Crawl time (after Tor bootstrap).
    pub elapsed_secs: f64,
    pub pages_per_sec: f64,
    /// `tor`, `direct` or `socks5://HOST:PORT` (`none` without a crawler role).
    pub transport: String,
    /// How long the embedded Tor client took to bootstrap (tor transport only).
    pub tor_bootstrap_secs: Option<f64>,
    /// Sites marked down (after repeated failures) when the run ended.
    pub sites_down: u64,
    /// Seeds whose site never answered (only known when this process crawled).
    pub unreached_seeds: Vec<String>,
    /// Site-health and Tor counters: `site.retries`, `site.marked-down`, `site.recovered`,
    /// `site.reprobes`, `tor.circuits`, `tor.fresh-isolation`, `frontier.dropped.onion.*`.
    pub health: BTreeMap<String, u64>,
}

/// What the summary needs besides the counters.
pub(crate) struct Extra {
    pub total_alerts: usize,
    pub dead_lettered: u64,
    pub elapsed_secs: f64,
    pub transport: Option<crate::Transport>,
    pub unreached_seeds: Vec<String>,
}

impl Summary {
    pub(crate) fn from_stats(stats: &Stats, extra: Extra) -> Summary {
        let pages = stats.get(Counter::Pages);
        let mut health: BTreeMap<String, u64> = Counter::ALL
            .into_iter()
            .filter(|c| c.is_health())
            .map(|c| (c.name().to_string(), stats.get(c)))
            .filter(|(_, v)| *v > 0)
            .collect();
        let dropped = Family::FrontierDropped.prefix();
        health.extend(
            stats
                .by_kind(Family::FrontierDropped)
                .into_iter()
                .map(|(k, v)| (format!("{dropped}.{k}"), v)),
        );
        let t = extra.transport.as_ref();
        Summary {
            pages,
            images: stats.get(Counter::Images),
            images_hashed: stats.get(Counter::ImagesHashed),
            new_alerts: stats.get(Counter::AlertsNew),
            repeated_alerts: stats.get(Counter::AlertsDuplicate),
            total_alerts: extra.total_alerts,
            images_skipped: stats.by_kind(Family::Skipped),
            errors: stats.errors(),
            dead_lettered: extra.dead_lettered,
            elapsed_secs: extra.elapsed_secs,
            pages_per_sec: if extra.elapsed_secs > 0.0 {
                pages as f64 / extra.elapsed_secs
            } else {
                0.0
            },
            transport: t.map_or_else(|| "none".to_string(), |t| t.kind.to_string()),
            tor_bootstrap_secs: t.and_then(|t| t.bootstrap).map(|d| d.as_secs_f64()),
            sites_down: t
                .and_then(|t| t.health.as_ref())
                .map_or(0, |h| h.sites_down() as u64),
            unreached_seeds: extra.unreached_seeds,
            health,
        }
    }
}
