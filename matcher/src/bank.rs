//! The fingerprint bank: perceptual hashes of the stolen images, and nothing else.
//!
//! The bank never holds image bytes, so the monitor cannot leak what it watches for. It is a
//! versioned JSON file in the data dir, written atomically (temporary file, fsync, rename), so
//! a crash mid-write leaves the previous bank intact. Entries are keyed by the sha256 of the
//! source file, so importing the same file twice adds nothing.
//!
//! Search is brute force over 256-bit hashes: exact, and fast enough for tens of thousands of
//! fingerprints; an indexed search replaces it behind [`Bank::nearest`].

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::hashing::{hamming, parse_hash, Hash256};

pub const BANK_FILE: &str = "fingerprints.json";
const FORMAT: &str = "leakwatch-fingerprint-bank";
const VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum BankError {
    #[error("cannot access fingerprint bank {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("fingerprint bank {path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "fingerprint bank {path} has format version {found}; this build reads version {VERSION}"
    )]
    Version { path: PathBuf, found: u32 },
}

/// One stolen image, as hashes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub label: String,
    /// sha256 of the source file: dedupe key and an exact-copy fingerprint.
    pub sha256: String,
    pub algorithm: String,
    /// Hex of the 256-bit hash.
    pub hash: String,
    pub width: u32,
    pub height: u32,
    pub imported_at: String,
}

#[derive(Serialize, Deserialize)]
struct BankFile {
    format: String,
    version: u32,
    fingerprints: Vec<Fingerprint>,
}

/// The loaded bank.
#[derive(Debug, Default)]
pub struct Bank {
    path: PathBuf,
    fingerprints: Vec<Fingerprint>,
    hashes: Vec<Hash256>,
    by_sha: HashSet<String>,
}

/// A search hit: index into the bank and Hamming distance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    pub index: usize,
    pub distance: u32,
}

impl Bank {
    /// Opens the bank in `data_dir`; a missing file is an empty bank.
    pub fn open(data_dir: &Path) -> Result<Bank, BankError> {
        let path = data_dir.join(BANK_FILE);
        let mut bank = Bank {
            path: path.clone(),
            ..Bank::default()
        };
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(bank),
            Err(source) => return Err(BankError::Io { path, source }),
        };
        let corrupt = |reason: String| BankError::Corrupt {
            path: path.clone(),
            reason,
        };
        let file: BankFile = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if file.format != FORMAT {
            return Err(corrupt(format!(
                "not a fingerprint bank (format {:?})",
                file.format
            )));
        }
        if file.version != VERSION {
            return Err(BankError::Version {
                path,
                found: file.version,
            });
        }
        for (i, fp) in file.fingerprints.into_iter().enumerate() {
            if parse_hash(&fp.hash).is_none() {
                return Err(corrupt(format!(
                    "entry {i} ({}) has an invalid hash",
                    fp.label
                )));
            }
            bank.insert(fp);
        }
        Ok(bank)
    }

    /// Adds a fingerprint unless one from the same source file is present. Returns whether added.
    pub fn insert(&mut self, fp: Fingerprint) -> bool {
        let Some(hash) = parse_hash(&fp.hash) else {
            return false;
        };
        if !self.by_sha.insert(fp.sha256.clone()) {
            return false;
        }
        self.hashes.push(hash);
        self.fingerprints.push(fp);
        true
    }

    pub fn contains_source(&self, sha256: &str) -> bool {
        self.by_sha.contains(sha256)
    }

    /// Writes the bank atomically.
    pub fn save(&self) -> Result<(), BankError> {
        let io = |source| BankError::Io {
            path: self.path.clone(),
            source,
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let file = BankFile {
            format: FORMAT.to_string(),
            version: VERSION,
            fingerprints: self.fingerprints.clone(),
        };
        let tmp = self.path.with_extension("json.tmp");
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        serde_json::to_writer(&mut f, &file).map_err(|e| io(e.into()))?;
        f.write_all(b"\n").map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.fingerprints.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fingerprints.is_empty()
    }

    pub fn get(&self, index: usize) -> Option<&Fingerprint> {
        self.fingerprints.get(index)
    }

    pub fn fingerprints(&self) -> &[Fingerprint] {
        &self.fingerprints
    }

    /// The `k` nearest fingerprints, nearest first (ties by bank order).
    pub fn nearest(&self, hash: &Hash256, k: usize) -> Vec<Hit> {
        let mut hits: Vec<Hit> = self
            .hashes
            .iter()
            .enumerate()
            .map(|(index, h)| Hit {
                index,
                distance: hamming(hash, h),
            })
            .collect();
        let k = k.min(hits.len());
        if k == 0 {
            return Vec::new();
        }
        hits.select_nth_unstable_by_key(k - 1, |h| (h.distance, h.index));
        hits.truncate(k);
        hits.sort_by_key(|h| (h.distance, h.index));
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(label: &str, sha: &str, fill: u8) -> Fingerprint {
        Fingerprint {
            label: label.into(),
            sha256: sha.into(),
            algorithm: crate::hashing::DCT256.into(),
            hash: hex::encode([fill; 32]),
            width: 1,
            height: 1,
            imported_at: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn round_trip_dedupe_and_nearest() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = Bank::open(dir.path()).unwrap();
        assert!(b.insert(fp("a", "s1", 0)));
        assert!(b.insert(fp("b", "s2", 0xff)));
        assert!(!b.insert(fp("a-again", "s1", 0)));
        b.save().unwrap();
        let b = Bank::open(dir.path()).unwrap();
        assert_eq!(b.len(), 2);
        let hits = b.nearest(&[0x01; 32], 5);
        assert_eq!(hits.len(), 2);
        assert_eq!((hits[0].index, hits[0].distance), (0, 32));
        assert_eq!(b.get(hits[1].index).unwrap().label, "b");
    }

    #[test]
    fn corrupt_bank_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(BANK_FILE), b"{\"format\": 3").unwrap();
        let e = Bank::open(dir.path()).unwrap_err().to_string();
        assert!(e.contains("corrupt") && e.contains(BANK_FILE), "{e}");
        std::fs::write(
            dir.path().join(BANK_FILE),
            br#"{"format":"leakwatch-fingerprint-bank","version":9,"fingerprints":[]}"#,
        )
        .unwrap();
        assert!(matches!(
            Bank::open(dir.path()),
            Err(BankError::Version { found: 9, .. })
        ));
    }
}
