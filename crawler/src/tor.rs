//! The Tor transport: an embedded arti client, so crawling onion services needs no tor daemon.
//!
//! One [`TorClient`] is bootstrapped per process and shared by every fetch. Each request opens
//! a Tor stream ([`DataStream`]) to the site and runs the crawler's bounded HTTP/1.1 exchange
//! ([`crate::transport::get_over`]) over it, with rustls on top for `https`. Names go to Tor as names: an onion
//! address is resolved inside the Tor network and a clearnet name by the exit, so nothing here
//! touches this machine's DNS.
//!
//! Isolation: every site (onion host, or clearnet host and port) has its own arti isolation
//! token ([`IsolationGroups`]), so two sites never share a circuit; a site that fails
//! repeatedly gets a fresh token and thus a fresh circuit. Each new circuit a site uses is
//! logged at info level with arti's own circuit id (read back from the stream through
//! `stream-ctrl`), which makes the isolation observable.
//!
//! The network is the public Tor network unless an arti TOML file (`--tor-config`) says
//! otherwise — a private network's authorities, path rules and address filter. It is read with
//! arti's own configuration loader; keys arti-client does not know (such as an arti daemon's
//! `[proxy]` or `[logging]` sections) are reported on stderr and ignored, as arti does. State
//! and cache always live under leakwatch's data dir.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arti_client::config::{
    BoolOrAuto, ConfigurationSource, ConfigurationSources, TorClientConfigBuilder,
};
use arti_client::{
    DangerouslyIntoTorAddr, DataStream, ErrorKind, HasKind, IntoTorAddr, IsolationToken,
    StreamPrefs, TorAddr, TorClient, TorClientConfig,
};
use async_trait::async_trait;
use bus::{Counter, Stats};
use futures_lite::StreamExt;
use serde::{Deserialize, Serialize};
use tor_proto::client::stream::ClientStreamCtrl;
use tor_rtcompat::PreferredRuntime;
use url::Url;

use crate::isolation::IsolationGroups;
use crate::onion::{is_onion_host, parse_onion_host};
use crate::transport::{get_over, tls_connector, Fetcher, Limits, RawResponse};
use crate::urls::site_of;
use crate::{FetchError, TorFailure};

/// The `[tor]` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TorConfig {
    /// Bootstrap (consensus, descriptors, first circuits) must finish within this.
    pub bootstrap_timeout_secs: u64,
    /// Consecutive failures of a site after which it gets a new isolation group (circuit).
    pub fresh_circuit_after: u32,
}

impl Default for TorConfig {
    fn default() -> Self {
        TorConfig {
            bootstrap_timeout_secs: 180,
            fresh_circuit_after: 2,
        }
    }
}

/// Why the Tor client could not start.
#[derive(Debug, thiserror::Error)]
pub enum TorSetupError {
    #[error("invalid Tor config {path}: {detail}")]
    Config { path: String, detail: String },
    #[error("cannot create the Tor client: {0}")]
    Client(String),
    #[error(
        "Tor bootstrap did not finish within {secs}s (last status: {status}); check the network \
         or the --tor-config authorities"
    )]
    BootstrapTimeout { secs: u64, status: String },
    #[error("Tor bootstrap failed: {0}")]
    Bootstrap(String),
    #[error("TLS setup failed: {0}")]
    Tls(String),
}

/// How to start the Tor transport.
#[derive(Debug, Clone)]
pub struct TorOptions {
    /// arti TOML for a custom network; `None` = the public Tor network.
    pub config_file: Option<PathBuf>,
    /// Directory for arti's state and cache (`state/`, `cache/` below it).
    pub dir: PathBuf,
    /// Allow streams to loopback and private addresses (through the exits).
    pub allow_private: bool,
    pub user_agent: String,
    pub config: TorConfig,
    /// Print bootstrap progress on stderr.
    pub progress: bool,
}

/// Fetches through the embedded Tor client.
pub struct TorFetcher {
    client: Arc<TorClient<PreferredRuntime>>,
    user_agent: String,
    allow_private: bool,
    tls: tokio_rustls::TlsConnector,
    groups: IsolationGroups<IsolationToken>,
    stats: Arc<Stats>,
    /// (site, circuit) pairs already logged.
    circuits: Mutex<HashSet<(String, String)>>,
    bootstrap: Duration,
}

