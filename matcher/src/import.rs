//! Building the bank: from the stolen images, or from PDQ hashes another party shares instead
//! of images.
//!
//! Files are fingerprinted in parallel in chunks. Each new fingerprint is appended to the
//! bank's journal, fsynced after every chunk, and the bank file is rewritten once at the end,
//! so an import of 100,000 images that is interrupted (Ctrl-C, a crash, a reboot) loses at
//! most one chunk: the next import (or any command) replays the journal, and files already in
//! the bank are recognised by their sha256 and skipped without decoding.
//!
//! A hash file is checked whole first: one bad line imports nothing.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::bank::{BankError, Fingerprint, Source};
use crate::hashing::{self, Hash256, ImageError};
use crate::{Bank, MatcherConfig};

/// Larger files are not read: no stolen photo is this big, and reading it costs memory.
const MAX_FILE_BYTES: u64 = 200 * 1024 * 1024;
/// Files fingerprinted between two journal syncs.
pub const CHUNK: usize = 256;
/// Longest line accepted in a hash file.
const MAX_LINE: usize = 4096;

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Bank(#[from] BankError),
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Every bad line of a hash file (at most 20 kept), with its number.
    #[error("{count} invalid line(s) in {path}; nothing imported")]
    BadLines {
        path: PathBuf,
        count: usize,
        lines: Vec<String>,
    },
}

/// What an import did.
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    pub added: usize,
    pub present: usize,
    /// Files not imported, by reason (`image.too-small` …).
    pub refused: BTreeMap<&'static str, usize>,
    /// Fingerprints in the bank afterwards.
    pub bank_len: usize,
}

/// Hears how an image import is going (a progress bar, log lines).
pub trait ImportProgress {
    /// Fingerprints recovered from the journal of an interrupted import.
    fn resumed(&mut self, _recovered: usize) {}
    /// `path` was not imported.
    fn refused(&mut self, _path: &Path, _error: &ImageError) {}
    /// `n` more files are done.
    fn advanced(&mut self, _n: usize) {}
}

/// Progress nobody watches.
impl ImportProgress for () {}

/// Fingerprints `files` into the bank in `data_dir`.
pub fn import_images(
    data_dir: &Path,
    config: &MatcherConfig,
    files: &[PathBuf],
    progress: &mut dyn ImportProgress,
) -> Result<ImportReport, ImportError> {
    let mut bank = Bank::open_writer(data_dir)?;
    if bank.recovered() > 0 {
        progress.resumed(bank.recovered());
    }
    let mut journal = bank.journal()?;
    let mut report = ImportReport::default();
    for chunk in files.chunks(CHUNK) {
        let results: Vec<(&PathBuf, Result<Option<Fingerprint>, ImageError>)> = chunk
            .par_iter()
            .map(|p| (p, fingerprint_file(p, &bank, config)))
            .collect();
        for (path, r) in results {
            match r {
                Ok(Some(fp)) => {
                    journal.append(&fp)?;
                    if bank.insert(fp) {
                        report.added += 1;
                    } else {
                        report.present += 1;
                    }
                }
                Ok(None) => report.present += 1,
                Err(e) => {
                    *report.refused.entry(e.kind()).or_default() += 1;
                    progress.refused(path, &e);
                }
            }
        }
        journal.sync()?;
        progress.advanced(chunk.len());
    }
    drop(journal);
    bank.save()?;
    report.bank_len = bank.len();
    Ok(report)
}

/// A file's fingerprint, or `None` when the bank already has it.
fn fingerprint_file(
    path: &Path,
    bank: &Bank,
    config: &MatcherConfig,
) -> Result<Option<Fingerprint>, ImageError> {
    let io = |e: std::io::Error| ImageError::Decode(e.to_string());
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(ImageError::TooLarge(format!(
            "file larger than {MAX_FILE_BYTES} bytes"
        )));
    }
    let bytes = std::fs::read(path).map_err(io)?;
    let sha256 = schema::sha256_hex(&bytes);
    if bank.contains_source(&sha256) {
        return Ok(None);
    }
    let img = hashing::decode(&bytes, config.decode)?;
    let label = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| sha256[..12].to_string());
    crate::fingerprint_image(&img, label, sha256).map(Some)
}

/// Files under the given paths, sorted for a stable order; unreadable entries below a folder
/// are passed to `unreadable` and skipped.
pub fn collect_files(
    paths: &[PathBuf],
    mut unreadable: impl FnMut(&walkdir::Error),
) -> Result<Vec<PathBuf>, ImportError> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|source| ImportError::Io {
            path: p.clone(),
            source,
        })?;
        if meta.is_file() {
            out.push(p.clone());
            continue;
        }
        for entry in walkdir::WalkDir::new(p).sort_by_file_name() {
            match entry {
                Ok(e) if e.file_type().is_file() => out.push(e.into_path()),
                Ok(_) => {}
                Err(e) => unreadable(&e),
            }
        }
    }
    Ok(out)
}

