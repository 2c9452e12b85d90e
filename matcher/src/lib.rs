//! Matching for leakwatch: is this image one of the stolen photos, does this page contain a
//! stolen identifier?
//!
//! - [`hashing`]: bounded decoding of hostile images and the 256-bit perceptual hash;
//! - [`bank`]: the fingerprint bank (hashes only, never image bytes) and nearest search;
//! - [`watchlist`]: identifiers kept only as keyed hashes, and the page-text scanner;
//! - [`role`]: the matcher role that consumes images and pages from the bus and raises alerts.
//!
//! A match is decided by one number, the Hamming distance between hashes, against one
//! threshold: `leakwatch match` reports the same decision the running matcher alerts on.

pub mod bank;
pub mod hashing;
pub mod mih;
pub mod role;
pub mod watchlist;

use serde::{Deserialize, Serialize};

pub use bank::{Bank, Fingerprint};
pub use hashing::{DecodeLimits, ImageError, ImageHasher};
pub use mih::{MihError, MihIndex};
pub use role::Matcher;
pub use watchlist::Watchlist;

/// The `[matcher]` table of the config file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MatcherConfig {
    /// Alert when the Hamming distance of the 256-bit hashes is at most this.
    pub threshold: u32,
    /// Concurrent image decodes in this process; 0 = one per core.
    pub workers: usize,
    /// Unacked images each worker may hold (AMQP `basic_qos`).
    pub prefetch: u16,
    pub decode: DecodeLimits,
}

impl Default for MatcherConfig {
    fn default() -> Self {
        MatcherConfig {
            threshold: 24,
            workers: 0,
            prefetch: 1,
            decode: DecodeLimits::default(),
        }
    }
}

impl MatcherConfig {
    pub fn effective_workers(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        }
    }
}

/// A verdict for one image against the bank: what `leakwatch match` prints and what the
/// matcher alerts on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub label: String,
    pub distance: u32,
    pub matched: bool,
    pub algorithm: String,
}

/// Hashes decoded image bytes and lists the `k` nearest fingerprints.
pub fn match_bytes(
    bytes: &[u8],
    bank: &Bank,
    hasher: &ImageHasher,
    config: &MatcherConfig,
    k: usize,
) -> Result<(hashing::Hash256, u32, u32, Vec<Candidate>), ImageError> {
    let img = hashing::decode(bytes, config.decode)?;
    let hash = hasher.dct256(&img);
    let candidates = bank
        .nearest(&hash, k)
        .into_iter()
        .filter_map(|hit| {
            bank.get(hit.index).map(|fp| Candidate {
                label: fp.label.clone(),
                distance: hit.distance,
                matched: hit.distance <= config.threshold,
                algorithm: fp.algorithm.clone(),
            })
        })
        .collect();
    Ok((hash, img.width(), img.height(), candidates))
}
