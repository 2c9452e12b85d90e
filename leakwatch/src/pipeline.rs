//! Wiring the roles together in one process on the embedded bus: what `leakwatch run` and
//! `leakwatch demo` start.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bus::{AmqpBus, Bus, EmbeddedBus, Stats};
use crawler::tor::TorOptions;
use crawler::{
    Crawler, DirectFetcher, Fetcher, Frontier, HealthyFetcher, Socks5Fetcher, TorFetcher,
};
use indexer::{AlertStore, Indexer, PageIndex};
use matcher::{Bank, Matcher, Watchlist};
use serde::Serialize;
use url::Url;

use crate::cli::Transport;
use crate::config::Config;

/// How long roles get to finish in-flight work after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// What a run did; printed at the end of `run --once`.
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
    /// `tor`, `direct` or `socks5://HOST:PORT`.
    pub transport: String,
    /// How long the embedded Tor client took to bootstrap (tor transport only).
    pub tor_bootstrap_secs: Option<f64>,
    /// Sites marked down (after repeated failures) when the run ended.
    pub sites_down: u64,
    /// Site-health and Tor counters: `site.retries`, `site.marked-down`, `site.recovered`,
    /// `site.reprobes`, `tor.circuits`, `tor.fresh-isolation`, `frontier.dropped.onion.*`.
    pub health: BTreeMap<String, u64>,
}

impl Summary {
    pub fn print_human(&self) {
        println!(
            "crawled {} pages and {} images in {:.1}s ({:.1} pages/s)",
            self.pages, self.images, self.elapsed_secs, self.pages_per_sec
        );
        println!(
            "alerts: {} new, {} already known, {} in total",
            self.new_alerts, self.repeated_alerts, self.total_alerts
        );
        if !self.images_skipped.is_empty() {
            let parts: Vec<String> = self
                .images_skipped
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            println!(
                "images not matched (too small or flat): {}",
                parts.join(", ")
            );
        }
        if self.errors.is_empty() {
            println!("errors: none");
        } else {
            println!("errors by kind:");
            for (k, v) in &self.errors {
                println!("  {k}: {v}");
            }
        }
        match self.tor_bootstrap_secs {
            Some(b) => println!("transport: {} (bootstrapped in {b:.1}s)", self.transport),
            None => println!("transport: {}", self.transport),
        }
        if !self.health.is_empty() || self.sites_down > 0 {
            println!("site health: {} sites down", self.sites_down);
            for (k, v) in &self.health {
                println!("  {k}: {v}");
            }
        }
        if self.dead_lettered > 0 {
            println!("dead-lettered messages: {}", self.dead_lettered);
        }
    }
}

/// Which roles this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    pub frontier: bool,
    pub crawler: bool,
    pub matcher: bool,
    pub indexer: bool,
}

impl Roles {
    pub const ALL: Roles = Roles {
        frontier: true,
        crawler: true,
        matcher: true,
        indexer: true,
    };

    /// Parses role names (`frontier`, `crawler`, `matcher`, `indexer`).
    pub fn parse(names: &[String]) -> anyhow::Result<Roles> {
        if names.is_empty() {
            return Ok(Roles::ALL);
        }
        let mut r = Roles {
            frontier: false,
            crawler: false,
            matcher: false,
            indexer: false,
        };
        for n in names {
            match n.trim() {
                "frontier" => r.frontier = true,
                "crawler" => r.crawler = true,
                "matcher" => r.matcher = true,
                "indexer" => r.indexer = true,
                "all" => r = Roles::ALL,
                other => anyhow::bail!(
                    "unknown role {other:?}: expected frontier, crawler, matcher or indexer"
                ),
            }
        }
        Ok(r)
    }

    pub fn is_all(&self) -> bool {
        *self == Roles::ALL
    }
}

/// Options of one pipeline run.
pub struct RunOptions {
    pub seeds: Vec<Url>,
    pub allow_private: bool,
    pub once: bool,
    /// Print progress lines to stderr (only sensible on a terminal).
    pub progress: bool,
    pub roles: Roles,
    /// RabbitMQ URL; `None` = the embedded bus.
    pub amqp: Option<String>,
    pub transport: Transport,
    /// arti TOML for the tor transport (a custom network).
    pub tor_config: Option<std::path::PathBuf>,
}

/// The crawler's transport, and what the summary needs from it.
struct TransportHandle {
    fetcher: Arc<dyn Fetcher>,
    health: Option<Arc<HealthyFetcher>>,
    bootstrap: Option<Duration>,
}

