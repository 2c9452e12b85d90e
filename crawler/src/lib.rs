//! Fetching and extraction for leakwatch: the frontier (what to fetch next) and the crawler
//! workers (fetch, extract, publish).
//!
//! Design choices:
//! - **Transports behind a trait.** [`transport::Fetcher`] performs one GET; the direct transport
//!   connects from this machine (tests, clearnet paste sites), a Tor transport goes through
//!   circuits. Redirects, sniffing and extraction are shared by all of them.
//! - **Hostile input is the normal case.** Every response is bounded in time, header and body
//!   size and redirect hops; bodies are classified by their bytes; extraction output is bounded;
//!   non-public addresses are refused after resolution unless explicitly allowed.
//! - **One dedupe point.** Crawlers report links and image URLs to the frontier, which
//!   normalises, dedupes, applies scope and depth rules and issues crawl requests; so an image
//!   embedded on a hundred pages is fetched once.
//! - **Politeness per site**, enforced where requests are made (the crawler), see [`politeness`].

pub mod archive;
pub mod extract;
pub mod fetch;
pub mod frontier;
pub mod guard;
pub mod health;
pub mod isolation;
pub mod jitter;
pub mod mirror;
pub mod onion;
pub mod parse;
pub mod pastes;
pub mod politeness;
pub mod ratelimit;
pub mod schedule;
mod schedule_store;
pub mod socks5;
pub mod store;
pub mod textbody;
pub mod tor;
pub mod transport;
pub mod urls;
pub mod worker;

use std::net::IpAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use frontier::Frontier;
pub use health::{HealthConfig, HealthyFetcher};
pub use schedule::RecrawlConfig;
pub use socks5::Socks5Fetcher;
pub use tor::{TorConfig, TorFetcher};
pub use transport::{DirectFetcher, Fetcher, Limits, Patience};
pub use worker::Crawler;

/// Why a fetch failed. [`FetchError::kind`] names it for counting.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchError {
    #[error("unusable URL")]
    BadUrl,
    #[error(".onion addresses need the tor transport; the direct transport refuses them")]
    OnionNeedsTor,
    #[error("refusing non-public address {0} (use --allow-private to crawl it)")]
    PrivateAddress(IpAddr),
    #[error("name resolution failed: {0}")]
    Dns(String),
    #[error("connect failed: {0}")]
    Connect(String),
    #[error("TLS failed: {0}")]
    Tls(String),
    #[error("HTTP error: {0}")]
    Http(String),
    #[error("timed out")]
    Timeout,
    #[error("body larger than {0} bytes")]
    BodyTooLarge(usize),
    #[error("more than {0} redirects")]
    TooManyRedirects(u32),
    #[error("redirect to an unusable location")]
    BadRedirect,
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("not an image")]
    NotAnImage,
    #[error("invalid onion address: {0}")]
    BadOnion(onion::OnionError),
    #[error("site marked down after repeated failures; re-probed later")]
    SiteDown,
    #[error("Tor: {kind}: {detail}")]
    Tor { kind: TorFailure, detail: String },
    #[error("SOCKS5 proxy: {0}")]
    Socks(String),
    /// The way out itself is down (the SOCKS proxy does not answer, the Tor client has no
    /// network): nothing is known about the site, and the request must wait, not be dropped.
    #[error("transport down: {0}")]
    TransportDown(String),
}

/// What went wrong on the Tor side of a request (from arti's error kinds or tor's SOCKS
/// replies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TorFailure {
    /// No descriptor for the onion service (yet): it is down or still publishing.
    OnionNotFound,
    /// The descriptor was found but introduction or rendezvous failed.
    OnionUnreachable,
    /// No circuit could be built, or it collapsed.
    Circuit,
    /// The exit or the destination refused the connection (policy, refused, unknown host).
    Refused,
    /// Tor's own deadline passed.
    Timeout,
    Other,
}

impl TorFailure {
    pub fn kind(&self) -> &'static str {
        match self {
            TorFailure::OnionNotFound => "tor.onion-not-found",
            TorFailure::OnionUnreachable => "tor.onion-unreachable",
            TorFailure::Circuit => "tor.circuit",
            TorFailure::Refused => "tor.refused",
            TorFailure::Timeout => "tor.timeout",
            TorFailure::Other => "tor.other",
        }
    }
}

impl std::fmt::Display for TorFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind().trim_start_matches("tor."))
    }
}

