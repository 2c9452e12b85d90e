//! Which roles of a node are ready: started (their stores opened, their transport up, their
//! consumers about to subscribe) and not yet stopping. What a `/readyz` endpoint answers.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::Role;

/// Per-role readiness, shared between the node and whoever reports it. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    roles: Arc<Mutex<BTreeMap<Role, bool>>>,
}

impl Readiness {
    /// Records that this node runs `role` (not ready yet).
    pub fn expect(&self, role: Role) {
        if let Ok(mut r) = self.roles.lock() {
            r.entry(role).or_insert(false);
        }
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
        self.roles
            .lock()
            .map(|r| r.get(&role).copied().unwrap_or(false))
            .unwrap_or(false)
    }

    /// Whether every role this node runs is ready (false before any is expected).
    pub fn all_ready(&self) -> bool {
        self.roles
            .lock()
            .map(|r| !r.is_empty() && r.values().all(|v| *v))
            .unwrap_or(false)
    }

    /// Each role this node runs with its readiness.
    pub fn snapshot(&self) -> BTreeMap<Role, bool> {
        self.roles.lock().map(|r| r.clone()).unwrap_or_default()
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
        r.clear();
        assert!(!r.all_ready() && !r.is_ready(Role::Indexer));
        assert_eq!(r.snapshot().len(), 2);
    }
}
