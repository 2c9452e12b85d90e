//! Which roles of a node are ready: started (their stores opened, their transport up, their
//! consumers about to subscribe) and not yet stopping. What a `/readyz` endpoint answers.
//!
//! Besides being started, a role may depend on live conditions: cheap ones read on every
//! answer ([`Check`]: the bus connection, a worker waiting for the transport) and ones that
//! must be asked over the network ([`Probe`]: the Tor client, the SOCKS proxy, the state
//! store), which [`Readiness::refresh`] asks every few seconds and whose last answers count.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::Role;

/// A live condition a started role adds to its readiness (the crawler: no worker waits for
/// the transport).
pub type Check = Arc<dyn Fn() -> bool + Send + Sync>;

/// A condition that has to be asked (a round trip to a store or a proxy): true when up.
pub type Probe = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;

/// How long one probe may take before it counts as down.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// A registered probe and its last answer.
struct Probed {
    role: Role,
    probe: Probe,
    up: Arc<AtomicBool>,
}

/// Per-role readiness, shared between the node and whoever reports it. Cheap to clone.
#[derive(Clone, Default)]
pub struct Readiness {
    roles: Arc<Mutex<BTreeMap<Role, bool>>>,
    checks: Arc<Mutex<BTreeMap<Role, Vec<Check>>>>,
    probes: Arc<Mutex<Vec<Probed>>>,
    /// A condition every role needs (the bus connection).
    common: Arc<Mutex<Option<Check>>>,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.snapshot()).finish()
    }
}

impl Readiness {
    /// Records that this node runs `role` (not ready yet).
    pub fn expect(&self, role: Role) {
        if let Ok(mut r) = self.roles.lock() {
            r.entry(role).or_insert(false);
        }
    }

    /// Adds a live condition to `role`'s readiness.
    pub fn check(&self, role: Role, check: Check) {
        if let Ok(mut c) = self.checks.lock() {
            c.entry(role).or_default().push(check);
        }
    }

    /// Adds a condition to `role`'s readiness that [`Readiness::refresh`] asks (up until
    /// asked).
    pub fn probe(&self, role: Role, probe: Probe) {
        let up = Arc::new(AtomicBool::new(true));
        if let Ok(mut p) = self.probes.lock() {
            p.push(Probed { role, probe, up });
        }
    }

    /// Asks every probe, each within [`PROBE_TIMEOUT`], and keeps the answers.
    pub async fn refresh(&self) {
        let probes: Vec<(Probe, Arc<AtomicBool>)> = match self.probes.lock() {
            Ok(p) => p.iter().map(|p| (p.probe.clone(), p.up.clone())).collect(),
            Err(_) => return,
        };
        for (probe, up) in probes {
            let answer = tokio::time::timeout(PROBE_TIMEOUT, probe())
                .await
                .unwrap_or(false);
            up.store(answer, Ordering::SeqCst);
        }
    }

    /// Adds a live condition to every role's readiness (the bus they all need).
    pub fn check_all(&self, check: Check) {
        if let Ok(mut c) = self.common.lock() {
            *c = Some(check);
        }
    }

    fn passes(&self, role: Role) -> bool {
        let checks = self
            .checks
            .lock()
            .ok()
            .and_then(|c| c.get(&role).cloned())
            .unwrap_or_default();
        let probed = self.probes.lock().is_ok_and(|p| {
            p.iter()
                .filter(|p| p.role == role)
                .all(|p| p.up.load(Ordering::SeqCst))
        });
        let common = self.common.lock().ok().and_then(|c| c.clone());
        probed && checks.iter().all(|c| c()) && common.is_none_or(|c| c())
    }

    pub fn set(&self, role: Role, ready: bool) {
        if let Ok(mut r) = self.roles.lock() {
            r.insert(role, ready);
        }
    }

    /// Every role not ready any more (the node is stopping).
    pub fn clear(&self) {
        if let Ok(mut r) = self.roles.lock() {
            r.values_mut().for_each(|v| *v = false);
        }
    }

    pub fn is_ready(&self, role: Role) -> bool {
        let set = self
            .roles
            .lock()
            .map(|r| r.get(&role).copied().unwrap_or(false))
            .unwrap_or(false);
        set && self.passes(role)
    }

    /// Whether every role this node runs is ready (false before any is expected).
    pub fn all_ready(&self) -> bool {
        let snapshot = self.snapshot();
        !snapshot.is_empty() && snapshot.values().all(|v| *v)
    }

    /// Each role this node runs with its readiness.
    pub fn snapshot(&self) -> BTreeMap<Role, bool> {
        let set = self.roles.lock().map(|r| r.clone()).unwrap_or_default();
        set.into_iter()
            .map(|(role, ready)| (role, ready && self.passes(role)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_ready_needs_every_expected_role() {
        let r = Readiness::default();
        assert!(!r.all_ready());
        r.expect(Role::Indexer);
        r.expect(Role::Crawler);
        r.set(Role::Indexer, true);
        assert!(r.is_ready(Role::Indexer) && !r.all_ready());
        r.set(Role::Crawler, true);
        assert!(r.all_ready());
        let up = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let up2 = up.clone();
        r.check(
            Role::Crawler,
            Arc::new(move || up2.load(std::sync::atomic::Ordering::SeqCst)),
        );
        assert!(!r.is_ready(Role::Crawler) && !r.all_ready());
        up.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(r.all_ready());
        // A broker outage holds every role back.
        let bus_up = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let bus_up2 = bus_up.clone();
        r.check_all(Arc::new(move || {
            bus_up2.load(std::sync::atomic::Ordering::SeqCst)
        }));
        assert!(!r.is_ready(Role::Indexer) && !r.is_ready(Role::Crawler));
        bus_up.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(r.all_ready());
        r.clear();
        assert!(!r.all_ready() && !r.is_ready(Role::Indexer));
        assert_eq!(r.snapshot().len(), 2);
    }

    #[tokio::test]
    async fn probes_count_from_their_last_answer_and_a_hung_probe_is_down() {
        let r = Readiness::default();
        r.expect(Role::Frontier);
        r.expect(Role::Crawler);
        r.set(Role::Frontier, true);
        r.set(Role::Crawler, true);
        let store_up = Arc::new(AtomicBool::new(false));
        let s = store_up.clone();
        r.probe(
            Role::Frontier,
            Arc::new(move || {
                let s = s.clone();
                Box::pin(async move { s.load(Ordering::SeqCst) })
            }),
        );
        // Up until asked.
        assert!(r.all_ready());
        r.refresh().await;
        assert!(!r.is_ready(Role::Frontier) && r.is_ready(Role::Crawler));
        store_up.store(true, Ordering::SeqCst);
        assert!(
            !r.is_ready(Role::Frontier),
            "the last answer counts until the next"
        );
        r.refresh().await;
        assert!(r.all_ready());
        // A probe that never answers counts as down after PROBE_TIMEOUT.
        r.probe(
            Role::Crawler,
            Arc::new(|| Box::pin(std::future::pending::<bool>())),
        );
        r.refresh().await;
        assert!(!r.is_ready(Role::Crawler) && r.is_ready(Role::Frontier));
    }
}
