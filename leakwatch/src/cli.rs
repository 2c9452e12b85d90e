//! The command line. Names and JSON shapes here are an interface other tools rely on.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use node::TransportKind;

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
        #[arg(long, env = "LEAKWATCH_AMQP_URL", hide_env_values = true)]
        amqp: Option<String>,
    },
    /// List every alert raised so far.
    Alerts(AlertsArgs),
    /// The evidence kept for alerts: for each alert the matcher raised, the response that
    /// carried the sighting, as WARC records encrypted under a key kept outside the data dir
    /// (LEAKWATCH_EVIDENCE_KEY_FILE, LEAKWATCH_EVIDENCE_KEY or `[evidence] key_file`).
    #[command(subcommand)]
    Evidence(EvidenceCmd),
    /// Every site the frontier knows: liveness (answered or not, last seen up, last down) and
    /// recrawl schedule (pages scheduled, entry pages, next visit), from the frontier's store.
    Sites {
        /// The frontier's shared state (postgres://…); without it, the data dir's SQLite file.
        #[arg(long, env = "LEAKWATCH_STATE_URL", hide_env_values = true)]
        state_url: Option<String>,
        /// One JSON object per site and line.
        #[arg(long)]
        json: bool,
    },
    /// Start the synthetic testbed, import its stolen set, crawl it and show the alerts.
    #[cfg(feature = "demo")]
    Demo(DemoArgs),
    /// The analysts' web console: search, alert review and breach coverage, and a JSON API
    /// (`/api/…`, described at `/openapi.json`). Users sign in (`leakwatch users add`);
    /// serve it on loopback or behind a TLS proxy (its cookies are `Secure`). Also a role:
    /// `run --roles indexer,console --amqp …` or `run --roles all,console`.
    Console(ConsoleArgs),
    /// Console users: analysts review alerts; admins also manage users and read the audit log.
    #[command(subcommand)]
    Users(UsersCmd),
    /// Tokens for the console's JSON API (`Authorization: Bearer TOKEN`).
    #[command(subcommand)]
    Tokens(TokensCmd),
    /// Ready messages and consumers of every queue on RabbitMQ (including dead letters).
    Queues {
        /// RabbitMQ URL (amqp:// or amqps://).
        #[arg(long, env = "LEAKWATCH_AMQP_URL", hide_env_values = true)]
        amqp: String,
        /// One JSON object per queue and line.
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
        /// Image files, or folders searched recursively.
        #[arg(
            required_unless_present = "from_hashes",
            conflicts_with = "from_hashes"
        )]
        paths: Vec<PathBuf>,
        /// A file of PDQ hashes shared by another party: one per line, 64 hex digits, then
        /// whitespace or a comma, then a label. `#` starts a comment. Such fingerprints are
        /// matched by hash distance alone (`[matcher] hash_threshold`).
        #[arg(long, value_name = "FILE")]
        from_hashes: Option<PathBuf>,
    },
    /// List the stored fingerprints.
    List {
        /// One JSON fingerprint per line.
        #[arg(long)]
        json: bool,
    },
}

