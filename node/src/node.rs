//! Starting a node, running it until it should stop, and stopping it cleanly.
//!
//! A node stops when (whichever first) its shutdown future resolves, the pipeline settles
//! (`once`: nothing queued, nothing in flight), or a role ends on its own (an error). Then it
//! closes the bus — consumers stop taking messages, each role finishes the one in hand and the
//! indexer commits — waits up to [`SHUTDOWN_GRACE`] for the roles, and builds the [`Summary`].
//! What was not settled stays unacked and is redelivered by the broker.

use std::future::{Future, IntoFuture};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bus::stats::Gauge;
use bus::{Bus, Stats};
use tokio::task::{JoinError, JoinHandle, JoinSet};
use url::Url;

use crate::readiness::Readiness;
use crate::roles::{self, RoleContext};
use crate::summary::{Extra, Summary};
use crate::{Config, NodeError, Role, Roles, Transport};

/// How long roles get to finish in-flight work after the node starts stopping.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// How often readiness probes are asked and gauges (queue depths, sites down) sampled.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// What one node runs with, besides its roles, bus and transport.
#[derive(Clone)]
pub struct NodeOptions {
    pub data_dir: PathBuf,
    pub config: Config,
    /// Queued by the frontier role when it starts.
    pub seeds: Vec<Url>,
    /// Stop once the pipeline has settled (every role must run in this node).
    pub once: bool,
    /// The node's counters; share them with the transport so its counts show too.
    pub stats: Arc<Stats>,
    /// Where the frontier keeps its durable state and recrawl schedule: a `postgres://` URL,
    /// or `None` for SQLite in the data dir. Used when the node is not `once`.
    pub state_url: Option<String>,
    /// The node's readiness; share it with `/readyz` before the node starts (while the bus
    /// connects and Tor bootstraps, the roles are reported not ready).
    pub readiness: Readiness,
}

impl NodeOptions {
    pub fn new(data_dir: impl Into<PathBuf>, config: Config) -> NodeOptions {
        NodeOptions {
            data_dir: data_dir.into(),
            config,
            seeds: Vec::new(),
            once: false,
            stats: Arc::new(Stats::default()),
            state_url: None,
            readiness: Readiness::default(),
        }
    }
}

/// The composition root.
pub struct Node;

impl Node {
    /// Starts `roles` on `bus` (and `transport`, which the crawler role needs) and runs them
    /// until `shutdown` resolves, the pipeline settles (`once`) or a role fails. Must be
    /// called inside a tokio runtime; await the handle for the summary.
    pub fn start(
        options: NodeOptions,
        roles: Roles,
        bus: Arc<dyn Bus>,
        transport: Option<Transport>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> NodeHandle {
        let readiness = options.readiness.clone();
        for r in roles.in_start_order() {
            readiness.expect(r);
        }
        let stats = options.stats.clone();
        let run = Run {
            options,
            roles,
            bus: bus.clone(),
            transport,
            readiness: readiness.clone(),
            crawler: Arc::default(),
        };
        NodeHandle {
            task: tokio::spawn(run.run(shutdown)),
            stats,
            readiness,
            bus,
        }
    }
}

/// A running node: await it for its [`Summary`]; read its counters and readiness meanwhile.
pub struct NodeHandle {
    task: JoinHandle<Result<Summary, NodeError>>,
    stats: Arc<Stats>,
    readiness: Readiness,
    bus: Arc<dyn Bus>,
}

impl NodeHandle {
    /// The node's counters (typed names in [`bus::Counter`]).
    pub fn stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Which of the node's roles are ready.
    pub fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }

    /// The bus the node runs on (in-flight count for progress lines).
    pub fn bus(&self) -> Arc<dyn Bus> {
        self.bus.clone()
    }
}

impl IntoFuture for NodeHandle {
    type Output = Result<Summary, NodeError>;
    type IntoFuture = NodeFuture;

    fn into_future(self) -> NodeFuture {
        NodeFuture(self.task)
    }
}

/// Awaiting a [`NodeHandle`].
pub struct NodeFuture(JoinHandle<Result<Summary, NodeError>>);

impl Future for NodeFuture {
    type Output = Result<Summary, NodeError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|r| {
            r.map_err(|e| NodeError::Panicked(format!("the node task: {e}")))
                .and_then(|r| r)
        })
    }
}

/// Everything one run owns.
struct Run {
    options: NodeOptions,
    roles: Roles,
    bus: Arc<dyn Bus>,
    transport: Option<Transport>,
    readiness: Readiness,
    crawler: Arc<std::sync::OnceLock<Arc<crawler::Crawler>>>,
}

type RoleResult = (Role, Result<(), NodeError>);

impl Run {
    async fn run(self, shutdown: impl Future<Output = ()>) -> Result<Summary, NodeError> {
        let dir = &self.options.data_dir;
        std::fs::create_dir_all(dir).map_err(|source| NodeError::DataDir {
            path: dir.clone(),
            source,
        })?;
        let started = Instant::now();
        let mut tasks = JoinSet::new();
        if let Err(e) = self.start_roles(&mut tasks).await {
            self.bus.close();
            return Err(e);
        }
        let ended = self.until_stop(&mut tasks, shutdown).await;
        self.bus.close();
        self.readiness.clear();
        let stopped = stop(tasks, ended).await;
        self.finish(started, stopped).await
    }

