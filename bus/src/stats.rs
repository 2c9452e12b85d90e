//! Counters shared by the roles of one process: pages, images, alerts and errors by kind.
//!
//! The run summary, progress lines and (later) a metrics endpoint read them. Every name is
//! typed: a fixed [`Counter`], or a [`Family`] plus a low-cardinality kind that comes from an
//! error enum's `kind()` or from [`kinds`] (never a URL), so they can become metric labels.
//! The stored key is `name` for a counter and `family.kind` for a family member.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// One fixed counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Counter {
    /// Pages fetched and published by crawlers.
    Pages,
    /// Images fetched (or read from data URIs) and published by crawlers.
    Images,
    /// Images the matcher decoded and hashed.
    ImagesHashed,
    /// Alerts the matcher published (before dedupe).
    AlertsRaised,
    /// Alerts stored for the first time by the indexer.
    AlertsNew,
    /// Alerts the indexer already had (raised again).
    AlertsDuplicate,
    IndexedPages,
    IndexedImages,
    IndexerCommits,
    /// Responses that were neither a page nor an image.
    CrawlerSkippedContent,
    FrontierTooDeep,
    FrontierOutOfScope,
    FrontierSitePageCap,
    SiteRetries,
    SiteMarkedDown,
    SiteRecovered,
    SiteReprobes,
    TorCircuits,
    TorFreshIsolation,
    /// Scheduled revisits of known pages the frontier requested.
    Revisits,
    /// Due revisits held back by the per-site or overall budget.
    RevisitsDeferred,
    /// Revisited pages whose extracted content had not changed (not re-published).
    PagesUnchanged,
    /// Revisited pages the site answered `304 Not Modified` (conditional hits).
    PagesNotModified,
    /// Onion addresses a site announced as its mirror for the first time (flagged).
    MirrorsAnnounced,
    /// Known pages a listing moved to its top (a reply), made due at once.
    RevisitsBumped,
    /// `429`/`503` answers retried after the pause the site asked for.
    SiteRateLimited,
    /// Paste-site listings polled (HTML or JSON).
    PasteListings,
    /// Paste links a poll handed to the frontier.
    PastesListed,
    /// Alerts whose evidence (the response that carried them) the matcher kept.
    EvidenceKept,
}

impl Counter {
    pub const ALL: [Counter; 29] = [
        Counter::Pages,
        Counter::Images,
        Counter::ImagesHashed,
        Counter::AlertsRaised,
        Counter::AlertsNew,
        Counter::AlertsDuplicate,
        Counter::IndexedPages,
        Counter::IndexedImages,
        Counter::IndexerCommits,
        Counter::CrawlerSkippedContent,
        Counter::FrontierTooDeep,
        Counter::FrontierOutOfScope,
        Counter::FrontierSitePageCap,
        Counter::SiteRetries,
        Counter::SiteMarkedDown,
        Counter::SiteRecovered,
        Counter::SiteReprobes,
        Counter::TorCircuits,
        Counter::TorFreshIsolation,
        Counter::Revisits,
        Counter::RevisitsDeferred,
        Counter::PagesUnchanged,
        Counter::PagesNotModified,
        Counter::MirrorsAnnounced,
        Counter::RevisitsBumped,
        Counter::SiteRateLimited,
        Counter::PasteListings,
        Counter::PastesListed,
        Counter::EvidenceKept,
    ];

    /// The counter's stable name (summary keys, metric names).
    pub fn name(self) -> &'static str {
        match self {
            Counter::Pages => "pages",
            Counter::Images => "images",
            Counter::ImagesHashed => "images.hashed",
            Counter::AlertsRaised => "alerts.raised",
            Counter::AlertsNew => "alerts",
            Counter::AlertsDuplicate => "alerts.duplicate",
            Counter::IndexedPages => "indexed.pages",
            Counter::IndexedImages => "indexed.images",
            Counter::IndexerCommits => "indexer.commits",
            Counter::CrawlerSkippedContent => "crawler.skipped-content",
            Counter::FrontierTooDeep => "frontier.too-deep",
            Counter::FrontierOutOfScope => "frontier.out-of-scope",
            Counter::FrontierSitePageCap => "frontier.site-page-cap",
            Counter::SiteRetries => "site.retries",
            Counter::SiteMarkedDown => "site.marked-down",
            Counter::SiteRecovered => "site.recovered",
            Counter::SiteReprobes => "site.reprobes",
            Counter::TorCircuits => "tor.circuits",
            Counter::TorFreshIsolation => "tor.fresh-isolation",
            Counter::Revisits => "recrawl.revisits",
            Counter::RevisitsDeferred => "recrawl.deferred",
            Counter::PagesUnchanged => "recrawl.unchanged",
            Counter::PagesNotModified => "recrawl.not-modified",
            Counter::MirrorsAnnounced => "sites.mirrors-announced",
            Counter::RevisitsBumped => "recrawl.bumped",
            Counter::SiteRateLimited => "site.rate-limited",
            Counter::PasteListings => "pastes.listings",
            Counter::PastesListed => "pastes.listed",
            Counter::EvidenceKept => "evidence.kept",
        }
    }

    /// Site-health and Tor counters (the summary's `health` table).
    pub fn is_health(self) -> bool {
        matches!(
            self,
            Counter::SiteRetries
                | Counter::SiteMarkedDown
                | Counter::SiteRecovered
                | Counter::SiteReprobes
                | Counter::SiteRateLimited
                | Counter::TorCircuits
                | Counter::TorFreshIsolation
        )
    }
}

