//! `leakwatch demo`: the whole product in one command, on a synthetic dark web served on
//! loopback. Imports the testbed's stolen set and identifiers, crawls every site, then shows
//! the alerts against the testbed's truth and one search. Built only with the `demo` feature
//! (on by default), so a production build does not link the testbed.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use crawler::Frontier;
use node::{Config, Roles, TransportKind};
use schema::{Alert, AlertKind};

use super::run::{self, RunPlan};
use crate::cli::DemoArgs;

pub async fn run(data_dir: &Path, config: &Config, args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let data_dir = data_dir.join("demo");
    println!("starting the testbed (a synthetic dark web on 127.0.0.1) …");
    let tb = testbed::start(testbed::Config {
        seed: args.seed,
        ..testbed::Config::default()
    })
    .await
    .context("failed to start the testbed")?;
    for s in tb.sites() {
        println!("  {:<8} {}", s.name, s.base_url);
    }
    import_stolen(&tb, &data_dir, config).await?;

    println!("\ncrawling {} seeds …", tb.seeds().len());
    let mut cfg = config.clone();
    cfg.crawler.politeness_delay_ms = 0; // the testbed is local
    let plan = RunPlan {
        seeds: Frontier::parse_seeds(&tb.seeds())?,
        roles: Roles::all(),
        once: true,
        amqp: None,
        // The testbed is on loopback, not behind Tor.
        transport: TransportKind::Direct,
        allow_private: true,
        tor_config: None,
        json: false,
        state_url: None,
        metrics_listen: None,
    };
    let summary = run::start(&data_dir, &cfg, plan, super::interactive()).await?;
    run::print_summary(&summary);
    report(&tb, &data_dir)?;
    tb.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// Fingerprints the stolen set and watches the identifiers; the photos exist only long
/// enough to be fingerprinted.
async fn import_stolen(
    tb: &testbed::Running,
    data_dir: &Path,
    config: &Config,
) -> anyhow::Result<()> {
    let scratch = tempfile::tempdir().context("failed to create a scratch dir")?;
    let stolen = scratch.path().join("stolen");
    tb.write_stolen_set(&stolen)?;
    let identifiers = scratch.path().join("identifiers.txt");
    tb.write_identifiers(&identifiers)?;
    let count = std::fs::read_dir(&stolen).map(|d| d.count()).unwrap_or(0);
    println!("\nfingerprinting the stolen set ({count} photos) …");
    let (dd, cfg) = (data_dir.to_path_buf(), config.clone());
    tokio::task::spawn_blocking(move || super::fingerprints::import(&dd, &cfg, &[stolen]))
        .await??;
    super::watchlist::import(data_dir, &identifiers, matcher::IdentifierKind::Plate)?;
    Ok(())
}

/// The alerts, every planted leak and decoy against them, and one search.
fn report(tb: &testbed::Running, data_dir: &Path) -> anyhow::Result<()> {
    let truth = tb.truth();
    let alerts = ::alerts::load(&data_dir.join(::alerts::ALERTS_FILE))?;
    println!("\nalerts:");
    for a in &alerts {
        println!(
            "  {:<5} {:<12} distance {:>2}  {}",
            a.kind.as_str(),
            a.label,
            a.distance,
            a.url.chars().take(90).collect::<String>()
        );
    }
    let caught = truth
        .leaks
        .iter()
        .filter(|l| alerts.iter().any(|a| alerts_leak(a, l)))
        .count();
    let decoy_alerts = |kind: AlertKind| {
        truth
            .decoys
            .iter()
            .filter(|d| {
                alerts
                    .iter()
                    .any(|a| a.url == d.image_url && a.kind == kind)
            })
            .count()
    };
    println!(
        "\nagainst the testbed's truth: {caught} of {} planted leaks were alerted; \
         {} of {} decoys alerted as a stolen photo ({} as a frame of a stolen camera)",
        truth.leaks.len(),
        decoy_alerts(AlertKind::Image),
        truth.decoys.len(),
        decoy_alerts(AlertKind::Scene)
    );
    if let Some(p) = truth.phrases.first() {
        let index = indexer::PageIndex::open(data_dir)?;
        let q = format!("\"{}\"", p.phrase);
        println!("\nleakwatch search '{q}':");
        for h in index.search(&q, 3)? {
            println!("  {}\n    {}\n    {}", h.title, h.url, h.snippet);
        }
    }
    let dir = data_dir.display();
    println!(
        "\ndata dir: {dir}\n  try: leakwatch --data-dir {dir} search 'plate'\n       leakwatch --data-dir {dir} alerts --json\n  the console:\n       leakwatch --data-dir {dir} users add me --role admin --password-stdin\n       leakwatch --data-dir {dir} console   # http://127.0.0.1:8080/"
    );
    Ok(())
}

/// Whether `a` is the image alert for planted leak `l` (a data-URI leak by its page).
fn alerts_leak(a: &Alert, l: &testbed::Leak) -> bool {
    let same_image = if l.data_uri {
        a.url.starts_with("data:") && a.page_url.as_deref() == Some(l.page_url.as_str())
    } else {
        a.url == l.image_url
    };
    a.kind == AlertKind::Image && same_image && a.label == l.label
}
