//! The composition root of leakwatch: which roles a process runs, how they are wired to a bus
//! and a transport, how they stop, and what a run did.
//!
//! The `leakwatch` binary parses and validates its command line, builds a bus and a transport
//! and calls [`Node::start`]; tests do the same with their own shutdown future, so a whole
//! node runs in-process (see `tests/node.rs`). Design choices:
//! - **Roles are an enum** ([`Role`]); each has one start function in [`roles`], which opens
//!   what the role needs and returns its task. Adding a role is one variant and one arm.
//! - **Shutdown is a parameter** (mini-redis's `server::run(listener, shutdown)`): the node
//!   stops when the future resolves, when the pipeline settles (`once`), or when a role ends.
//! - **The bus is a trait object**: lifecycle (close, idle, in-flight, dead letters) is on
//!   [`bus::Bus`], so nothing here knows which bus it runs on.
//! - **What others read is on the handle**: [`NodeHandle`] exposes the counters ([`bus::Stats`],
//!   typed names in [`bus::Counter`]) and per-role [`Readiness`], for health and metrics
//!   endpoints; awaiting it yields the typed [`Summary`].

pub mod config;
pub mod console;
pub mod metrics;
pub mod node;
pub mod readiness;
pub mod retrohunt;
pub mod role;
pub mod roles;
pub mod summary;
pub mod transport;

use std::path::PathBuf;

pub use config::{BusConfig, Config, ConfigError};
pub use node::{Node, NodeHandle, NodeOptions};
pub use readiness::Readiness;
pub use role::{Role, Roles, UnknownRole};
pub use summary::{Latency, Summary};
pub use transport::{Transport, TransportKind, TransportOptions};

/// Why a node (or one of its roles) failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("failed to create data dir {path}: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to open the {kind} transport: {source}")]
    Transport {
        kind: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("the crawler role needs a transport")]
    NoTransport,
    #[error("failed to connect to {url}: {source}")]
    Connect {
        /// Without its password.
        url: String,
        #[source]
        source: bus::BusError,
    },
    #[error(transparent)]
    Bus(#[from] bus::BusError),
    #[error(transparent)]
    Index(#[from] indexer::IndexError),
    #[error(transparent)]
    Alerts(#[from] alerts::StoreError),
    #[error(transparent)]
    Bank(#[from] matcher::bank::BankError),
    #[error(transparent)]
    Watchlist(#[from] matcher::watchlist::WatchlistError),
    #[error(transparent)]
    Evidence(#[from] evidence::EvidenceError),
    #[error("{role} failed: {source}")]
    Role {
        role: Role,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{0} stopped unexpectedly")]
    RoleEnded(Role),
    #[error("panicked: {0}")]
    Panicked(String),
    #[error("roles did not stop within {0}s; in-flight messages will be redelivered")]
    StopTimeout(u64),
    #[error("lost the broker connection: {0}")]
    BrokerLost(String),
    #[error("no fingerprints in {0}: import some first")]
    NoFingerprints(PathBuf),
}

/// The bus a node runs on: RabbitMQ at `amqp` (declaring the role topology), else the
/// in-process bus.
pub async fn open_bus(
    amqp: Option<&str>,
    config: &BusConfig,
) -> Result<std::sync::Arc<dyn bus::Bus>, NodeError> {
    Ok(match amqp {
        None => std::sync::Arc::new(bus::EmbeddedBus::with_queue_bytes(
            config.delivery_limit,
            config.queue_bytes,
        )),
        Some(url) => std::sync::Arc::new(connect_amqp(url, config).await?),
    })
}

/// Connects to RabbitMQ, retrying with backoff for `[bus] connect_wait_secs` (a broker that
/// starts after its clients, a vhost not made yet).
async fn connect_amqp(url: &str, config: &BusConfig) -> Result<bus::AmqpBus, NodeError> {
    let deadline =
        std::time::Instant::now() + std::time::Duration::from_secs(config.connect_wait_secs);
    let mut delay = std::time::Duration::from_millis(250);
    loop {
        match bus::AmqpBus::connect(url, config.delivery_limit).await {
            Ok(b) => return Ok(b),
            Err(e) if std::time::Instant::now() + delay < deadline => {
                tracing::warn!(url = %redact(url), error = %e, ?delay, "broker not reached: retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(std::time::Duration::from_secs(5));
            }
            Err(source) => {
                return Err(NodeError::Connect {
                    url: redact(url),
                    source,
                })
            }
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM (what Kubernetes sends): the shutdown future the binary
/// passes to [`Node::start`] and to its long-running commands.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// A broker URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(
            super::redact("amqp://lw:s3cret@mq:5672/v"),
            "amqp://lw:***@mq:5672/v"
        );
        assert_eq!(super::redact("amqp://mq/v"), "amqp://mq/v");
    }
}
