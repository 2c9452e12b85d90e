//! Paste-site adapters: a paste site is watched through its list of recent pastes, not
//! crawled like a forum. Each `[[pastes]]` entry of the config names the listing — an HTML
//! page whose paste links a CSS selector picks, or a JSON API whose ids a path picks — and
//! where a paste's raw text is (`raw`, with `{id}`). [`Poller`] fetches each listing every
//! `poll_secs` (with jitter) through the crawler's transport, so the site's health, its
//! `429`/`503` pauses and `Retry-After` apply, and hands the raw URLs to the frontier as a
//! discovery report. The frontier's seen set (durable with its store) makes each paste
//! fetched once, across restarts too; the raw view is a text body ([`crate::textbody`]).
//!
//! A listing is hostile input like any page: its body is bounded by `max_page_bytes`, the
//! links taken from one poll to 1,000, ids to 128 letters, digits, `-` and `_`. A site's
//! `min_interval_ms` spaces the crawler's fetches of its pastes; the listing itself is
//! fetched once per `poll_secs`.

use std::sync::Arc;
use std::time::Duration;

use bus::stats::kinds;
use bus::{Bus, BusError, Counter, Stats};
use schema::names::CRAWL_DISCOVERED;
use schema::{Discovered, Message, PageOutcome};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::fetch::{decode_html, fetch};
use crate::jitter::Jitter;
use crate::transport::{Fetcher, Limits};
use crate::urls;

/// Most paste links taken from one poll of one listing.
const MAX_LINKS: usize = 1_000;
/// Longest paste id taken from a listing.
const MAX_ID: usize = 128;

/// One paste site (`[[pastes]]` in the config file).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PasteSite {
    /// A name for logs.
    pub name: String,
    /// The page or API answer that lists recent pastes.
    pub listing: String,
    /// CSS selector of the paste links of an HTML listing (`ul.recent a`).
    #[serde(default)]
    pub links: Option<String>,
    /// Path to the ids in a JSON listing: keys separated by `.`, `*` for every element of
    /// an array (`data.pastes.*.key`).
    #[serde(default)]
    pub ids: Option<String>,
    /// A paste's raw text: `{id}` is the JSON id or the HTML link's last path segment.
    /// Without it the HTML link itself is fetched.
    #[serde(default)]
    pub raw: Option<String>,
    /// Seconds between two polls (jittered by up to a fifth).
    #[serde(default = "default_poll_secs")]
    pub poll_secs: u64,
    /// The site's rate limit: least milliseconds between two requests to it (0: the
    /// crawler's `politeness_delay_ms`).
    #[serde(default)]
    pub min_interval_ms: u64,
}

fn default_poll_secs() -> u64 {
    60
}

/// Why a `[[pastes]]` entry cannot be used.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PasteConfigError {
    #[error("paste site {0}: listing is not an absolute http(s) URL")]
    Listing(String),
    #[error("paste site {0}: give exactly one of `links` (HTML) and `ids` (JSON)")]
    Style(String),
    #[error("paste site {0}: `links` is not a CSS selector: {1}")]
    Selector(String, String),
    #[error("paste site {0}: a JSON listing needs `raw` with {{id}}")]
    Raw(String),
    #[error("paste site {0}: poll_secs must be at least 1")]
    Interval(String),
}

impl PasteSite {
    /// Checks the entry, so a typo fails at start instead of polling nothing.
    pub fn check(&self) -> Result<(), PasteConfigError> {
        let name = || self.name.clone();
        urls::parse_absolute(&self.listing).ok_or_else(|| PasteConfigError::Listing(name()))?;
        match (&self.links, &self.ids) {
            (Some(sel), None) => {
                scraper::Selector::parse(sel)
                    .map_err(|e| PasteConfigError::Selector(name(), e.to_string()))?;
            }
            (None, Some(_)) => {}
            _ => return Err(PasteConfigError::Style(name())),
        }
        let raw_ok = self.raw.as_ref().is_some_and(|r| r.contains("{id}"));
        if (self.ids.is_some() || self.raw.is_some()) && !raw_ok {
            return Err(PasteConfigError::Raw(name()));
        }
        if self.poll_secs == 0 {
            return Err(PasteConfigError::Interval(name()));
        }
        Ok(())
    }

    /// The site the listing and the raw pastes are on (in the frontier's scope).
    pub fn sites(&self) -> Vec<String> {
        let mut out: Vec<String> = [Some(self.listing.as_str()), self.raw.as_deref()]
            .into_iter()
            .flatten()
            .filter_map(|u| urls::parse_absolute(&u.replace("{id}", "x")))
            .map(|u| urls::site_of(&u))
            .collect();
        out.dedup();
        out
    }