/// Reads a hash file: one PDQ hash per line as `HEX LABEL` (64 hex digits, then whitespace or
/// a comma, then the label); `#` starts a comment.
pub fn read_hash_file(file: &Path) -> Result<Vec<(Hash256, String)>, ImportError> {
    let io = |source| ImportError::Io {
        path: file.to_path_buf(),
        source,
    };
    let f = std::fs::File::open(file).map_err(io)?;
    let mut parsed = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in std::io::BufReader::new(f).split(b'\n').enumerate() {
        let line = line.map_err(io)?;
        let n = i + 1;
        if line.len() > MAX_LINE {
            bad.push(format!("line {n}: longer than {MAX_LINE} bytes"));
            continue;
        }
        let Ok(text) = std::str::from_utf8(&line) else {
            bad.push(format!("line {n}: not UTF-8"));
            continue;
        };
        match parse_hash_line(text) {
            Ok(Some(entry)) => parsed.push(entry),
            Ok(None) => {}
            Err(e) => bad.push(format!("line {n}: {e}")),
        }
    }
    if !bad.is_empty() {
        return Err(ImportError::BadLines {
            path: file.to_path_buf(),
            count: bad.len(),
            lines: bad.into_iter().take(20).collect(),
        });
    }
    Ok(parsed)
}

/// Adds shared PDQ hashes to the bank in `data_dir`; they are matched by hash distance alone.
pub fn import_hashes(
    data_dir: &Path,
    hashes: Vec<(Hash256, String)>,
) -> Result<ImportReport, ImportError> {
    let mut bank = Bank::open_writer(data_dir)?;
    let mut report = ImportReport::default();
    for (hash, label) in hashes {
        let fp = Fingerprint {
            label,
            sha256: schema::sha256_hex(format!("pdq:{}", hex::encode(hash)).as_bytes()),
            width: 0,
            height: 0,
            imported_at: schema::now_rfc3339(),
            source: Source::Hashes,
            quality: 0,
            regions: vec![hash],
            signature: None,
            colour: None,
            detail: None,
        };
        if bank.insert(fp) {
            report.added += 1;
        } else {
            report.present += 1;
        }
    }
    bank.save()?;
    report.bank_len = bank.len();
    Ok(report)
}

/// One line of a hash file: `Ok(None)` for blanks and comments.
fn parse_hash_line(line: &str) -> Result<Option<(Hash256, String)>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let (hex, rest) = line
        .split_once(|c: char| c.is_whitespace() || c == ',')
        .unwrap_or((line, ""));
    let hash = hashing::parse_hash(hex)
        .ok_or_else(|| format!("{hex:?} is not a 256-bit hash in 64 hex digits"))?;
    let label = rest.trim_matches(|c: char| c.is_whitespace() || c == ',');
    if label.is_empty() {
        return Err("no label after the hash".into());
    }
    if label.chars().any(char::is_control) {
        return Err("control characters in the label".into());
    }
    Ok(Some((hash, label.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_lines() {
        let h = "f".repeat(64);
        assert_eq!(
            parse_hash_line(&format!("{h} plate 12")).unwrap(),
            Some(([0xff; 32], "plate 12".to_string()))
        );
        assert_eq!(
            parse_hash_line(&format!("{h},cam-3")).unwrap().unwrap().1,
            "cam-3"
        );
        assert_eq!(parse_hash_line("  # comment").unwrap(), None);
        assert_eq!(parse_hash_line("").unwrap(), None);
        assert!(parse_hash_line(&h).unwrap_err().contains("no label"));
        assert!(parse_hash_line("abc label")
            .unwrap_err()
            .contains("64 hex digits"));
        assert!(parse_hash_line(&format!("{h} a\u{7}b")).is_err());
    }

    #[test]
    fn a_bad_line_imports_nothing_and_a_good_file_imports_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hashes.txt");
        let h = "ab".repeat(32);
        std::fs::write(&file, format!("# shared\n{h} cam-1\nnot-a-hash x\n")).unwrap();
        match read_hash_file(&file) {
            Err(ImportError::BadLines { count, lines, .. }) => {
                assert_eq!(count, 1);
                assert!(lines[0].starts_with("line 3:"), "{lines:?}");
            }
            other => panic!("{other:?}"),
        }
        std::fs::write(&file, format!("{h} cam-1\n")).unwrap();
        let data = dir.path().join("data");
        let r = import_hashes(&data, read_hash_file(&file).unwrap()).unwrap();
        assert_eq!((r.added, r.present, r.bank_len), (1, 0, 1));
        let r = import_hashes(&data, read_hash_file(&file).unwrap()).unwrap();
        assert_eq!((r.added, r.present, r.bank_len), (0, 1, 1));
    }
}