/// Builds arti's config: the file (when given) with arti's own loader, then the state and
/// cache dirs under `dir`. A key arti does not know is an error: a misspelt
/// `[address_filter]` or `[path_rules]` key would otherwise silently weaken the setup.
pub fn load_config(file: Option<&Path>, dir: &Path) -> Result<TorClientConfig, TorSetupError> {
    let state = dir.join("state");
    let cache = dir.join("cache");
    let Some(file) = file else {
        return TorClientConfigBuilder::from_directories(&state, &cache)
            .build()
            .map_err(|e| TorSetupError::Client(e.to_string()));
    };
    let path = file.display().to_string();
    let bad = |detail: String| TorSetupError::Config {
        path: path.clone(),
        detail,
    };
    let mut sources = ConfigurationSources::new_empty();
    sources.push_source(
        ConfigurationSource::from_path(file),
        tor_config::sources::MustRead::MustRead,
    );
    // Later sources win: the data dir always holds arti's files.
    for (key, p) in [("state_dir", &state), ("cache_dir", &cache)] {
        let value = toml::Value::String(p.display().to_string());
        sources.push_option(format!("storage.{key}={value}"));
    }
    let tree = sources.load().map_err(|e| bad(e.to_string()))?;
    let resolved = tor_config::load::resolve_return_results::<TorClientConfig>(
        &tree,
        &tor_config::load::ConfigResolveOptions::default(),
    )
    .map_err(|e| bad(e.to_string()))?;
    if !resolved.unrecognized.is_empty() {
        let keys: Vec<String> = resolved
            .unrecognized
            .iter()
            .map(ToString::to_string)
            .collect();
        return Err(bad(format!(
            "keys the embedded Tor client does not know: {}",
            keys.join(", ")
        )));
    }
    Ok(resolved.value)
}

impl TorFetcher {
    /// Creates the client and bootstraps it, within `bootstrap_timeout_secs`.
    pub async fn bootstrap(opts: TorOptions, stats: Arc<Stats>) -> Result<Self, TorSetupError> {
        let config = load_config(opts.config_file.as_deref(), &opts.dir)?;
        let started = Instant::now();
        let client = TorClient::builder()
            .config(config)
            .create_unbootstrapped()
            .map_err(|e| TorSetupError::Client(e.to_string()))?;
        let mut events = client.bootstrap_events();
        let last = Arc::new(Mutex::new(String::from("not started")));
        let (last2, progress) = (last.clone(), opts.progress);
        let reporter = tokio::spawn(async move {
            let mut shown = -1i32;
            while let Some(status) = events.next().await {
                let pct = (status.as_frac() * 100.0).round() as i32;
                let text = status.to_string();
                if let Ok(mut l) = last2.lock() {
                    *l = text.clone();
                }
                if progress && (pct / 10 != shown / 10 || (pct == 100 && shown != 100)) {
                    eprintln!("tor bootstrap {text}");
                    shown = pct;
                }
            }
        });
        let secs = opts.config.bootstrap_timeout_secs;
        let result = tokio::time::timeout(Duration::from_secs(secs), client.bootstrap()).await;
        reporter.abort();
        match result {
            Err(_) => {
                let status = last.lock().map(|s| s.clone()).unwrap_or_default();
                return Err(TorSetupError::BootstrapTimeout { secs, status });
            }
            Ok(Err(e)) => return Err(TorSetupError::Bootstrap(e.to_string())),
            Ok(Ok(())) => {}
        }
        let bootstrap = started.elapsed();
        if opts.progress {
            eprintln!("tor bootstrapped in {:.1}s", bootstrap.as_secs_f64());
        }
        Ok(TorFetcher {
            client,
            user_agent: opts.user_agent,
            allow_private: opts.allow_private,
            tls: tls_connector().map_err(|e| TorSetupError::Tls(e.to_string()))?,
            groups: IsolationGroups::new(opts.config.fresh_circuit_after, |_, _| {
                IsolationToken::new()
            }),
            stats,
            circuits: Mutex::new(HashSet::new()),
            bootstrap,
        })
    }

    /// How long bootstrap took.
    pub fn bootstrap_time(&self) -> Duration {
        self.bootstrap
    }

