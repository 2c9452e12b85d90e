//! The command line. Names and JSON shapes here are an interface other tools rely on.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// leakwatch watches onion and paste sites for stolen images and identifiers.
///
/// It keeps only fingerprints of what was stolen (perceptual hashes of the images, keyed
/// hashes of the identifiers), crawls the places where leaks surface, alerts on every
/// sighting and indexes everything it crawls for search.
#[derive(Debug, Parser)]
#[command(name = "leakwatch", version, about, long_about)]
pub struct Cli {
    /// Where fingerprints, the index and alerts are kept.
    #[arg(
        long,
        global = true,
        default_value = "./leakwatch-data",
        env = "LEAKWATCH_DATA_DIR"
    )]
    pub data_dir: PathBuf,

    /// TOML config file; every setting has a default, unknown keys are an error.
    #[arg(long, global = true, env = "LEAKWATCH_CONFIG")]
    pub config: Option<PathBuf>,

    /// Log filter (e.g. `info`, `leakwatch_crawler=debug`); logs go to stderr.
    #[arg(long, global = true, default_value = "warn", env = "LEAKWATCH_LOG")]
    pub log: String,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage the fingerprints of the stolen images.
    #[command(subcommand)]
    Fingerprints(FingerprintsCmd),
    /// Manage the watchlist of stolen identifiers (plate and document numbers).
    #[command(subcommand)]
    Watchlist(WatchlistCmd),
    /// Compare images against the fingerprints, as the running matcher would.
    Match(MatchArgs),
    /// Crawl from seeds: frontier, crawlers, matchers and indexer in one process.
    Run(RunArgs),
    /// Search everything crawled (Tantivy query syntax; `*` matches every page).
    Search(SearchArgs),
    /// Check every image already seen (as recorded in the index) against the current
    /// fingerprints, and alert on past sightings. Run it after importing new fingerprints.
    Retrohunt {
        /// One JSON alert per line.
        #[arg(long)]
        json: bool,
        /// Publish the alerts to RabbitMQ (the indexer stores them) instead of writing the
        /// data dir's alert store directly.
        #[arg(long, env = "LEAKWATCH_AMQP_URL")]
        amqp: Option<String>,
    },
    /// List every alert raised so far.
    Alerts(AlertsArgs),
    /// Start the synthetic testbed, import its stolen set, crawl it and show the alerts.
    Demo(DemoArgs),
    /// Ready messages and consumers of every queue on RabbitMQ (including dead letters).
    Queues {
        #[arg(long, env = "LEAKWATCH_AMQP_URL")]
        amqp: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum FingerprintsCmd {
    /// Fingerprint every image under the given files and folders (JPEG, PNG, WebP, GIF, BMP)
    /// and store the hashes only, labelled with the file stem. Re-importing a file adds
    /// nothing; an interrupted import resumes where it stopped. Images under 32 pixels on a
    /// side are refused with a reason.
    ///
    /// With --from-hashes, import PDQ hashes computed elsewhere instead of images.
    Import {
        #[arg(required_unless_present = "from_hashes")]
        paths: Vec<PathBuf>,
        /// A file of PDQ hashes shared by another party: one per line, 64 hex digits, then
        /// whitespace or a comma, then a label. `#` starts a comment. Such fingerprints are
        /// matched by hash distance alone (`[matcher] hash_threshold`).
        #[arg(long, value_name = "FILE")]
        from_hashes: Option<PathBuf>,
    },
    /// List the stored fingerprints.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum WatchlistCmd {
    /// Add identifiers from a file: one per line, optionally `LABEL<TAB>IDENTIFIER`.
    /// Only keyed hashes are stored.
    Import { file: PathBuf },
    /// How many identifiers are watched.
    Count,
}

#[derive(Debug, Args)]
pub struct MatchArgs {
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// One JSON line per image.
    #[arg(long)]
    pub json: bool,
    /// How many nearest fingerprints to show.
    #[arg(long, default_value_t = 5)]
    pub top: usize,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// A URL to start from (repeatable).
    #[arg(long = "seed")]
    pub seeds: Vec<String>,
    /// A file of seed URLs, one per line (`#` starts a comment).
    #[arg(long)]
    pub seeds_file: Option<PathBuf>,
    /// Stop when every reachable page is crawled and every message processed, then print a summary.
    #[arg(long)]
    pub once: bool,
    /// How to reach sites: `tor` (default) runs an embedded Tor client (arti) in this
    /// process, one circuit per site, for onion and clearnet sites alike; `socks5://HOST:PORT`
    /// goes through a SOCKS5 proxy such as a local tor daemon (names resolved by the proxy,
    /// one SOCKS identity per site for IsolateSOCKSAuth); `direct` fetches from this machine
    /// without Tor (tests, local sites) and refuses .onion hosts.
    #[arg(long, default_value = "tor", value_parser = Transport::parse, verbatim_doc_comment)]
    pub transport: Transport,
    /// arti TOML config for the tor transport (`[tor_network]` authorities and fallback caches,
    /// `[path_rules]`, `[address_filter]`, `[override_net_params]` …), e.g. for a private Tor
    /// network. Without it the public Tor network is used. State and cache always go under
    /// DATA_DIR/tor.
    #[arg(long, value_name = "FILE")]
    pub tor_config: Option<PathBuf>,
    /// Allow crawling loopback, private and link-local addresses (refused by default).
    #[arg(long)]
    pub allow_private: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Run only these roles (comma-separated: frontier, crawler, matcher, indexer), so each
    /// can be its own process on RabbitMQ. Default: all of them.
    #[arg(long, value_delimiter = ',')]
    pub roles: Vec<String>,
    /// RabbitMQ URL (amqp:// or amqps://). Without it, roles talk over the in-process bus.
    #[arg(long, env = "LEAKWATCH_AMQP_URL")]
    pub amqp: Option<String>,
}

/// How `leakwatch run` reaches sites.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    Tor,
    Direct,
    /// `HOST:PORT` of a SOCKS5 proxy.
    Socks5(String),
}