/// A counter per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// Failures by kind (`fetch.timeout`, `bus.undecodable` …).
    Error,
    /// Images not matched by design (`image.too-small`, `image.low-quality`).
    Skipped,
    /// Links the frontier dropped, by reason (`onion.bad-checksum` …).
    FrontierDropped,
}

impl Family {
    pub fn prefix(self) -> &'static str {
        match self {
            Family::Error => "error",
            Family::Skipped => "skipped",
            Family::FrontierDropped => "frontier.dropped",
        }
    }
}

/// Error kinds that no error enum names (the others come from `FetchError::kind()`,
/// `ImageError::kind()` …).
pub mod kinds {
    /// A bus message that does not decode as its queue's type (dead-lettered at once).
    pub const BUS_UNDECODABLE: &str = "bus.undecodable";
    /// An image whose bytes end before the format says they should.
    pub const IMAGE_TRUNCATED: &str = "image.truncated";
    /// Image decoding or hashing panicked (contained on the blocking pool).
    pub const IMAGE_PANIC: &str = "image.panic";
    /// A paste listing named more pastes than one poll takes (the rest waits for the next).
    pub const PASTES_LISTING_TRUNCATED: &str = "pastes.listing-truncated";
    /// A paste listing that does not parse (a JSON API's answer that is not JSON, or nests
    /// too deep).
    pub const PASTES_LISTING_UNREADABLE: &str = "pastes.listing-unreadable";
    /// An alert's evidence could not be kept (the alert is still raised).
    pub const EVIDENCE_NOT_KEPT: &str = "evidence.not-kept";
    /// HTML extraction panicked (contained on the blocking pool).
    pub const EXTRACT_PANIC: &str = "extract.panic";
    /// A `data:` image URI that does not decode.
    pub const EXTRACT_BAD_DATA_URI: &str = "extract.bad-data-uri";
    /// A base64 block in a page's text larger than the per-image bound (skipped undecoded).
    pub const EXTRACT_BASE64_TOO_LARGE: &str = "extract.base64-too-large";
    /// Unpacking an attachment panicked (contained on the blocking pool).
    pub const ARCHIVE_PANIC: &str = "archive.panic";
    /// HTML nested deeper than the extraction bound (cut there).
    pub const HTML_TOO_DEEP: &str = "html.too-deep";
    /// HTML that took longer than its parse budget (cut there).
    pub const HTML_TOO_SLOW: &str = "html.too-slow";
    /// HTML whose encoding was neither declared nor UTF-8.
    pub const HTML_UNDECLARED_ENCODING: &str = "html.undeclared-encoding";
}

/// What is timed, as histograms (`/metrics` exposes them as
/// `leakwatch_<name>_seconds`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Timing {
    /// One HTTP exchange with a site, through the transport (each attempt).
    Fetch,
    /// One commit of the index (what acks of indexed work wait for).
    IndexCommit,
}

impl Timing {
    pub const ALL: [Timing; 2] = [Timing::Fetch, Timing::IndexCommit];

    pub fn name(self) -> &'static str {
        match self {
            Timing::Fetch => "fetch_duration",
            Timing::IndexCommit => "index_commit_duration",
        }
    }
}

/// A sampled value that goes up and down (`/metrics` exposes it as `leakwatch_<name>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Gauge {
    /// Messages ready in each queue (label `queue`): the lag its consumers have to catch
    /// up, and what KEDA scales crawlers and matchers on.
    QueueMessages,
    /// Consumers of each queue (label `queue`).
    QueueConsumers,
    /// Whether the crawler's way out (the Tor client, the SOCKS proxy) was up when last
    /// probed: 1 or 0.
    TransportUp,
    /// How long the embedded Tor client took to bootstrap (set once it has).
    TorBootstrapSeconds,
    /// Sites currently marked down (retried on the reprobe schedule).
    SitesDown,
}

