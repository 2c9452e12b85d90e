//! The recrawl schedule: when each known page is fetched again, so that what is posted after
//! a site was first crawled is seen too.
//!
//! Every page the frontier requests gets a row in its durable store with an interval and a
//! due time. The frontier's scheduler ([`crate::Frontier::schedule`]) takes the rows that are
//! due, within a per-site and an overall budget of revisits per hour, and requests them again
//! with what the last fetch looked like ([`schema::Validators`]): the crawler sends the site's
//! own validators as a conditional request and compares the extracted content's digest, and
//! reports whether the page changed. The answer moves the page's interval ([`next_visit`]):
//! - **entry pages** (seeds, and pages whose revisits keep finding new links: indexes,
//!   "latest" listings, boards) are never left longer than `entry_interval_secs`, and are
//!   revisited down to `min_interval_secs` while their links keep changing;
//! - other pages (threads, items) start at `page_interval_secs`, back off (×2) while they do
//!   not change, up to `max_interval_secs`, and speed up (÷2) when they do;
//! - failures back off like unchanged pages: a page taken down costs one request per
//!   `max_interval_secs`.
//!
//! Times are Unix milliseconds. Taking a due row leases it (its due time moves two intervals
//! ahead), so a revisit lost with a crashed process is retried, and several frontiers sharing
//! a PostgreSQL store never take the same row at once.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use schema::{PageOutcome, Validators};
use serde::{Deserialize, Serialize};

use crate::store::StoreError;

/// The `[recrawl]` table of the config file. Used by `run` without `--once`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecrawlConfig {
    /// Revisit known pages at all (`false`: every page is fetched once, as before).
    pub enabled: bool,
    /// Shortest interval between two fetches of one page.
    pub min_interval_secs: u64,
    /// Longest interval of an entry page (seeds, pages whose links change); also the first
    /// interval of a seed.
    pub entry_interval_secs: u64,
    /// First interval of any other page.
    pub page_interval_secs: u64,
    /// Longest interval of any page.
    pub max_interval_secs: u64,
    /// Revisits of one site per hour, spread out: at most a minute's worth at once (first
    /// fetches of new pages are not counted; the crawler's politeness delay still applies).
    pub site_revisits_per_hour: u32,
    /// Revisits of all sites per hour, spread the same way. Both budgets are kept by each
    /// frontier process: N frontiers sharing a store revisit at up to N times these rates.
    pub revisits_per_hour: u32,
    /// How often the scheduler looks for due pages.
    pub tick_ms: u64,
}

impl Default for RecrawlConfig {
    fn default() -> Self {
        RecrawlConfig {
            enabled: true,
            min_interval_secs: 300,
            entry_interval_secs: 900,
            page_interval_secs: 86_400,
            max_interval_secs: 7 * 86_400,
            site_revisits_per_hour: 120,
            revisits_per_hour: 36_000,
            tick_ms: 1_000,
        }
    }
}

impl RecrawlConfig {
    fn ms(secs: u64) -> u64 {
        secs.saturating_mul(1000)
    }

    /// The first interval of a page at `depth`, within the configured bounds.
    pub fn first_interval_ms(&self, depth: u32) -> u64 {
        let min = Self::ms(self.min_interval_secs).max(1);
        let max = Self::ms(self.max_interval_secs).max(min);
        let first = if depth == 0 {
            Self::ms(self.entry_interval_secs)
        } else {
            Self::ms(self.page_interval_secs)
        };
        first.clamp(min, max)
    }
}

/// Revisits without fresh links after which a page found to be an entry page is an ordinary
/// page again (seeds stay entry pages).
pub const ENTRY_PATIENCE: u32 = 8;

/// A page to add to the schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPage {
    pub digest: u128,
    pub url: String,
    pub site: String,
    pub depth: u32,
    pub interval_ms: u64,
    /// First due time: the first fetch is requested now; this is when it is retried if its
    /// report never comes.
    pub due_ms: u64,
    pub listed_ms: u64,
}