/// Sets up the transport; the tor transport bootstraps here (bounded by `[tor]`).
async fn open_transport(
    data_dir: &Path,
    config: &Config,
    opts: &RunOptions,
    stats: &Arc<Stats>,
) -> anyhow::Result<TransportHandle> {
    let ua = &config.crawler.user_agent;
    let (inner, bootstrap): (Arc<dyn Fetcher>, _) = match &opts.transport {
        Transport::Direct => {
            let direct = DirectFetcher::new(opts.allow_private, ua)
                .context("failed to set up the direct transport")?;
            return Ok(TransportHandle {
                fetcher: Arc::new(direct),
                health: None,
                bootstrap: None,
            });
        }
        Transport::Socks5(proxy) => (
            Arc::new(
                Socks5Fetcher::new(proxy, ua).context("failed to set up the SOCKS5 transport")?,
            ),
            None,
        ),
        Transport::Tor => {
            let tor = TorFetcher::bootstrap(
                TorOptions {
                    config_file: opts.tor_config.clone(),
                    dir: data_dir.join("tor"),
                    allow_private: opts.allow_private,
                    user_agent: ua.clone(),
                    config: config.tor.clone(),
                    progress: true,
                },
                stats.clone(),
            )
            .await
            .context("failed to start the tor transport")?;
            let b = tor.bootstrap_time();
            (Arc::new(tor), Some(b))
        }
    };
    let health = Arc::new(HealthyFetcher::new(
        inner,
        config.health.clone(),
        stats.clone(),
    ));
    Ok(TransportHandle {
        fetcher: health.clone(),
        health: Some(health),
        bootstrap,
    })
}

/// The bus this process runs on.
#[derive(Clone)]
enum BusHandle {
    Embedded(EmbeddedBus),
    Amqp(AmqpBus),
}

impl BusHandle {
    fn as_dyn(&self) -> Arc<dyn Bus> {
        match self {
            BusHandle::Embedded(b) => Arc::new(b.clone()),
            BusHandle::Amqp(b) => Arc::new(b.clone()),
        }
    }

    fn close(&self) {
        match self {
            BusHandle::Embedded(b) => b.close(),
            BusHandle::Amqp(b) => b.close(),
        }
    }

    fn in_flight(&self) -> u64 {
        match self {
            BusHandle::Embedded(b) => b.outstanding(),
            BusHandle::Amqp(b) => b.in_flight(),
        }
    }

    /// Waits until every message is processed. For the AMQP bus (with every role in this
    /// process) that is: no ready message in any queue and nothing in flight here, three
    /// times in a row.
    async fn wait_idle(&self) -> anyhow::Result<()> {
        match self {
            BusHandle::Embedded(b) => {
                b.wait_idle().await;
                Ok(())
            }
            BusHandle::Amqp(b) => {
                let mut quiet = 0;
                while quiet < 3 {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    let ready: u32 = b
                        .queue_depths()
                        .await?
                        .iter()
                        .filter(|d| !d.queue.ends_with(".dlq"))
                        .map(|d| d.messages)
                        .sum();
                    quiet = if ready == 0 && b.in_flight() == 0 {
                        quiet + 1
                    } else {
                        0
                    };
                }
                Ok(())
            }
        }
    }
}

