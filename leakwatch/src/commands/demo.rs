//! `leakwatch demo`: the whole product in one command, on a synthetic dark web served on
//! loopback. Imports the testbed's stolen set and identifiers, crawls every site, then shows
//! the alerts against the testbed's truth and one search.

use std::collections::HashSet;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use crawler::Frontier;

use crate::cli::DemoArgs;
use crate::config::Config;
use crate::pipeline::{self, RunOptions};

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
    let truth = tb.truth();

    // The stolen photos exist only long enough to be fingerprinted.
    let scratch = tempfile::tempdir().context("failed to create a scratch dir")?;
    let stolen = scratch.path().join("stolen");
    tb.write_stolen_set(&stolen)?;
    let identifiers = scratch.path().join("identifiers.txt");
    tb.write_identifiers(&identifiers)?;
    println!(
        "\nfingerprinting the stolen set ({} photos) …",
        truth_stolen_count(&stolen)
    );
    let (dd, cfg) = (data_dir.clone(), config.clone());
    tokio::task::spawn_blocking(move || super::fingerprints::import(&dd, &cfg, &[stolen]))
        .await??;
    super::watchlist::import(&data_dir, &identifiers)?;
    drop(scratch);

    println!("\ncrawling {} seeds …", tb.seeds().len());
    let mut cfg = config.clone();
    cfg.crawler.politeness_delay_ms = 0; // the testbed is local
    let summary = pipeline::run(
        &data_dir,
        &cfg,
        RunOptions {
            seeds: Frontier::parse_seeds(&tb.seeds())?,
            allow_private: true,
            once: true,
            progress: pipeline::interactive(),
            roles: pipeline::Roles::ALL,
            amqp: None,
            // The testbed is on loopback, not behind Tor.
            transport: crate::cli::Transport::Direct,
            tor_config: None,
        },
    )
    .await?;
    summary.print_human();

    let alerts = indexer::alerts::load(&data_dir.join(indexer::alerts::ALERTS_FILE))?;
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
    let alerted: HashSet<(&str, &str)> = alerts
        .iter()
        .filter(|a| a.kind == schema::AlertKind::Image)
        .map(|a| (a.url.as_str(), a.label.as_str()))
        .collect();
    let catchable: Vec<_> = truth
        .leaks
        .iter()
        .filter(|l| l.expect_dct256 && !l.data_uri)
        .collect();
    let caught = catchable
        .iter()
        .filter(|l| alerted.contains(&(l.image_url.as_str(), l.label.as_str())))
        .count();
    let decoys_alerted = truth
        .decoys
        .iter()
        .filter(|d| alerts.iter().any(|a| a.url == d.image_url))
        .count();
    println!(
        "\nagainst the testbed's truth: {caught} of {} planted leaks that the 256-bit DCT hash can \
         catch were alerted; {decoys_alerted} of {} decoys alerted",
        catchable.len(),
        truth.decoys.len()
    );
    if let Some(p) = truth.phrases.first() {
        let index = indexer::PageIndex::open(&data_dir)?;
        let q = format!("\"{}\"", p.phrase);
        println!("\nleakwatch search '{q}':");
        for h in index.search(&q, 3)? {
            println!("  {}\n    {}\n    {}", h.title, h.url, h.snippet);
        }
    }
    println!(
        "\ndata dir: {}\n  try: leakwatch --data-dir {} search 'plate'\n       leakwatch --data-dir {} alerts --json",
        data_dir.display(),
        data_dir.display(),
        data_dir.display()
    );
    tb.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

fn truth_stolen_count(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}