    /// The raw-paste URLs a listing body names, and what was wrong with the listing.
    pub fn pastes_in(&self, listing_url: &Url, body: &str) -> Listing {
        let (ids, problem) = match (&self.links, &self.ids) {
            (Some(sel), _) => {
                let (links, problem) = html_links(body, sel, listing_url);
                if self.raw.is_none() {
                    return Listing {
                        pastes: links,
                        problem,
                    };
                }
                (links.iter().filter_map(last_segment).collect(), problem)
            }
            (None, Some(path)) => json_ids(body, path),
            (None, None) => (Vec::new(), None),
        };
        let Some(pattern) = &self.raw else {
            return Listing::default();
        };
        let mut out: Vec<Url> = Vec::new();
        for id in ids.into_iter().filter(|i| usable_id(i)).take(MAX_LINKS) {
            if let Some(u) = urls::normalize(listing_url, &pattern.replace("{id}", &id)) {
                if !out.contains(&u) {
                    out.push(u);
                }
            }
        }
        Listing {
            pastes: out,
            problem,
        }
    }
}

/// What one poll of a listing found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Listing {
    /// The pastes' URLs, at most [`MAX_LINKS`].
    pub pastes: Vec<Url>,
    /// Why the listing was not read whole (a counted error kind), if it was not.
    pub problem: Option<&'static str>,
}

fn usable_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn last_segment(u: &Url) -> Option<String> {
    u.path_segments()?
        .rfind(|s| !s.is_empty())
        .map(str::to_string)
}

/// Absolute URLs of the `href`s of the elements `selector` picks; the document is parsed
/// within the same depth and time bounds as a crawled page.
fn html_links(body: &str, selector: &str, base: &Url) -> (Vec<Url>, Option<&'static str>) {
    let Ok(sel) = scraper::Selector::parse(selector) else {
        return (Vec::new(), None);
    };
    let bounds = crate::extract::ExtractLimits::default();
    let parsed = crate::parse::parse_bounded(body, bounds.max_nesting, bounds.max_parse_time);
    let mut problem = match parsed.cut {
        Some(crate::parse::Cut::TooDeep) => Some(kinds::HTML_TOO_DEEP),
        Some(crate::parse::Cut::TooSlow) => Some(kinds::HTML_TOO_SLOW),
        None => None,
    };
    let mut out: Vec<Url> = Vec::new();
    for (n, el) in parsed.html.select(&sel).enumerate() {
        if n == MAX_LINKS {
            problem = problem.or(Some(kinds::PASTES_LISTING_TRUNCATED));
            break;
        }
        if let Some(u) = el.attr("href").and_then(|h| urls::normalize(base, h)) {
            if !out.contains(&u) {
                out.push(u);
            }
        }
    }
    (out, problem)
}

/// The strings and integers at `path` in a JSON document (serde_json refuses nesting past
/// 128 levels: such a listing is unreadable).
fn json_ids(body: &str, path: &str) -> (Vec<String>, Option<&'static str>) {
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(body) else {
        return (Vec::new(), Some(kinds::PASTES_LISTING_UNREADABLE));
    };
    let mut level = vec![&doc];
    let mut truncated = false;
    for key in path.split('.').filter(|k| !k.is_empty()) {
        let next: Vec<&serde_json::Value> = level
            .into_iter()
            .flat_map(|v| -> Vec<&serde_json::Value> {
                match (key, v) {
                    ("*", serde_json::Value::Array(items)) => items.iter().collect(),
                    ("*", serde_json::Value::Object(map)) => map.values().collect(),
                    (k, serde_json::Value::Object(map)) => map.get(k).into_iter().collect(),
                    _ => Vec::new(),
                }
            })
            .take(MAX_LINKS + 1)
            .collect();
        truncated |= next.len() > MAX_LINKS;
        level = next.into_iter().take(MAX_LINKS).collect();
    }
    let problem = truncated.then_some(kinds::PASTES_LISTING_TRUNCATED);
    let ids = level
        .into_iter()
        .filter_map(|v| match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) if n.is_u64() => Some(n.to_string()),
            _ => None,
        })
        .collect();
    (ids, problem)
}

/// Polls the configured paste sites and reports their pastes to the frontier.
pub struct Poller {
    sites: Vec<PasteSite>,
    fetcher: Arc<dyn Fetcher>,
    limits: Limits,
    max_redirects: u32,
    stats: Arc<Stats>,
}