/// One scheduled page.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScheduleRow {
    pub digest: u128,
    pub url: String,
    pub site: String,
    pub depth: u32,
    pub interval_ms: u64,
    pub due_ms: u64,
    pub entry: bool,
    /// Revisits in a row without new links.
    pub quiet: u32,
    pub validators: Validators,
    pub fetches: u64,
    pub changes: u64,
    pub failures: u64,
    /// The page's first links at its last fetch, in order ([`Head`]).
    pub head: Option<String>,
}

/// What a report does to a page's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visit {
    pub digest: u128,
    pub site: String,
    pub outcome: PageOutcome,
    pub at_ms: u64,
    pub interval_ms: u64,
    pub due_ms: u64,
    pub entry: bool,
    pub quiet: u32,
    /// Kept from the last fetch that returned the page.
    pub validators: Validators,
    pub head: Option<String>,
}

/// A site's liveness and schedule, for `leakwatch sites`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct SiteStatus {
    pub site: String,
    pub seed: bool,
    /// Whether the last request to the site got an answer.
    pub up: Option<bool>,
    /// Requests answered and not answered.
    pub answered: u64,
    pub unanswered: u64,
    pub last_up_ms: Option<u64>,
    pub last_down_ms: Option<u64>,
    pub scheduled_pages: u64,
    pub entry_pages: u64,
    pub next_due_ms: Option<u64>,
    pub fetches: u64,
    pub changes: u64,
    /// Other onion sites this site announced as its mirror or new address (flagged for an
    /// analyst; never made seeds).
    pub mirrors: Vec<String>,
}

/// Durable schedule and liveness, next to the frontier's other state.
#[async_trait]
pub trait ScheduleStore: Send + Sync {
    /// Adds pages (a page already scheduled keeps its row).
    async fn schedule(&self, pages: &[NewPage]) -> Result<(), StoreError>;
    /// Takes up to `limit` rows due at `now_ms`, leasing each for two intervals: its report
    /// sets the real next visit; a revisit lost (or stuck behind a crawl backlog) is requested
    /// again when the lease runs out.
    async fn take_due(&self, now_ms: u64, limit: usize) -> Result<Vec<ScheduleRow>, StoreError>;
    /// How many pages are scheduled.
    async fn scheduled(&self) -> Result<u64, StoreError>;
    /// Makes every page never fetched yet due now (their requests died with an embedded
    /// bus); returns how many.
    async fn refetch_unfetched(&self, now_ms: u64) -> Result<u64, StoreError>;
    /// Moves a row's due time (a revisit the budget did not allow yet).
    async fn postpone(&self, digest: u128, due_ms: u64) -> Result<(), StoreError>;
    async fn row(&self, digest: u128) -> Result<Option<ScheduleRow>, StoreError>;
    /// Records a fetch's outcome: the row's next visit and the site's liveness.
    async fn record(&self, visit: &Visit) -> Result<(), StoreError>;
    async fn sites(&self) -> Result<Vec<SiteStatus>, StoreError>;
    /// Records that `site` announced `mirrors`; returns those it had not announced before.
    async fn add_mirrors(
        &self,
        site: &str,
        mirrors: &[String],
        now_ms: u64,
    ) -> Result<Vec<String>, StoreError>;
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The next visit of `row` after a fetch at `at_ms` that ended in `outcome`; `fresh_links`:
/// the page now shows links to pages the frontier first heard of lately (see
/// [`crate::Frontier`]): it is a listing that moves. A page whose links only rotate among old
/// ones (a "random threads" sidebar) shows none.
pub fn next_visit(
    row: &ScheduleRow,
    outcome: PageOutcome,
    fresh_links: bool,
    validators: Validators,
    at_ms: u64,
    cfg: &RecrawlConfig,
) -> Visit {
    let min = RecrawlConfig::ms(cfg.min_interval_secs).max(1);
    let entry_cap = RecrawlConfig::ms(cfg.entry_interval_secs).max(min);
    let max = RecrawlConfig::ms(cfg.max_interval_secs).max(entry_cap);
    let revisit = row.fetches > 0;
    let mut entry = row.entry || row.depth == 0;
    let mut quiet = row.quiet;
    let mut interval = row.interval_ms.max(min);
    match outcome {
        // The first fetch says nothing about how the page moves yet.
        PageOutcome::Changed if !revisit => quiet = 0,
        PageOutcome::Changed if fresh_links => {
            entry = true;
            quiet = 0;
            interval = interval.min(entry_cap) / 2;
        }
        PageOutcome::Changed => {
            quiet = quiet.saturating_add(1);
            interval /= 2;
        }
        PageOutcome::Unchanged => {
            quiet = quiet.saturating_add(1);
            interval = interval.saturating_mul(2);
        }
        // An outage says nothing about whether the page is a listing: it backs off, and
        // keeps its standing.
        PageOutcome::Refused | PageOutcome::Unreachable => interval = interval.saturating_mul(2),
    }
    if entry && row.depth > 0 && quiet >= ENTRY_PATIENCE {
        entry = false;
    }
    let cap = if entry { entry_cap } else { max };
    let interval = interval.clamp(min, cap);
    let validators = match outcome {
        PageOutcome::Changed | PageOutcome::Unchanged => validators,
        _ => row.validators.clone(),
    };
    Visit {
        digest: row.digest,
        site: row.site.clone(),
        outcome,
        at_ms,
        interval_ms: interval,
        due_ms: at_ms.saturating_add(interval + jitter(row.digest, interval)),
        entry,
        quiet,
        validators,
        head: row.head.clone(),
    }
}

/// Links kept in a page's [`Head`].
pub const HEAD_LINKS: usize = 32;

/// The first links of a page, in order, as 64-bit digest prefixes: what a listing shows on
/// top. Forums list threads by last activity, so a thread that gets a reply (an edit that may
/// plant a leak) jumps to the top of its board: comparing heads finds it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Head(pub Vec<u64>);

impl Head {
    /// From the full digests of the page's links, in document order.
    pub fn of(links: impl IntoIterator<Item = u128>) -> Head {
        let mut seen = std::collections::HashSet::new();
        Head(
            links
                .into_iter()
                .map(|d| (d >> 64) as u64)
                .filter(|p| seen.insert(*p))
                .take(HEAD_LINKS)
                .collect(),
        )
    }

