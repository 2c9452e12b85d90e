//! `leakwatch fingerprints import|list`: building the bank from the stolen images, or from
//! hashes an agency shares instead of images.
//!
//! Files are fingerprinted in parallel in chunks. Each new fingerprint is appended to the
//! bank's journal, fsynced after every chunk, and the bank file is rewritten once at the end,
//! so an import of 100,000 images that is interrupted (Ctrl-C, a crash, a reboot) loses at
//! most one chunk: the next import (or any command) replays the journal, and files already in
//! the bank are recognised by their sha256 and skipped without decoding.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use matcher::bank::{Fingerprint, Source};
use matcher::{hashing, Bank, ImageHasher};
use rayon::prelude::*;

use crate::config::Config;

/// Larger files are not read: no stolen photo is this big, and reading it costs memory.
const MAX_FILE_BYTES: u64 = 200 * 1024 * 1024;
const CHUNK: usize = 256;
/// Without a terminal, a progress line this often.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Progress on a terminal (a bar) or in logs (a line every few seconds).
struct Progress {
    bar: ProgressBar,
    total: usize,
    done: usize,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    fn new(total: usize) -> Progress {
        let bar = if std::io::stderr().is_terminal() {
            let b = ProgressBar::new(total as u64);
            b.set_style(
                ProgressStyle::with_template("{bar:40} {pos}/{len} images {per_sec} eta {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b
        } else {
            ProgressBar::hidden()
        };
        Progress {
            bar,
            total,
            done: 0,
            started: Instant::now(),
            last_line: Instant::now(),
        }
    }

    fn inc(&mut self, n: usize) {
        self.done += n;
        self.bar.inc(n as u64);
        if self.bar.is_hidden() && self.last_line.elapsed() >= PROGRESS_EVERY {
            self.last_line = Instant::now();
            let rate = self.done as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
            eprintln!("imported {}/{} images ({rate:.0}/s)", self.done, self.total);
        }
    }

    fn println(&self, line: String) {
        self.bar.suspend(|| eprintln!("{line}"));
    }
}

pub fn import(data_dir: &Path, config: &Config, paths: &[PathBuf]) -> anyhow::Result<ExitCode> {
    let files = collect_files(paths)?;
    let mut bank = Bank::open(data_dir)?;
    if bank.recovered() > 0 {
        eprintln!(
            "resuming: {} fingerprints recovered from an interrupted import",
            bank.recovered()
        );
    }
    let mut journal = bank.journal()?;
    let mut progress = Progress::new(files.len());
    let hasher = ImageHasher::new();
    let (mut added, mut present) = (0usize, 0usize);
    let mut refused: std::collections::BTreeMap<&'static str, usize> = Default::default();
    for chunk in files.chunks(CHUNK) {
        let results: Vec<(PathBuf, Result<Option<Fingerprint>, hashing::ImageError>)> = chunk
            .par_iter()
            .map(|p| (p.clone(), fingerprint_file(p, &bank, &hasher, config)))
            .collect();
        for (path, r) in results {
            match r {
                Ok(Some(fp)) => {
                    journal.append(&fp)?;
                    if bank.insert(fp) {
                        added += 1;
                    } else {
                        present += 1;
                    }
                }
                Ok(None) => present += 1,
                Err(e) => {
                    *refused.entry(e.kind()).or_default() += 1;
                    progress.println(format!("not imported: {}: {e}", path.display()));
                }
            }
        }
        journal.sync()?;
        progress.inc(chunk.len());
    }
    progress.bar.finish_and_clear();
    drop(journal);
    bank.save()?;
    let refused_total: usize = refused.values().sum();
    let reasons = refused
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    println!(
        "imported {added} new fingerprints, {present} already present, {refused_total} not \
         imported{}; the bank holds {} fingerprints ({})",
        if reasons.is_empty() {
            String::new()
        } else {
            format!(" ({reasons})")
        },
        bank.len(),
        data_dir.join(matcher::bank::BANK_FILE).display()
    );
    Ok(if added + present == 0 && refused_total > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// A file's fingerprint, or `None` when the bank already has it.
fn fingerprint_file(
    path: &Path,
    bank: &Bank,
    hasher: &ImageHasher,
    config: &Config,
) -> Result<Option<Fingerprint>, hashing::ImageError> {
    let io = |e: std::io::Error| hashing::ImageError::Decode(e.to_string());
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(hashing::ImageError::TooLarge(format!(
            "file larger than {MAX_FILE_BYTES} bytes"
        )));
    }
    let bytes = std::fs::read(path).map_err(io)?;
    let sha256 = schema::sha256_hex(&bytes);
    if bank.contains_source(&sha256) {
        return Ok(None);
    }
    let img = hashing::decode(&bytes, config.matcher.decode)?;
    let label = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| sha256[..12].to_string());
    matcher::fingerprint_image(&img, hasher, label, sha256).map(Some)
}

/// Longest line accepted in a hash file.
const MAX_LINE: usize = 4096;

/// `fingerprints import --from-hashes FILE`: PDQ hashes computed elsewhere, one per line as
/// `HEX LABEL` (64 hex digits, then whitespace or a comma, then the label). `#` starts a
/// comment. Every line is checked first; one bad line imports nothing.
pub fn import_hashes(data_dir: &Path, file: &Path) -> anyhow::Result<ExitCode> {
    let f = std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
    let mut parsed = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in std::io::BufReader::new(f).split(b'\n').enumerate() {
        let line = line.with_context(|| format!("cannot read {}", file.display()))?;
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
        for b in bad.iter().take(20) {
            eprintln!("{}: {b}", file.display());
        }
        anyhow::bail!(
            "{} invalid line(s) in {}; nothing imported",
            bad.len(),
            file.display()
        );
    }
    let mut bank = Bank::open(data_dir)?;
    let (mut added, mut present) = (0, 0);
    for (hash, label) in parsed {
        let hex = hex::encode(hash);
        let fp = Fingerprint {
            label,
            sha256: schema::sha256_hex(format!("pdq:{hex}").as_bytes()),
            width: 0,
            height: 0,
            imported_at: schema::now_rfc3339(),
            source: Source::Hashes,
            quality: 0,
            regions: vec![hash],
            dct256: None,
            signature: None,
        };
        if bank.insert(fp) {
            added += 1;
        } else {
            present += 1;
        }
    }
    bank.save()?;
    println!(
        "imported {added} new PDQ hashes, {present} already present; the bank holds {} \
         fingerprints ({})",
        bank.len(),
        data_dir.join(matcher::bank::BANK_FILE).display()
    );
    Ok(ExitCode::SUCCESS)
}

/// One line of a hash file: `Ok(None)` for blanks and comments.
fn parse_hash_line(line: &str) -> Result<Option<(hashing::Hash256, String)>, String> {
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

/// Files under the given paths, sorted for a stable order.
fn collect_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).with_context(|| format!("cannot read {}", p.display()))?;
        if meta.is_file() {
            out.push(p.clone());
            continue;
        }
        for entry in walkdir::WalkDir::new(p).sort_by_file_name() {
            match entry {
                Ok(e) if e.file_type().is_file() => out.push(e.into_path()),
                Ok(_) => {}
                Err(e) => eprintln!("unreadable: {e}"),
            }
        }
    }
    Ok(out)
}

pub fn list(data_dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let bank = Bank::open(data_dir)?;
    for fp in bank.fingerprints() {
        if json {
            super::print_json(fp)?;
        } else {
            println!(
                "{}\t{}\t{}x{}\t{}",
                fp.label,
                match fp.source {
                    Source::Image => "image",
                    Source::Hashes => "pdq-only",
                },
                fp.width,
                fp.height,
                fp.pdq().map(hex::encode).unwrap_or_default()
            );
        }
    }
    if !json {
        eprintln!("{} fingerprints", bank.len());
    }
    Ok(ExitCode::SUCCESS)
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
}
