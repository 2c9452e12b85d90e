//! How the crawler reaches sites: which transport, and opening it (the embedded Tor client
//! bootstraps here, bounded by `[tor]`).

use crawler::ratelimit::RateLimitedFetcher;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use bus::Stats;
use crawler::tor::TorOptions;
use crawler::{DirectFetcher, Fetcher, HealthyFetcher, Socks5Fetcher, TorFetcher};

use crate::{Config, NodeError};

/// Which transport (`--transport`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportKind {
    /// The embedded Tor client (arti), one circuit per site.
    Tor,
    /// From this machine, without Tor (tests, local sites); refuses `.onion` hosts.
    Direct,
    /// `HOST:PORT` of a SOCKS5 proxy.
    Socks5(String),
}

impl FromStr for TransportKind {
    type Err = String;

    fn from_str(s: &str) -> Result<TransportKind, String> {
        match s {
            "tor" => Ok(TransportKind::Tor),
            "direct" => Ok(TransportKind::Direct),
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
                        Ok(TransportKind::Socks5(addr.to_string()))
                    }
                    _ => Err(format!("expected socks5://HOST:PORT, got {s:?}")),
                }
            }
        }
    }
}

impl std::fmt::Display for TransportKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransportKind::Tor => f.write_str("tor"),
            TransportKind::Direct => f.write_str("direct"),
            TransportKind::Socks5(a) => write!(f, "socks5://{a}"),
        }
    }
}

/// What opening a transport needs besides the config.
#[derive(Debug, Clone)]
pub struct TransportOptions {
    pub kind: TransportKind,
    /// The tor transport keeps its state and cache under `DATA_DIR/tor`.
    pub data_dir: PathBuf,
    /// Allow loopback, private and link-local addresses.
    pub allow_private: bool,
    /// arti TOML for the tor transport (a custom network).
    pub tor_config: Option<PathBuf>,
    /// The node stops when the crawl settles (`run --once`): seeds that never answered get
    /// `[health] once_grace_secs` instead of `unreached_grace_secs`.
    pub once: bool,
}

/// An open transport, and what the summary needs from it.
#[derive(Clone)]
pub struct Transport {
    pub kind: TransportKind,
    pub fetcher: Arc<dyn Fetcher>,
    /// Site health (retries, down sites), for every transport but direct.
    pub health: Option<Arc<HealthyFetcher>>,
    /// How long the embedded Tor client took to bootstrap.
    pub bootstrap: Option<Duration>,
}

impl Transport {
    /// The direct transport (tests, local sites).
    pub fn direct(allow_private: bool, user_agent: &str) -> Result<Transport, crawler::FetchError> {
        Ok(Transport {
            kind: TransportKind::Direct,
            fetcher: Arc::new(DirectFetcher::new(allow_private, user_agent)?),
            health: None,
            bootstrap: None,
        })
    }

    /// Opens the transport; the tor transport bootstraps here.
    pub async fn open(
        opts: &TransportOptions,
        config: &Config,
        stats: &Arc<Stats>,
    ) -> Result<Transport, NodeError> {
        let ua = &config.crawler.user_agent;
        let failed = |source: Box<dyn std::error::Error + Send + Sync>| NodeError::Transport {
            kind: opts.kind.to_string(),
            source,
        };
        let (inner, bootstrap): (Arc<dyn Fetcher>, _) = match &opts.kind {
            TransportKind::Direct => {
                let mut t =
                    Transport::direct(opts.allow_private, ua).map_err(|e| failed(e.into()))?;
                t.fetcher = Arc::new(RateLimitedFetcher::new(
                    t.fetcher,
                    config.health.clone(),
                    stats.clone(),
                ));
                return Ok(t);
            }
            TransportKind::Socks5(proxy) => {
                let socks = Socks5Fetcher::new(proxy, ua, opts.allow_private)
                    .map_err(|e| failed(e.into()))?;
                (Arc::new(socks), None)
            }
            TransportKind::Tor => {
                let tor = TorFetcher::bootstrap(
                    TorOptions {
                        config_file: opts.tor_config.clone(),
                        dir: opts.data_dir.join("tor"),
                        allow_private: opts.allow_private,
                        user_agent: ua.clone(),
                        config: config.tor.clone(),
                        progress: true,
                    },
                    stats.clone(),
                )
                .await
                .map_err(|e| failed(e.into()))?;
                let b = tor.bootstrap_time();
                stats.set_gauge(bus::stats::Gauge::TorBootstrapSeconds, "", b.as_secs_f64());
                (Arc::new(tor), Some(b))
            }
        };
        let health = Arc::new(HealthyFetcher::new(
            inner,
            config.health.clone(),
            stats.clone(),
            opts.once,
        ));
        let fetcher = Arc::new(RateLimitedFetcher::new(
            health.clone(),
            config.health.clone(),
            stats.clone(),
        ));
        Ok(Transport {
            kind: opts.kind.clone(),
            fetcher,
            health: Some(health),
            bootstrap,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports() {
        assert_eq!("tor".parse(), Ok(TransportKind::Tor));
        assert_eq!("direct".parse(), Ok(TransportKind::Direct));
        assert_eq!(
            "socks5://127.0.0.1:9050".parse(),
            Ok(TransportKind::Socks5("127.0.0.1:9050".into()))
        );
        assert_eq!(
            "socks5://[::1]:9050/"
                .parse::<TransportKind>()
                .unwrap()
                .to_string(),
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
            assert!(bad.parse::<TransportKind>().is_err(), "{bad}");
        }
    }
}
