//! `leakwatch run`: crawl from seeds with every role in this process.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use crawler::Frontier;

use crate::cli::RunArgs;
use crate::config::Config;
use crate::pipeline::{self, RunOptions};

pub async fn run(data_dir: &Path, config: &Config, args: &RunArgs) -> anyhow::Result<ExitCode> {
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
    if seeds.is_empty() && args.amqp.is_none() {
        anyhow::bail!("no seeds: give --seed URL or --seeds-file FILE");
    }
    let seeds = Frontier::parse_seeds(&seeds)?;
    let onions: Vec<&str> = seeds
        .iter()
        .filter(|u| crawler::urls::is_onion(u))
        .map(|u| u.as_str())
        .collect();
    if !onions.is_empty() && args.transport == crate::cli::Transport::Direct {
        eprintln!(
            "warning: the direct transport refuses .onion hosts (use --transport tor); these seeds will be counted as fetch.onion-needs-tor errors: {}",
            onions.join(" ")
        );
    }
    let summary = pipeline::run(
        data_dir,
        config,
        RunOptions {
            seeds,
            allow_private: args.allow_private,
            once: args.once,
            progress: pipeline::interactive(),
            roles: pipeline::Roles::parse(&args.roles)?,
            amqp: args.amqp.clone(),
            transport: args.transport.clone(),
            tor_config: args.tor_config.clone(),
        },
    )
    .await?;
    if args.json {
        super::print_json(&summary)?;
    } else {
        summary.print_human();
    }
    Ok(ExitCode::SUCCESS)
}
