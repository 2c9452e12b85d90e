//! Which roles of a node are ready: started (their stores opened, their transport up, their
//! consumers about to subscribe) and not yet stopping. What a `/readyz` endpoint answers.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::Role;

/// A live condition a started role adds to its readiness (the crawler: its transport is up).
pub type Check = Arc<dyn Fn() -> bool + Send + Sync>;

/// Per-role readiness, shared between the node and whoever reports it. Cheap to clone.
#[derive(Clone, Default)]
pub struct Readiness {
    roles: Arc<Mutex<BTreeMap<Role, bool>>>,
    checks: Arc<Mutex<BTreeMap<Role, Check>>>,
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
            c.insert(role, check);
        }
    }

    /// Adds a live condition to every role's readiness (the bus they all need).
    pub fn check_all(&self, check: Check) {
        if let Ok(mut c) = self.common.lock() {
            *c = Some(check);
        }
    }

    fn passes(&self, role: Role) -> bool {
        let check = self.checks.lock().ok().and_then(|c| c.get(&role).cloned());
        let common = self.common.lock().ok().and_then(|c| c.clone());
        check.is_none_or(|c| c()) && common.is_none_or(|c| c())
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
}