/// Where the console's state is (users, sessions, reviews, audit log).
#[derive(Debug, Args)]
pub struct StateArgs {
    /// A PostgreSQL URL (postgres://USER@HOST/DB) shared by consoles and frontiers on several
    /// machines. Default: SQLite in the data dir.
    #[arg(long, env = "LEAKWATCH_STATE_URL", hide_env_values = true)]
    pub state_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct ConsoleArgs {
    /// Address to listen on (port 0: any free port; the address is printed on stderr).
    #[arg(
        long,
        env = "LEAKWATCH_CONSOLE_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    pub listen: std::net::SocketAddr,
    #[command(flatten)]
    pub state: StateArgs,
}

#[derive(Debug, Subcommand)]
pub enum UsersCmd {
    /// Add a user. The password (at least 12 characters) is read from the first line of
    /// stdin and kept only as an argon2id hash.
    Add {
        /// Letters, digits, '.', '_' or '-', at most 64.
        name: String,
        /// `analyst` (search, review) or `admin` (also users and the audit log).
        #[arg(long, value_enum, default_value = "analyst")]
        role: UserRoleArg,
        /// Read the password from stdin (the only way: never from the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
        #[command(flatten)]
        state: StateArgs,
    },
    /// List the users.
    List {
        /// One JSON object per user and line.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Remove a user: its sessions end and its API tokens are revoked at once. The last
    /// admin cannot be removed.
    Remove {
        /// The user to remove.
        name: String,
        #[command(flatten)]
        state: StateArgs,
    },
}

/// `--role` of `users add`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum UserRoleArg {
    Analyst,
    Admin,
}

#[derive(Debug, Subcommand)]
pub enum TokensCmd {
    /// Create an API token for USER and print it (once: only its hash is kept).
    Create {
        /// The user the token acts as.
        user: String,
        /// What the token is for (shown in the audit log).
        #[arg(long, default_value = "api")]
        label: String,
        #[command(flatten)]
        state: StateArgs,
    },
    /// List the API tokens: id, user, label and when created (never the token itself).
    List {
        /// Only this user's tokens.
        user: Option<String>,
        /// One JSON object per token and line.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Revoke an API token at once, by its id (as `tokens list` shows it) or its label.
    Revoke {
        /// The token's id, or its label when only one token carries it.
        id_or_label: String,
        /// Only among this user's tokens (for a label several users' tokens carry).
        #[arg(long)]
        user: Option<String>,
        #[command(flatten)]
        state: StateArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum EvidenceCmd {
    /// Write a new random evidence key to FILE (owner-only; an existing file is never
    /// replaced). Keep it outside the data dir and point LEAKWATCH_EVIDENCE_KEY_FILE at it.
    Keygen {
        /// Where to write the key (64 hex digits).
        file: PathBuf,
    },
    /// Which alerts have evidence kept, with its size and the day it was written.
    List {
        /// One JSON object per alert and line.
        #[arg(long)]
        json: bool,
    },
    /// Write one alert's evidence into DIR: ALERT_ID.warc.gz (the decrypted WARC records),
    /// alert.json and SHA256SUMS (check it with `sha256sum -c SHA256SUMS` inside DIR).
    /// Existing files are never overwritten.
    Export {
        /// The alert's id (`leakwatch alerts --json`).
        alert_id: String,
        /// The bundle's directory (created if missing).
        dir: PathBuf,
    },
    /// Delete the evidence older than `[evidence] retention_days` now (running matchers also
    /// do this every hour).
    Purge,
}

#[derive(Debug, Subcommand)]
pub enum WatchlistCmd {
    /// Add identifiers from a file, one per line: `IDENTIFIER`, `KIND:IDENTIFIER`,
    /// `LABEL<TAB>IDENTIFIER` or `LABEL<TAB>KIND<TAB>IDENTIFIER`; `#` starts a comment.
    /// Kinds: plate, document (letters and digits; O/0 and I/1 are one), email, name, term
    /// (words, any case). Only keyed hashes are stored: keep the key outside the data dir
    /// (LEAKWATCH_WATCHLIST_KEY_FILE or LEAKWATCH_WATCHLIST_KEY).
    Import {
        /// The identifiers file.
        file: PathBuf,
        /// The kind of lines that name none.
        #[arg(long, value_enum, default_value = "plate")]
        kind: KindArg,
    },
    /// How many identifiers are watched.
    Count,
}

/// `--kind` of `watchlist import`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum KindArg {
    Plate,
    Document,
    Email,
    Name,
    Term,
}

impl From<KindArg> for matcher::IdentifierKind {
    fn from(k: KindArg) -> Self {
        match k {
            KindArg::Plate => matcher::IdentifierKind::Plate,
            KindArg::Document => matcher::IdentifierKind::Document,
            KindArg::Email => matcher::IdentifierKind::Email,
            KindArg::Name => matcher::IdentifierKind::Name,
            KindArg::Term => matcher::IdentifierKind::Term,
        }
    }
}

#[derive(Debug, Args)]
pub struct MatchArgs {
    /// Image files to compare.
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
    #[arg(long, default_value = "tor", verbatim_doc_comment)]
    pub transport: TransportKind,
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
    #[arg(long, env = "LEAKWATCH_AMQP_URL", hide_env_values = true)]
    pub amqp: Option<String>,
    /// Where the frontier keeps its durable state with --amqp: a PostgreSQL URL
    /// (postgres://USER@HOST/DB) shared by several frontier processes. Default: SQLite in
    /// the data dir. On the in-process bus, and with --once, the state is kept in memory.
    #[arg(long, env = "LEAKWATCH_STATE_URL", hide_env_values = true)]
    pub state_url: Option<String>,
    /// Serve `/metrics` (Prometheus), `/healthz` and `/readyz` on this address (port 0: any
    /// free port, printed on stderr). Overrides `[metrics] listen`.
    #[arg(long, env = "LEAKWATCH_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Tantivy query over titles and text, e.g. `plate AND "cam 3"`; `*` matches every page.
    pub query: String,
    /// One JSON hit per line.
    #[arg(long)]
    pub json: bool,
    /// Most hits to show.
    #[arg(long, default_value_t = 10)]
    pub limit: usize,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AlertsArgs {
    /// One JSON alert per line.
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
        /// One JSON alert per line.
        #[arg(long)]
        json: bool,
        /// RabbitMQ URL; without it, the data dir's alert store is followed.
        #[arg(long, env = "LEAKWATCH_AMQP_URL", hide_env_values = true)]
        amqp: Option<String>,
        /// A durable queue name, so alerts raised while this consumer is down are kept for it.
        /// Default: a temporary queue that lives as long as this command.
        #[arg(long)]
        queue: Option<String>,
        /// Routing-key pattern: `alert.#` (all), `alert.image`, `alert.scene`, `alert.text`.
        #[arg(long, default_value = "alert.#")]
        pattern: String,
    },
    /// POST every alert as JSON to a webhook, acked only after a 2xx. 5xx, 408, 429 and
    /// network errors are retried with backoff; any other answer (a 4xx) dead-letters the
    /// alert into QUEUE.dlq with the status in its `x-leakwatch-status` header.
    Forward {
        /// The http:// or https:// URL each alert is POSTed to (printed with its query
        /// values and userinfo redacted). IPv6 literals as `https://[::1]:8443/hook`.
        #[arg(long, env = "LEAKWATCH_WEBHOOK_URL", hide_env_values = true)]
        webhook: String,
        /// PEM file of CA certificates to trust for the webhook's TLS, besides the web PKI
        /// roots (a private CA).
        #[arg(long, value_name = "PEM")]
        ca_file: Option<std::path::PathBuf>,
        /// RabbitMQ URL (amqp:// or amqps://).
        #[arg(long, env = "LEAKWATCH_AMQP_URL", hide_env_values = true)]
        amqp: String,
        /// The forwarder's durable queue on the `alerts` exchange.
        #[arg(long, default_value = "leakwatch.alerts.webhook")]
        queue: String,
        /// Longest wait between two attempts of one alert.
        #[arg(long, default_value_t = 60)]
        max_backoff_secs: u64,
    },
}

#[cfg(feature = "demo")]
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Testbed seed: another seed makes another synthetic web.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every argument of every command says what it is for, and no broker URL from the
    /// environment (which may hold a password) is shown.
    #[test]
    fn every_argument_has_help_and_amqp_env_values_are_hidden() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in cmd.get_arguments() {
                let id = a.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                if a.get_help().is_none() && a.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
                if id == "amqp" {
                    assert!(
                        a.is_hide_env_values_set(),
                        "{path} --amqp shows its env value"
                    );
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_about().is_none() && sub.get_long_about().is_none() {
                    missing.push(format!("{path} {}", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "leakwatch", &mut missing);
        assert!(missing.is_empty(), "arguments without help: {missing:?}");
    }
}