impl Poller {
    pub fn new(
        sites: Vec<PasteSite>,
        fetcher: Arc<dyn Fetcher>,
        limits: Limits,
        max_redirects: u32,
        stats: Arc<Stats>,
    ) -> Self {
        Poller {
            sites,
            fetcher,
            limits,
            max_redirects,
            stats,
        }
    }

    /// Polls every site until the bus closes (`once`: one poll each).
    pub async fn run(self: Arc<Self>, bus: Arc<dyn Bus>, once: bool) -> Result<(), BusError> {
        let mut polls = tokio::task::JoinSet::new();
        for i in 0..self.sites.len() {
            let (me, bus) = (self.clone(), bus.clone());
            polls.spawn(async move { me.watch(bus.as_ref(), &me.sites[i], once).await });
        }
        while let Some(done) = polls.join_next().await {
            if let Ok(Err(e)) = done {
                return Err(e);
            }
        }
        Ok(())
    }

    async fn watch(&self, bus: &dyn Bus, site: &PasteSite, once: bool) -> Result<(), BusError> {
        let jitter = Jitter::from_clock();
        loop {
            if bus.is_closed() {
                return Ok(());
            }
            match self.poll(bus, site).await {
                // The node is stopping: not a failure of the crawler role.
                Err(BusError::Closed) => return Ok(()),
                Err(e) => return Err(e),
                Ok(_) => {}
            }
            if once {
                return Ok(());
            }
            let pause = Duration::from_secs(site.poll_secs).mul_f64(1.0 + 0.2 * jitter.next());
            let deadline = tokio::time::Instant::now() + pause;
            while tokio::time::Instant::now() < deadline {
                if bus.is_closed() {
                    return Ok(());
                }
                tokio::time::sleep(Duration::from_millis(200).min(pause)).await;
            }
        }
    }

