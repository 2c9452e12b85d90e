//! `leakwatch-testbed serve`: runs the synthetic dark web until interrupted.
//!
//! Scripts parse its stdout: one `NAME URL` line per site, then `ready`.
//! With `--public-base NAME=URL` the site's line shows that URL (the base its
//! pages and the truth file use), and the listening address goes to stderr.
//!
//! `leakwatch-testbed live`: a live forum that lives through one time-compressed day
//! (`testbed::day`), then writes what it planted and every request it served.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    version,
    about = "A deterministic synthetic dark web with planted leaks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate the world and serve it on loopback.
    Serve {
        #[arg(long, default_value = "127.0.0.1")]
        bind: IpAddr,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        #[arg(long, default_value_t = 60)]
        stolen_count: usize,
        /// Also serve the hostile site.
        #[arg(long)]
        hostile: bool,
        /// Fixed ports: forum,market,paste,gallery[,hostile].
        #[arg(long, value_delimiter = ',')]
        ports: Option<Vec<u16>>,
        /// Write the truth file (JSON) here.
        #[arg(long)]
        truth_out: Option<PathBuf>,
        /// Write the stolen set (one PNG per photo) into this directory.
        #[arg(long)]
        stolen_out: Option<PathBuf>,
        /// Write the stolen identifiers (one per line) here.
        #[arg(long)]
        identifiers_out: Option<PathBuf>,
        /// Serve site NAME under public base URL (e.g. an onion service that
        /// forwards to its port): its pages, links to it and the truth file
        /// use URL instead of the listening address. Repeatable.
        #[arg(long, value_name = "NAME=URL", value_parser = parse_public_base)]
        public_base: Vec<(String, String)>,
    },
    /// Serve a live forum through one simulated day, then write its log and exit. Prints
    /// `live URL`, then `ready`; the stolen set and the labelled identifiers
    /// (`ident-N<TAB>IDENTIFIER`) are written first.
    Live {
        #[arg(long, default_value = "127.0.0.1:0")]
        bind: std::net::SocketAddr,
        #[arg(long, default_value_t = 7)]
        seed: u64,
        #[arg(long, default_value_t = 24)]
        stolen_count: usize,
        #[arg(long)]
        stolen_out: PathBuf,
        #[arg(long)]
        identifiers_out: PathBuf,
        /// Real seconds one simulated day takes.
        #[arg(long, default_value_t = 240)]
        day_secs: u64,
        /// New threads in the day.
        #[arg(long, default_value_t = 96)]
        threads: u32,
        /// Every n-th new thread plants a leak.
        #[arg(long, default_value_t = 8)]
        leak_every: u32,
        #[arg(long, default_value_t = 24)]
        edits: u32,
        #[arg(long, default_value_t = 6)]
        takedowns: u32,
        /// Threads already there when the day starts.
        #[arg(long, default_value_t = 40)]
        initial: usize,
        /// Real seconds to keep serving after the day (the crawler catches up).
        #[arg(long, default_value_t = 30)]
        linger_secs: u64,
        /// Where the day's log goes (JSON: plan, planted, requests).
        #[arg(long)]
        log_out: PathBuf,
        /// List threads by last activity: a reply bumps its thread to the top.
        #[arg(long)]
        bump: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        live @ Command::Live { .. } => live_day(live).await,
        serve => serve_world(serve).await,
    }
}

async fn live_day(cmd: Command) -> anyhow::Result<()> {
    let Command::Live {
        bind,
        seed,
        stolen_count,
        stolen_out,
        identifiers_out,
        day_secs,
        threads,
        leak_every,
        edits,
        takedowns,
        initial,
        linger_secs,
        log_out,
        bump,
    } = cmd
    else {
        unreachable!("called for `live` only")
    };
    let running = testbed::start(testbed::Config {
        seed,
        stolen_count,
        ..Default::default()
    })
    .await
    .context("failed to generate the stolen set")?;
    running
        .write_stolen_set(&stolen_out)
        .with_context(|| format!("failed to write {}", stolen_out.display()))?;
    let idents = running.world().identifiers().to_vec();
    let lines: String = idents
        .iter()
        .enumerate()
        .map(|(i, id)| format!("ident-{i}\t{id}\n"))
        .collect();
    std::fs::write(&identifiers_out, lines)
        .with_context(|| format!("failed to write {}", identifiers_out.display()))?;
    let photos = running.world().stolen().to_vec();
    let n_photos = photos.len();
    let forum = testbed::LiveForum::start(bind, photos, idents.clone(), initial)
        .await
        .context("failed to start the live forum")?;
    forum.bump_on_reply(bump);
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "live {}", forum.base_url())?;
        writeln!(out, "ready")?;
        out.flush()?;
    }
    let plan = testbed::day::DayPlan {
        day: std::time::Duration::from_secs(day_secs.max(1)),
        threads,
        leak_every,
        edits,
        takedowns,
        seed,
    };
    let (new_leaks, edit_leaks) = tokio::select! {
        p = testbed::day::run_day(&forum, &plan, n_photos, idents.len()) => p,
        _ = shutdown_signal() => anyhow::bail!("interrupted before the day ended"),
    };
    tokio::select! {
        _ = tokio::time::sleep(std::time::Duration::from_secs(linger_secs)) => {}
        _ = shutdown_signal() => {}
    }
    let log = testbed::day::DayLog {
        plan,
        new_leaks,
        edit_leaks,
        requests: forum.requests(),
    };
    std::fs::write(&log_out, serde_json::to_vec(&log)?)
        .with_context(|| format!("failed to write {}", log_out.display()))?;
    forum.shutdown().await;
    running.shutdown().await;
    Ok(())
}

async fn serve_world(cmd: Command) -> anyhow::Result<()> {
    let Command::Serve {
        bind,
        seed,
        stolen_count,
        hostile,
        ports,
        truth_out,
        stolen_out,
        identifiers_out,
        public_base,
    } = cmd
    else {
        unreachable!("called for `serve` only")
    };
    let mut public_bases = BTreeMap::new();
    for (name, url) in public_base {
        if public_bases.insert(name.clone(), url).is_some() {
            anyhow::bail!("--public-base given twice for {name}");
        }
    }
    let config = testbed::Config {
        seed,
        stolen_count,
        hostile,
        bind,
        ports,
        public_bases,
    };
    let running = testbed::start(config)
        .await
        .context("failed to start the testbed")?;
    if let Some(path) = truth_out {
        let json = serde_json::to_vec_pretty(&running.truth())?;
        std::fs::write(&path, json)
            .with_context(|| format!("failed to write {}", path.display()))?;
    }
    if let Some(dir) = stolen_out {
        running
            .write_stolen_set(&dir)
            .with_context(|| format!("failed to write the stolen set to {}", dir.display()))?;
    }
    if let Some(path) = identifiers_out {
        running
            .write_identifiers(&path)
            .with_context(|| format!("failed to write {}", path.display()))?;
    }
    {
        let mut out = std::io::stdout().lock();
        for (site, local) in running.sites().iter().zip(running.local_addrs()) {
            writeln!(out, "{} {}", site.name, site.base_url)?;
            if site.base_url != format!("http://{local}/") {
                eprintln!("{} listens on {local}", site.name);
            }
        }
        writeln!(out, "ready")?;
        out.flush()?;
    }
    shutdown_signal().await;
    running.shutdown().await;
    Ok(())
}

fn parse_public_base(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some((name, url)) if !name.is_empty() && !url.is_empty() => {
            Ok((name.to_string(), url.to_string()))
        }
        _ => Err(format!("expected NAME=URL, got {arg:?}")),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
