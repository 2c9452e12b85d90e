//! `leakwatch run`: validate every option combination up front, then start a node with the
//! chosen roles and print its summary.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bus::{Bus, Counter};
use crawler::Frontier;
use node::{Config, Node, NodeOptions, Role, Roles, Summary, Transport, TransportKind};
use url::Url;

use crate::cli::RunArgs;

/// A `run` command line, checked: everything [`start`] needs and nothing it must check again.
pub struct RunPlan {
    pub seeds: Vec<Url>,
    pub roles: Roles,
    pub once: bool,
    pub amqp: Option<String>,
    pub transport: TransportKind,
    pub allow_private: bool,
    pub tor_config: Option<PathBuf>,
    pub json: bool,
    pub state_url: Option<String>,
    pub metrics_listen: Option<std::net::SocketAddr>,
}

impl RunPlan {
    /// Reads the seeds file and refuses every combination of options that cannot work
    /// (`pastes`: the config watches paste sites, which is work enough without seeds).
    pub fn from_args(args: &RunArgs, pastes: bool) -> anyhow::Result<RunPlan> {
        let seeds = seed_lines(args)?;
        if seeds.is_empty() && args.amqp.is_none() && !pastes {
            anyhow::bail!(
                "no seeds: give --seed URL or --seeds-file FILE, or paste sites ([[pastes]] in the config)"
            );
        }
        let seeds = Frontier::parse_seeds(&seeds)?;
        let roles = Roles::parse(&args.roles)?;
        if args.amqp.is_none() && !roles.is_all() {
            anyhow::bail!("--roles splits leakwatch across processes, which needs --amqp URL");
        }
        if args.once && !roles.is_all() {
            anyhow::bail!("--once needs every role in this process (omit --roles)");
        }
        if !seeds.is_empty() && !roles.contains(Role::Frontier) {
            anyhow::bail!("--seed goes to the frontier: add the frontier role to this process");
        }
        if args.once && seeds.is_empty() {
            anyhow::bail!("--once needs seeds (paste sites are watched without --once)");
        }
        if args.tor_config.is_some() && args.transport != TransportKind::Tor {
            anyhow::bail!("--tor-config is for the tor transport (--transport tor)");
        }
        if let Some(u) = &args.state_url {
            if !(u.starts_with("postgres://") || u.starts_with("postgresql://")) {
                anyhow::bail!(
                    "--state-url must be a postgres:// URL (SQLite in the data dir is the default)"
                );
            }
            if args.amqp.is_none() || !roles.contains(Role::Frontier) {
                anyhow::bail!("--state-url is where the frontier keeps its state on RabbitMQ: it needs --amqp and the frontier role");
            }
        }
        Ok(RunPlan {
            seeds,
            roles,
            once: args.once,
            amqp: args.amqp.clone(),
            transport: args.transport.clone(),
            allow_private: args.allow_private,
            tor_config: args.tor_config.clone(),
            json: args.json,
            state_url: args.state_url.clone(),
            metrics_listen: args.metrics_listen,
        })
    }
}

/// `--seed` values, then the seeds file's lines (`#` starts a comment).
fn seed_lines(args: &RunArgs) -> anyhow::Result<Vec<String>> {
    let mut seeds = args.seeds.clone();
    if let Some(f) = &args.seeds_file {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("failed to read seeds file {}", f.display()))?;
        seeds.extend(
            text.lines()
                .map(|l| l.split('#').next().unwrap_or("").trim())
                .filter(|l| !l.is_empty())
                .map(str::to_string),
        );
    }
    Ok(seeds)
}

