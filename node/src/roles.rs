//! One start function per role: open what the role needs, return the task that runs it until
//! the bus closes. [`start`] is the one place that maps a [`Role`] to its start function.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use bus::{Bus, Stats};
use crawler::{Crawler, Fetcher, Frontier};
use indexer::{Indexer, PageIndex};
use matcher::{Matcher, Watchlist};
use url::Url;

use crate::{Config, NodeError, Readiness, Role};

/// A started role: runs until the bus closes.
pub type RoleTask = Pin<Box<dyn Future<Output = Result<(), NodeError>> + Send>>;

/// What every role's start function may use.
#[derive(Clone)]
pub struct RoleContext {
    pub data_dir: PathBuf,
    pub config: Arc<Config>,
    pub bus: Arc<dyn Bus>,
    pub stats: Arc<Stats>,
    /// The crawler's transport (present when this node runs the crawler role).
    pub fetcher: Option<Arc<dyn Fetcher>>,
    /// Seeds the frontier queues when it starts.
    pub seeds: Vec<Url>,
    pub readiness: Readiness,
    /// The crawler, once started (the summary asks it which seeds answered).
    pub crawler: Arc<OnceLock<Arc<Crawler>>>,
    /// Where the frontier keeps durable state and its recrawl schedule; `None`: in memory,
    /// without a schedule (the node crawls once).
    pub frontier_state: Option<StateLocation>,
    /// The shared state's URL (`postgres://…`), or `None` for SQLite in the data dir.
    pub state_url: Option<String>,
}

/// A `postgres://` URL, or `None` for SQLite in the data dir.
#[derive(Debug, Clone)]
pub struct StateLocation(pub Option<String>);

/// Starts `role`.
pub async fn start(role: Role, ctx: &RoleContext) -> Result<RoleTask, NodeError> {
    match role {
        Role::Indexer => start_indexer(ctx),
        Role::Matcher => start_matcher(ctx),
        Role::Crawler => start_crawler(ctx),
        Role::Frontier => start_frontier(ctx).await,
        Role::Console => crate::console::start(ctx).await,
    }
}

fn failed(role: Role) -> impl Fn(Box<dyn std::error::Error + Send + Sync>) -> NodeError {
    move |source| NodeError::Role { role, source }
}

/// Opens the index and the alert store.
pub fn start_indexer(ctx: &RoleContext) -> Result<RoleTask, NodeError> {
    let index = Arc::new(PageIndex::open(&ctx.data_dir)?);
    let alerts = alerts::AlertStore::open(&ctx.data_dir)?;
    let redact = Arc::new(Masking(Watchlist::open(&ctx.data_dir)?));
    let indexer = Indexer::new(
        ctx.config.indexer.clone(),
        index,
        alerts,
        ctx.stats.clone(),
        redact,
    );
    let bus = ctx.bus.clone();
    Ok(Box::pin(async move {
        indexer
            .run(bus)
            .await
            .map_err(|e| failed(Role::Indexer)(e.into()))
    }))
}

/// The indexer's redaction: every watched identifier becomes `[kind-N]`.
struct Masking(Watchlist);

impl indexer::Redact for Masking {
    fn redact<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        if self.0.is_empty() {
            return std::borrow::Cow::Borrowed(text);
        }
        std::borrow::Cow::Owned(self.0.mask(text).0)
    }
}

/// Loads the fingerprint bank and the watchlist.
pub fn start_matcher(ctx: &RoleContext) -> Result<RoleTask, NodeError> {
    let engine = matcher::open_engine(&ctx.data_dir, ctx.config.matcher.params())?;
    if engine.is_empty() {
        tracing::warn!("the fingerprint bank is empty: images are indexed but cannot alert");
    }
    let watchlist = Watchlist::open(&ctx.data_dir)?;
    let mut matcher = Matcher::new(
        ctx.config.matcher.clone(),
        engine,
        watchlist,
        ctx.stats.clone(),
    )
    .with_negatives(&ctx.data_dir);
    let evidence = &ctx.config.evidence;
    match evidence::EvidenceKey::load(evidence, &ctx.data_dir)? {
        Some(key) => {
            let vault = evidence::Vault::open(&ctx.data_dir, key, evidence)?;
            matcher = matcher.with_evidence(vault, evidence.retention_days);
        }
        None => tracing::warn!(
            "no evidence key ({} or [evidence] key_file): alerts are raised without the \
             responses that carried them",
            evidence::vault::KEY_FILE_ENV
        ),
    }
    let matcher = Arc::new(matcher);
    let bus = ctx.bus.clone();
    Ok(Box::pin(async move {
        matcher
            .run(bus)
            .await
            .map_err(|e| failed(Role::Matcher)(e.into()))
    }))
}

