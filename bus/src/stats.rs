//! Counters shared by the roles of one process: pages, images, alerts and errors by kind.
//!
//! The run summary and progress lines read them. Names are low-cardinality (`error.<kind>`,
//! never a URL) so they can become metric labels later.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// A set of named counters.
#[derive(Debug, Default)]
pub struct Stats {
    counters: Mutex<BTreeMap<String, u64>>,
}

impl Stats {
    pub fn add(&self, name: &str, n: u64) {
        if let Ok(mut c) = self.counters.lock() {
            *c.entry(name.to_string()).or_default() += n;
        }
    }

    pub fn incr(&self, name: &str) {
        self.add(name, 1);
    }

    /// Counts one error of `kind` (e.g. `fetch.timeout`).
    pub fn error(&self, kind: &str) {
        self.add(&format!("error.{kind}"), 1);
    }

    pub fn get(&self, name: &str) -> u64 {
        self.counters
            .lock()
            .map(|c| c.get(name).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counters.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Errors by kind (without the `error.` prefix).
    pub fn errors(&self) -> BTreeMap<String, u64> {
        self.snapshot()
            .into_iter()
            .filter_map(|(k, v)| k.strip_prefix("error.").map(|k| (k.to_string(), v)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_and_errors() {
        let s = super::Stats::default();
        s.incr("pages");
        s.add("pages", 2);
        s.error("fetch.timeout");
        assert_eq!(s.get("pages"), 3);
        assert_eq!(s.errors().get("fetch.timeout"), Some(&1));
        assert_eq!(s.get("missing"), 0);
    }
}
