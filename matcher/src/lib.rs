//! Matching for leakwatch: is this image one of the stolen photos, does this page contain a
//! stolen identifier?
//!
//! - [`hashing`]: bounded decoding of hostile images;
//! - [`views`]: where in a found image a stolen photo may sit (trimmed, embedded in a page);
//! - [`engine`]: the decision — retrieval by perceptual hashes, then verification;
//! - [`grid`]: the spatial signature that tells a stolen photo from another car at the same
//!   camera;
//! - [`bank`]: the fingerprint bank file (hashes only, never image bytes);
//! - [`import`]: building the bank from the stolen images, or from shared PDQ hashes;
//! - [`watchlist`]: identifiers kept only as keyed hashes, and the page-text scanner;
//! - [`role`]: the matcher role that consumes images and pages from the bus and raises alerts;
//! - [`retrohunt`]: the same decision for sightings recorded before a fingerprint existed.
//!
//! A match is decided by one number per candidate, the verified score, against one threshold:
//! `leakwatch match` reports the same decision the running matcher alerts on.

pub mod bank;
pub mod engine;
pub mod grid;
pub mod hashing;
pub mod import;
pub mod mih;
pub mod pdq;
pub mod retrohunt;
pub mod role;
pub mod views;
pub mod watchlist;

use serde::{Deserialize, Serialize};

pub use bank::{Bank, Fingerprint};
pub use engine::Engine;
pub use hashing::{DecodeLimits, ImageError};
pub use mih::{MihError, MihIndex};
pub use pdq::{pdq, pdq_dihedral, pdq_gated, Dihedral, Pdq, PdqDihedral, QualityGate};
pub use role::Matcher;
pub use watchlist::Watchlist;

/// The `[matcher]` table of the config file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MatcherConfig {
    /// Alert when a candidate's verified score (0–256, see [`grid`]) is at most this.
    pub threshold: u32,
    /// Alert on a fingerprint imported as a bare PDQ hash when the Hamming distance is at
    /// most this (there is no signature to verify it with).
    pub hash_threshold: u32,
    /// Retrieval radius in bits: hashes this near propose a candidate for verification.
    pub radius: u32,
    /// Candidates verified per image.
    pub candidates: usize,
    /// Concurrent image decodes in this process; 0 = one per core.
    pub workers: usize,
    /// Unacked images each worker may hold (AMQP `basic_qos`).
    pub prefetch: u16,
    pub decode: DecodeLimits,
}

impl Default for MatcherConfig {
    fn default() -> Self {
        let p = engine::Params::default();
        MatcherConfig {
            threshold: p.threshold,
            hash_threshold: p.hash_threshold,
            radius: p.radius,
            candidates: p.candidates,
            workers: 0,
            prefetch: 1,
            decode: DecodeLimits::default(),
        }
    }
}

impl MatcherConfig {
    /// The engine's parameters from this config.
    pub fn params(&self) -> engine::Params {
        engine::Params {
            radius: self.radius.min(256),
            candidates: self.candidates.clamp(1, 1024),
            threshold: self.threshold,
            hash_threshold: self.hash_threshold,
            ..engine::Params::default()
        }
    }

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
    /// The decision score, lower is nearer: the verified disagreement scaled to 0–256 (or the
    /// hash distance in bits for fingerprints imported as bare hashes).
    pub distance: u32,
    /// Hamming distance of the hashes that retrieved the candidate.
    pub hash_distance: u32,
    pub matched: bool,
    /// `pdq+grid` (verified) or `pdq` (hash only).
    pub algorithm: String,
}

/// The `algorithm` of a decision: `pdq+grid` when the signature verified it, `pdq` for a
/// fingerprint imported as a bare hash.
pub fn algorithm_name(verified: bool) -> &'static str {
    if verified {
        "pdq+grid"
    } else {
        "pdq"
    }
}

/// What matching one image produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub width: u32,
    pub height: u32,
    /// The found image's own hashes, kept with the sighting so later fingerprints can be
    /// checked against it ([`engine::sighting_hashes`]).
    pub hashes: Vec<engine::SightingHash>,
    /// Nearest first.
    pub candidates: Vec<Candidate>,
}

/// Decodes, hashes and matches image bytes, listing the `k` best candidates.
pub fn match_bytes(
    bytes: &[u8],
    bank: &Bank,
    engine: &engine::Engine,
    config: &MatcherConfig,
    k: usize,
) -> Result<Outcome, ImageError> {
    // JPEGs are decoded at a reduced scale where the decoder allows it: matching works on a
    // plane of at most 384 pixels a side.
    let img = hashing::decode_for_hash(bytes, config.decode, hashing::DEFAULT_HASH_MIN_SIDE)?;
    let (width, height) = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .ok()
        .and_then(|r| r.into_dimensions().ok())
        .unwrap_or((img.width(), img.height()));
    let query = engine::Query::from_image(&img)?;
    let candidates = engine
        .score(&query, k)
        .into_iter()
        .filter_map(|s| {
            bank.get(s.entry).map(|fp| Candidate {
                label: fp.label.clone(),
                distance: s.distance,
                hash_distance: s.hash_distance,
                matched: s.matched,
                algorithm: algorithm_name(s.verified).to_string(),
            })
        })
        .collect();
    Ok(Outcome {
        width,
        height,
        hashes: engine::sighting_hashes(&query),
        candidates,
    })
}

/// Fingerprints a decoded stolen image: region hashes and the verification signature.
/// Refuses images too small or too flat to be told apart.
pub fn fingerprint_image(
    img: &image::DynamicImage,
    label: String,
    sha256: String,
) -> Result<Fingerprint, ImageError> {
    if img.width() < engine::MIN_SIDE || img.height() < engine::MIN_SIDE {
        return Err(ImageError::TooSmall {
            width: img.width(),
            height: img.height(),
            min_side: engine::MIN_SIDE,
        });
    }
    let plane = views::Plane::from_image(img, views::PLANE_SIDE);
    let prints = engine::Prints::of(&plane);
    if prints.quality < engine::MIN_QUALITY {
        return Err(ImageError::LowQuality {
            quality: prints.quality,
            min_quality: engine::MIN_QUALITY,
        });
    }
    Ok(Fingerprint {
        label,
        sha256,
        width: img.width(),
        height: img.height(),
        imported_at: schema::now_rfc3339(),
        source: bank::Source::Image,
        quality: prints.quality,
        regions: prints.regions,
        signature: Some(prints.signature),
    })
}