/// Needs the node's transport.
pub fn start_crawler(ctx: &RoleContext) -> Result<RoleTask, NodeError> {
    let fetcher = ctx.fetcher.clone().ok_or(NodeError::NoTransport)?;
    let pastes = paste_poller(ctx, fetcher.clone())?;
    let site_delays = ctx
        .config
        .pastes
        .iter()
        .filter(|p| p.min_interval_ms > 0)
        .flat_map(|p| {
            let d = std::time::Duration::from_millis(p.min_interval_ms);
            p.sites().into_iter().map(move |s| (s, d))
        })
        .collect();
    let crawler = Arc::new(
        Crawler::new(ctx.config.crawler.clone(), fetcher, ctx.stats.clone())
            .with_site_delays(site_delays),
    );
    let up = crawler.clone();
    ctx.readiness
        .check(Role::Crawler, Arc::new(move || up.transport_up()));
    let (probed, stats) = (crawler.clone(), ctx.stats.clone());
    ctx.readiness.probe(
        Role::Crawler,
        Arc::new(move || {
            let (crawler, stats) = (probed.clone(), stats.clone());
            Box::pin(async move {
                let up = crawler.probe_transport().await;
                stats.set_gauge(bus::stats::Gauge::TransportUp, "", f64::from(u8::from(up)));
                up
            })
        }),
    );
    let _ = ctx.crawler.set(crawler.clone());
    let bus = ctx.bus.clone();
    let once = ctx.frontier_state.is_none();
    Ok(Box::pin(async move {
        let polls = async {
            match pastes {
                Some(p) => p.run(bus.clone(), once).await,
                None => Ok(()),
            }
        };
        tokio::try_join!(crawler.run(bus.clone()), polls)
            .map(|_| ())
            .map_err(|e| failed(Role::Crawler)(e.into()))
    }))
}

/// The poller of the configured paste sites, checked (`None` without any).
fn paste_poller(
    ctx: &RoleContext,
    fetcher: Arc<dyn Fetcher>,
) -> Result<Option<Arc<crawler::pastes::Poller>>, NodeError> {
    let sites = &ctx.config.pastes;
    if sites.is_empty() {
        return Ok(None);
    }
    for site in sites {
        site.check().map_err(|e| failed(Role::Crawler)(e.into()))?;
    }
    let c = &ctx.config.crawler;
    Ok(Some(Arc::new(crawler::pastes::Poller::new(
        sites.clone(),
        fetcher,
        c.limits(c.max_page_bytes),
        c.max_redirects,
        ctx.stats.clone(),
    ))))
}

/// A store probe's answer; a failure is logged (the probe repeats every few seconds, so only
/// at debug level).
pub(crate) fn store_answers<E: std::fmt::Display>(role: &str, r: Result<(), E>) -> bool {
    if let Err(e) = &r {
        tracing::debug!(role, error = %e, "the state store does not answer");
    }
    r.is_ok()
}

/// Opens the durable state (when there is one), republishes what a crash left unconfirmed,
/// queues the seeds, then consumes discoveries.
pub async fn start_frontier(ctx: &RoleContext) -> Result<RoleTask, NodeError> {
    let (config, stats) = (ctx.config.crawler.clone(), ctx.stats.clone());
    let frontier = Arc::new(match &ctx.frontier_state {
        None => Frontier::new(config, stats),
        Some(StateLocation(url)) => {
            let store = crawler::store::open(url.as_deref(), &ctx.data_dir)
                .await
                .map_err(|e| failed(Role::Frontier)(e.into()))?;
            Frontier::with_store(config, stats, store)
                .await
                .map_err(|e| failed(Role::Frontier)(e.into()))?
                .recrawling(ctx.config.recrawl.clone())
        }
    });
    let probed = frontier.clone();
    ctx.readiness.probe(
        Role::Frontier,
        Arc::new(move || {
            let frontier = probed.clone();
            Box::pin(async move { store_answers("frontier", frontier.store_reachable().await) })
        }),
    );
    let paste_sites: Vec<String> = ctx.config.pastes.iter().flat_map(|p| p.sites()).collect();
    frontier
        .allow_sites(&paste_sites)
        .await
        .map_err(|e| failed(Role::Frontier)(e.into()))?;
    frontier.recover(ctx.bus.as_ref()).await?;
    let seeded = frontier.seed(ctx.bus.as_ref(), &ctx.seeds).await?;
    tracing::info!(seeded, "seeds queued");
    let bus = ctx.bus.clone();
    Ok(Box::pin(async move {
        tokio::try_join!(frontier.clone().run(bus.clone()), frontier.schedule(bus))
            .map(|_| ())
            .map_err(|e| failed(Role::Frontier)(e.into()))
    }))
}
