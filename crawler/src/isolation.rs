//! Per-site isolation groups: what keeps two sites off one Tor circuit.
//!
//! A circuit shared by two sites would let an exit or an observer link the crawler's visits
//! to both (and a slow or hostile site would delay the other). Each site gets its own group —
//! an arti isolation token, or a SOCKS username/password for tor's `IsolateSOCKSAuth` — made
//! when the site is first seen. After `fresh_after` consecutive failures the site gets a new
//! group, so its next request builds a new circuit instead of reusing a broken one.

use std::collections::HashMap;
use std::sync::Mutex;

/// Builds the group for a site and generation.
type MakeGroup<T> = Box<dyn Fn(&str, u64) -> T + Send + Sync>;

/// Hands out one group per site, and a fresh one after repeated failures.
pub struct IsolationGroups<T> {
    fresh_after: u32,
    make: MakeGroup<T>,
    sites: Mutex<HashMap<String, Entry<T>>>,
}

struct Entry<T> {
    group: T,
    generation: u64,
    failures: u32,
}

/// More sites than this and the table is cleared (a crawl of that many sites in one process
/// is unusual; forgetting only costs new circuits).
const MAX_SITES: usize = 200_000;

impl<T: Clone> IsolationGroups<T> {
    /// `make(site, generation)` builds a new group for a site.
    pub fn new(fresh_after: u32, make: impl Fn(&str, u64) -> T + Send + Sync + 'static) -> Self {
        IsolationGroups {
            fresh_after: fresh_after.max(1),
            make: Box::new(make),
            sites: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry<T>>> {
        self.sites.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current group of `site`.
    pub fn group(&self, site: &str) -> T {
        let mut sites = self.lock();
        if sites.len() >= MAX_SITES && !sites.contains_key(site) {
            sites.clear();
        }
        sites
            .entry(site.to_string())
            .or_insert_with(|| Entry {
                group: (self.make)(site, 0),
                generation: 0,
                failures: 0,
            })
            .group
            .clone()
    }

    /// Records the outcome of a request; returns true when the site was given a fresh group.
    pub fn record(&self, site: &str, ok: bool) -> bool {
        let mut sites = self.lock();
        let Some(e) = sites.get_mut(site) else {
            return false;
        };
        if ok {
            e.failures = 0;
            return false;
        }
        e.failures += 1;
        if e.failures < self.fresh_after {
            return false;
        }
        e.generation += 1;
        e.failures = 0;
        e.group = (self.make)(site, e.generation);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_group_per_site_and_a_fresh_one_after_failures() {
        let g = IsolationGroups::new(2, |site, gen| format!("{site}#{gen}"));
        assert_eq!(g.group("a"), "a#0");
        assert_eq!(g.group("b"), "b#0");
        assert_eq!(g.group("a"), "a#0");
        assert!(!g.record("a", false));
        assert!(!g.record("a", true)); // a success resets the count
        assert!(!g.record("a", false));
        assert!(g.record("a", false));
        assert_eq!(g.group("a"), "a#1");
        assert_eq!(g.group("b"), "b#0");
    }
}
