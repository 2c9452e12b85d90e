//! The console role: the analysts' web console (crate `console`) served by a node, beside
//! the indexer or on its own, until the node stops. Also what the console counts coverage
//! against: the fingerprint bank and the watchlist in the data dir.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::roles::{RoleContext, RoleTask};
use crate::{NodeError, Role};

/// The `[console]` table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// `HOST:PORT` the console role listens on (port 0: any free port, printed on stderr).
    /// Serve it on loopback or behind a TLS-terminating proxy: its cookies are `Secure`.
    pub listen: String,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            listen: "127.0.0.1:8080".into(),
        }
    }
}

/// Stolen photos and identifiers, when known.
type Counts = (Option<usize>, Option<usize>);

/// How long counts of the bank and the watchlist are reused.
const COUNTS_TTL: Duration = Duration::from_secs(60);

/// The number of stolen photos (fingerprints) and identifiers (watchlist entries) in a data
/// dir, re-read at most once a minute.
pub struct DataDirInventory {
    data_dir: PathBuf,
    cached: Mutex<Option<(Instant, Counts)>>,
}

impl DataDirInventory {
    pub fn new(data_dir: &Path) -> DataDirInventory {
        DataDirInventory {
            data_dir: data_dir.to_path_buf(),
            cached: Mutex::new(None),
        }
    }

    fn read(&self) -> (Option<usize>, Option<usize>) {
        let photos = matcher::Bank::open(&self.data_dir).ok().map(|b| b.len());
        let ids = matcher::Watchlist::count_in(&self.data_dir).ok();
        (photos, ids)
    }
}

impl console::Inventory for DataDirInventory {
    fn counts(&self) -> (Option<usize>, Option<usize>) {
        let mut c = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        match *c {
            Some((at, counts)) if at.elapsed() < COUNTS_TTL => counts,
            _ => {
                let counts = self.read();
                *c = Some((Instant::now(), counts));
                counts
            }
        }
    }
}

/// The options of a console over `data_dir`.
pub fn options(
    data_dir: &Path,
    state_url: Option<String>,
    config: &crate::Config,
) -> console::ConsoleOptions {
    console::ConsoleOptions {
        data_dir: data_dir.to_path_buf(),
        state_url,
        paste_hosts: config.pastes.iter().flat_map(|p| p.sites()).collect(),
        inventory: std::sync::Arc::new(DataDirInventory::new(data_dir)),
    }
}

/// Binds the console's address and serves it until the bus closes.
pub async fn start(ctx: &RoleContext) -> Result<RoleTask, NodeError> {
    let addr = &ctx.config.console.listen;
    let failed = |e: Box<dyn std::error::Error + Send + Sync>| NodeError::Role {
        role: Role::Console,
        source: e,
    };
    let listener = tokio::net::TcpListener::bind(addr.as_str())
        .await
        .map_err(|e| failed(format!("cannot listen on {addr}: {e}").into()))?;
    let local = listener.local_addr().map_err(|e| failed(e.into()))?;
    eprintln!("console on http://{local}/");
    let options = options(&ctx.data_dir, ctx.state_url.clone(), &ctx.config);
    let opened = console::Console::open(options)
        .await
        .map_err(|e| failed(e.into()))?;
    let probed = opened.clone();
    ctx.readiness.probe(
        Role::Console,
        std::sync::Arc::new(move || {
            let console = probed.clone();
            Box::pin(async move {
                crate::roles::store_answers("console", console.store_reachable().await)
            })
        }),
    );
    let bus = ctx.bus.clone();
    let closed = async move {
        while !bus.is_closed() {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    Ok(Box::pin(async move {
        opened
            .serve(listener, closed)
            .await
            .map_err(|e| failed(e.into()))
    }))
}
