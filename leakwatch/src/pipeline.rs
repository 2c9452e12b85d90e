//! Wiring the roles together in one process on the embedded bus: what `leakwatch run` and
//! `leakwatch demo` start.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bus::{Bus, EmbeddedBus, Stats};
use crawler::{Crawler, DirectFetcher, Fetcher, Frontier};
use indexer::{AlertStore, Indexer, PageIndex};
use matcher::{Bank, Matcher, Watchlist};
use serde::Serialize;
use url::Url;

use crate::config::Config;

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
    pub errors: BTreeMap<String, u64>,
    pub dead_lettered: u64,
    pub elapsed_secs: f64,
    pub pages_per_sec: f64,
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
        if self.errors.is_empty() {
            println!("errors: none");
        } else {
            println!("errors by kind:");
            for (k, v) in &self.errors {
                println!("  {k}: {v}");
            }
        }
        if self.dead_lettered > 0 {
            println!("dead-lettered messages: {}", self.dead_lettered);
        }
    }
}

/// Options of one pipeline run.
pub struct RunOptions {
    pub seeds: Vec<Url>,
    pub allow_private: bool,
    pub once: bool,
    /// Print progress lines to stderr (only sensible on a terminal).
    pub progress: bool,
}

/// Runs every role in this process until the crawl settles (`once`) or a shutdown signal.
pub async fn run(data_dir: &Path, config: &Config, opts: RunOptions) -> anyhow::Result<Summary> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("failed to create data dir {}", data_dir.display()))?;
    let stats = Arc::new(Stats::default());
    let bank = Bank::open(data_dir)?;
    if bank.is_empty() {
        tracing::warn!("the fingerprint bank is empty: images are indexed but cannot alert");
    }
    let watchlist = Watchlist::open(data_dir)?;
    let index = Arc::new(PageIndex::open(data_dir)?);
    let alerts = AlertStore::open(data_dir)?;

    let embedded = EmbeddedBus::new(5);
    let bus: Arc<dyn Bus> = Arc::new(embedded.clone());
    let fetcher: Arc<dyn Fetcher> = Arc::new(
        DirectFetcher::new(opts.allow_private, &config.crawler.user_agent)
            .context("failed to set up the direct transport")?,
    );
    let frontier = Arc::new(Frontier::new(config.crawler.clone(), stats.clone()));
    let crawler = Arc::new(Crawler::new(config.crawler.clone(), fetcher, stats.clone()));
    let matcher = Arc::new(Matcher::new(
        config.matcher.clone(),
        bank,
        watchlist,
        stats.clone(),
    ));
    let indexer = Indexer::new(config.indexer.clone(), index.clone(), alerts, stats.clone());

    let started = Instant::now();
    let mut roles = tokio::task::JoinSet::new();
    roles.spawn({
        let bus = bus.clone();
        async move { indexer.run(bus).await.context("indexer failed") }
    });
    roles.spawn({
        let bus = bus.clone();
        async move { matcher.run(bus).await.context("matcher failed") }
    });
    roles.spawn({
        let bus = bus.clone();
        async move { crawler.run(bus).await.context("crawler failed") }
    });
    roles.spawn({
        let (bus, frontier) = (bus.clone(), frontier.clone());
        async move { frontier.run(bus).await.context("frontier failed") }
    });
    let seeded = frontier.seed(bus.as_ref(), &opts.seeds).await?;
    tracing::info!(seeded, "seeds queued");

    let progress = opts.progress.then(|| {
        let (stats, embedded) = (stats.clone(), embedded.clone());
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
                    embedded.outstanding()
                );
            }
        })
    });

    let mut role_error = None;
    if opts.once {
        tokio::select! {
            _ = embedded.wait_idle() => {}
            r = roles.join_next() => role_error = Some(r),
            _ = shutdown_signal() => eprintln!("interrupted: stopping"),
        }
    } else {
        tokio::select! {
            r = roles.join_next() => role_error = Some(r),
            _ = shutdown_signal() => eprintln!("stopping"),
        }
    }
    embedded.close();
    if let Some(p) = progress {
        p.abort();
    }
    if let Some(Some(r)) = role_error {
        r.context("role panicked")??;
        anyhow::bail!("a role stopped unexpectedly");
    }
    while let Some(r) = roles.join_next().await {
        r.context("role panicked")??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let pages = stats.get("pages");
    Ok(Summary {
        pages,
        images: stats.get("images"),
        images_hashed: stats.get("images.hashed"),
        new_alerts: stats.get("alerts"),
        repeated_alerts: stats.get("alerts.duplicate"),
        total_alerts: indexer::alerts::load(&data_dir.join(indexer::alerts::ALERTS_FILE))?.len(),
        errors: stats.errors(),
        dead_lettered: embedded.dead_lettered(),
        elapsed_secs: elapsed,
        pages_per_sec: if elapsed > 0.0 {
            pages as f64 / elapsed
        } else {
            0.0
        },
    })
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