impl Transport {
    pub fn parse(s: &str) -> Result<Transport, String> {
        match s {
            "tor" => Ok(Transport::Tor),
            "direct" => Ok(Transport::Direct),
            _ => {
                let Some(addr) = s
                    .strip_prefix("socks5://")
                    .or_else(|| s.strip_prefix("socks5h://"))
                else {
                    return Err("expected tor, direct or socks5://HOST:PORT".into());
                };
                let addr = addr.trim_end_matches('/');
                match addr.rsplit_once(':') {
                    Some((host, port))
                        if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) =>
                    {
                        Ok(Transport::Socks5(addr.to_string()))
                    }
                    _ => Err(format!("expected socks5://HOST:PORT, got {s:?}")),
                }
            }
        }
    }

    pub fn name(&self) -> String {
        match self {
            Transport::Tor => "tor".into(),
            Transport::Direct => "direct".into(),
            Transport::Socks5(a) => format!("socks5://{a}"),
        }
    }
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    pub query: String,
    #[arg(long)]
    pub json: bool,
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports() {
        assert_eq!(Transport::parse("tor"), Ok(Transport::Tor));
        assert_eq!(Transport::parse("direct"), Ok(Transport::Direct));
        assert_eq!(
            Transport::parse("socks5://127.0.0.1:9050"),
            Ok(Transport::Socks5("127.0.0.1:9050".into()))
        );
        assert_eq!(
            Transport::parse("socks5://[::1]:9050/").unwrap().name(),
            "socks5://[::1]:9050"
        );
        for bad in [
            "",
            "tor2",
            "socks5://",
            "socks5://host",
            "socks5://h:0",
            "socks5://h:x",
            "http://h:1",
        ] {
            assert!(Transport::parse(bad).is_err(), "{bad}");
        }
    }
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AlertsArgs {
    #[arg(long)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Option<AlertsCmd>,
}

#[derive(Debug, Subcommand)]
pub enum AlertsCmd {
    /// Print alerts as they arrive. With --amqp, from a queue of its own bound to the `alerts`
    /// exchange; without, by following the data dir's alert store.
    Follow {
        #[arg(long)]
        json: bool,
        #[arg(long, env = "LEAKWATCH_AMQP_URL")]
        amqp: Option<String>,
        /// A durable queue name, so alerts raised while this consumer is down are kept for it.
        /// Default: a temporary queue that lives as long as this command.
        #[arg(long)]
        queue: Option<String>,
        /// Routing-key pattern: `alert.#` (all), `alert.image`, `alert.text`.
        #[arg(long, default_value = "alert.#")]
        pattern: String,
    },
    /// POST every alert as JSON to a webhook; retried with backoff, acked only after a 2xx.
    Forward {
        #[arg(long)]
        webhook: String,
        #[arg(long, env = "LEAKWATCH_AMQP_URL")]
        amqp: String,
        /// The forwarder's durable queue on the `alerts` exchange.
        #[arg(long, default_value = "leakwatch.alerts.webhook")]
        queue: String,
        /// Longest wait between two attempts of one alert.
        #[arg(long, default_value_t = 60)]
        max_backoff_secs: u64,
    },
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Testbed seed: another seed makes another synthetic web.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}