pub async fn run(data_dir: &Path, config: &Config, plan: RunPlan) -> anyhow::Result<ExitCode> {
    let onions: Vec<&str> = plan
        .seeds
        .iter()
        .filter(|u| crawler::urls::is_onion(u))
        .map(|u| u.as_str())
        .collect();
    if !onions.is_empty() && plan.transport == TransportKind::Direct {
        eprintln!(
            "warning: the direct transport refuses .onion hosts (use --transport tor); these seeds will be counted as fetch.onion-needs-tor errors: {}",
            onions.join(" ")
        );
    }
    let json = plan.json;
    let summary = start(data_dir, config, plan, crate::commands::interactive()).await?;
    if json {
        super::print_json(&summary)?;
    } else {
        print_summary(&summary);
    }
    if !summary.unreached_seeds.is_empty() {
        eprintln!(
            "error: never reached these seeds (their sites did not answer within [health] once_grace_secs): {}",
            summary.unreached_seeds.join(" ")
        );
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens the bus and the transport, runs a node until it stops, returns its summary.
pub async fn start(
    data_dir: &Path,
    config: &Config,
    plan: RunPlan,
    progress: bool,
) -> anyhow::Result<Summary> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("failed to create data dir {}", data_dir.display()))?;
    let mut options = NodeOptions::new(data_dir, config.clone());
    // Up before the bus and the transport, so that `/readyz` says "not yet" meanwhile.
    for r in plan.roles.in_start_order() {
        options.readiness.expect(r);
    }
    let metrics = serve_metrics(&plan, config, &options).await?;
    // SIGTERM is heard from now on: while the broker is awaited and Tor bootstraps too (in a
    // container this process is PID 1, whose unhandled signals are dropped).
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        node::shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let bus = tokio::select! {
        bus = node::open_bus(plan.amqp.as_deref(), &config.bus) => bus?,
        _ = stopped() => anyhow::bail!("stopped before the bus was connected"),
    };
    let transport = if plan.roles.contains(Role::Crawler) {
        let opts = node::TransportOptions {
            kind: plan.transport.clone(),
            data_dir: data_dir.to_path_buf(),
            allow_private: plan.allow_private,
            tor_config: plan.tor_config.clone(),
            once: plan.once,
        };
        tokio::select! {
            t = Transport::open(&opts, config, &options.stats) => Some(t?),
            _ = stopped() => anyhow::bail!("stopped before the transport was up"),
        }
    } else {
        None
    };
    options.seeds = plan.seeds;
    options.once = plan.once;
    options.state_url = plan.state_url;
    let stats = options.stats.clone();
    let handle = Node::start(options, plan.roles, bus.clone(), transport, stopped());
    let ticker = progress.then(|| tokio::spawn(progress_lines(stats, bus)));
    let summary = handle.await;
    if let Some(t) = ticker {
        t.abort();
    }
    if let Some(m) = metrics {
        m.abort();
    }
    Ok(summary?)
}

/// Starts `/metrics`, `/healthz` and `/readyz` when `--metrics-listen` or `[metrics] listen`
/// asks for them; the bound address goes to stderr.
async fn serve_metrics(
    plan: &RunPlan,
    config: &Config,
    options: &NodeOptions,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let addr = match (plan.metrics_listen, &config.metrics.listen) {
        (Some(a), _) => a.to_string(),
        (None, Some(a)) => a.clone(),
        (None, None) => return Ok(None),
    };
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot serve metrics on {addr}"))?;
    let bound = listener.local_addr()?;
    eprintln!("metrics on http://{bound}/metrics (health: /healthz, readiness: /readyz)");
    let (stats, readiness) = (options.stats.clone(), options.readiness.clone());
    Ok(Some(tokio::spawn(async move {
        let never = std::future::pending::<()>();
        if let Err(e) = node::metrics::serve(listener, stats, readiness, never).await {
            tracing::error!(error = %e, "metrics endpoint stopped");
        }
    })))
}

/// A progress line on stderr every two seconds.
async fn progress_lines(stats: Arc<bus::Stats>, bus: Arc<dyn Bus>) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    tick.tick().await;
    loop {
        tick.tick().await;
        eprintln!(
            "… {} pages, {} images, {} alerts, {} errors, {} messages in flight",
            stats.get(Counter::Pages),
            stats.get(Counter::Images),
            stats.get(Counter::AlertsNew),
            stats.errors().values().sum::<u64>(),
            bus.in_flight()
        );
    }
}

/// The human form of a summary.
pub fn print_summary(s: &Summary) {
    println!(
        "crawled {} pages and {} images in {:.1}s ({:.1} pages/s)",
        s.pages, s.images, s.elapsed_secs, s.pages_per_sec
    );
    println!(
        "alerts: {} new, {} already known, {} in total",
        s.new_alerts, s.repeated_alerts, s.total_alerts
    );
    if !s.images_skipped.is_empty() {
        let parts: Vec<String> = s
            .images_skipped
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        println!(
            "images not matched (too small or flat): {}",
            parts.join(", ")
        );
    }
    if s.errors.is_empty() {
        println!("errors: none");
    } else {
        println!("errors by kind:");
        for (k, v) in &s.errors {
            println!("  {k}: {v}");
        }
    }
    match s.tor_bootstrap_secs {
        Some(b) => println!("transport: {} (bootstrapped in {b:.1}s)", s.transport),
        None => println!("transport: {}", s.transport),
    }
    if !s.health.is_empty() || s.sites_down > 0 {
        println!("site health: {} sites down", s.sites_down);
        for (k, v) in &s.health {
            println!("  {k}: {v}");
        }
    }
    if s.dead_lettered > 0 {
        println!("dead-lettered messages: {}", s.dead_lettered);
    }
}
