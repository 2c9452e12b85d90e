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
    /// Alerts whose evidence this run kept (`[evidence]`; 0 without an evidence key).
    pub evidence_kept: u64,
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
    /// Continuous watch (`run` without `--once`): `recrawl.revisits` requested,
    /// `recrawl.deferred` by the budget, `recrawl.unchanged` (same content, not re-published)
    /// `recrawl.not-modified` (the site answered 304), `pastes.listings` (paste listings
    /// polled), `pastes.listed` (paste links handed on), `recrawl.bumped` (known pages a listing
    /// moved to its top, revisited at once) and `sites.mirrors-announced` (new
    /// mirror addresses sites announced, listed by `leakwatch sites`).
    pub recrawl: BTreeMap<String, u64>,
    /// Over every stored alert that says when its page was fetched: how long the pipeline
    /// took from that fetch to the alert, and how long the page waited from its first
    /// appearance in a listing to its fetch.
    pub detection_latency: Option<Latency>,
}

/// Medians and 95th percentiles, in seconds (alert times have second precision).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Latency {
    pub alerts: usize,
    pub fetch_to_alert_median_secs: u64,
    pub fetch_to_alert_p95_secs: u64,
    /// Alerts whose page came from a listing (not a seed or a revisit).
    pub listed_alerts: usize,
    pub listed_to_fetch_median_secs: Option<u64>,
    pub listed_to_fetch_p95_secs: Option<u64>,
}

impl Latency {
    /// From the alerts' timestamps; `None` when no alert carries them.
    pub fn of(alerts: &[schema::Alert]) -> Option<Latency> {
        let secs = |a: Option<&str>, b: &str| {
            let a = schema::unix_from_rfc3339(a?)?;
            Some(schema::unix_from_rfc3339(b)?.saturating_sub(a))
        };
        let mut fetch: Vec<u64> = alerts
            .iter()
            .filter_map(|a| secs(a.page_fetched_at.as_deref(), &a.detected_at))
            .collect();
        let mut listed: Vec<u64> = alerts
            .iter()
            .filter_map(|a| secs(a.listed_at.as_deref(), a.page_fetched_at.as_deref()?))
            .collect();
        if fetch.is_empty() {
            return None;
        }
        Some(Latency {
            alerts: fetch.len(),
            fetch_to_alert_median_secs: quantile(&mut fetch, 0.5)?,
            fetch_to_alert_p95_secs: quantile(&mut fetch, 0.95)?,
            listed_alerts: listed.len(),
            listed_to_fetch_median_secs: quantile(&mut listed, 0.5),
            listed_to_fetch_p95_secs: quantile(&mut listed, 0.95),
        })
    }
}

/// The nearest-rank quantile `q` of `v`.
pub fn quantile(v: &mut [u64], q: f64) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    Some(v[rank - 1])
}

/// What the summary needs besides the counters.
pub(crate) struct Extra {
    pub total_alerts: usize,
    pub dead_lettered: u64,
    pub elapsed_secs: f64,
    pub transport: Option<crate::Transport>,
    pub unreached_seeds: Vec<String>,
    pub detection_latency: Option<Latency>,
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
            evidence_kept: stats.get(Counter::EvidenceKept),
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
            recrawl: [
                Counter::Revisits,
                Counter::RevisitsDeferred,
                Counter::PagesUnchanged,
                Counter::PagesNotModified,
                Counter::MirrorsAnnounced,
                Counter::RevisitsBumped,
                Counter::PasteListings,
                Counter::PastesListed,
            ]
            .into_iter()
            .map(|c| (c.name().to_string(), stats.get(c)))
            .filter(|(_, v)| *v > 0)
            .collect(),
            detection_latency: extra.detection_latency,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(listed: Option<u64>, fetched: Option<u64>, detected: u64) -> schema::Alert {
        let t = schema::rfc3339_from_unix;
        let mut a = alerts::image("x", "http://a.test/x.jpg", None, 0, "pdq");
        a.listed_at = listed.map(t);
        a.page_fetched_at = fetched.map(t);
        a.detected_at = t(detected);
        a
    }

    #[test]
    fn latency_is_measured_from_the_alerts_timestamps() {
        assert_eq!(Latency::of(&[alert(None, None, 10)]), None);
        let mut all: Vec<schema::Alert> =
            (0..19).map(|i| alert(None, Some(100), 101 + i)).collect();
        all.push(alert(Some(1_000), Some(1_030), 1_100));
        let l = Latency::of(&all).unwrap();
        assert_eq!((l.alerts, l.listed_alerts), (20, 1));
        // 1..=19 s and one of 70 s: the median is the 10th, the p95 the 19th.
        assert_eq!(
            (l.fetch_to_alert_median_secs, l.fetch_to_alert_p95_secs),
            (10, 19)
        );
        assert_eq!(l.listed_to_fetch_median_secs, Some(30));
        assert_eq!(quantile(&mut [], 0.5), None);
    }
}