    /// One poll: the listing, its pastes, one report to the frontier.
    pub async fn poll(&self, bus: &dyn Bus, site: &PasteSite) -> Result<usize, BusError> {
        let Some(listing) = urls::parse_absolute(&site.listing) else {
            return Ok(0);
        };
        let fetched = match fetch(
            self.fetcher.as_ref(),
            &listing,
            &self.limits,
            self.max_redirects,
        )
        .await
        {
            Ok(f) => f,
            Err(e) => {
                self.stats.error(e.kind());
                tracing::info!(site = %site.name, error = %e, "paste listing not fetched");
                return Ok(0);
            }
        };
        self.stats.incr(Counter::PasteListings);
        let content_type = fetched.response.header("content-type").map(str::to_string);
        let listing_url = fetched.final_url.clone();
        let (site_, url) = (site.clone(), listing_url.clone());
        // Parsing a hostile listing is bounded but may take seconds: off the runtime.
        let listing = tokio::task::spawn_blocking(move || {
            let (body, _) = decode_html(content_type.as_deref(), &fetched.response.body);
            site_.pastes_in(&url, &body)
        })
        .await;
        let Ok(Listing { pastes, problem }) = listing else {
            self.stats.error(kinds::EXTRACT_PANIC);
            return Ok(0);
        };
        if let Some(kind) = problem {
            self.stats.error(kind);
            tracing::info!(site = %site.name, problem = kind, "paste listing not read whole");
        }
        if pastes.is_empty() {
            return Ok(0);
        }
        let report = Discovered {
            from: listing_url.to_string(),
            depth: 0,
            links: pastes.iter().map(Url::to_string).collect(),
            outcome: PageOutcome::Changed,
            fetched_at: Some(schema::now_rfc3339()),
            ..Default::default()
        };
        bus.publish("", CRAWL_DISCOVERED, report.encode()).await?;
        for _ in 0..pastes.len() {
            self.stats.incr(Counter::PastesListed);
        }
        tracing::debug!(site = %site.name, pastes = pastes.len(), "paste listing polled");
        Ok(pastes.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn html_site() -> PasteSite {
        PasteSite {
            name: "bin".into(),
            listing: "http://bin.test/recent".into(),
            links: Some("ul.recent a".into()),
            ids: None,
            raw: Some("http://bin.test/raw/{id}".into()),
            poll_secs: 5,
            min_interval_ms: 0,
        }
    }

    #[test]
    fn html_listings_give_raw_urls_from_the_selected_links() {
        let site = html_site();
        let body = r#"<ul class="nav"><a href="/about">about</a></ul>
            <ul class="recent"><li><a href="/p/abc123">x</a></li><li><a href="p/def-456/">y</a></li>
            <li><a href="/p/../../etc">z</a></li><li><a href="/p/abc123">dup</a></li></ul>"#;
        let base = Url::parse("http://bin.test/recent").unwrap();
        let got: Vec<String> = site
            .pastes_in(&base, body)
            .pastes
            .iter()
            .map(Url::to_string)
            .collect();
        assert_eq!(
            got,
            [
                "http://bin.test/raw/abc123",
                "http://bin.test/raw/def-456",
                "http://bin.test/raw/etc"
            ]
        );
        let links_only = PasteSite { raw: None, ..site };
        assert_eq!(
            links_only.pastes_in(&base, body).pastes[0].as_str(),
            "http://bin.test/p/abc123"
        );
    }

    #[test]
    fn json_listings_give_raw_urls_from_the_ids_and_refuse_odd_ids() {
        let site = PasteSite {
            links: None,
            ids: Some("data.pastes.*.key".into()),
            ..html_site()
        };
        let body = r#"{"data": {"pastes": [{"key": "k1"}, {"key": 42}, {"key": "../x"},
            {"key": "a b"}, {"nokey": 1}, {"key": "k1"}]}}"#;
        let base = Url::parse("http://bin.test/api").unwrap();
        let got: Vec<String> = site
            .pastes_in(&base, body)
            .pastes
            .iter()
            .map(Url::to_string)
            .collect();
        assert_eq!(got, ["http://bin.test/raw/k1", "http://bin.test/raw/42"]);
        let bad = site.pastes_in(&base, "not json");
        assert!(bad.pastes.is_empty());
        assert_eq!(bad.problem, Some(kinds::PASTES_LISTING_UNREADABLE));
    }

    /// Endless listings: more paste links or ids than one poll takes, nesting past the
    /// parsers' bounds. Each is a counted problem, and what was read is kept.
    #[test]
    fn endless_listings_are_cut_and_counted() {
        let base = Url::parse("http://bin.test/recent").unwrap();
        let links: String = (0..5_000)
            .map(|i| format!("<li><a href=\"/p/id{i}\">p</a></li>"))
            .collect();
        let html = format!("<ul class=\"recent\">{links}</ul>");
        let got = html_site().pastes_in(&base, &html);
        assert_eq!(got.pastes.len(), MAX_LINKS);
        assert_eq!(got.problem, Some(kinds::PASTES_LISTING_TRUNCATED));
        let deep = format!(
            "{}<ul class=\"recent\"><a href=\"/p/x\">x</a></ul>",
            "<div>".repeat(100_000)
        );
        let started = std::time::Instant::now();
        let got = html_site().pastes_in(&base, &deep);
        assert_eq!(got.problem, Some(kinds::HTML_TOO_DEEP));
        assert!(started.elapsed() < std::time::Duration::from_secs(6));
        let json_site = PasteSite {
            links: None,
            ids: Some("pastes.*".into()),
            ..html_site()
        };
        let ids: Vec<String> = (0..5_000).map(|i| format!("\"k{i}\"")).collect();
        let body = format!("{{\"pastes\": [{}]}}", ids.join(","));
        let got = json_site.pastes_in(&base, &body);
        assert_eq!(got.pastes.len(), MAX_LINKS);
        assert_eq!(got.problem, Some(kinds::PASTES_LISTING_TRUNCATED));
        let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let got = json_site.pastes_in(&base, &nested);
        assert_eq!(got.problem, Some(kinds::PASTES_LISTING_UNREADABLE));
        let fine = html_site().pastes_in(&base, r#"<ul class="recent"><a href="/p/a">a</a></ul>"#);
        assert_eq!((fine.pastes.len(), fine.problem), (1, None));
    }

    #[test]
    fn bad_entries_are_refused_at_start() {
        assert_eq!(html_site().check(), Ok(()));
        let both = PasteSite {
            ids: Some("a".into()),
            ..html_site()
        };
        assert!(matches!(both.check(), Err(PasteConfigError::Style(_))));
        let bad_sel = PasteSite {
            links: Some("ul[".into()),
            ..html_site()
        };
        assert!(matches!(
            bad_sel.check(),
            Err(PasteConfigError::Selector(..))
        ));
        let no_id = PasteSite {
            raw: Some("http://bin.test/raw".into()),
            ..html_site()
        };
        assert!(matches!(no_id.check(), Err(PasteConfigError::Raw(_))));
        let rel = PasteSite {
            listing: "/recent".into(),
            ..html_site()
        };
        assert!(matches!(rel.check(), Err(PasteConfigError::Listing(_))));
        assert_eq!(html_site().sites(), ["bin.test"]);
    }
}
