//! `leakwatch-testbed serve`: runs the synthetic dark web until interrupted.
//!
//! Scripts parse its stdout: one `NAME URL` line per site, then `ready`.
//! With `--public-base NAME=URL` the site's line shows that URL (the base its
//! pages and the truth file use), and the listening address goes to stderr.

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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
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
    } = Cli::parse().command;
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