    /// The Tor address for a URL; onion names are validated first.
    fn target(url: &Url) -> Result<TorAddr, FetchError> {
        let port = url.port_or_known_default().ok_or(FetchError::BadUrl)?;
        let addr = match url.host() {
            Some(url::Host::Domain(d)) if is_onion_host(d) => {
                let onion = parse_onion_host(d).map_err(FetchError::BadOnion)?;
                (onion.as_str(), port).into_tor_addr()
            }
            Some(url::Host::Domain(d)) => (d.trim_end_matches('.'), port).into_tor_addr(),
            Some(url::Host::Ipv4(ip)) => {
                (std::net::IpAddr::from(ip), port).into_tor_addr_dangerously()
            }
            Some(url::Host::Ipv6(ip)) => {
                (std::net::IpAddr::from(ip), port).into_tor_addr_dangerously()
            }
            None => return Err(FetchError::BadUrl),
        };
        addr.map_err(|_| FetchError::BadUrl)
    }

    async fn open(&self, url: &Url, site: &str, limits: &Limits) -> Result<DataStream, FetchError> {
        let addr = Self::target(url)?;
        let mut prefs = StreamPrefs::new();
        prefs.set_isolation(self.groups.group(site));
        prefs.connect_to_onion_services(BoolOrAuto::Explicit(true));
        if self.allow_private {
            prefs.connect_to_local_addrs(BoolOrAuto::Explicit(true));
        }
        let stream = tokio::time::timeout(
            limits.connect_timeout,
            self.client.connect_with_prefs(addr, &prefs),
        )
        .await
        .map_err(|_| FetchError::Timeout)?
        .map_err(|e| tor_error(&e))?;
        self.note_circuit(site, &stream);
        Ok(stream)
    }

    /// Logs the first use of each circuit by a site, with arti's circuit id and last hop.
    fn note_circuit(&self, site: &str, stream: &DataStream) {
        let Some(tunnel) = stream.client_stream_ctrl().and_then(|c| c.tunnel()) else {
            return;
        };
        let id = tunnel.unique_id().to_string();
        let new = self
            .circuits
            .lock()
            .map(|mut c| c.len() < 100_000 && c.insert((site.to_string(), id.clone())))
            .unwrap_or(false);
        if new {
            self.stats.incr(Counter::TorCircuits);
            let last_hop = match tunnel.last_hop_info() {
                Ok(Some(t)) => t.to_string(),
                _ => "-".to_string(),
            };
            tracing::info!(target: "leakwatch::tor", site = ?site, circuit = ?id, last_hop = %last_hop, "circuit in use");
        }
    }

    async fn exchange(
        &self,
        url: &Url,
        site: &str,
        limits: &Limits,
    ) -> Result<RawResponse, FetchError> {
        let stream = self.open(url, site, limits).await?;
        get_over(stream, &self.tls, url, &self.user_agent, limits).await
    }
}

/// Maps arti's error kinds onto the crawler's counted failures.
fn tor_error(e: &arti_client::Error) -> FetchError {
    let down = matches!(
        e.kind(),
        ErrorKind::BootstrapRequired | ErrorKind::LocalNetworkError
    );
    let kind = match e.kind() {
        ErrorKind::OnionServiceNotFound => TorFailure::OnionNotFound,
        ErrorKind::OnionServiceNotRunning
        | ErrorKind::OnionServiceConnectionFailed
        | ErrorKind::OnionServiceProtocolViolation => TorFailure::OnionUnreachable,
        ErrorKind::OnionServiceAddressInvalid
        | ErrorKind::OnionServiceMissingClientAuth
        | ErrorKind::OnionServiceWrongClientAuth
        | ErrorKind::RemoteConnectionRefused
        | ErrorKind::ExitPolicyRejected
        | ErrorKind::RemoteHostNotFound
        | ErrorKind::RemoteHostResolutionFailed
        | ErrorKind::InvalidStreamTarget
        | ErrorKind::ForbiddenStreamTarget => TorFailure::Refused,
        ErrorKind::TorNetworkTimeout | ErrorKind::RemoteNetworkTimeout | ErrorKind::ExitTimeout => {
            TorFailure::Timeout
        }
        ErrorKind::CircuitCollapse
        | ErrorKind::CircuitRefused
        | ErrorKind::NoPath
        | ErrorKind::NoExit
        | ErrorKind::TransientFailure
        | ErrorKind::RelayTooBusy
        | ErrorKind::TorAccessFailed
        | ErrorKind::RemoteNetworkFailed
        | ErrorKind::RemoteStreamClosed
        | ErrorKind::RemoteStreamReset
        | ErrorKind::RemoteStreamError => TorFailure::Circuit,
        _ => TorFailure::Other,
    };
    // arti's top-level message is generic; its causes say what happened.
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if detail.len() > 1024 {
            break;
        }
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    if down {
        // The client itself has no way out (not bootstrapped, no local network).
        return FetchError::TransportDown(detail);
    }
    FetchError::Tor { kind, detail }
}