    async fn start_roles(&self, tasks: &mut JoinSet<RoleResult>) -> Result<(), NodeError> {
        let ctx = RoleContext {
            data_dir: self.options.data_dir.clone(),
            config: Arc::new(self.options.config.clone()),
            bus: self.bus.clone(),
            stats: self.options.stats.clone(),
            fetcher: self.transport.as_ref().map(|t| t.fetcher.clone()),
            seeds: self.options.seeds.clone(),
            readiness: self.readiness.clone(),
            crawler: self.crawler.clone(),
            // Watching continuously, the frontier keeps its state and schedule in a store
            // (also on the embedded bus: the schedule outlives the process, and a request
            // lost with the embedded queues is requested again when its page is due).
            frontier_state: (!self.options.once)
                .then(|| crate::roles::StateLocation(self.options.state_url.clone())),
            state_url: self.options.state_url.clone(),
        };
        let bus = self.bus.clone();
        self.readiness
            .check_all(Arc::new(move || bus.is_connected()));
        for role in self.roles.in_start_order() {
            let task = roles::start(role, &ctx).await?;
            tasks.spawn(async move { (role, task.await) });
            self.readiness.set(role, true);
        }
        Ok(())
    }

    /// Waits for the reason to stop; a role that ended on its own is returned.
    async fn until_stop(
        &self,
        tasks: &mut JoinSet<RoleResult>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<Option<Result<RoleResult, JoinError>>, NodeError> {
        let settled = async {
            if self.options.once {
                self.bus.wait_idle().await
            } else {
                std::future::pending().await
            }
        };
        tokio::select! {
            r = settled => r.map(|()| None).map_err(NodeError::from),
            r = tasks.join_next() => Ok(r),
            never = self.sample() => match never {},
            _ = shutdown => {
                tracing::warn!("stopping: finishing in-flight work");
                Ok(None)
            }
        }
    }

    /// Asks the readiness probes and samples the gauges every [`SAMPLE_EVERY`], for ever.
    async fn sample(&self) -> std::convert::Infallible {
        let stats = &self.options.stats;
        loop {
            self.readiness.refresh().await;
            if let Some(health) = self.transport.as_ref().and_then(|t| t.health.as_ref()) {
                stats.set_gauge(Gauge::SitesDown, "", health.sites_down() as f64);
            }
            let depths = tokio::time::timeout(SAMPLE_EVERY, self.bus.queue_depths()).await;
            match depths {
                Ok(Ok(depths)) => {
                    for d in depths {
                        stats.set_gauge(Gauge::QueueMessages, &d.queue, f64::from(d.messages));
                        stats.set_gauge(Gauge::QueueConsumers, &d.queue, f64::from(d.consumers));
                    }
                }
                Ok(Err(e)) => tracing::debug!(error = %e, "queue depths not sampled"),
                Err(_) => tracing::debug!("queue depths not sampled: the broker did not answer"),
            }
            tokio::time::sleep(SAMPLE_EVERY).await;
        }
    }

    async fn finish(
        &self,
        started: Instant,
        stopped: Result<(), NodeError>,
    ) -> Result<Summary, NodeError> {
        if let Some(reason) = self.bus.failure() {
            return Err(NodeError::BrokerLost(reason));
        }
        stopped?;
        let dead_lettered = self.bus.dead_lettered().await.unwrap_or(0);
        self.bus.disconnect().await;
        let stored = alerts::load(&self.options.data_dir.join(alerts::ALERTS_FILE))?;
        Ok(Summary::from_stats(
            &self.options.stats,
            Extra {
                total_alerts: stored.len(),
                detection_latency: crate::summary::Latency::of(&stored),
                dead_lettered,
                elapsed_secs: started.elapsed().as_secs_f64(),
                transport: self.transport.clone(),
                unreached_seeds: self.unreached_seeds(),
            },
        ))
    }
}

impl Run {
    /// Seeds whose site never answered, when this node crawled them.
    fn unreached_seeds(&self) -> Vec<String> {
        let Some(crawler) = self.crawler.get() else {
            return Vec::new();
        };
        self.options
            .seeds
            .iter()
            .filter(|s| !crawler.reached(&crawler::urls::site_of(s)))
            .map(|s| s.to_string())
            .collect()
    }
}

/// Drains the roles after the bus closed; the first failure wins (a role that ended before
/// the node decided to stop is one).
async fn stop(
    mut tasks: JoinSet<RoleResult>,
    ended: Result<Option<Result<RoleResult, JoinError>>, NodeError>,
) -> Result<(), NodeError> {
    let mut result = match ended {
        Err(e) => Err(e),
        Ok(None) => Ok(()),
        Ok(Some(Ok((role, Ok(()))))) => Err(NodeError::RoleEnded(role)),
        Ok(Some(r)) => role_result(r),
    };
    let drain = async {
        while let Some(r) = tasks.join_next().await {
            let r = role_result(r);
            if result.is_ok() {
                result = r;
            }
        }
    };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        return Err(NodeError::StopTimeout(SHUTDOWN_GRACE.as_secs()));
    }
    result
}

fn role_result(r: Result<RoleResult, JoinError>) -> Result<(), NodeError> {
    match r {
        Ok((_, r)) => r,
        Err(e) => Err(NodeError::Panicked(format!("a role: {e}"))),
    }
}