    pub fn encode(&self) -> String {
        self.0
            .iter()
            .map(|p| format!("{p:016x}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The stored form; what does not parse is left out.
    pub fn decode(s: &str) -> Head {
        Head(
            s.split(',')
                .filter_map(|h| u64::from_str_radix(h, 16).ok())
                .take(HEAD_LINKS)
                .collect(),
        )
    }

    /// Links of `self` (the new head) that jumped: now above a link that was above them in
    /// `old`, or come from below `old` to above some of its links. New threads pushing the
    /// rest down, and a thread taken down pulling the rest up, move nothing relative to the
    /// others and are not bumps.
    pub fn bumped_since(&self, old: &Head) -> Vec<u64> {
        let was: std::collections::HashMap<u64, usize> =
            old.0.iter().enumerate().map(|(i, p)| (*p, i)).collect();
        let mut out = Vec::new();
        for (i, p) in self.0.iter().enumerate() {
            let below = &self.0[i + 1..];
            let jumped = match was.get(p) {
                Some(&at) => below.iter().any(|q| was.get(q).is_some_and(|&b| b < at)),
                None => below.iter().any(|q| was.contains_key(q)),
            };
            if jumped {
                out.push(*p);
            }
        }
        out
    }
}

/// Up to a tenth of `interval`, fixed per page, so pages found together spread out.
fn jitter(digest: u128, interval: u64) -> u64 {
    (digest as u64 % 1000) * (interval / 10) / 1000
}

/// Revisits allowed per site and overall, in memory: token buckets that refill at the
/// hourly rate and hold at most a minute's worth, so revisits are spread over the hour rather
/// than spent in a burst.
pub struct Budget {
    site: Rate,
    all: Bucket,
    sites: HashMap<String, Bucket>,
}

/// One token, in the buckets' units: a rate of `n` an hour adds `n` units a millisecond, so
/// the arithmetic is exact.
const TOKEN: u64 = 3_600_000;

/// A refill rate (units per millisecond) and a capacity (units).
#[derive(Clone, Copy)]
struct Rate {
    per_ms: u64,
    cap: u64,
}

impl Rate {
    fn per_hour(n: u32) -> Rate {
        let n = u64::from(n.max(1));
        Rate {
            per_ms: n,
            cap: (n / 60).max(1) * TOKEN,
        }
    }

    fn full(self, now_ms: u64) -> Bucket {
        Bucket {
            rate: self,
            units: self.cap,
            at_ms: now_ms,
        }
    }
}

struct Bucket {
    rate: Rate,
    units: u64,
    at_ms: u64,
}

impl Bucket {
    fn refill(&mut self, now_ms: u64) {
        let dt = now_ms.saturating_sub(self.at_ms);
        self.units = self
            .units
            .saturating_add(dt.saturating_mul(self.rate.per_ms))
            .min(self.rate.cap);
        self.at_ms = self.at_ms.max(now_ms);
    }

    fn has_token(&self) -> bool {
        self.units >= TOKEN
    }

    /// When one token will be there.
    fn next_ms(&self) -> u64 {
        let missing = TOKEN.saturating_sub(self.units);
        self.at_ms + missing.div_ceil(self.rate.per_ms)
    }
}

impl Budget {
    pub fn new(cfg: &RecrawlConfig) -> Budget {
        Budget {
            site: Rate::per_hour(cfg.site_revisits_per_hour),
            all: Rate::per_hour(cfg.revisits_per_hour).full(0),
            sites: HashMap::new(),
        }
    }

    /// Spends one revisit of `site` at `now_ms`, or says when the next one is allowed.
    pub fn spend(&mut self, site: &str, now_ms: u64) -> Result<(), u64> {
        if self.all.at_ms == 0 {
            self.all.at_ms = now_ms;
        }
        self.all.refill(now_ms);
        if !self.all.has_token() {
            return Err(self.all.next_ms());
        }
        if !self.sites.contains_key(site) && self.sites.len() >= MAX_BUDGETED_SITES {
            // Forget the sites whose buckets are full again: they are as good as new.
            self.sites.retain(|_, b| {
                b.refill(now_ms);
                b.units < b.rate.cap
            });
        }
        let rate = self.site;
        let b = self
            .sites
            .entry(site.to_string())
            .or_insert_with(|| rate.full(now_ms));
        b.refill(now_ms);
        if !b.has_token() {
            return Err(b.next_ms());
        }
        b.units -= TOKEN;
        self.all.units -= TOKEN;
        Ok(())
    }
}

/// Sites whose buckets are kept before full ones are forgotten.
const MAX_BUDGETED_SITES: usize = 100_000;

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> RecrawlConfig {
        RecrawlConfig {
            min_interval_secs: 60,
            entry_interval_secs: 600,
            page_interval_secs: 3600,
            max_interval_secs: 86_400,
            ..Default::default()
        }
    }

    fn row(depth: u32, interval_ms: u64, fetches: u64) -> ScheduleRow {
        ScheduleRow {
            digest: 0,
            depth,
            interval_ms,
            fetches,
            ..Default::default()
        }
    }

    fn after(r: &ScheduleRow, o: PageOutcome, links_changed: usize) -> ScheduleRow {
        let v = next_visit(r, o, links_changed > 0, Validators::default(), 0, &cfg());
        ScheduleRow {
            interval_ms: v.interval_ms,
            entry: v.entry,
            quiet: v.quiet,
            fetches: r.fetches + 1,
            ..r.clone()
        }
    }

    #[test]
    fn a_quiet_thread_backs_off_to_the_maximum_and_speeds_up_when_it_changes() {
        let mut r = row(2, 3_600_000, 0);
        r = after(&r, PageOutcome::Changed, 1); // the first fetch says nothing yet
        assert_eq!((r.interval_ms, r.entry), (3_600_000, false));
        for _ in 0..10 {
            r = after(&r, PageOutcome::Unchanged, 0);
        }
        assert_eq!(r.interval_ms, 86_400_000);
        r = after(&r, PageOutcome::Changed, 0);
        assert_eq!(r.interval_ms, 43_200_000);
    }

    #[test]
    fn a_page_whose_links_change_becomes_an_entry_page_and_stays_frequent() {
        let mut r = row(1, 3_600_000, 1);
        r = after(&r, PageOutcome::Changed, 3);
        assert!(r.entry);
        assert_eq!(r.interval_ms, 300_000);
        r = after(&r, PageOutcome::Changed, 1);
        assert_eq!(r.interval_ms, 150_000);
        for _ in 0..5 {
            r = after(&r, PageOutcome::Unchanged, 0);
        }
        // Quiet entry pages are capped at the entry interval…
        assert_eq!((r.interval_ms, r.entry), (600_000, true));
        for _ in 0..ENTRY_PATIENCE {
            r = after(&r, PageOutcome::Unchanged, 0);
        }
        // …until they have been quiet long enough to be ordinary pages again.
        assert!(!r.entry);
        assert!(r.interval_ms > 600_000);
    }

    #[test]
    fn an_outage_does_not_demote_an_entry_page() {
        let mut r = row(1, 3_600_000, 1);
        r = after(&r, PageOutcome::Changed, 1);
        for _ in 0..3 * ENTRY_PATIENCE {
            r = after(&r, PageOutcome::Unreachable, 0);
        }
        assert_eq!((r.entry, r.interval_ms), (true, 600_000));
        // Bad settings are brought within bounds.
        let c = RecrawlConfig {
            page_interval_secs: 0,
            ..cfg()
        };
        assert_eq!(c.first_interval_ms(3), 60_000);
    }

    #[test]
    fn seeds_stay_entry_pages_and_failures_back_off() {
        let mut r = row(0, 600_000, 1);
        for _ in 0..20 {
            r = after(&r, PageOutcome::Unreachable, 0);
        }
        assert_eq!((r.interval_ms, r.entry), (600_000, true));
        let mut t = row(3, 3_600_000, 1);
        for _ in 0..20 {
            t = after(&t, PageOutcome::Refused, 0);
        }
        assert_eq!(t.interval_ms, 86_400_000);
    }

    #[test]
    fn a_bumped_thread_is_found_and_shifts_are_not_bumps() {
        let head = |v: &[u64]| Head(v.to_vec());
        let old = head(&[1, 2, 3, 4, 5]);
        // One taken down, one more from below at the bottom: relative order kept.
        assert!(head(&[1, 3, 4, 5, 6]).bumped_since(&old).is_empty());
        // A new thread on top pushes the rest down: only the newcomer is above old links
        // (the frontier skips pages never fetched).
        assert_eq!(head(&[9, 1, 2, 3, 4]).bumped_since(&old), [9]);
        // Thread 4 got a reply; thread 7, from below the head, too.
        assert_eq!(head(&[4, 1, 2, 3, 5]).bumped_since(&old), [4]);
        assert_eq!(head(&[7, 1, 2, 3, 4]).bumped_since(&old), [7]);
        let h = Head::of([1u128 << 64, 2 << 64, 1 << 64]);
        assert_eq!(h, head(&[1, 2]));
        assert_eq!(Head::decode(&h.encode()), h);
        assert_eq!(Head::decode("zz,0000000000000001"), head(&[1]));
    }

    #[test]
    fn the_budget_holds_per_site_and_overall() {
        // 120 an hour per site: a burst of two, then one every 30 s.
        let mut b = Budget::new(&RecrawlConfig {
            site_revisits_per_hour: 120,
            revisits_per_hour: 300,
            ..Default::default()
        });
        let t0 = 1_000_000;
        b.spend("a", t0).unwrap();
        b.spend("a", t0).unwrap();
        assert_eq!(b.spend("a", t0), Err(t0 + 30_000));
        b.spend("a", t0 + 30_000).unwrap();
        // Over an hour, a site never gets more than its rate plus the burst.
        let mut spent = 0;
        for s in 0..3_600 {
            spent += usize::from(b.spend("a", t0 + 30_000 + s * 1_000).is_ok());
        }
        assert!((119..=121).contains(&spent), "{spent}");
        // The overall bucket (5 at once) is shared by every site.
        let mut other = 0;
        for i in 0..20 {
            other += usize::from(b.spend(&format!("s{i}"), t0 + 3_700_000).is_ok());
        }
        assert_eq!(other, 5);
    }
}