#[async_trait]
impl Fetcher for TorFetcher {
    /// Ready when arti says it can act on a new request at once (a live guard connection,
    /// a usable directory).
    async fn probe(&self) -> Result<(), FetchError> {
        let status = self.client.bootstrap_status();
        if status.ready_for_traffic() {
            return Ok(());
        }
        let why = match status.blocked() {
            Some(b) => b.to_string(),
            None => status.to_string(),
        };
        Err(FetchError::TransportDown(format!("the Tor client: {why}")))
    }

    async fn get(&self, url: &Url, limits: &Limits) -> Result<RawResponse, FetchError> {
        let site = site_of(url);
        let r = tokio::time::timeout(limits.timeout, self.exchange(url, &site, limits))
            .await
            .map_err(|_| FetchError::Timeout)
            .and_then(|r| r);
        let transport_failed = matches!(
            r,
            Err(FetchError::Timeout | FetchError::Connect(_) | FetchError::Tor { .. })
        );
        if self.groups.record(&site, !transport_failed) {
            self.stats.incr(Counter::TorFreshIsolation);
            tracing::info!(target: "leakwatch::tor", site = ?site, "repeated failures: new circuit for this site");
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arti_config_is_loaded_with_arti_rules_and_dirs_under_the_data_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("arti.toml");
        std::fs::write(
            &file,
            "[path_rules]\nipv4_subnet_family_prefix = 33\n\n\
             [address_filter]\nallow_local_addrs = true\n\n\
             [override_net_params]\nhsdir_interval = 8\n\n\
             [storage]\nstate_dir = \"/elsewhere/state\"\n",
        )
        .unwrap();
        let dir = tmp.path().join("tor");
        let loaded = load_config(Some(&file), &dir).unwrap();
        let shown = format!("{loaded:?}");
        assert!(shown.contains("ipv4_subnet_family_prefix: 33"), "{shown}");
        assert!(
            shown.contains(&dir.join("state").display().to_string()),
            "{shown}"
        );
        assert!(!shown.contains("/elsewhere"), "{shown}");

        std::fs::write(&file, "[path_rules]\nipv4_subnet_family_prefx = 33\n").unwrap();
        let e = load_config(Some(&file), &dir).err().unwrap().to_string();
        assert!(e.contains("path_rules.ipv4_subnet_family_prefx"), "{e}");
        std::fs::write(&file, "[path_rules]\nipv4_subnet_family_prefix = \"x\"\n").unwrap();
        assert!(load_config(Some(&file), &dir).is_err());
        let missing = tmp.path().join("missing.toml");
        assert!(load_config(Some(&missing), &dir).is_err());
        assert!(load_config(None, &dir).is_ok());
    }

    #[test]
    fn onion_targets_are_validated_before_tor_sees_them() {
        let good = "http://2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wid.onion/x";
        assert!(TorFetcher::target(&Url::parse(good).unwrap()).is_ok());
        let bad = good.replacen("2gzy", "2gzz", 1);
        let e = TorFetcher::target(&Url::parse(&bad).unwrap()).unwrap_err();
        assert_eq!(e.kind(), "onion.bad-checksum");
        let v2 = "http://expyuzz4wqqyqhjn.onion/";
        let e = TorFetcher::target(&Url::parse(v2).unwrap()).unwrap_err();
        assert_eq!(e.kind(), "onion.v2-obsolete");
        assert!(TorFetcher::target(&Url::parse("http://127.0.0.1:8080/").unwrap()).is_ok());
    }
}