impl Gauge {
    pub const ALL: [Gauge; 5] = [
        Gauge::QueueMessages,
        Gauge::QueueConsumers,
        Gauge::TransportUp,
        Gauge::TorBootstrapSeconds,
        Gauge::SitesDown,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Gauge::QueueMessages => "queue_messages",
            Gauge::QueueConsumers => "queue_consumers",
            Gauge::TransportUp => "transport_up",
            Gauge::TorBootstrapSeconds => "tor_bootstrap_seconds",
            Gauge::SitesDown => "sites_down",
        }
    }

    /// The label name of a gauge with one value per label (`queue`), if it has one.
    pub fn label(self) -> Option<&'static str> {
        match self {
            Gauge::QueueMessages | Gauge::QueueConsumers => Some("queue"),
            _ => None,
        }
    }
}

/// Upper bounds (seconds) of the histogram buckets: from a loopback fetch to a slow onion.
pub const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Observations of one [`Timing`]: per bucket (not cumulative), count and sum.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    pub buckets: [u64; BUCKETS.len()],
    pub count: u64,
    pub sum_secs: f64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i] += 1;
        }
        self.count += 1;
        self.sum_secs += secs;
    }
}

/// A set of named counters, and the timing histograms.
#[derive(Debug, Default)]
pub struct Stats {
    counters: Mutex<BTreeMap<String, u64>>,
    timings: Mutex<BTreeMap<Timing, Histogram>>,
    /// By gauge and label value (`""` for a gauge without a label).
    gauges: Mutex<BTreeMap<(Gauge, String), f64>>,
}

impl Stats {
    fn add_key(&self, key: &str, n: u64) {
        if let Ok(mut c) = self.counters.lock() {
            match c.get_mut(key) {
                Some(v) => *v += n,
                None => {
                    c.insert(key.to_string(), n);
                }
            }
        }
    }

    fn get_key(&self, key: &str) -> u64 {
        self.counters
            .lock()
            .map(|c| c.get(key).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    pub fn add(&self, counter: Counter, n: u64) {
        self.add_key(counter.name(), n);
    }

    /// Records one duration of `what`.
    pub fn observe(&self, what: Timing, took: std::time::Duration) {
        if let Ok(mut t) = self.timings.lock() {
            t.entry(what).or_default().observe(took.as_secs_f64());
        }
    }

    /// Sets `gauge` (for the label value `label`; `""` when it has no label).
    pub fn set_gauge(&self, gauge: Gauge, label: &str, value: f64) {
        if let Ok(mut g) = self.gauges.lock() {
            g.insert((gauge, label.to_string()), value);
        }
    }

    /// The values of `gauge` set so far, by label value.
    pub fn gauge(&self, gauge: Gauge) -> BTreeMap<String, f64> {
        self.gauges
            .lock()
            .map(|g| {
                g.iter()
                    .filter(|((k, _), _)| *k == gauge)
                    .map(|((_, label), v)| (label.clone(), *v))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The histogram of `what` so far.
    pub fn timing(&self, what: Timing) -> Histogram {
        self.timings
            .lock()
            .map(|t| t.get(&what).cloned().unwrap_or_default())
            .unwrap_or_default()
    }

    pub fn incr(&self, counter: Counter) {
        self.add(counter, 1);
    }

    pub fn get(&self, counter: Counter) -> u64 {
        self.get_key(counter.name())
    }

    /// Counts one of `kind` in `family`.
    pub fn incr_kind(&self, family: Family, kind: &str) {
        self.add_key(&format!("{}.{kind}", family.prefix()), 1);
    }

    /// Counts one error of `kind` (e.g. `fetch.timeout`).
    pub fn error(&self, kind: &str) {
        self.incr_kind(Family::Error, kind);
    }

    /// One family's counters by kind (without the prefix).
    pub fn by_kind(&self, family: Family) -> BTreeMap<String, u64> {
        let prefix = format!("{}.", family.prefix());
        self.snapshot()
            .into_iter()
            .filter_map(|(k, v)| k.strip_prefix(&prefix).map(|k| (k.to_string(), v)))
            .collect()
    }

    /// Errors by kind (without the `error.` prefix).
    pub fn errors(&self) -> BTreeMap<String, u64> {
        self.by_kind(Family::Error)
    }

    /// Every counter by stored key: what an exporter publishes.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counters.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_families() {
        let s = Stats::default();
        s.incr(Counter::Pages);
        s.add(Counter::Pages, 2);
        s.error("fetch.timeout");
        s.incr_kind(Family::FrontierDropped, "onion.bad-checksum");
        assert_eq!(s.get(Counter::Pages), 3);
        assert_eq!(s.errors().get("fetch.timeout"), Some(&1));
        assert_eq!(
            s.by_kind(Family::FrontierDropped).get("onion.bad-checksum"),
            Some(&1)
        );
        assert!(s.by_kind(Family::Skipped).is_empty());
        assert_eq!(s.get(Counter::Images), 0);
        assert_eq!(
            s.snapshot().get("frontier.dropped.onion.bad-checksum"),
            Some(&1)
        );
    }

    #[test]
    fn names_are_distinct() {
        let names: std::collections::HashSet<_> = Counter::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(names.len(), Counter::ALL.len());
    }
}
