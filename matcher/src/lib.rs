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
pub mod colour;
pub mod detail;
pub mod engine;
pub mod grid;
pub mod hashing;
pub mod identifiers;
pub mod identity;
pub mod import;
pub mod lookup;
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
pub use identifiers::Kind as IdentifierKind;
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
    /// The measurements behind a verified score.
    #[serde(skip_serializing_if = "Option::is_none", default, skip_deserializing)]
    pub evidence: Option<engine::Evidence>,
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

/// The alert one found image deserves, if any ([`identity`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Sighted {
    /// A copy of the stolen photo `label`.
    Image {
        label: String,
        distance: u32,
        algorithm: String,
    },
    /// A frame of a stolen photo's camera that is none of the stolen photos: `label` names
    /// the camera's cluster (`cluster-` and the label of its first photo in the bank),
    /// `nearest` lists the nearest stolen photos, nearest first.
    Scene {
        label: String,
        distance: u32,
        nearest: Vec<String>,
    },
}

impl Sighted {
    /// The label a scene alert carries for the cluster named by photo `label`.
    pub fn cluster_label(label: &str) -> String {
        format!("cluster-{label}")
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
    /// The one alert this image deserves, if any.
    pub sighted: Option<Sighted>,
}

/// Decodes, hashes and matches image bytes, listing the `k` best candidates.
pub fn match_bytes(
    bytes: &[u8],
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
    let scored = engine.score(&query, k.max(engine.params.candidates));
    let sighted = sighted(engine, &scored);
    let candidates = scored
        .into_iter()
        .take(k)
        .filter_map(|s| {
            engine.label(s.entry).map(|label| Candidate {
                label,
                distance: s.distance,
                hash_distance: s.hash_distance,
                matched: s.matched,
                algorithm: algorithm_name(s.verified).to_string(),
                evidence: s.verified.then_some(s.evidence),
            })
        })
        .collect();
    Ok(Outcome {
        width,
        height,
        hashes: engine::sighting_hashes(&query),
        candidates,
        sighted,
    })
}

/// The alert `scored` (best first) deserves, with the bank's labels.
pub fn sighted(engine: &engine::Engine, scored: &[engine::Scored]) -> Option<Sighted> {
    let label = |i: usize| engine.label(i);
    match identity::identify(engine, scored, &engine.params.rules) {
        identity::Identity::Photo(s) => Some(Sighted::Image {
            label: label(s.entry)?,
            distance: s.distance,
            algorithm: algorithm_name(s.verified).to_string(),
        }),
        identity::Identity::Scene { cluster, nearest } => Some(Sighted::Scene {
            label: Sighted::cluster_label(&label(cluster)?),
            distance: nearest.first().map_or(0, |s| s.distance),
            nearest: nearest.iter().filter_map(|s| label(s.entry)).collect(),
        }),
        identity::Identity::Unknown => None,
    }
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
    let (plane, chroma) = views::Plane::with_chroma(img, views::PLANE_SIDE);
    let prints = engine::Prints::of(&plane, chroma.as_ref());
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
        colour: prints.colour,
        detail: Some(prints.detail),
    })
}

/// The engine for the bank in `data_dir`, as a matcher opens it: the bank's lookup file
/// mapped in place when it names the current bank (written first when it is missing or
/// stale), or the bank parsed into memory while an interrupted import's journal holds
/// fingerprints the bank file does not, or when the lookup file cannot be written.
pub fn open_engine(
    data_dir: &std::path::Path,
    params: engine::Params,
) -> Result<engine::Engine, bank::BankError> {
    let journal = data_dir.join(bank::JOURNAL_FILE);
    let pending = std::fs::metadata(&journal).is_ok_and(|m| m.len() > 0);
    let bank_file = data_dir.join(bank::BANK_FILE);
    let id = lookup::bank_id(&bank_file).ok().flatten();
    let path = data_dir.join(lookup::LOOKUP_FILE);
    if let (false, Some(id)) = (pending, id) {
        match lookup::Lookup::open(&path) {
            Ok(l) if l.bank_id() == id => return Ok(engine::Engine::mapped(l, params)),
            Ok(_) => tracing::info!(path = %path.display(), "lookup file is stale; rebuilding"),
            Err(lookup::LookupError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(error = %e, "rebuilding the lookup file"),
        }
    }
    let bank = Bank::open(data_dir)?;
    if !pending && id.is_some() {
        match bank
            .write_lookup()
            .and_then(|()| lookup::Lookup::open(&path))
        {
            Ok(l) => return Ok(engine::Engine::mapped(l, params)),
            Err(e) => {
                tracing::warn!(error = %e, "matching from memory: the lookup file cannot be used")
            }
        }
    }
    Ok(engine::Engine::from_bank(&bank, params))
}