impl FetchError {
    /// Whether the site sent something back (an HTTP status, a body, a redirect), whatever
    /// was wrong with it.
    pub fn site_answered(&self) -> bool {
        matches!(
            self,
            FetchError::Http(_)
                | FetchError::Status(_)
                | FetchError::BodyTooLarge(_)
                | FetchError::TooManyRedirects(_)
                | FetchError::BadRedirect
                | FetchError::NotAnImage
        )
    }

    /// A short, low-cardinality name for counting.
    pub fn kind(&self) -> &'static str {
        match self {
            FetchError::BadUrl => "fetch.bad-url",
            FetchError::OnionNeedsTor => "fetch.onion-needs-tor",
            FetchError::PrivateAddress(_) => "fetch.private-address",
            FetchError::Dns(_) => "fetch.dns",
            FetchError::Connect(_) => "fetch.connect",
            FetchError::Tls(_) => "fetch.tls",
            FetchError::Http(_) => "fetch.http",
            FetchError::Timeout => "fetch.timeout",
            FetchError::BodyTooLarge(_) => "fetch.body-too-large",
            FetchError::TooManyRedirects(_) => "fetch.too-many-redirects",
            FetchError::BadRedirect => "fetch.bad-redirect",
            FetchError::Status(s) if *s >= 500 => "fetch.status-5xx",
            FetchError::Status(s) if *s >= 400 => "fetch.status-4xx",
            FetchError::Status(_) => "fetch.status-3xx",
            FetchError::NotAnImage => "fetch.not-an-image",
            FetchError::BadOnion(e) => e.kind(),
            FetchError::SiteDown => "fetch.site-down",
            FetchError::Tor { kind, .. } => kind.kind(),
            FetchError::Socks(_) => "fetch.socks",
            FetchError::TransportDown(_) => "transport.down",
        }
    }
}

/// Which discovered page links the frontier follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Follow {
    /// Only pages on the seeds' sites.
    Seeds,
    /// Pages on the seeds' sites and on any `.onion` site (discovery of new onion sites).
    #[default]
    OnionAndSeeds,
    /// Every http(s) link.
    All,
}

/// Crawler and frontier settings (the `[crawler]` table of the config file).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CrawlerConfig {
    /// Concurrent fetches in this process.
    pub workers: usize,
    /// Minimum spacing between two requests to one site.
    pub politeness_delay_ms: u64,
    pub timeout_secs: u64,
    pub connect_timeout_secs: u64,
    pub max_page_bytes: usize,
    pub max_image_bytes: usize,
    pub max_redirects: u32,
    /// Link hops from a seed.
    pub max_depth: u32,
    pub follow: Follow,
    /// Crawler-trap bound: pages fetched per site per run.
    pub max_pages_per_site: usize,
    /// Image fetches per image host per run.
    pub max_images_per_site: usize,
    /// New sites one page may introduce (a page of made-up onion links adds no more).
    pub max_new_sites_per_page: usize,
    /// New sites one site may introduce over the whole run.
    pub max_new_sites_per_site: usize,
    /// Sites the frontier keeps budgets for.
    pub max_sites: usize,
    /// URLs the frontier remembers as requested (16 bytes each).
    pub max_seen: usize,
    pub user_agent: String,
    /// Unacked crawl requests each worker may hold (AMQP `basic_qos`).
    pub prefetch: u16,
    /// Unacked discovery reports the frontier may hold.
    pub frontier_prefetch: u16,
}

impl Default for CrawlerConfig {
    fn default() -> Self {
        CrawlerConfig {
            workers: 16,
            politeness_delay_ms: 1000,
            timeout_secs: 30,
            connect_timeout_secs: 15,
            max_page_bytes: 5 * 1024 * 1024,
            max_image_bytes: 10 * 1024 * 1024,
            max_redirects: 5,
            max_depth: 6,
            follow: Follow::default(),
            max_pages_per_site: 20_000,
            max_images_per_site: 20_000,
            max_new_sites_per_page: 20,
            max_new_sites_per_site: 500,
            max_sites: 100_000,
            max_seen: 10_000_000,
            user_agent: "Mozilla/5.0 (Windows NT 10.0; rv:128.0) Gecko/20100101 Firefox/128.0"
                .to_string(),
            prefetch: 1,
            frontier_prefetch: 64,
        }
    }
}

impl CrawlerConfig {
    pub fn limits(&self, max_body_bytes: usize) -> Limits {
        Limits {
            timeout: Duration::from_secs(self.timeout_secs),
            connect_timeout: Duration::from_secs(self.connect_timeout_secs),
            max_body_bytes,
            max_header_bytes: 64 * 1024,
            patience: Default::default(),
            conditional: None,
        }
    }
}
