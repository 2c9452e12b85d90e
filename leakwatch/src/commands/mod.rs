//! One function per command. Each prints its results to stdout (JSON lines where asked) and
//! its diagnostics to stderr.

mod alerts;
mod console;
#[cfg(feature = "demo")]
mod demo;
mod evidence;
mod fingerprints;
mod match_images;
mod retrohunt;
mod run;
mod search;
mod sites;
mod watchlist;

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use node::Config;

use crate::cli::{AlertsCmd, Cli, Command, EvidenceCmd, FingerprintsCmd, WatchlistCmd};

/// Runs the parsed command line: options are validated before anything starts.
pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    init_tracing(&cli.log);
    let config = Config::load_with_env(cli.config.as_deref(), node::config::env_vars()?)?;
    let data_dir = cli.data_dir;
    if writes_data_dir(&cli.command) {
        // Owner-only (0700) when it is new, whatever creates what inside it later.
        datadir::create_private_dir_all(&data_dir)
            .with_context(|| format!("cannot create the data dir {}", data_dir.display()))?;
    }
    match cli.command {
        Command::Fingerprints(cmd) => fingerprints_cmd(&data_dir, &config, cmd),
        Command::Watchlist(WatchlistCmd::Import { file, kind }) => {
            watchlist::import(&data_dir, &file, kind.into())
        }
        Command::Watchlist(WatchlistCmd::Count) => watchlist::count(&data_dir),
        Command::Match(args) => match_images::run(&data_dir, &config, &args),
        Command::Run(args) => {
            let plan = run::RunPlan::from_args(&args, !config.pastes.is_empty())?;
            runtime()?.block_on(run::run(&data_dir, &config, plan))
        }
        Command::Search(args) => search::run(&data_dir, &args),
        Command::Retrohunt { json, amqp } => {
            runtime()?.block_on(retrohunt::run(&data_dir, &config, amqp.as_deref(), json))
        }
        Command::Alerts(args) => alerts_cmd(&data_dir, args),
        Command::Evidence(cmd) => evidence::run(&data_dir, &config.evidence, cmd),
        Command::Sites { state_url, json } => {
            runtime()?.block_on(sites::run(&data_dir, state_url.as_deref(), json))
        }
        Command::Queues { amqp, json } => runtime()?.block_on(queues(&amqp, json)),
        Command::Console(args) => runtime()?.block_on(console::serve(&data_dir, &config, args)),
        Command::Users(cmd) => runtime()?.block_on(console::users(&data_dir, cmd)),
        Command::Tokens(cmd) => runtime()?.block_on(console::tokens(&data_dir, cmd)),
        #[cfg(feature = "demo")]
        Command::Demo(args) => runtime()?.block_on(demo::run(&data_dir, &config, &args)),
    }
}

/// Whether `command` writes into the data dir (and so may create it).
fn writes_data_dir(command: &Command) -> bool {
    match command {
        Command::Fingerprints(FingerprintsCmd::Import { .. })
        | Command::Watchlist(WatchlistCmd::Import { .. })
        | Command::Run(_)
        | Command::Evidence(EvidenceCmd::Purge) => true,
        Command::Retrohunt { amqp, .. } => amqp.is_none(),
        #[cfg(feature = "demo")]
        Command::Demo(_) => true,
        _ => false,
    }
}

fn fingerprints_cmd(
    data_dir: &Path,
    config: &Config,
    cmd: FingerprintsCmd,
) -> anyhow::Result<ExitCode> {
    match cmd {
        FingerprintsCmd::Import {
            from_hashes: Some(file),
            ..
        } => fingerprints::import_hashes(data_dir, &file),
        FingerprintsCmd::Import { paths, .. } => fingerprints::import(data_dir, config, &paths),
        FingerprintsCmd::List { json } => fingerprints::list(data_dir, json),
    }
}

fn alerts_cmd(data_dir: &Path, args: crate::cli::AlertsArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        None => alerts::list(data_dir, args.json),
        Some(AlertsCmd::Follow {
            json,
            amqp,
            queue,
            pattern,
        }) => runtime()?.block_on(alerts::follow(data_dir, json, amqp, queue, &pattern)),
        Some(AlertsCmd::Forward {
            webhook,
            amqp,
            queue,
            max_backoff_secs,
            ca_file,
        }) => runtime()?.block_on(alerts::forward(alerts::ForwardArgs {
            webhook: &webhook,
            amqp: &amqp,
            queue: &queue,
            max_backoff_secs,
            ca_file: ca_file.as_deref(),
        })),
    }
}

async fn queues(amqp: &str, json: bool) -> anyhow::Result<ExitCode> {
    use bus::Bus;
    let bus = connect_observer(amqp).await?;
    for d in bus.depths().await? {
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

/// Connects to RabbitMQ without declaring the role topology (queue listings, alert readers).
async fn connect_observer(amqp: &str) -> anyhow::Result<bus::AmqpBus> {
    bus::AmqpBus::connect_with(amqp, None)
        .await
        .with_context(|| format!("failed to connect to {}", node::redact(amqp)))
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")
}

/// Logs to stderr: plain text, or one JSON object per line when `LEAKWATCH_LOG_FORMAT=json`
/// (what a cluster's log collector parses).
fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let json = std::env::var("LEAKWATCH_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        let _ = builder.json().try_init();
    } else {
        // Colour codes only on a terminal: logs redirected to a file stay plain text.
        let _ = builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init();
    }
}

/// Whether progress lines make sense (stderr is a terminal and not in CI).
fn interactive() -> bool {
    std::io::stderr().is_terminal()
}

/// Prints one value as a JSON line.
fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(value)?);
    Ok(())
}
