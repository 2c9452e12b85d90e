//! Per-site politeness: requests to one site are spaced by at least a fixed delay, however
//! many workers want it. Workers reserve the next free slot and sleep until it, so a busy site
//! never blocks requests to other sites.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Hands out request slots per site.
#[derive(Debug)]
pub struct HostGate {
    delay: Duration,
    /// Sites with a spacing of their own (a paste site's rate limit).
    site_delays: HashMap<String, Duration>,
    next: Mutex<HashMap<String, Instant>>,
}

impl HostGate {
    pub fn new(delay: Duration) -> Self {
        HostGate {
            delay,
            site_delays: HashMap::new(),
            next: Mutex::new(HashMap::new()),
        }
    }

    /// Spaces requests to these sites by their own delay instead.
    pub fn with_site_delays(mut self, delays: HashMap<String, Duration>) -> Self {
        self.site_delays = delays;
        self
    }

    /// Waits for this site's next slot.
    pub async fn wait(&self, site: &str) {
        let delay = self.site_delays.get(site).copied().unwrap_or(self.delay);
        if delay.is_zero() {
            return;
        }
        let slot = {
            let Ok(mut next) = self.next.lock() else {
                return;
            };
            let now = Instant::now();
            if next.len() > 100_000 {
                next.retain(|_, t| *t > now);
            }
            let slot = next.get(site).copied().filter(|t| *t > now).unwrap_or(now);
            next.insert(site.to_string(), slot + delay);
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn spaces_one_site_but_not_others() {
        let gate = HostGate::new(Duration::from_secs(2));
        let start = Instant::now();
        gate.wait("a").await;
        gate.wait("b").await;
        assert!(start.elapsed() < Duration::from_millis(10));
        gate.wait("a").await;
        gate.wait("a").await;
        assert!(start.elapsed() >= Duration::from_secs(4));
    }

    #[tokio::test(start_paused = true)]
    async fn a_site_with_its_own_delay_is_spaced_by_it() {
        let slow = HashMap::from([("paste".to_string(), Duration::from_secs(3))]);
        let gate = HostGate::new(Duration::ZERO).with_site_delays(slow);
        let start = Instant::now();
        gate.wait("forum").await;
        gate.wait("forum").await;
        assert!(start.elapsed() < Duration::from_millis(10));
        gate.wait("paste").await;
        gate.wait("paste").await;
        assert!(start.elapsed() >= Duration::from_secs(3));
    }
}
