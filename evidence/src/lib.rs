//! Evidence that holds up, kept only where needed.
//!
//! For every alert the matcher raises, the response that carried the sighting is kept as WARC
//! records ([`warc`]): the request and the response of a fetched page or image, or a resource
//! record for an image found inside a page or an attachment. Nothing that did not raise an
//! alert is kept.
//!
//! Records are encrypted at rest ([`vault`]) with XChaCha20-Poly1305 under a key that lives
//! outside the data dir (`LEAKWATCH_EVIDENCE_KEY_FILE` or `LEAKWATCH_EVIDENCE_KEY`, or
//! `[evidence] key_file`): a copy of the data dir reveals neither the pages nor the
//! identifiers they hold. Files rotate by size and by day, and whole days are purged once
//! they are older than `[evidence] retention_days`. [`vault::export`] writes one alert's
//! decrypted records as a `.warc.gz`, the alert's JSON and a `SHA256SUMS` manifest.

pub mod vault;
pub mod warc;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use vault::{export, EvidenceKey, Vault};

/// The `[evidence]` table.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvidenceConfig {
    /// Days an alert's evidence is kept; whole days older than this are deleted.
    pub retention_days: u32,
    /// The key file (32 bytes, or 64 hex digits); the environment's key wins over it. Must
    /// not be inside the data dir.
    pub key_file: Option<PathBuf>,
    /// An evidence file is closed and a new one begun past this size.
    pub max_file_mib: u64,
}

impl Default for EvidenceConfig {
    fn default() -> Self {
        EvidenceConfig {
            retention_days: 90,
            key_file: None,
            max_file_mib: 64,
        }
    }
}

/// Why evidence could not be kept or read.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the evidence key {0} is inside the data dir; keep it outside (a mounted secret), \
         so that a copy of the data dir cannot be read"
    )]
    KeyInDataDir(PathBuf),
    #[error("the evidence key in {0} is not 32 bytes or 64 hex digits")]
    BadKey(String),
    #[error(
        "{0} was written under another evidence key; set {file} or {key} to the key it was \
         written with",
        file = vault::KEY_FILE_ENV,
        key = vault::KEY_ENV
    )]
    WrongKey(PathBuf),
    #[error("{path} is damaged: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("no evidence is kept for alert {0}")]
    NoEvidence(String),
    #[error("alert {0} is not in the alert store")]
    NoAlert(String),
    #[error("{0} is not an alert id")]
    BadAlertId(String),
    #[error("{0} already exists; export into an empty or new directory")]
    Exists(PathBuf),
    #[error(
        "{0} is inside the data dir; export decrypted evidence elsewhere, so that the data \
         dir keeps none in clear"
    )]
    ExportInDataDir(PathBuf),
    #[error("{0} bytes of records are more than one alert's evidence may hold")]
    TooLarge(usize),
    #[error(transparent)]
    Alerts(#[from] alerts::StoreError),
}

/// Fills `buf` from the OS's random source.
pub(crate) fn random_bytes(buf: &mut [u8]) -> std::io::Result<()> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")?.read_exact(buf)
}
