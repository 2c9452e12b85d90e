//! One function per command. Each prints its results to stdout (JSON lines where asked) and
//! its diagnostics to stderr.

mod alerts;
mod demo;
mod fingerprints;
mod match_images;
mod retrohunt;
mod run;
mod search;
mod watchlist;

use std::process::ExitCode;

use anyhow::Context;

use crate::cli::{AlertsCmd, Cli, Command, FingerprintsCmd, WatchlistCmd};
use crate::config::Config;

/// Runs the parsed command line.
pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    init_tracing(&cli.log);
    let config = Config::load(cli.config.as_deref())?;
    let data_dir = cli.data_dir;
    match cli.command {
        Command::Fingerprints(FingerprintsCmd::Import {
            paths,
            from_hashes: Some(file),
        }) => {
            if !paths.is_empty() {
                anyhow::bail!("give either image paths or --from-hashes FILE, not both");
            }
            fingerprints::import_hashes(&data_dir, &file)
        }
        Command::Fingerprints(FingerprintsCmd::Import {
            paths,
            from_hashes: None,
        }) => fingerprints::import(&data_dir, &config, &paths),
        Command::Fingerprints(FingerprintsCmd::List { json }) => {
            fingerprints::list(&data_dir, json)
        }
        Command::Watchlist(WatchlistCmd::Import { file }) => watchlist::import(&data_dir, &file),
        Command::Watchlist(WatchlistCmd::Count) => watchlist::count(&data_dir),
        Command::Match(args) => match_images::run(&data_dir, &config, &args),
        Command::Run(args) => runtime()?.block_on(run::run(&data_dir, &config, &args)),
        Command::Search(args) => search::run(&data_dir, &args),
        Command::Retrohunt { json, amqp } => {
            runtime()?.block_on(retrohunt::run(&data_dir, &config, amqp.as_deref(), json))
        }
        Command::Alerts(args) => match args.command {
            None => alerts::run(&data_dir, args.json),
            Some(AlertsCmd::Follow {
                json,
                amqp,
                queue,
                pattern,
            }) => runtime()?.block_on(alerts::follow(&data_dir, json, amqp, queue, &pattern)),
            Some(AlertsCmd::Forward {
                webhook,
                amqp,
                queue,
                max_backoff_secs,
            }) => runtime()?.block_on(alerts::forward(&webhook, &amqp, &queue, max_backoff_secs)),
        },
        Command::Queues { amqp, json } => runtime()?.block_on(queues(&amqp, json)),
        Command::Demo(args) => runtime()?.block_on(demo::run(&data_dir, &config, &args)),
    }
}

async fn queues(amqp: &str, json: bool) -> anyhow::Result<ExitCode> {
    let bus = bus::AmqpBus::connect_with(amqp, None)
        .await
        .with_context(|| format!("failed to connect to {}", crate::pipeline::redact(amqp)))?;
    for d in bus.queue_depths().await? {
        if json {
            print_json(&serde_json::json!({
                "queue": d.queue,
                "messages": d.messages,
                "consumers": d.consumers,
            }))?;
        } else {
            println!(
                "{:<36} {:>8} ready {:>4} consumers",
                d.queue, d.messages, d.consumers
            );
        }
    }
    bus.disconnect().await;
    Ok(ExitCode::SUCCESS)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")
}

fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Colour codes only on a terminal: logs redirected to a file stay plain text.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

/// Prints one value as a JSON line.
fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}
