//! Jitter for retries, pauses and polls, so that many workers (or many crawlers) do not act in
//! lockstep. A xorshift generator: jitter needs spread, not cryptographic quality.

use std::sync::atomic::{AtomicU64, Ordering};

/// A shared source of numbers in [0, 1).
#[derive(Debug)]
pub struct Jitter(AtomicU64);

impl Jitter {
    /// Seeded from `seed` (any value; zero is replaced, xorshift would stay at zero).
    pub fn new(seed: u64) -> Self {
        Jitter(AtomicU64::new(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        }))
    }

    /// Seeded from the clock: processes started together still differ.
    pub fn from_clock() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Jitter::new(nanos | 1)
    }

    /// The next number in [0, 1).
    pub fn next(&self) -> f64 {
        let mut x = self.0.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0.store(x, Ordering::Relaxed);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_stay_in_the_unit_interval_and_spread() {
        let j = Jitter::new(0);
        let xs: Vec<f64> = (0..1000).map(|_| j.next()).collect();
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        assert!(xs.iter().any(|x| *x < 0.1) && xs.iter().any(|x| *x > 0.9));
    }
}