/// Runs the chosen roles until the crawl settles (`once`) or a shutdown signal.
pub async fn run(data_dir: &Path, config: &Config, opts: RunOptions) -> anyhow::Result<Summary> {
    if opts.amqp.is_none() && !opts.roles.is_all() {
        anyhow::bail!("--roles splits leakwatch across processes, which needs --amqp URL");
    }
    if opts.once && !opts.roles.is_all() {
        anyhow::bail!("--once needs every role in this process (omit --roles)");
    }
    if !opts.seeds.is_empty() && !opts.roles.frontier {
        anyhow::bail!("--seed goes to the frontier: add the frontier role to this process");
    }
    if opts.once && opts.seeds.is_empty() {
        anyhow::bail!("--once needs seeds");
    }
    if opts.tor_config.is_some() && opts.transport != Transport::Tor {
        anyhow::bail!("--tor-config is for the tor transport (--transport tor)");
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("failed to create data dir {}", data_dir.display()))?;
    let stats = Arc::new(Stats::default());
    let handle = match &opts.amqp {
        None => BusHandle::Embedded(EmbeddedBus::new(config.bus.delivery_limit)),
        Some(url) => BusHandle::Amqp(
            AmqpBus::connect(url, config.bus.delivery_limit)
                .await
                .with_context(|| format!("failed to connect to {}", redact(url)))?,
        ),
    };
    let bus = handle.as_dyn();
    let transport = if opts.roles.crawler {
        Some(open_transport(data_dir, config, &opts, &stats).await?)
    } else {
        None
    };
    let started = Instant::now();
    let mut roles = tokio::task::JoinSet::new();

    if opts.roles.indexer {
        let index = Arc::new(PageIndex::open(data_dir)?);
        let alerts = AlertStore::open(data_dir)?;
        let indexer = Indexer::new(config.indexer.clone(), index, alerts, stats.clone());
        let bus = bus.clone();
        roles.spawn(async move { indexer.run(bus).await.context("indexer failed") });
    }
    if opts.roles.matcher {
        let bank = Bank::open(data_dir)?;
        if bank.is_empty() {
            tracing::warn!("the fingerprint bank is empty: images are indexed but cannot alert");
        }
        let watchlist = Watchlist::open(data_dir)?;
        let matcher = Arc::new(Matcher::new(
            config.matcher.clone(),
            bank,
            watchlist,
            stats.clone(),
        ));
        let bus = bus.clone();
        roles.spawn(async move { matcher.run(bus).await.context("matcher failed") });
    }
    if opts.roles.crawler {
        let fetcher = transport
            .as_ref()
            .map(|t| t.fetcher.clone())
            .context("no transport")?;
        let crawler = Arc::new(Crawler::new(config.crawler.clone(), fetcher, stats.clone()));
        let bus = bus.clone();
        roles.spawn(async move { crawler.run(bus).await.context("crawler failed") });
    }
    if opts.roles.frontier {
        let frontier = Arc::new(Frontier::new(config.crawler.clone(), stats.clone()));
        let seeded = frontier.seed(bus.as_ref(), &opts.seeds).await?;
        tracing::info!(seeded, "seeds queued");
        let bus = bus.clone();
        roles.spawn(async move { frontier.run(bus).await.context("frontier failed") });
    }

    let progress = opts.progress.then(|| {
        let (stats, handle) = (stats.clone(), handle.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(2));
            tick.tick().await;
            loop {
                tick.tick().await;
                eprintln!(
                    "… {} pages, {} images, {} alerts, {} errors, {} messages in flight",
                    stats.get("pages"),
                    stats.get("images"),
                    stats.get("alerts"),
                    stats.errors().values().sum::<u64>(),
                    handle.in_flight()
                );
            }
        })
    });

    let mut role_ended = None;
    if opts.once {
        tokio::select! {
            r = handle.wait_idle() => r?,
            r = roles.join_next() => role_ended = Some(r),
            _ = shutdown_signal() => eprintln!("interrupted: stopping"),
        }
    } else {
        tokio::select! {
            r = roles.join_next() => role_ended = Some(r),
            _ = shutdown_signal() => tracing::info!("stopping: finishing in-flight work"),
        }
    }
    // Stop consuming; roles finish the message in hand, the indexer commits, then exit.
    handle.close();
    if let Some(p) = progress {
        p.abort();
    }
    let mut result: anyhow::Result<()> = Ok(());
    if let Some(Some(r)) = role_ended {
        result = match r {
            Ok(Ok(())) => Err(anyhow::anyhow!("a role stopped unexpectedly")),
            Ok(Err(e)) => Err(e),
            Err(e) => Err(anyhow::anyhow!("role panicked: {e}")),
        };
    }
    let drain = async {
        while let Some(r) = roles.join_next().await {
            let r = r
                .map_err(|e| anyhow::anyhow!("role panicked: {e}"))
                .and_then(|r| r);
            if result.is_ok() {
                result = r;
            }
        }
    };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        // What was not settled stays unacked; the broker redelivers it to another process.
        anyhow::bail!(
            "roles did not stop within {}s; in-flight messages will be redelivered",
            SHUTDOWN_GRACE.as_secs()
        );
    }
    if let Some(reason) = bus.failure() {
        anyhow::bail!("lost the broker connection: {reason}");
    }
    result?;
    let dead_lettered = match &handle {
        BusHandle::Embedded(b) => b.dead_lettered(),
        BusHandle::Amqp(b) => {
            let n = tokio::time::timeout(Duration::from_secs(5), b.queue_depths())
                .await
                .map_err(|_| bus::BusError::Broker("timed out".into()))
                .and_then(|r| r)
                .map(|d| {
                    d.iter()
                        .filter(|q| q.queue.ends_with(".dlq"))
                        .map(|q| q.messages as u64)
                        .sum()
                })
                .unwrap_or(0);
            b.disconnect().await;
            n
        }
    };
    let elapsed = started.elapsed().as_secs_f64();
    let pages = stats.get("pages");
    Ok(Summary {
        pages,
        images: stats.get("images"),
        images_hashed: stats.get("images.hashed"),
        new_alerts: stats.get("alerts"),
        repeated_alerts: stats.get("alerts.duplicate"),
        total_alerts: indexer::alerts::load(&data_dir.join(indexer::alerts::ALERTS_FILE))?.len(),
        images_skipped: stats
            .snapshot()
            .into_iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("skipped.")?.to_string(), v)))
            .collect(),
        errors: stats.errors(),
        dead_lettered,
        elapsed_secs: elapsed,
        pages_per_sec: if elapsed > 0.0 {
            pages as f64 / elapsed
        } else {
            0.0
        },
        transport: opts.transport.name(),
        tor_bootstrap_secs: transport
            .as_ref()
            .and_then(|t| t.bootstrap)
            .map(|d| d.as_secs_f64()),
        sites_down: transport
            .as_ref()
            .and_then(|t| t.health.as_ref())
            .map(|h| h.sites_down() as u64)
            .unwrap_or(0),
        health: stats
            .snapshot()
            .into_iter()
            .filter(|(k, _)| {
                k.starts_with("site.")
                    || k.starts_with("tor.")
                    || k.starts_with("frontier.dropped.")
            })
            .collect(),
    })
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// Resolves on Ctrl-C or SIGTERM (what Kubernetes sends).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Whether progress lines make sense (stderr is a terminal and not in CI).
pub fn interactive() -> bool {
    std::io::stderr().is_terminal()
}
